"""Archived events answer queries as if they had never left: a store wrapper that reads them.

:class:`ArchivedStore` wraps the store. Every SQL statement dashcam runs over ``events`` (Logs
Insights queries, metrics, alarms, Prometheus) goes through :meth:`ArchivedStore.execute` or
``execute_arrow``; when archived files may hold events the statement asks for, ``events`` is
shadowed by a common table expression:

    WITH events AS (SELECT <columns> FROM events
                    UNION ALL
                    SELECT <columns> FROM read_parquet([<files>]) a     -- ClickHouse: file() / s3()
                    WHERE NOT EXISTS (<the same event in the table>))

(Inside its own definition, ``events`` is still the table: the expression is not recursive.)
The relation is the store engine's (:meth:`~dashcam.store.archive.engines.ArchiveEngine.events_relation`):
DuckDB's ``read_parquet``, ClickHouse's ``file()`` (chDB) or ``s3()`` (a server).

Which files: the statement's own ``log_group`` and ``ts`` conditions on ``events`` (the
compiler's query scope, the metrics' time range) are read from its syntax tree with sqlglot;
a statement whose conditions cannot be read gets every file (still correct, just more to read).
An event in a file and in the store at once (a crash mid-archive, a re-delivery) is counted
once. A statement runs again if the archive changed while it ran, so it never sees an event in
both places or in neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TypeVar

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from dashcam.store.archive.archiver import Archive
from dashcam.store.base import Interrupt, LogGroupInfo, LogStreamInfo, PreparedRaw, RawWriteResult, Store, WriteResult
from dashcam.store.schema import EVENTS_TABLE

T = TypeVar("T")
_OPTIMISTIC_TRIES = 3


class ArchivedStore(Store):
    """``inner`` plus its archive: reads see archived events, retention and log-group deletion
    reach the archive too; everything else is the inner store's."""

    def __init__(self, inner: Store, archive: Archive) -> None:
        self.inner = inner
        self.archive = archive
        self.dialect = inner.dialect  # type: ignore[misc]

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "archive"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    # ------------------------------------------------------------------ reads: archive included

    def execute(self, sql: str, *, interrupt: Interrupt | None = None) -> list[tuple[Any, ...]]:
        return self._read(sql, lambda text: self.inner.execute(text, interrupt=interrupt))

    def execute_arrow(self, sql: str) -> pa.Table:
        """The inner store's Arrow reader, over archived events too."""
        return self._read(sql, self.inner.execute_arrow)  # type: ignore[attr-defined]

    def _read(self, sql: str, run: Callable[[str], T]) -> T:
        if not self.archive.manifest.files:
            return run(sql)
        for _ in range(_OPTIMISTIC_TRIES):
            generation = self.archive.generation
            result = run(self._rewrite(sql))
            if self.archive.generation == generation:
                return result
        with self.archive.lock:  # the archive keeps changing under us: read while it cannot
            return run(self._rewrite(sql))

    def _rewrite(self, sql: str) -> str:
        engine = self.archive.engine(self.inner)
        scope = statement_scope(sql, engine.dialect)
        if scope is None:
            return sql
        groups, start_ms, end_ms = scope
        files = self.archive.manifest.overlapping(groups, start_ms, end_ms)
        if not files:
            return sql
        relation = engine.events_relation(files)
        if sql.lstrip()[:5].upper() == "WITH " and not sql.lstrip()[5:].lstrip().upper().startswith("RECURSIVE"):
            return f"WITH {EVENTS_TABLE} AS ({relation}), {sql.lstrip()[5:]}"
        return f"WITH {EVENTS_TABLE} AS ({relation}) {sql}"

    def list_log_groups(self, prefix: str = "") -> list[LogGroupInfo]:
        archived: dict[str, int] = {}
        for f in self.archive.manifest.files:
            if f.live_deleted:  # a file whose rows are still in the store would count them twice
                archived[f.log_group] = archived.get(f.log_group, 0) + f.rows
        return [replace(g, events=g.events + archived.get(g.name, 0)) for g in self.inner.list_log_groups(prefix)]

    # ------------------------------------------------------------------ deletions: archive included

    def delete_expired(self, now_ms: int) -> int:
        deleted = self.inner.delete_expired(now_ms)
        return deleted + self.archive.expire(self.inner, now_ms)

    def delete_log_group(self, name: str) -> None:
        self.inner.delete_log_group(name)
        self.archive.delete_group(name)

    # ------------------------------------------------------------------ everything else: delegated

    def write_batch(self, batch: pa.Table) -> WriteResult:
        return self.inner.write_batch(batch)

    @property
    def reports_rows(self) -> bool:  # type: ignore[override]
        return self.inner.reports_rows

    @property
    def efficient_commit_rows(self) -> int:  # type: ignore[override]
        return self.inner.efficient_commit_rows

    def write_raw(
        self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock", report_rows: bool = False
    ) -> RawWriteResult:
        return self.inner.write_raw(batch, source=source, provider=provider, report_rows=report_rows)

    def prepare_raw(self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock") -> PreparedRaw:
        return self.inner.prepare_raw(batch, source=source, provider=provider)

    def commit_raw(self, prepared: PreparedRaw, *, report_rows: bool = False) -> RawWriteResult:
        return self.inner.commit_raw(prepared, report_rows=report_rows)

    def bulk_writes(self) -> AbstractContextManager[None]:
        return self.inner.bulk_writes()

    def create_log_group(self, name: str, *, exist_ok: bool = False) -> None:
        self.inner.create_log_group(name, exist_ok=exist_ok)

    def list_log_streams(self, log_group: str, prefix: str = "") -> list[LogStreamInfo]:
        return self.inner.list_log_streams(log_group, prefix)

    def create_log_stream(self, log_group: str, name: str) -> None:
        self.inner.create_log_stream(log_group, name)

    def set_retention(self, log_group: str, days: int | None) -> None:
        self.inner.set_retention(log_group, days)

    def reprice(self, start_ms: int | None = None, end_ms: int | None = None) -> int:
        return self.inner.reprice(start_ms, end_ms)

    def scan_events(self, log_group: str, batch_rows: int = 100_000) -> Iterator[pa.Table]:
        return self.inner.scan_events(log_group, batch_rows)

    def restore_log_group(self, info: LogGroupInfo, streams: list[LogStreamInfo]) -> None:
        self.inner.restore_log_group(info, streams)

    def close(self) -> None:
        self.inner.close()


Scope = tuple[set[str] | None, int | None, int | None]


def statement_scope(sql: str, dialect: str = "duckdb") -> Scope | None:
    """The log groups (None: any) and [start, end] epoch ms (None: open) that a statement's reads
    of ``events`` are limited to, from its WHERE conditions (SQL of the store's ``dialect``,
    ``duckdb`` or ``clickhouse``); None when it does not read ``events``."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError:
        return (None, None, None)
    scopes = [_table_scope(table) for table in tree.find_all(exp.Table)
              if table.name == EVENTS_TABLE and not table.db]
    if not scopes:
        return None
    groups: set[str] | None = set()
    for g, _, _ in scopes:
        groups = None if groups is None or g is None else groups | g
    starts, ends = [s for _, s, _ in scopes], [e for _, _, e in scopes]
    return (groups, None if None in starts else min(starts),  # type: ignore[type-var]
            None if None in ends else max(ends))  # type: ignore[type-var]


def _table_scope(table: exp.Table) -> Scope:
    select = table.parent.parent if isinstance(table.parent, exp.From) else None
    where = select.args.get("where") if isinstance(select, exp.Select) else None
    if where is None:
        return (None, None, None)
    groups: set[str] | None = None
    start: int | None = None
    end: int | None = None
    for condition in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        condition = condition.unnest()
        left, right = condition.this, condition.args.get("expression")
        if not isinstance(left, exp.Column) or left.table:
            continue
        if left.name == "log_group":
            values = condition.expressions if isinstance(condition, exp.In) else (
                [right] if isinstance(condition, exp.EQ) else None)
            if values and all(isinstance(v, exp.Literal) and v.is_string for v in values):
                names = {v.this for v in values}
                groups = names if groups is None else groups & names
        elif left.name == "ts" and isinstance(condition, (exp.GTE, exp.GT, exp.LTE, exp.LT, exp.EQ)):
            moment = _timestamp_ms(right)
            if moment is None:
                continue
            if isinstance(condition, (exp.GTE, exp.GT, exp.EQ)):
                start = moment if start is None else max(start, moment)
            if isinstance(condition, (exp.LTE, exp.LT, exp.EQ)):
                end = moment if end is None else min(end, moment)
    return (groups, start, end)


def _timestamp_ms(node: exp.Expression | None) -> int | None:
    """Epoch ms of a dialect's timestamp literal — DuckDB's ``CAST('YYYY-MM-DD HH:MM:SS.ffffff'
    AS TIMESTAMP)``, ClickHouse's ``toDateTime64('YYYY-MM-DD HH:MM:SS.ffffff', 3, 'UTC')``;
    None for anything else."""
    if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ):
        text = node.this
    elif (isinstance(node, exp.Anonymous) and str(node.this).lower() == "todatetime64" and len(node.expressions) == 3
          and isinstance(node.expressions[2], exp.Literal) and node.expressions[2].this == "UTC"):
        text = node.expressions[0]
    else:
        return None
    if not isinstance(text, exp.Literal) or not text.is_string:
        return None
    try:
        moment = datetime.fromisoformat(text.this).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)
