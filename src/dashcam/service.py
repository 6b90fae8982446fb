"""The façade the CLI, HTTP API and web UI all call: import, query, log groups.

It owns a :class:`~dashcam.store.base.Store` and wires sources -> batched writes, and query text ->
parser -> compiler -> store -> decoded rows. Nothing here knows about HTTP or terminals.

It is also where unmasking is decided (:meth:`Dashcam.unmask_events`): only admins on an event's
log group get its kept original, every request is audited, refused ones too. Queries that use
``unmask()`` get their originals swapped in here, after the engine has run them on masked data.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dashcam import pricing
from dashcam.audit import AuditLog, current_actor
from dashcam.errors import ConfigError, ForbiddenError
from dashcam.ingest import BatchWriter
from dashcam.pricing import PriceCatalog, PricingError
from dashcam.records import check_log_group_name
from dashcam.query.compiler import CompiledQuery, QueryScope, compile_query
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.query.unmask import events_of, swap_originals
from dashcam.sources.bedrock_logs import SOURCE_NAME, Problem, find_log_objects, read_bedrock_logs
from dashcam.store.base import LogGroupInfo, Store

if TYPE_CHECKING:  # imported when first used: commands that never touch alarms do not load them
    from dashcam.alarms.manager import AlarmManager
    from dashcam.alarms.scheduler import AlarmScheduler
    from dashcam.keys import Principal

DEFAULT_DATA_DIR = "./dashcam-data"
DEFAULT_LOG_GROUP = "/aws/bedrock/modelinvocations"
BEDROCK_LOG_STREAM = "aws/bedrock/modelinvocations"
DEFAULT_QUERY_LIMIT = 10_000
UNMASK_ROLE = "admin"
_AUDITED_QUERY_CHARS = 2000


@dataclass
class ImportSummary:
    """What an import did."""

    files: int = 0
    records: int = 0
    written: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        """Lines that were not imported because they were malformed."""
        return len(self.problems)


@dataclass
class QueryResult:
    """Rows as dicts with keys in result order, plus the SQL that produced them."""

    columns: list[str]
    rows: list[dict[str, Any]]
    sql: str
    seconds: float


def use_prices(data_dir: str | Path) -> PriceCatalog:
    """Price ingestion with the shipped catalog plus ``prices.json`` in ``data_dir``."""
    try:
        catalog = PriceCatalog.load(data_dir)
    except PricingError as exc:
        raise ConfigError(str(exc)) from None
    pricing.use(catalog)
    return catalog


def local_admin() -> "Principal":
    """The command line's principal: an admin over every log group, audited as ``local:<user>``
    (whoever can run dashcam on a data directory can read its files, originals and key included)."""
    from dashcam.keys import Principal

    return Principal(current_actor(), "admin", "*")


def unmask_refusal(principal: "Principal | None", log_groups: Sequence[str] | None) -> str | None:
    """Why ``principal`` may not unmask events of ``log_groups`` (None: every group), or None when
    it may: unmasking needs the admin role on each group."""
    if principal is None:
        return f"unmask needs the {UNMASK_ROLE} role, and no key (principal) acts for this request"
    if not principal.may(UNMASK_ROLE):
        return f"unmask needs the {UNMASK_ROLE} role; key {principal.key_id} has role {principal.role}"
    for group in log_groups or ():
        if not principal.may(UNMASK_ROLE, group):
            return (f"unmask needs the {UNMASK_ROLE} role on log group {group!r}; key {principal.key_id} is "
                    f"{principal.role} on {principal.log_groups!r} only")
    return None


@functools.lru_cache(maxsize=256)
def _compile(text: str, scope: QueryScope, dialect: str) -> CompiledQuery:
    # Dashboards, alarms and people re-run the same queries; compiling is a third of a small query.
    return compile_query(parse(text), scope, dialect)


class ImportProgress:
    """Hooks an import calls so a caller can draw progress; the default draws nothing."""

    def start(self, files: int, total_bytes: int) -> None:
        """Called once, before reading, with the number of objects and their stored size."""

    def advance(self, bytes_read: int) -> None:
        """Called as compressed bytes are consumed."""


class Dashcam:
    """dashcam over one store."""

    def __init__(self, store: Store, data_dir: str | Path | None = None) -> None:
        self.store = store
        # dashcam's own files (prices, keys, alarms) live here whichever store holds the events.
        self.data_dir = Path(data_dir or os.environ.get("DASHCAM_DATA") or DEFAULT_DATA_DIR)

    @classmethod
    def open(cls, data_dir: str | Path | None = None, *, store: str | None = None,
             store_key: str | None = None) -> "Dashcam":
        """Open the store ``store`` or ``$DASHCAM_STORE`` names (``clickhouse://...``, ``chdb://...``,
        see :func:`dashcam.store.open_store`); without one, the embedded DuckDB store in
        ``data_dir`` (default: ``$DASHCAM_DATA`` or ./dashcam-data), encrypted under ``store_key``
        or the key ``$DASHCAM_STORE_KEY`` / ``$DASHCAM_STORE_KEY_FILE`` gives (see
        :mod:`dashcam.store.duckdb_encryption`)."""
        from dashcam.store import ClickHouseTarget, open_store, parse_store_url
        from dashcam.store.duckdb import DuckDBStore
        from dashcam.store.duckdb_encryption import key_from_environment

        directory = data_dir or os.environ.get("DASHCAM_DATA") or DEFAULT_DATA_DIR
        use_prices(directory)
        from dashcam.metrics.quota import use_directory  # quotas.json, read when headroom is asked for

        use_directory(directory)
        url = store or os.environ.get("DASHCAM_STORE")
        if url:
            target = parse_store_url(url)
            if isinstance(target, ClickHouseTarget) and (store_key or key_from_environment()):
                # A key that encrypts nothing must not look like encryption at rest.
                raise ConfigError(f"a store key encrypts the embedded DuckDB store, but the store is "
                                  f"{target.describe()}: encrypt ClickHouse's disks instead, or drop the key "
                                  "(--store-key-file, DASHCAM_STORE_KEY, DASHCAM_STORE_KEY_FILE)")
            # Events live elsewhere; the data directory still holds dashcam's own files (prices, keys).
            Path(directory).mkdir(parents=True, exist_ok=True)
            return cls(open_store(url), directory).protected().archived()
        return cls(DuckDBStore(directory, encryption_key=store_key or key_from_environment()), directory).protected().archived()

    # Set by archived(): the data directory's Parquet archive (None: not wrapped).
    archive: Any = None

    def archived(self) -> "Dashcam":
        """Let queries read the events archived to Parquet (``archive.json`` in the data directory;
        see :mod:`dashcam.store.archive`) as if they were still in the store; returns self."""
        from dashcam.store.archive import Archive, ArchivedStore

        if self.archive is None:
            self.archive = Archive(self.data_dir)
            self.store = ArchivedStore(self.store, self.archive)
        return self

    # Set by protected(): the data-protection policies, originals and counts (None: unprotected).
    protection: Any = None

    def protected(self) -> "Dashcam":
        """Pass every write through the data directory's data-protection policies (masking, body
        switches, encrypted originals; see :mod:`dashcam.protect`); returns self. With no policy,
        writes go straight to the store."""
        from dashcam.protect import ProtectedStore, Protection

        if self.protection is None:
            self.protection = Protection(self.data_dir)
            self.store = ProtectedStore(self.store, self.protection)
        return self

    def close(self) -> None:
        """Flush and close the store."""
        alarms, self._alarm_manager = self._alarm_manager, None  # opened on first use (see alarms)
        if alarms is not None:
            alarms.close()
        self.store.close()

    def __enter__(self) -> "Dashcam":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ import

    def import_logs(
        self,
        locations: Sequence[str | Path],
        *,
        log_group: str = DEFAULT_LOG_GROUP,
        progress: ImportProgress | None = None,
        s3_client: Any = None,
    ) -> ImportSummary:
        """Import Bedrock invocation log files, directories or ``s3://`` prefixes into ``log_group``.

        Each record's ``timestamp`` becomes its ``@timestamp``; events land in the stream
        ``aws/bedrock/modelinvocations`` as Bedrock writes them. Re-importing is harmless: events
        already stored are counted as duplicates, not stored twice.
        """
        started = time.perf_counter()
        check_log_group_name(log_group)
        progress = progress or ImportProgress()
        objects = find_log_objects(locations, s3_client=s3_client)
        progress.start(len(objects), sum(o.size for o in objects))
        summary = ImportSummary(files=len(objects))
        with BatchWriter(self.store, source=SOURCE_NAME) as writer:
            for run in read_bedrock_logs(objects, problems=summary.problems, progress=progress.advance,
                                         s3_client=s3_client):
                writer.add_lines(log_group, BEDROCK_LOG_STREAM, run.lines, run.location,
                                 run.first_line)
        summary.problems.extend(Problem(r.location, r.line, r.reason) for r in writer.rejections)
        summary.problems.sort(key=lambda p: (p.location, p.line))
        summary.written, summary.duplicates = writer.result.written, writer.result.duplicates
        summary.records = summary.written + summary.duplicates
        summary.seconds = time.perf_counter() - started
        return summary

    # ------------------------------------------------------------------ query

    def compile(
        self,
        text: str,
        *,
        log_groups: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = DEFAULT_QUERY_LIMIT,
    ) -> CompiledQuery:
        """Parse and compile Logs Insights text for this store's dialect (raises QueryError)."""
        scope = QueryScope(tuple(log_groups) if log_groups else None, start_ms, end_ms, limit)
        return _compile(text, scope, self.store.dialect)

    def query(
        self,
        text: str,
        *,
        log_groups: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = DEFAULT_QUERY_LIMIT,
        principal: "Principal | None" = None,
    ) -> QueryResult:
        """Answer a Logs Insights query; no log groups means all, no times mean all data.

        A query using ``unmask()`` needs a ``principal`` allowed to unmask (:func:`unmask_refusal`;
        the command line passes :func:`local_admin`): ForbiddenError otherwise, before it runs.
        """
        started = time.perf_counter()
        compiled = self.compile(text, log_groups=log_groups, start_ms=start_ms, end_ms=end_ms, limit=limit)
        if compiled.unmasks:
            self.require_unmask(principal, log_groups, query=text)
        raw = self.store.execute(compiled.sql)
        rows = decode_rows(compiled, raw)
        if compiled.unmasks:
            self.unmask_rows(compiled, raw, rows, principal, query=text)
        return QueryResult([c.name for c in compiled.columns], rows, compiled.sql, time.perf_counter() - started)

    # ------------------------------------------------------------------ unmask

    def require_unmask(self, principal: "Principal | None", log_groups: Sequence[str] | None, *,
                       query: str | None = None, via: str = "query") -> None:
        """ForbiddenError (audited as ``denied``) unless ``principal`` may unmask events of
        ``log_groups`` (None: only the role is checked, the groups are checked per event)."""
        refusal = unmask_refusal(principal, log_groups)
        if refusal is None:
            return
        details: dict[str, Any] = {"via": via, "error": refusal}
        if query is not None:
            details["query"] = query[:_AUDITED_QUERY_CHARS]
        AuditLog(self.data_dir).record("unmask", ",".join(sorted(log_groups or ())), outcome="denied",
                                       details=details, actor=principal.key_id if principal else None)
        raise ForbiddenError(refusal)

    def unmask_events(self, wanted: dict[str, Sequence[int]], principal: "Principal | None", *, via: str,
                      query: str | None = None) -> dict[tuple[str, int], str]:
        """The kept originals of events, ``{log group: [event ids]}`` -> ``{(group, id): text}``
        (events without one are left out), for a principal allowed to unmask on every group.

        ForbiddenError otherwise. Audited either way: action ``unmask``, the groups as target, how
        many events were asked for and found, and ``via`` (the operation or ``query``)."""
        groups = sorted(wanted)
        self.require_unmask(principal, groups, query=query, via=via)
        details: dict[str, Any] = {"via": via, "events": sum(len(ids) for ids in wanted.values())}
        if query is not None:
            details["query"] = query[:_AUDITED_QUERY_CHARS]
        audit, actor = AuditLog(self.data_dir), principal.key_id if principal else None
        originals: dict[tuple[str, int], str] = {}
        try:
            if self.protection is not None:
                for group, ids in wanted.items():
                    found = self.protection.unmask(group, list(ids))
                    originals.update(((group, event_id), text) for event_id, text in found.items())
        except Exception as exc:
            audit.record("unmask", ",".join(groups), outcome="failed", details={**details, "error": str(exc)},
                         actor=actor)
            raise
        audit.record("unmask", ",".join(groups), details={**details, "found": len(originals)}, actor=actor)
        return originals

    def unmask_rows(self, compiled: CompiledQuery, raw_rows: list[tuple], rows: list[dict[str, Any]],
                    principal: "Principal | None", *, query: str) -> list[str]:
        """Swap the originals into the ``unmask()`` columns of ``rows`` (decoded from ``raw_rows``)
        for a principal allowed to unmask every log group the rows come from; returns those groups.
        ForbiddenError, with no row changed, otherwise."""
        wanted = events_of(compiled, raw_rows)
        if not wanted:
            # Nothing to show, but the attempt is on record like any other.
            self.unmask_events({}, principal, via="query", query=query)
            return []
        swap_originals(compiled, raw_rows, rows, self.unmask_events(wanted, principal, via="query", query=query))
        return sorted(wanted)

    # ------------------------------------------------------------------ log groups

    def log_groups(self, prefix: str = "") -> list[LogGroupInfo]:
        """Log groups whose names start with ``prefix``."""
        return self.store.list_log_groups(prefix)

    # ------------------------------------------------------------------ metrics

    def metric_data(self, queries: Sequence[Any], start_ms: int, end_ms: int, *,
                    log_groups: Sequence[str] | None = None) -> list[Any]:
        """CloudWatch-style series (:func:`dashcam.metrics.engine.get_metric_data`)."""
        from dashcam.metrics.engine import get_metric_data

        return get_metric_data(self.store, queries, start_ms, end_ms, log_groups=log_groups)

    def metric_statistics(self, metric_name: str, statistics: Sequence[str], start_ms: int, end_ms: int,
                          period: int, **options: Any) -> list[Any]:
        """``GetMetricStatistics`` datapoints (:func:`dashcam.metrics.engine.get_metric_statistics`)."""
        from dashcam.metrics.engine import get_metric_statistics

        return get_metric_statistics(self.store, metric_name, statistics, start_ms, end_ms, period, **options)

    def list_metrics(self, metric_name: str | None = None, dimensions: Sequence[tuple[str, str | None]] = (),
                     **options: Any) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """Metric and dimension combinations with data (:func:`dashcam.metrics.engine.list_metrics`)."""
        from dashcam.metrics.engine import list_metrics

        return list_metrics(self.store, metric_name, dimensions, **options)

    def metric_time_range(self, log_groups: Sequence[str] | None = None) -> tuple[int, int] | None:
        """[first, last] invocation timestamps (epoch ms) of the data, or None when there is none."""
        from dashcam.metrics.engine import data_range

        return data_range(self.store, log_groups=log_groups)

    # ------------------------------------------------------------------ alarms

    _alarm_manager: "AlarmManager | None" = None
    _alarm_lock = threading.Lock()  # request threads and the scheduler may ask first at once

    @property
    def alarms(self) -> "AlarmManager":
        """The data directory's alarms (``alarms.sqlite``) and their actions: an
        :class:`~dashcam.alarms.manager.AlarmManager`, opened on first use."""
        with self._alarm_lock:
            if self._alarm_manager is None:
                from dashcam.alarms.manager import AlarmManager

                self._alarm_manager = AlarmManager.open(self.data_dir)
            return self._alarm_manager

    def alarm_scheduler(self, **options: Any) -> "AlarmScheduler":
        """An :class:`~dashcam.alarms.scheduler.AlarmScheduler` (not started) that evaluates the
        alarms against this store: metrics through the metrics engine, query alarms through
        :meth:`query`. ``options`` go to the scheduler (``interval_s``, ``clock``, ...)."""
        from dashcam.alarms.fetch import AlarmData
        from dashcam.alarms.scheduler import AlarmScheduler

        def fetch_metrics(queries: Sequence[Any], start_ms: int, end_ms: int) -> list[Any]:
            return self.metric_data(queries, start_ms, end_ms)

        def run_query(text: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
            # Logs Insights time ranges are inclusive; a period is [start, end).
            return self.query(text, start_ms=start_ms, end_ms=end_ms - 1).rows

        return AlarmScheduler(self.alarms, AlarmData(fetch_metrics, run_query), **options)

