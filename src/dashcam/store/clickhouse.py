"""The scale-out store: ClickHouse through ``clickhouse-connect`` — a server, a cluster, or chDB.

``clickhouse_connect.get_client`` talks HTTP(S) to a server (or to any node of a cluster) and,
with ``interface="chdb"``, drives ClickHouse's engine inside this process (chDB); the code
below is the same for all three. The schema (MergeTree by day, LowCardinality, codecs, TTL
retention, cluster DDL) is in :mod:`dashcam.store.clickhouse_schema`.

**Idempotent re-delivery.** dashcam must never store a re-delivered event twice (same group,
same message: same ``event_id``), must report how many events of a batch were new, and its
queries must count each event once. The choice, in three parts:

1. *Before inserting*, a batch is anti-joined against the events already stored in its log
   groups and time span (one indexed range read of ``(log_group, event_id)``), and only new
   events are inserted. This makes ``WriteResult`` exact and keeps duplicates out of the table
   in the normal case (one dashcam writing).
2. *The table is a* ``ReplacingMergeTree(ingestion_time)`` *whose sorting key ends with the
   event id*: when two writers race (two dashcam servers receiving the same retry at the same
   instant) and both insert an event, background merges collapse the copies.
3. *Reads are exact before merges.* On a server (or cluster), several dashcam processes may
   write, so every query runs with the setting ``final = 1``, which applies ``FINAL`` to the
   events table and collapses copies at read time. On chDB one process owns the directory and
   this store serializes its writes, so part 1 alone already keeps every event once and reads
   skip ``FINAL``. ``FINAL`` is not free: it reads the sorting key and version of every row and
   merges unmerged parts while reading — 2-5x the time of the core questions right after a
   bulk import, little once background merges have run (``bench/bench_clickhouse.py``
   measures both). ``?final=0|1`` overrides the default.

Insert deduplication tokens were considered and rejected: they remember *blocks*, not events,
so a retry that arrives in a differently shaped batch is not caught, and an identical block
inserted again after ``delete_log_group`` (re-importing the same files) would be silently
dropped while dashcam reported it written. For the same reason inserts run with
``insert_deduplicate = 0`` (replicated tables dedupe blocks by default).

**Durability.** A write returns only after ClickHouse has acknowledged the insert; parts are
fsynced before that (``fsync_after_insert``; ``?fsync=0`` trades that for speed). In cluster mode
inserts into the Distributed table are synchronous (``distributed_foreground_insert = 1``), so
the acknowledgement means the rows reached their shards. ClickHouse has no multi-statement
transactions: a write that fails half-way may have stored part of its batch; retrying it stores
the rest, exactly once (part 1 above).

**Errors.** Every clickhouse-connect / chDB exception becomes a :mod:`dashcam.errors` error:
connection and engine failures a ``StoreError`` (another process holding a chDB directory a
``StoreBusyError``), a query the engine rejects a ``QueryExecutionError``.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from dashcam import pricing
from dashcam.errors import (
    AlreadyExistsError, ConfigError, DashcamError, NotFoundError, QueryExecutionError, QueryStoppedError,
    StoreBusyError, StoreError,
)
from dashcam.store import ClickHouseTarget
from dashcam.store.base import RETENTION_DAYS, Interrupt, LogGroupInfo, LogStreamInfo, RawWriteResult, Store, WriteResult
from dashcam.store.clickhouse_ingest import normalized_sql, rejection_sql
from dashcam.store.clickhouse_schema import (
    EVENTS_LOCAL_TABLE, GROUP_VERSIONS_TABLE, STREAM_PARTS_TABLE, ddl_statements, delete_group_statements,
    events_storage_table, quote_ident, reprice_sql, retention_ttl,
)
from dashcam.store.schema import ARROW_SCHEMA, EVENT_COLUMN_NAMES, EVENTS_TABLE, LOG_GROUPS_TABLE, LOG_STREAMS_TABLE

T = TypeVar("T")

# Settings for every compiled query: FINAL (see the module docstring); NULL, not 0, for an
# outer join's missing side and for sum()/avg() over no rows, as in DuckDB and CloudWatch.
# allow_lossy_numeric_supertype: coalesce(an Int64 column, a Float64) is a Float64, as in DuckDB
# (newer ClickHouse would make it a Variant that sum() rejects). Settings the server does not
# know (older versions) are left out when the store opens. use_hive_partitioning: the Parquet
# archive's paths are log_group=.../date=...; its files' own columns must win over the path's.
_READ_SETTINGS = {
    "join_use_nulls": 1,
    "aggregate_functions_null_for_empty": 1,
    "do_not_merge_across_partitions_select_final": 1,
    "allow_lossy_numeric_supertype": 1,
    "output_format_json_escape_forward_slashes": 0,
    "use_hive_partitioning": 0,
}


def _connect(target: ClickHouseTarget) -> Any:
    """A clickhouse-connect client for ``target``: its own chDB handle, or an HTTP client without
    a session (dashcam needs none: bulk imports stage in Memory tables, not temporary ones), so
    one client may run queries from several threads."""
    try:
        import clickhouse_connect
    except ImportError:
        raise ConfigError("the ClickHouse store needs clickhouse-connect: pip install 'dashcam[clickhouse]'") from None
    common: dict[str, Any] = {"settings": dict(target.settings)}
    if target.interface == "chdb":
        try:
            import chdb  # noqa: F401  (clickhouse-connect's chdb backend imports it lazily)
        except ImportError:
            raise ConfigError("chdb:// stores need chDB: pip install 'dashcam[clickhouse]'") from None
        _keep_engine(target.path)
        return clickhouse_connect.get_client(interface="chdb", path=target.path, **common)
    return clickhouse_connect.get_client(
        interface=target.interface, host=target.host, port=target.port, username=target.username,
        password=target.password, autogenerate_session_id=False, **common,
    )


# chDB tears its embedded ClickHouse down when the last connection closes and builds a new one on
# the next connect: about 0.2 s each time, and the old engine's pool threads (three open /proc
# files each) are never reclaimed, so a process that opens and closes a store repeatedly (a test
# suite, a long-lived app) runs out of file descriptors. One connection kept for the process's
# life keeps one engine; release_chdb_engine() lets another process have the directory.
log = logging.getLogger("dashcam.store.clickhouse")

_KEEPER: dict[str, Any] = {}
_KEEPER_LOCK = threading.RLock()


def _keep_engine(path: str) -> None:
    """Hold a connection to chDB at ``path`` until the process exits (or another path is opened)."""
    import clickhouse_connect

    with _KEEPER_LOCK:
        if _KEEPER.get("path") == path:
            return
        release_chdb_engine()
        try:
            _KEEPER["client"] = clickhouse_connect.get_client(interface="chdb", path=path)
            _KEEPER["path"] = path
        except Exception:  # noqa: BLE001 - the caller's own connect reports why (busy, bad path)
            pass


def release_chdb_engine() -> None:
    """Close the connection this process keeps to its chDB directory, so that another process may
    open the directory once this one's stores are closed (chDB allows one process at a time)."""
    with _KEEPER_LOCK:
        client = _KEEPER.pop("client", None)
        _KEEPER.pop("path", None)
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


atexit.register(release_chdb_engine)


def _clean(exc: BaseException) -> str:
    """ClickHouse's message for a person: without the code prefix, the echoed query, the
    documentation hints and the version trailer; the error name kept, e.g. ``(CANNOT_PARSE_TEXT)``."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    text = re.sub(r"^.*?Code: \d+\. DB::Exception: ", "", text)
    text = re.sub(r"\s*\(version [^)]*\)\s*$", "", text)
    name = re.search(r"\(([A-Z][A-Z0-9_]+)\)\s*$", text)
    for cut in (" Look at https://", ": In scope ", ". In scope ", ": While processing ", ". Note: ", " Stack trace"):
        if cut in text:
            text = text[:text.index(cut)]
    text = text.strip().rstrip(".")
    if name and name.group(0).strip() not in text:
        text += f" {name.group(0).strip()}"
    return text or type(exc).__name__


class ClickHouseStore(Store):
    """Events in a ClickHouse database (server, cluster or chDB), behind the Store port."""

    dialect = "clickhouse"
    reports_rows = True

    def __init__(self, target: ClickHouseTarget) -> None:
        self.target = target
        self.database = target.database
        self.cluster = target.cluster
        self._write_lock = threading.Lock()
        self._readers: queue.LifoQueue[Any] = queue.LifoQueue()
        self._all_clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._last_version = 0
        self._closed = False
        admin = self._client(use_database=False)  # the database may not exist yet
        try:
            for statement in ddl_statements(self.database, self.cluster, fsync=target.fsync):
                admin.command(statement)
            known = {r[0] for r in admin.query(
                "SELECT name FROM system.settings WHERE name IN %(names)s",
                parameters={"names": [*_READ_SETTINGS, "final"]}).result_rows}
        except Exception as exc:
            self._close_clients()
            raise self._translate(exc, "cannot create dashcam's tables") from None
        self._forget(admin)
        self._writer = self._client()
        self._read_settings = {k: v for k, v in _READ_SETTINGS.items() if k in known}
        if "final" in known:
            self._read_settings["final"] = 1 if target.reads_final else 0

    # ------------------------------------------------------------------ clients and errors

    def _client(self, *, use_database: bool = True) -> Any:
        """A new client, on the store's database unless ``use_database`` is false."""
        try:
            client = _connect(self.target)
            if use_database:
                client.database = self.database
        except DashcamError:
            raise
        except Exception as exc:
            self._close_clients()
            raise self._translate(exc, f"cannot open {self.target.describe()}") from None
        with self._clients_lock:
            self._all_clients.append(client)
        return client

    def _forget(self, client: Any) -> None:
        with self._clients_lock:
            self._all_clients.remove(client)
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    def _translate(self, exc: BaseException, doing: str) -> DashcamError:
        text = str(exc)
        busy = ("EmbeddedServer", "already initialized", "Another server instance")
        if self.target.interface == "chdb" and any(sign in text for sign in busy):
            return StoreBusyError(
                f"the chDB directory {self.target.path} is in use (by another dashcam process, or this "
                f"process has another chDB directory open): {_clean(exc)}"
            )
        return StoreError(f"{doing}: {_clean(exc)}")

    @contextmanager
    def _reader(self) -> Iterator[Any]:
        # Reads never share the writer's client, so they proceed while a batch is being inserted;
        # each concurrent reader gets a client of its own, reused afterwards.
        try:
            client = self._readers.get_nowait()
        except queue.Empty:
            client = self._client()
        try:
            yield client
        finally:
            self._readers.put(client)

    def _read(self, sql: str, parameters: dict[str, Any] | None = None, **settings: Any) -> list[tuple[Any, ...]]:
        with self._reader() as client:
            try:
                return [tuple(r) for r in client.query(sql, parameters=parameters, settings=settings).result_rows]
            except Exception as exc:
                raise self._translate(exc, "reading from ClickHouse failed") from None

    def _command(self, client: Any, sql: str, parameters: dict[str, Any] | None = None, **settings: Any) -> None:
        client.command(sql, parameters=parameters, settings=settings or None)

    # ------------------------------------------------------------------ writes

    def write_batch(self, batch: pa.Table) -> WriteResult:
        if batch.num_rows == 0:
            return WriteResult(0, 0)
        if batch.schema.names != ARROW_SCHEMA.names:
            raise StoreError("write failed, nothing from this batch was stored: the batch does not have the "
                             f"event columns ({', '.join(EVENT_COLUMN_NAMES)})")
        try:
            batch = batch.cast(ARROW_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise StoreError(f"write failed, nothing from this batch was stored: {exc}") from None
        with self._write_lock:
            return self._guarded(lambda: self._commit_events(batch))

    def write_raw(
        self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock", report_rows: bool = False
    ) -> RawWriteResult:
        # JSON is parsed once per line, in C++ on every core, into a staging table; see
        # clickhouse_ingest (the Python path of the base class gives the same rows, 10x slower).
        if batch.num_rows == 0:
            return RawWriteResult.nothing_stored([], report_rows=report_rows)
        with self._write_lock:
            return self._guarded(lambda: self._commit_raw(batch, source, provider, report_rows))

    def _commit_raw(self, batch: pa.Table, source: str, provider: str, report_rows: bool) -> RawWriteResult:
        writer, suffix = self._writer, uuid.uuid4().hex[:16]
        incoming, ready, fresh = (f"_dashcam_{name}_{suffix}" for name in ("incoming", "ready", "fresh"))
        columns = ", ".join(quote_ident(c) for c in EVENT_COLUMN_NAMES)
        try:
            # Memory tables on the node this client talks to: the batch never leaves it until insert.
            writer.command(f"CREATE TABLE {incoming} (row_idx Int64, event_id Int64, log_group String,"
                           " log_stream String, message String) ENGINE = Memory")
            writer.insert_arrow(incoming, batch, settings={"insert_deduplicate": 0})
            normalized = normalized_sql(incoming, provider, source, pricing.current().ranges())
            writer.command(f"CREATE TABLE {ready} ENGINE = Memory AS {normalized}")
            rejected = [(int(i), str(reason)) for i, reason in writer.query(rejection_sql(incoming, ready)).result_rows]
            self._ensure_groups(pc.unique(batch["log_group"]).to_pylist(), int(time.time() * 1000))
            timestamped, lo, hi = writer.query(
                f"SELECT count(), min(toUnixTimestamp64Milli(ts)), max(toUnixTimestamp64Milli(ts)) FROM {ready}"
                " WHERE ts IS NOT NULL").result_rows[0]
            if not timestamped:
                return RawWriteResult.nothing_stored(rejected, report_rows=report_rows)
            # New events: not stored yet (in the batch's groups and time span), the first of each id.
            writer.command(
                f"CREATE TABLE {fresh} ENGINE = Memory AS SELECT row_idx, {columns} FROM {ready}"
                f" WHERE ts IS NOT NULL AND (log_group, event_id) NOT IN ("
                f"  SELECT log_group, event_id FROM {EVENTS_TABLE} WHERE log_group IN (SELECT log_group FROM {ready})"
                f"  AND {_MS_BETWEEN})"
                " ORDER BY row_idx LIMIT 1 BY event_id", parameters={"lo": int(lo), "hi": int(hi)})
            written = int(writer.query(f"SELECT count() FROM {fresh}").result_rows[0][0])
            if written:
                self._command(writer, f"INSERT INTO {EVENTS_TABLE} ({columns}) SELECT {columns} FROM {fresh}",
                              **self._insert_settings(EVENTS_TABLE))
            self._command(writer, (
                f"INSERT INTO {STREAM_PARTS_TABLE} (log_group, name, created_ms, first_event_ms, last_event_ms,"
                " last_ingestion_ms) SELECT log_group, log_stream, toUnixTimestamp64Milli(now64(3)),"
                " min(toUnixTimestamp64Milli(ts)), max(toUnixTimestamp64Milli(ts)),"
                f" max(toUnixTimestamp64Milli(ingestion_time)) FROM {ready} WHERE ts IS NOT NULL"
                " GROUP BY log_group, log_stream"))
            stored_rows = duplicate_rows = None
            if report_rows:
                stored_rows = sorted(int(r) for (r,) in writer.query(f"SELECT row_idx FROM {fresh}").result_rows)
                kept = set(stored_rows)
                duplicate_rows = [int(r) for (r,) in writer.query(
                    f"SELECT row_idx FROM {ready} WHERE ts IS NOT NULL ORDER BY row_idx").result_rows if int(r) not in kept]
            return RawWriteResult(written, int(timestamped) - written, rejected, stored_rows, duplicate_rows)
        finally:
            for table in (fresh, ready, incoming):
                try:
                    writer.command(f"DROP TABLE IF EXISTS {table}")
                except Exception:  # noqa: BLE001 - a leftover staging table is harmless (read by nothing)
                    pass

    def _insert_settings(self, table: str) -> dict[str, Any]:
        settings: dict[str, Any] = {"insert_deduplicate": 0}
        if self.cluster and table == EVENTS_TABLE:
            settings["distributed_foreground_insert"] = 1
        return settings

    def _guarded(self, work: Callable[[], T]) -> T:
        try:
            return work()
        except DashcamError:
            raise
        except Exception as exc:
            raise self._translate(exc, "write failed (retrying the same batch stores each event once)") from None

    def _commit_events(self, batch: pa.Table) -> WriteResult:
        now = int(time.time() * 1000)
        self._ensure_groups(pc.unique(batch["log_group"]).to_pylist(), now)
        fresh = self._new_events(batch)
        if fresh.num_rows:
            self._insert(EVENTS_TABLE, fresh)
        self._account_streams(batch, now)
        return WriteResult(fresh.num_rows, batch.num_rows - fresh.num_rows)

    def _insert(self, table: str, data: pa.Table) -> None:
        self._writer.insert_arrow(table, data, settings=self._insert_settings(table))

    def _new_events(self, batch: pa.Table) -> pa.Table:
        """The events of ``batch`` not stored yet (nor earlier in the batch)."""
        bounds = pc.min_max(batch["ts"])
        groups = pc.unique(batch["log_group"]).to_pylist()
        stored = self._writer.query_arrow(
            f"SELECT log_group, event_id FROM {EVENTS_TABLE} WHERE log_group IN %(groups)s AND {_MS_BETWEEN}",
            parameters={"groups": groups, "lo": _ms(bounds["min"]), "hi": _ms(bounds["max"])},
        )
        keys = _keys(batch)
        seen = pc.is_in(keys, value_set=_keys(stored)) if stored.num_rows else pa.repeat(False, len(keys))
        # Within the batch, the first row with a key wins (EventBatchBuilder already dedups; a
        # hand-built batch may not have).
        return batch.filter(pc.and_(pc.invert(seen), _first_of_key(keys)))

    def _ensure_groups(self, names: list[str], now: int) -> None:
        existing = {r[0] for r in self._writer.query(
            f"SELECT name FROM {LOG_GROUPS_TABLE} WHERE name IN %(names)s", parameters={"names": names}
        ).result_rows}
        missing = sorted(set(names) - existing)
        if missing:
            version = self._version()
            self._writer.insert(GROUP_VERSIONS_TABLE, [[n, now, None, version, 0] for n in missing],
                                column_names=["name", "created_ms", "retention_days", "version", "deleted"])

    def _account_streams(self, batch: pa.Table, now: int) -> None:
        ms = pa.int64()
        table = pa.table({
            "log_group": batch["log_group"], "log_stream": batch["log_stream"],
            "ts": batch["ts"].cast(ms), "ingestion_time": batch["ingestion_time"].cast(ms),
        }).group_by(["log_group", "log_stream"]).aggregate([("ts", "min"), ("ts", "max"), ("ingestion_time", "max")])
        rows = [[g, s, now, lo, hi, ing] for g, s, lo, hi, ing in zip(
            table["log_group"].to_pylist(), table["log_stream"].to_pylist(), table["ts_min"].to_pylist(),
            table["ts_max"].to_pylist(), table["ingestion_time_max"].to_pylist())]
        self._writer.insert(STREAM_PARTS_TABLE, rows, column_names=[
            "log_group", "name", "created_ms", "first_event_ms", "last_event_ms", "last_ingestion_ms"])

    def _version(self) -> int:
        # Row versions of log_groups: nanoseconds, strictly increasing within this process.
        self._last_version = max(time.time_ns(), self._last_version + 1)
        return self._last_version

    def reprice(self, start_ms: int | None = None, end_ms: int | None = None) -> int:
        # One synchronous mutation computing every cost by the catalog's rule (see reprice_sql).
        with self._write_lock:
            def work() -> int:
                count_sql, update_sql = reprice_sql(pricing.current().ranges(), start_ms, end_ms)
                changed = int(self._writer.query(count_sql).result_rows[0][0])
                table = events_storage_table(self.database, self.cluster)
                on = f" ON CLUSTER {quote_ident(self.cluster)}" if self.cluster else ""
                self._command(self._writer, f"ALTER TABLE {table}{on} {update_sql}", mutations_sync=2)
                return changed
            return self._guarded(work)

    # ------------------------------------------------------------------ reads

    def execute(self, sql: str, *, interrupt: Interrupt | None = None) -> list[tuple[Any, ...]]:
        settings = self._read_settings
        if interrupt is not None:
            # chDB ignores a query_id setting, so the query is found by a marker in its text.
            marker = f"dashcam-query-{uuid.uuid4().hex}"
            sql = f"/* {marker} */ {sql}"
            interrupt.attach(lambda: self._kill(marker))
        with self._reader() as client:
            try:
                return [tuple(r) for r in client.query(sql, settings=settings).result_rows]
            except Exception as exc:
                if interrupt is not None and interrupt.stopped and "QUERY_WAS_CANCELLED" in str(exc):
                    raise QueryStoppedError("the query was stopped while it ran") from None
                if _is_query_error(exc):
                    raise QueryExecutionError(f"the query could not run: {_clean(exc)}") from None
                raise self._translate(exc, "the query could not run") from None
            finally:
                if interrupt is not None:
                    interrupt.detach()

    def _kill(self, marker: str) -> None:
        """Cancel the running query whose text holds ``marker`` (from a client of its own)."""
        client = self._client()
        try:
            client.command(f"KILL QUERY WHERE query LIKE '%/* {marker} */%' AND query NOT LIKE '%KILL QUERY%' ASYNC")
        except Exception as exc:  # noqa: BLE001 - the query may have just finished; it is over either way
            log.debug("stopping query %s: %s", marker, _clean(exc))
        finally:
            self._forget(client)

    def execute_arrow(self, sql: str) -> pa.Table:
        """Run SQL and return an Arrow table (for bulk readers such as ``dashcam migrate``)."""
        settings = self._read_settings
        with self._reader() as client:
            try:
                return client.query_arrow(sql, settings=settings)
            except Exception as exc:
                if _is_query_error(exc):
                    raise QueryExecutionError(f"the query could not run: {_clean(exc)}") from None
                raise self._translate(exc, "the query could not run") from None

    def scan_events(self, log_group: str, batch_rows: int = 100_000) -> Iterator[pa.Table]:
        """Every event of ``log_group`` as Arrow tables in :data:`ARROW_SCHEMA`, oldest first,
        streamed a day (partition) at a time, so a group larger than memory can be copied."""
        days = self._read(
            f"SELECT DISTINCT toDate(ts) AS d FROM {EVENTS_TABLE} WHERE log_group = %(g)s ORDER BY d",
            {"g": log_group}, **self._read_settings)
        columns = ", ".join(quote_ident(c) for c in EVENT_COLUMN_NAMES)
        for (day,) in days:
            sql = (f"SELECT {columns} FROM {EVENTS_TABLE} WHERE log_group = %(g)s"
                   f" AND toDate(ts) = toDate(%(d)s) ORDER BY ts, event_id")
            pending: list[pa.Table] = []
            with self._reader() as client:
                try:
                    with client.query_arrow_stream(sql, parameters={"g": log_group, "d": day.isoformat()},
                                                   settings=self._read_settings) as stream:
                        for record_batch in stream:
                            pending.append(_to_event_schema(pa.Table.from_batches([record_batch])))
                            while sum(t.num_rows for t in pending) >= batch_rows:
                                table = pa.concat_tables(pending)
                                yield table.slice(0, batch_rows)
                                pending = [table.slice(batch_rows)]
                except DashcamError:
                    raise
                except Exception as exc:
                    raise self._translate(exc, f"reading log group {log_group!r} failed") from None
            table = pa.concat_tables(pending) if pending else None
            if table is not None and table.num_rows:
                yield table

    # ------------------------------------------------------------------ log groups and streams

    def _group_row(self, name: str) -> tuple[Any, ...] | None:
        rows = self._read(f"SELECT name, created_ms, retention_days FROM {LOG_GROUPS_TABLE} WHERE name = %(n)s",
                          {"n": name})
        return rows[0] if rows else None

    def _require_group(self, name: str) -> tuple[Any, ...]:
        row = self._group_row(name)
        if row is None:
            raise NotFoundError(f"log group {name!r} does not exist")
        return row

    def create_log_group(self, name: str, *, exist_ok: bool = False) -> None:
        with self._write_lock:
            if self._group_row(name) is not None:
                if exist_ok:
                    return
                raise AlreadyExistsError(f"log group {name!r} already exists")
            self._guarded(lambda: self._put_group(name, int(time.time() * 1000), None))

    def restore_log_group(self, info: LogGroupInfo, streams: list[LogStreamInfo]) -> None:
        """Create a group with its original creation time, retention and streams (migration)."""
        with self._write_lock:
            def work() -> None:
                self._put_group(info.name, info.created_ms, info.retention_days)
                if streams:
                    self._writer.insert(STREAM_PARTS_TABLE, [
                        [s.log_group, s.name, s.created_ms, s.first_event_ms, s.last_event_ms, s.last_ingestion_ms]
                        for s in streams
                    ], column_names=["log_group", "name", "created_ms", "first_event_ms", "last_event_ms",
                                     "last_ingestion_ms"])
                if info.retention_days is not None:
                    self._apply_retention()
            self._guarded(work)

    def _put_group(self, name: str, created_ms: int, retention: int | None, deleted: int = 0) -> None:
        self._writer.insert(GROUP_VERSIONS_TABLE, [[name, created_ms, retention, self._version(), deleted]],
                            column_names=["name", "created_ms", "retention_days", "version", "deleted"])

    def delete_log_group(self, name: str) -> None:
        with self._write_lock:
            row = self._require_group(name)

            def work() -> None:
                # Synchronous lightweight deletes: the events are gone from every read once this returns.
                for statement in delete_group_statements(self.database, self.cluster, name):
                    self._command(self._writer, statement, lightweight_deletes_sync=2, mutations_sync=2)
                self._put_group(name, row[1], row[2], deleted=1)
                if row[2] is not None:
                    self._apply_retention()
            self._guarded(work)

    def list_log_groups(self, prefix: str = "") -> list[LogGroupInfo]:
        rows = self._read(
            f"""SELECT g.name, g.created_ms, g.retention_days, coalesce(e.n, 0), coalesce(e.bytes, 0)
                FROM (SELECT name, created_ms, retention_days FROM {LOG_GROUPS_TABLE}
                      WHERE startsWith(name, %(p)s)) AS g
                LEFT JOIN (SELECT log_group, count() AS n, sum(length(message)) AS bytes
                           FROM {EVENTS_TABLE} GROUP BY log_group) AS e ON e.log_group = g.name
                ORDER BY g.name""",
            {"p": prefix}, **self._read_settings)
        return [LogGroupInfo(r[0], int(r[1]), None if r[2] is None else int(r[2]), int(r[3]), int(r[4]))
                for r in rows]

    def list_log_streams(self, log_group: str, prefix: str = "") -> list[LogStreamInfo]:
        self._require_group(log_group)
        rows = self._read(
            f"""SELECT log_group, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms
                FROM {LOG_STREAMS_TABLE} WHERE log_group = %(g)s AND startsWith(name, %(p)s) ORDER BY name""",
            {"g": log_group, "p": prefix},
        )
        return [LogStreamInfo(*r) for r in rows]

    def create_log_stream(self, log_group: str, name: str) -> None:
        with self._write_lock:
            self._require_group(log_group)
            if self._read(f"SELECT 1 FROM {LOG_STREAMS_TABLE} WHERE log_group = %(g)s AND name = %(n)s LIMIT 1",
                          {"g": log_group, "n": name}):
                raise AlreadyExistsError(f"log stream {name!r} already exists in log group {log_group!r}")
            self._guarded(lambda: self._writer.insert(
                STREAM_PARTS_TABLE, [[log_group, name, int(time.time() * 1000), None, None, None]],
                column_names=["log_group", "name", "created_ms", "first_event_ms", "last_event_ms",
                              "last_ingestion_ms"]))

    def set_retention(self, log_group: str, days: int | None) -> None:
        if days is not None and days not in RETENTION_DAYS:
            raise ConfigError(f"retention of {days} days is not one of {', '.join(map(str, RETENTION_DAYS))}")
        with self._write_lock:
            row = self._require_group(log_group)

            def work() -> None:
                self._put_group(log_group, row[1], days)
                self._apply_retention()
            self._guarded(work)

    def delete_expired(self, now_ms: int) -> int:
        # The TTL (retention_ttl) removes expired days on merges, eventually; this deletes them now,
        # exactly, as of now_ms. Groups with nothing expired cost one primary-key range count.
        with self._write_lock:
            def work() -> int:
                deleted = 0
                groups = self._writer.query(
                    f"SELECT name, retention_days FROM {LOG_GROUPS_TABLE} WHERE retention_days IS NOT NULL").result_rows
                table = events_storage_table(self.database, self.cluster)
                on = f" ON CLUSTER {quote_ident(self.cluster)}" if self.cluster else ""
                for name, days in groups:
                    where = "log_group = %(g)s AND ts < fromUnixTimestamp64Milli(%(cutoff)s, 'UTC')"
                    params = {"g": name, "cutoff": int(now_ms) - int(days) * 86_400_000}
                    expired = int(self._writer.query(f"SELECT count() FROM {EVENTS_TABLE} WHERE {where}",
                                                     parameters=params, settings=self._read_settings).result_rows[0][0])
                    if expired:
                        self._command(self._writer, f"DELETE FROM {table}{on} WHERE {where}", params,
                                      lightweight_deletes_sync=2, mutations_sync=2)
                        deleted += expired
                return deleted
            return self._guarded(work)

    def _apply_retention(self) -> None:
        retention = {name: int(days) for name, days in self._writer.query(
            f"SELECT name, retention_days FROM {LOG_GROUPS_TABLE} WHERE retention_days IS NOT NULL"
        ).result_rows}
        self._command(self._writer, retention_ttl(self.database, self.cluster, retention))

    # ------------------------------------------------------------------ the archive's reads and deletes

    def stream_events(self, condition: str) -> Iterator[pa.Table]:
        """The events matching ``condition`` (ClickHouse SQL over the event columns), oldest first
        (``ts``, then ``event_id``), as Arrow tables in :data:`ARROW_SCHEMA`, streamed: the
        Parquet archive writes a day's events out without holding them all in memory."""
        columns = ", ".join(quote_ident(c) for c in EVENT_COLUMN_NAMES)
        sql = f"SELECT {columns} FROM {EVENTS_TABLE} WHERE {condition} ORDER BY ts, event_id"
        with self._reader() as client:
            try:
                with client.query_arrow_stream(sql, settings=self._read_settings) as stream:
                    for record_batch in stream:
                        yield _to_event_schema(pa.Table.from_batches([record_batch]))
            except DashcamError:
                raise
            except Exception as exc:
                raise self._translate(exc, "reading events to archive failed") from None

    def delete_events(self, condition: str) -> int:
        """Delete the events matching ``condition`` now (a synchronous lightweight delete, on
        every shard in cluster mode) and return how many matched: the archive deletes the events
        its files hold, once they are stored."""
        with self._write_lock:
            try:
                matched = int(self._writer.query(f"SELECT count() FROM {EVENTS_TABLE} WHERE {condition}",
                                                 settings=self._read_settings).result_rows[0][0])
                if matched:
                    table = events_storage_table(self.database, self.cluster)
                    on = f" ON CLUSTER {quote_ident(self.cluster)}" if self.cluster else ""
                    self._command(self._writer, f"DELETE FROM {table}{on} WHERE {condition}",
                                  lightweight_deletes_sync=2, mutations_sync=2)
                return matched
            except Exception as exc:
                raise self._translate(exc, "deleting archived events failed") from None

    def close(self) -> None:
        if self._closed:
            return
        with self._write_lock:
            self._closed = True
            self._close_clients()

    def _close_clients(self) -> None:
        with self._clients_lock:
            clients, self._all_clients = self._all_clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort; the data is already committed
                pass


# ---------------------------------------------------------------------- helpers

# The batch's time span, bounds in epoch milliseconds: datetime parameters would be sent to the
# second, and an event in the last fraction of the span would then not be found as a re-delivery.
_MS_BETWEEN = "ts BETWEEN fromUnixTimestamp64Milli(%(lo)s, 'UTC') AND fromUnixTimestamp64Milli(%(hi)s, 'UTC')"


def _ms(scalar: pa.Scalar) -> int:
    """Epoch milliseconds of an Arrow ``timestamp[ms]`` scalar."""
    return int(scalar.cast(pa.int64()).as_py())


def _keys(table: pa.Table) -> pa.Array:
    """One comparable key per row: ``<event id>:<log group>``."""
    ids = pc.cast(table["event_id"], pa.string())
    return pc.binary_join_element_wise(ids, pc.cast(table["log_group"], pa.string()), ":").combine_chunks()


def _first_of_key(keys: pa.Array) -> pa.Array:
    """True for each row that is the first with its key."""
    rows = pa.array(range(len(keys)), pa.int64())
    firsts = pa.table({"k": keys, "i": rows}).group_by("k", use_threads=False).aggregate([("i", "min")])
    return pc.is_in(rows, value_set=firsts["i_min"])


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _to_event_schema(table: pa.Table) -> pa.Table:
    """ClickHouse's Arrow (UTC-zoned timestamps, dictionary strings) as :data:`ARROW_SCHEMA`."""
    arrays = []
    for field in ARROW_SCHEMA:
        column = table[field.name]
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).cast(pa.timestamp("ms"))
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def _is_query_error(exc: BaseException) -> bool:
    """True when the engine rejected the query itself (not the connection or the engine failing)."""
    try:
        from clickhouse_connect.driver.exceptions import DatabaseError
    except ImportError:  # pragma: no cover - the store cannot exist without the package
        return False
    return isinstance(exc, DatabaseError) and "Code: " in str(exc)


__all__ = ["ClickHouseStore", "EVENTS_LOCAL_TABLE"]
