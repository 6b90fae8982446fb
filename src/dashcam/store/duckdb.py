"""The embedded default store: one DuckDB file in the data directory.

One process owns the file. Inside it, writes are serialised by a lock (one writer) and every read
runs on its own cursor, so DuckDB's MVCC lets queries proceed while a batch is being committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from dashcam import pricing
from dashcam.errors import (
    AlreadyExistsError,
    ConfigError,
    NotFoundError,
    QueryExecutionError,
    QueryStoppedError,
    StoreError,
    StoreFullError,
)
from dashcam.store.base import (
    RETENTION_DAYS,
    Interrupt,
    LogGroupInfo,
    LogStreamInfo,
    PreparedRaw,
    RawWriteResult,
    Store,
    WriteResult,
)
from dashcam.store.duckdb_checkpoints import CheckpointGate
from dashcam.store.duckdb_encryption import ATTACHED_AS, attach, connect_encrypted, translate_open_error
from dashcam.store.duckdb_ingest import PRICE_COLUMNS, READY_SQL, REJECTION_SQL, pricing_sql, ready_events_sql, staging_sql
from dashcam.store.schema import (
    ARROW_SCHEMA,
    EVENT_COLUMNS,
    EVENTS_TABLE,
    LOG_GROUPS_TABLE,
    LOG_STREAMS_TABLE,
)

T = TypeVar("T")

DATABASE_FILE = "dashcam.duckdb"
# Write-ahead log size that triggers a checkpoint. A checkpoint rewrites the table's last, partly
# filled row group, so at DuckDB's 16 MB one every few small commits (a server's 2,000-event OTLP
# or 5,000-record API writes) costs more than the writes. With the row groups below, 64 MB loses
# nothing against 128 MB (JSON API ingest alternating: 47,800-53,800 vs 49,000-52,300 records/s;
# at 32 MB ~40,000), and the server holds ~55 MB less under OTLP ingest: committed rows stay in
# memory until checkpointed, as does up to this much log to replay after a crash.
CHECKPOINT_THRESHOLD_BYTES = 64 << 20
CHECKPOINT_THRESHOLD = f"{CHECKPOINT_THRESHOLD_BYTES >> 20}MB"
# Rows per row group of data written from now on (DuckDB's default is 122,880). A commit of at
# least a row group goes straight to the database file, compressed (DuckDB's optimistic write); a
# smaller one goes through the write-ahead log, stays in memory uncompressed and is compressed at
# the next checkpoint, which also rewrites the table's last, partly filled row group: 5,000-row
# commits cost ~1.7x the CPU per row of 20,000-row ones at 16,384-row groups. At 8,192 the
# server's group commits reach a row group under load (see ingest_group), a checkpoint rewrites
# at most ~12 MB of text, and files are no larger than at 16,384 (at 4,096: a third larger,
# compression and dictionaries being per group).
ROW_GROUP_SIZE = 8_192
# How many row groups a checkpoint may rewrite to drop deleted rows and merge small groups ("vacuum").
# Off, except when a log group is deleted: every commit of a row group or more leaves one short
# group (its last rows), and merging those at the next checkpoint cost more than all the writes
# saved (2.4-4.3 s per 800,000 API records at 10,000 per commit, for no smaller file: the same
# blocks stay in use, and the file grew by the rewrite). Expired data goes without it: retention
# deletes whole row groups (events arrive in time order), which checkpoints drop anyway.
VACUUM_TASKS_WHEN_DELETING = 100

# DuckDB 1.x hands filters on a registered Arrow table to pyarrow, which cannot filter string views
# (sources.lines frames with them); the `encryption` extra pins DuckDB 1.5.5. There, raw batches
# are given to the engine as plain strings (one copy of the text).
_ENGINE_FILTERS_VIEWS = int(duckdb.__version__.split(".")[0]) >= 2

_SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "timestamp": "TIMESTAMP"}


def _column_type(name: str, kind: str) -> str:
    # Raw JSON compresses ~8x with zstd and inserts 3x faster than with DuckDB's default string
    # compression (measured on generated Bedrock logs); JSON scans over it are faster too.
    return "VARCHAR USING COMPRESSION zstd" if name == "message" else _SQL_TYPES[kind]


_DDL = [
    f"""CREATE TABLE IF NOT EXISTS {LOG_GROUPS_TABLE} (
        name VARCHAR PRIMARY KEY,
        created_ms BIGINT NOT NULL,
        retention_days INTEGER
    )""",
    f"""CREATE TABLE IF NOT EXISTS {LOG_STREAMS_TABLE} (
        log_group VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        created_ms BIGINT NOT NULL,
        first_event_ms BIGINT,
        last_event_ms BIGINT,
        last_ingestion_ms BIGINT,
        PRIMARY KEY (log_group, name)
    )""",
    f"CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} ("
    + ", ".join(f'"{name}" {_column_type(name, kind)}' for name, kind in EVENT_COLUMNS)
    + ")",
]


# Events ingested longer ago than this are settled: no commit still in flight carries an older
# ingestion time, so their per-group sums can be kept (see DuckDBStore._group_sizes).
_SIZES_SETTLE_MS = 300_000

class DuckDBStore(Store):
    """Events in ``<data_dir>/dashcam.duckdb`` (or an explicit ``.duckdb`` file path)."""

    dialect = "duckdb"
    reports_rows = True
    efficient_commit_rows = ROW_GROUP_SIZE

    def __init__(self, path: str | Path, *, read_only: bool = False, encryption_key: str | None = None) -> None:
        path = Path(path)
        if path.suffix != ".duckdb":
            path.mkdir(parents=True, exist_ok=True)
            path = path / DATABASE_FILE
        self.path = path
        self._write_lock = threading.Lock()
        # Log groups and streams known to exist (committed): a write into them needs no insert of
        # its group, and updates its streams rather than upserting them (~3 ms less per commit).
        self._known_groups: set[str] = set()
        self._known_streams: set[tuple[str, str]] = set()  # (log group, stream): an update, not an upsert
        self._groups_in_transaction: list[str] = []  # known once the transaction commits
        self._streams_in_transaction: list[tuple[str, str]] = []
        self._sizes_lock = threading.Lock()
        self._sizes: tuple[int | None, dict[str, tuple[int, int]]] = (None, {})  # see _group_sizes
        self._con = _connect(path, read_only=read_only, encryption_key=encryption_key)
        self._checkpoints = CheckpointGate(path.with_name(path.name + ".wal"), CHECKPOINT_THRESHOLD_BYTES)
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            if not read_only:
                self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
                self._con.execute("SET max_vacuum_tasks = 0")
                for statement in _DDL:
                    self._con.execute(statement)
        except duckdb.Error as exc:
            self._con.close()
            raise translate_open_error(exc, path) from None

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one read, pointed at the attached store file (a new cursor starts elsewhere)."""
        cursor = self._con.cursor()
        cursor.execute(f"USE {ATTACHED_AS}")
        return cursor

    # ------------------------------------------------------------------ writes

    def write_batch(self, batch: pa.Table) -> WriteResult:
        if batch.num_rows == 0:
            return WriteResult(0, 0)
        try:
            summary = BatchSummary.of(batch)
        except (KeyError, pa.ArrowException) as exc:  # not a batch of events
            raise StoreError(f"write failed, nothing from this batch was stored: {exc}") from None
        with self._write_lock, self._registered(batch):
            return self._in_transaction(lambda: self._commit_events("incoming", batch.num_rows, summary=summary))

    def write_raw(
        self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock", report_rows: bool = False
    ) -> RawWriteResult:
        return self.commit_raw(self.prepare_raw(batch, source=source, provider=provider), report_rows=report_rows)

    def prepare_raw(self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock") -> PreparedRaw:
        # JSON is parsed once, in C++ on every core, into a staging table; see duckdb_ingest. It is
        # staged on a cursor of its own, outside the writer's lock: its temp tables are that
        # cursor's, so an import stages the next batch while this one commits.
        if batch.num_rows == 0:
            return PreparedRaw(batch, source, provider)
        if not _ENGINE_FILTERS_VIEWS:
            batch = _without_views(batch)
        staged = _StagedRaw(batch, source, provider, self._cursor())
        try:
            with self._checkpoints.staging():
                staged.stage()
        except duckdb.Error as exc:
            staged.discard()
            raise self._write_error(exc) from None
        except BaseException:
            staged.discard()
            raise
        return staged

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        # A bulk import keeps three threads busy (reading, staging, committing), two of them in the
        # engine at once: each statement on one thread of its own, not fanned out over every core,
        # saves the engine's coordination (~15% less CPU, measured on a 2-core import).
        threads = self._con.execute("SELECT current_setting('threads')").fetchone()[0]
        self._con.execute("SET threads = 1")
        try:
            yield
        finally:
            self._con.execute(f"SET threads = {int(threads)}")

    def commit_raw(self, prepared: PreparedRaw, *, report_rows: bool = False) -> RawWriteResult:
        if not isinstance(prepared, _StagedRaw):
            prepared.discard()
            return RawWriteResult.nothing_stored([], report_rows=report_rows)
        try:
            with self._write_lock:
                return self._in_transaction(lambda: self._commit_staged(prepared, report_rows), prepared.cursor)
        finally:
            prepared.discard()

    def _commit_staged(self, staged: "_StagedRaw", report_rows: bool) -> RawWriteResult:
        con = staged.cursor
        stored_ids: list[int] | None = [] if report_rows else None
        result = self._commit_events("ready_events", staged.timestamped, bounds_from="ready",
                                     returning=stored_ids, con=con)
        stored_rows = duplicate_rows = None
        if report_rows:
            stored_rows, duplicate_rows = _row_outcomes(con, set(stored_ids or ()))
        return RawWriteResult(result.written, result.duplicates, staged.rejected, stored_rows, duplicate_rows)

    @contextmanager
    def _registered(self, batch: pa.Table) -> Iterator[None]:
        self._con.register("incoming", batch)
        try:
            yield
        finally:
            self._con.unregister("incoming")

    def _in_transaction(self, work: Callable[[], T], con: duckdb.DuckDBPyConnection | None = None) -> T:
        con = self._con if con is None else con
        self._groups_in_transaction, self._streams_in_transaction = [], []
        try:
            con.execute("BEGIN TRANSACTION")
            result = work()
            con.execute("COMMIT")
            self._known_groups.update(self._groups_in_transaction)
            self._known_streams.update(self._streams_in_transaction)
            self._checkpoints.after_commit(self._con)
            return result
        except duckdb.Error as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the failed statement may already have ended the transaction
            raise self._write_error(exc) from None

    def _write_error(self, exc: duckdb.Error) -> StoreError:
        if "no space left on device" in str(exc).lower():
            return StoreFullError(f"the disk holding {self.path.parent} is full: nothing from this batch was "
                                  "stored; free space and retry")
        if isinstance(exc, duckdb.OutOfMemoryException):
            first = str(exc).strip().splitlines()[0]
            return StoreError(f"write failed, nothing from this batch was stored: {first} — the store's memory "
                              "limit is too small for this batch: raise DASHCAM_DUCKDB_MEMORY_LIMIT where dashcam "
                              "serve runs, or send smaller batches")
        return StoreError(f"write failed, nothing from this batch was stored: {exc}")

    def _commit_events(
        self, relation: str, rows: int, bounds_from: str | None = None, returning: list[int] | None = None,
        con: duckdb.DuckDBPyConnection | None = None, summary: "BatchSummary | None" = None,
    ) -> WriteResult:
        """Insert the events of ``relation`` not already stored, and account groups and streams, on
        ``con`` (default: the store's connection). The ids of the events inserted are appended to
        ``returning`` when it is given."""
        con = self._con if con is None else con
        now = int(time.time() * 1000)
        if summary is None:
            summary = BatchSummary.scan(con, relation, bounds_from)
        new_groups = [group for group in summary.groups if group not in self._known_groups]
        if new_groups:
            self._groups_in_transaction.extend(new_groups)
            con.execute(
                f"""INSERT INTO {LOG_GROUPS_TABLE} (name, created_ms)
                    SELECT unnest(?::VARCHAR[]), ? ON CONFLICT DO NOTHING""",
                [new_groups, now],
            )
        # Only events in the batch's time span can be re-deliveries: bounding the anti-join by
        # ts lets DuckDB skip every row group outside it.
        bounds = [summary.first_ms, summary.last_ms]
        insert = f"""INSERT INTO {EVENTS_TABLE}
                SELECT i.* FROM {relation} i
                ANTI JOIN (
                    SELECT e.event_id, e.log_group FROM {EVENTS_TABLE} e
                    WHERE e.ts BETWEEN epoch_ms(?::BIGINT) AND epoch_ms(?::BIGINT)
                ) d ON d.event_id = i.event_id AND d.log_group = i.log_group"""
        if returning is None:
            inserted = con.execute(insert, bounds).fetchone()[0]
        else:
            ids = [event_id for (event_id,) in con.execute(f"{insert} RETURNING event_id", bounds).fetchall()]
            returning.extend(ids)
            inserted = len(ids)
        self._account_streams(con, summary, now)
        return WriteResult(int(inserted), rows - int(inserted))

    def _account_streams(self, con: duckdb.DuckDBPyConnection, summary: "BatchSummary", now: int) -> None:
        """Create the batch's new log streams and move the event and ingestion times of all of them."""
        streams = list(zip(summary.stream_groups, summary.streams))
        times = [summary.stream_first_ms, summary.stream_last_ms, summary.stream_ingested_ms]
        if any(stream not in self._known_streams for stream in streams):
            self._streams_in_transaction.extend(streams)
            con.execute(
                f"""INSERT INTO {LOG_STREAMS_TABLE}
                        (log_group, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms)
                    SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), ?, unnest(?::BIGINT[]),
                           unnest(?::BIGINT[]), unnest(?::BIGINT[])
                    ON CONFLICT (log_group, name) DO UPDATE SET
                        first_event_ms = least(first_event_ms, excluded.first_event_ms),
                        last_event_ms = greatest(last_event_ms, excluded.last_event_ms),
                        last_ingestion_ms = excluded.last_ingestion_ms""",
                [summary.stream_groups, summary.streams, now, *times],
            )
            return
        # Every stream exists: an update costs the engine a quarter of an upsert for one stream,
        # and half for several.
        moved = """first_event_ms = least(first_event_ms, {first}), last_event_ms = greatest(last_event_ms, {last}),
                   last_ingestion_ms = {ingested}"""
        if len(streams) == 1:
            con.execute(f"""UPDATE {LOG_STREAMS_TABLE} SET {moved.format(first="?", last="?", ingested="?")}
                            WHERE log_group = ? AND name = ?""", [*(column[0] for column in times), *streams[0]])
            return
        con.execute(
            f"""UPDATE {LOG_STREAMS_TABLE} SET {moved.format(first="v.first", last="v.last", ingested="v.ingested")}
                FROM (SELECT unnest(?::VARCHAR[]) AS log_group, unnest(?::VARCHAR[]) AS name,
                             unnest(?::BIGINT[]) AS first, unnest(?::BIGINT[]) AS last,
                             unnest(?::BIGINT[]) AS ingested) v
                WHERE {LOG_STREAMS_TABLE}.log_group = v.log_group AND {LOG_STREAMS_TABLE}.name = v.name""",
            [summary.stream_groups, summary.streams, *times],
        )

    def reprice(self, start_ms: int | None = None, end_ms: int | None = None) -> int:
        window = "events.ts BETWEEN epoch_ms(?::BIGINT) AND epoch_ms(?::BIGINT)"
        bounds = [start_ms if start_ms is not None else 0, end_ms if end_ms is not None else 253402300799999]
        with self._write_lock, _price_ranges(self._con):
            def work() -> int:
                con = self._con
                # Only costs dashcam derived are recomputed: a record's own costUsd is a fact.
                changed = con.execute(
                    f"UPDATE events SET cost_usd = NULL WHERE {window}"
                    " AND json_extract(message, '$.costUsd') IS NULL", bounds).fetchone()[0]
                for statement in pricing_sql("events", unpriced=f"cost_usd IS NULL AND {window}"):
                    con.execute(statement, bounds)
                return int(changed)

            return self._in_transaction(work)

    # ------------------------------------------------------------------ reads

    def execute(self, sql: str, *, interrupt: Interrupt | None = None) -> list[tuple[Any, ...]]:
        cursor = self._cursor()
        try:
            if interrupt is not None:
                interrupt.attach(cursor.interrupt)
            return cursor.execute(sql).fetchall()
        except duckdb.InterruptException:
            raise QueryStoppedError("the query was stopped while it ran") from None
        except duckdb.Error as exc:
            raise QueryExecutionError(_engine_message(exc)) from None
        finally:
            if interrupt is not None:
                interrupt.detach()
            cursor.close()

    def execute_arrow(self, sql: str) -> pa.Table:
        """Run compiled SQL and return an Arrow table (for bulk readers such as exporters)."""
        cursor = self._cursor()
        try:
            return cursor.sql(sql).to_arrow_table()  # a relation: no extra copy of the rows
        except duckdb.Error as exc:
            raise QueryExecutionError(_engine_message(exc)) from None
        finally:
            cursor.close()

    def scan_events(self, log_group: str, batch_rows: int = 100_000) -> Iterator[pa.Table]:
        # Streamed from one cursor: a group larger than memory is read a batch at a time.
        cursor = self._cursor()
        try:
            reader = cursor.sql(
                f"SELECT * FROM {EVENTS_TABLE} WHERE log_group = $group ORDER BY ts, event_id",
                params={"group": log_group},
            ).to_arrow_reader(batch_rows)
            for batch in reader:
                if batch.num_rows:
                    # Timestamps are kept to the millisecond (the event schema), as ClickHouse keeps them.
                    yield pa.Table.from_batches([batch]).cast(ARROW_SCHEMA, safe=False)
        except duckdb.Error as exc:
            raise StoreError(f"reading log group {log_group!r} failed: {exc}") from None
        finally:
            cursor.close()

    def restore_log_group(self, info: LogGroupInfo, streams: list[LogStreamInfo]) -> None:
        with self._write_lock:
            self._con.execute(
                f"""INSERT INTO {LOG_GROUPS_TABLE} (name, created_ms, retention_days) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET created_ms = least(created_ms, excluded.created_ms),
                    retention_days = excluded.retention_days""",
                [info.name, info.created_ms, info.retention_days],
            )
            for s in streams:
                self._con.execute(
                    f"""INSERT INTO {LOG_STREAMS_TABLE}
                            (log_group, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms)
                        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (log_group, name) DO UPDATE SET
                        created_ms = least(created_ms, excluded.created_ms)""",
                    [s.log_group, s.name, s.created_ms, s.first_event_ms, s.last_event_ms, s.last_ingestion_ms],
                )

    # ------------------------------------------------------------------ log groups and streams

    def create_log_group(self, name: str, *, exist_ok: bool = False) -> None:
        with self._write_lock:
            exists = self._con.execute(f"SELECT 1 FROM {LOG_GROUPS_TABLE} WHERE name = ?", [name]).fetchone()
            if exists:
                if exist_ok:
                    return
                raise AlreadyExistsError(f"log group {name!r} already exists")
            self._con.execute(
                f"INSERT INTO {LOG_GROUPS_TABLE} (name, created_ms) VALUES (?, ?)", [name, int(time.time() * 1000)]
            )

    def delete_log_group(self, name: str) -> None:
        with self._write_lock:
            self._require_group(name)
            self._con.execute("BEGIN TRANSACTION")
            self._known_groups.discard(name)
            self._known_streams = {stream for stream in self._known_streams if stream[0] != name}
            for table, column in ((EVENTS_TABLE, "log_group"), (LOG_STREAMS_TABLE, "log_group"), (LOG_GROUPS_TABLE, "name")):
                self._con.execute(f"DELETE FROM {table} WHERE {column} = ?", [name])
            self._con.execute("COMMIT")
            self._vacuum()

    def _vacuum(self) -> None:
        """Checkpoint with row groups rewritten without their deleted rows (see VACUUM_TASKS_WHEN_DELETING):
        a deleted group's events are spread over row groups that hold other groups' too. When the
        checkpoint cannot happen now (see CheckpointGate.checkpoint), the space stays taken until
        the next deletion's."""
        self._con.execute(f"SET max_vacuum_tasks = {VACUUM_TASKS_WHEN_DELETING}")
        try:
            self._checkpoints.checkpoint(self._con)
        finally:
            self._con.execute("SET max_vacuum_tasks = 0")

    def list_log_groups(self, prefix: str = "") -> list[LogGroupInfo]:
        sizes = self._group_sizes()
        rows = self._read(
            f"""SELECT name, created_ms, retention_days FROM {LOG_GROUPS_TABLE}
                WHERE starts_with(name, ?) ORDER BY name""",
            [prefix],
        )
        return [LogGroupInfo(name, created, retention, *sizes.get(name, (0, 0))) for name, created, retention in rows]

    def _group_sizes(self) -> dict[str, tuple[int, int]]:
        """Events and stored bytes per log group.

        Adding up every message is a scan of all stored JSON (seconds at 10M events), so the sums
        of events older than a settling margin are kept and only newer events are added up on each
        call. The kept sums are checked against a count of those events (cheap: no message is
        read) and recomputed whenever anything was deleted or arrived late.
        """
        cutoff = int(time.time() * 1000) - _SIZES_SETTLE_MS
        with self._sizes_lock:
            settled_rows = self._read(
                f"SELECT count(*) FROM {EVENTS_TABLE} WHERE ingestion_time <= epoch_ms(?::BIGINT)", [cutoff])[0][0]
            kept_cutoff, kept = self._sizes[0], dict(self._sizes[1])
            if kept_cutoff is None or sum(n for n, _ in kept.values()) != self._read(
                    f"SELECT count(*) FROM {EVENTS_TABLE} WHERE ingestion_time <= epoch_ms(?::BIGINT)",
                    [kept_cutoff])[0][0]:
                kept_cutoff, kept = None, {}
            newly = self._sizes_between(kept_cutoff, cutoff)
            for group, (n, size) in newly.items():
                old_n, old_size = kept.get(group, (0, 0))
                kept[group] = (old_n + n, old_size + size)
            if sum(n for n, _ in kept.values()) == settled_rows:
                self._sizes = (cutoff, kept)
            fresh = self._sizes_between(cutoff, None)
        sizes = dict(kept)
        for group, (n, size) in fresh.items():
            old_n, old_size = sizes.get(group, (0, 0))
            sizes[group] = (old_n + n, old_size + size)
        return sizes

    def _sizes_between(self, after_ms: int | None, until_ms: int | None) -> dict[str, tuple[int, int]]:
        conditions, params = [], []
        if after_ms is not None:
            conditions.append("ingestion_time > epoch_ms(?::BIGINT)")
            params.append(after_ms)
        if until_ms is not None:
            conditions.append("ingestion_time <= epoch_ms(?::BIGINT)")
            params.append(until_ms)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._read(f"SELECT log_group, count(*), sum(strlen(message)) FROM {EVENTS_TABLE} {where} "
                          "GROUP BY log_group", params)
        return {group: (int(n), int(size or 0)) for group, n, size in rows}

    def create_log_stream(self, log_group: str, name: str) -> None:
        with self._write_lock:
            self._require_group(log_group)
            if self._read(f"SELECT 1 FROM {LOG_STREAMS_TABLE} WHERE log_group = ? AND name = ?", [log_group, name]):
                raise AlreadyExistsError(f"log stream {name!r} already exists in log group {log_group!r}")
            self._con.execute(
                f"INSERT INTO {LOG_STREAMS_TABLE} (log_group, name, created_ms) VALUES (?, ?, ?)",
                [log_group, name, int(time.time() * 1000)],
            )

    def list_log_streams(self, log_group: str, prefix: str = "") -> list[LogStreamInfo]:
        self._require_group(log_group)
        rows = self._read(
            f"""SELECT log_group, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms
                FROM {LOG_STREAMS_TABLE} WHERE log_group = ? AND starts_with(name, ?) ORDER BY name""",
            [log_group, prefix],
        )
        return [LogStreamInfo(*r) for r in rows]

    def set_retention(self, log_group: str, days: int | None) -> None:
        if days is not None and days not in RETENTION_DAYS:
            raise ConfigError(f"retention of {days} days is not one of {', '.join(map(str, RETENTION_DAYS))}")
        with self._write_lock:
            self._require_group(log_group)
            self._con.execute(f"UPDATE {LOG_GROUPS_TABLE} SET retention_days = ? WHERE name = ?", [days, log_group])

    def delete_expired(self, now_ms: int) -> int:
        with self._write_lock:
            def work() -> int:
                return int(self._con.execute(
                    f"""DELETE FROM {EVENTS_TABLE} USING {LOG_GROUPS_TABLE} g
                        WHERE {EVENTS_TABLE}.log_group = g.name AND g.retention_days IS NOT NULL
                        AND {EVENTS_TABLE}.ts < epoch_ms(?::BIGINT - g.retention_days * 86400000::BIGINT)""",
                    [now_ms]).fetchone()[0])

            return self._in_transaction(work)

    def close(self) -> None:
        with self._write_lock:
            try:
                self._con.execute("CHECKPOINT")
            except duckdb.Error:
                pass  # a read-only connection cannot checkpoint; nothing to flush then
            self._con.close()

    # ------------------------------------------------------------------ helpers

    def _read(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cursor = self._cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise StoreError(str(exc)) from None
        finally:
            cursor.close()

    def _require_group(self, name: str) -> None:
        if not self._read(f"SELECT 1 FROM {LOG_GROUPS_TABLE} WHERE name = ?", [name]):
            raise NotFoundError(f"log group {name!r} does not exist")


def _connect(path: Path, *, read_only: bool, encryption_key: str | None) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the store file ``path``, attached as ``store``
    (created if missing), with dashcam's row group size and its temp files beside it."""
    options = [f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"] + (["READ_ONLY"] if read_only else [])
    if encryption_key is not None:
        return connect_encrypted(path, encryption_key, options)
    # Never fetch extensions at run time: everything dashcam uses is linked into the wheel.
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    try:
        attach(con, path, ATTACHED_AS, ", ".join(options))
        con.execute(f"USE {ATTACHED_AS}")
        return con
    except BaseException:
        con.close()
        raise


@dataclass
class _StagedRaw(PreparedRaw):
    """A raw batch parsed into temp tables of its own cursor: ``staged`` (every row, typed and
    priced), ``ready`` (the rows to store) and ``ready_events`` (them in table column order)."""

    cursor: duckdb.DuckDBPyConnection | None = None
    timestamped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def stage(self) -> None:
        """Parse, derive, price and check the batch (no write to the store)."""
        con, batch = self.cursor, self.batch
        con.register("incoming", batch)
        con.execute(f"CREATE TEMP TABLE staged AS {staging_sql(self.provider, self.source)}")
        with _price_ranges(con):
            for statement in pricing_sql("staged"):
                con.execute(statement)
        self.timestamped = int(con.execute("SELECT count(*) FROM staged WHERE ts IS NOT NULL").fetchone()[0])
        if self.timestamped != batch.num_rows:
            self.rejected = [(int(i), str(reason)) for i, reason in con.execute(REJECTION_SQL).fetchall()]
        # A batch without repeated ids (the usual case) needs no window to drop repeats.
        if pc.count_distinct(batch["event_id"]).as_py() == batch.num_rows:
            con.execute("CREATE TEMP VIEW ready AS SELECT * FROM staged WHERE ts IS NOT NULL")
        else:
            con.execute(f"CREATE TEMP TABLE ready AS {READY_SQL}")
        con.execute(f"CREATE TEMP VIEW ready_events AS {ready_events_sql()}")

    def discard(self) -> None:
        # Closing the cursor drops its temp tables and registrations with it.
        if self.cursor is not None:
            cursor, self.cursor = self.cursor, None
            try:
                cursor.close()
            except duckdb.Error:
                pass


def _row_outcomes(con: duckdb.DuckDBPyConnection, stored_ids: set[int]) -> tuple[list[int], list[int]]:
    """(stored, duplicate) row_idx lists of a raw write: ``ready`` holds the first row of each id;
    every other timestamped row of ``staged`` repeats an event stored before or now."""
    first_rows = con.execute("SELECT row_idx, event_id FROM ready").fetchall()
    stored = sorted(row for row, event_id in first_rows if event_id in stored_ids)
    kept = set(stored)
    timestamped = con.execute("SELECT row_idx FROM staged WHERE ts IS NOT NULL ORDER BY row_idx").fetchall()
    return stored, [row for (row,) in timestamped if row not in kept]


def _without_views(batch: pa.Table) -> pa.Table:
    """``batch`` with its string-view columns as plain (large) strings."""
    for index, field_ in enumerate(batch.schema):
        if pa.types.is_string_view(field_.type):
            batch = batch.set_column(index, pa.field(field_.name, pa.large_string()),
                                     batch.column(index).cast(pa.large_string()))
    return batch


@contextmanager
def _price_ranges(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The price catalogue registered on ``con`` as ``price_ranges`` (see duckdb_ingest.pricing_sql)."""
    ranges = pricing.current().ranges()
    table = pa.table(dict(zip(PRICE_COLUMNS, map(list, zip(*ranges)))) if ranges else
                     {name: [] for name in PRICE_COLUMNS})
    con.register("price_ranges", table)
    try:
        yield
    finally:
        con.unregister("price_ranges")


def _engine_message(exc: duckdb.Error) -> str:
    """DuckDB's message without its internal prefixes, for a person to read."""
    text = str(exc).strip()
    for prefix in ("Invalid Input Error: ", "Conversion Error: ", "Binder Error: ", "Out of Range Error: "):
        text = text.replace(prefix, "")
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, duckdb.OutOfMemoryException):
        first += (" — the store's memory limit is too small for this query: raise DASHCAM_DUCKDB_MEMORY_LIMIT"
                  " (e.g. 1GB) where dashcam serve runs, or narrow the query's time range")
    return f"the query could not run: {first}"


@dataclass
class BatchSummary:
    """What accounting a batch needs besides its rows: its log groups, time span and streams.

    Computed once, before the transaction, so the engine does not scan the batch again for each
    (scanning a registered Arrow table goes through Python, and waits for the interpreter lock).
    """

    groups: list[str]
    first_ms: int
    last_ms: int
    stream_groups: list[str]
    streams: list[str]
    stream_first_ms: list[int]
    stream_last_ms: list[int]
    stream_ingested_ms: list[int]

    @classmethod
    def of(cls, batch: pa.Table) -> "BatchSummary":
        """The summary of an Arrow batch of events, computed in Arrow."""
        ts = batch.column("ts").cast(pa.int64())
        span = pc.min_max(ts)
        per_stream = pa.table({
            "g": batch.column("log_group"), "s": batch.column("log_stream"), "ts": ts,
            "ing": batch.column("ingestion_time").cast(pa.int64()),
        }).group_by(["g", "s"], use_threads=False).aggregate([("ts", "min"), ("ts", "max"), ("ing", "max")])
        return cls(pc.unique(batch.column("log_group")).to_pylist(), span["min"].as_py(), span["max"].as_py(),
                   per_stream.column("g").to_pylist(), per_stream.column("s").to_pylist(),
                   per_stream.column("ts_min").to_pylist(), per_stream.column("ts_max").to_pylist(),
                   per_stream.column("ing_max").to_pylist())

    @classmethod
    def scan(cls, con: duckdb.DuckDBPyConnection, relation: str, bounds_from: str | None) -> "BatchSummary":
        """The summary of a relation the engine holds (a staged batch), computed by the engine."""
        first, last = con.execute(
            f"SELECT epoch_ms(min(ts)::TIMESTAMP), epoch_ms(max(ts)::TIMESTAMP) FROM {bounds_from or relation}").fetchone()
        rows = con.execute(
            f"""SELECT log_group, log_stream, epoch_ms(min(ts)::TIMESTAMP), epoch_ms(max(ts)::TIMESTAMP),
                       epoch_ms(max(ingestion_time)::TIMESTAMP)
                FROM {relation} GROUP BY log_group, log_stream""").fetchall()
        columns = list(zip(*rows)) if rows else [(), (), (), (), ()]
        groups = sorted(set(columns[0]))
        return cls(groups, first, last, *(list(c) for c in columns))
