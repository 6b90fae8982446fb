"""The SQL the archive runs on each store engine, behind one interface.

:class:`ArchiveEngine` is what :mod:`~dashcam.store.archive.archiver` (finding the days due,
writing a day to Parquet, checking the file, deleting what it holds from the store) and
:mod:`~dashcam.store.archive.store` (reading archived files back inside queries) call.
:class:`DuckDBArchiveEngine` is DuckDB's (``COPY``, ``read_parquet``); ClickHouse's is
:class:`~dashcam.store.archive.clickhouse.ClickHouseArchiveEngine`. Both write the same files —
same layout, columns and Parquet types (:data:`ARCHIVE_SCHEMA`) — so one archive format serves
either engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from dashcam.errors import ConfigError
from dashcam.store.archive.manifest import DAY_MS, ArchivedFile, day_start_ms
from dashcam.store.base import Store
from dashcam.store.schema import ARROW_SCHEMA, EVENT_COLUMN_NAMES, EVENT_COLUMNS, EVENTS_TABLE

if TYPE_CHECKING:  # the archive hands itself to its engines; it imports this module
    from dashcam.store.archive.archiver import Archive
    from dashcam.store.archive.config import ArchiveConfig

# The Parquet types of an archive file: the store's columns, timestamps in microseconds without a
# zone (what DuckDB's COPY writes for TIMESTAMP), whichever engine wrote the file.
ARCHIVE_SCHEMA = pa.schema([pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f
                            for f in ARROW_SCHEMA])

_DUCKDB_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "timestamp": "TIMESTAMP"}


@dataclass(frozen=True)
class FileFacts:
    """What a staged Parquet file holds, as read back from it."""

    rows: int
    distinct_ids: int
    first_ms: int          # first and last @timestamp
    last_ms: int
    columns: tuple[str, ...]


class ArchiveEngine(ABC):
    """The archive's SQL for one store (the adapter, not a wrapper around it)."""

    dialect: str = ""            # the sqlglot dialect of the store's SQL
    reads_local_copies = True    # queries read files on this machine (so caching a new file pays)

    def __init__(self, store: Store, archive: "Archive") -> None:
        self.store = store
        self.archive = archive

    def check_config(self, config: "ArchiveConfig") -> None:
        """Refuse (ConfigError) settings this store cannot archive with; every setting works by default."""

    @abstractmethod
    def due_days(self, cutoff_ms: int) -> list[tuple[str, str]]:
        """(log group, UTC day ``YYYY-MM-DD``) of the store's events older than ``cutoff_ms``,
        oldest day first."""

    @abstractmethod
    def export_day(self, group: str, day: str, earlier: list[ArchivedFile], staging: Path) -> int:
        """Write the day's events, less those the ``earlier`` files of the day hold, to the
        Parquet file ``staging`` (zstd, ordered by time, :data:`ARCHIVE_SCHEMA`); returns how many."""

    @abstractmethod
    def file_facts(self, path: Path) -> FileFacts:
        """Read a Parquet file back: rows, distinct event ids, time span, columns."""

    def confirm_readable(self, entry: ArchivedFile) -> None:
        """Check the engine reads a just-stored file as ``entry`` describes it, before it is
        listed (StoreError if not); nothing to check by default."""

    @abstractmethod
    def delete_archived(self, group: str, day: str, files: list[ArchivedFile]) -> int:
        """Delete from the store the events of the day that ``files`` hold; returns how many."""

    @abstractmethod
    def events_relation(self, files: list[ArchivedFile]) -> str:
        """SQL for the live table and ``files`` as one relation with the table's columns; an
        event in a file and in the table at once is read from the table only."""


def engine_for(store: Store, archive: "Archive") -> ArchiveEngine:
    """The archive engine of the adapter under ``store`` (protection and archive wrappers unwrapped)."""
    while getattr(store, "inner", None) is not None:
        store = store.inner  # type: ignore[attr-defined]
    if store.dialect == "duckdb":
        return DuckDBArchiveEngine(store, archive)
    if store.dialect == "clickhouse":
        from dashcam.store.archive.clickhouse import ClickHouseArchiveEngine

        return ClickHouseArchiveEngine(store, archive)
    raise ConfigError(f"the Parquet archive does not support {store.dialect} stores")


# ---------------------------------------------------------------------- DuckDB

def sql_text(value: str) -> str:
    """A SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def sql_timestamp(ms: int) -> str:
    """A DuckDB TIMESTAMP for epoch milliseconds."""
    return f"epoch_ms({int(ms)}::BIGINT)"


def parquet_source(paths: Iterable[str | Path]) -> str:
    """``read_parquet`` over files, never reading ``key=value`` directories as columns."""
    listed = ", ".join(sql_text(str(p)) for p in paths)
    return f"read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"


class DuckDBArchiveEngine(ArchiveEngine):
    """DuckDB writes a day with ``COPY ... TO (FORMAT parquet)`` and reads files with
    ``read_parquet`` from this machine: in place for a plain local archive, else from the cache."""

    dialect = "duckdb"

    def _day(self, group: str, day: str) -> str:
        start = day_start_ms(day)
        return (f"log_group = {sql_text(group)} AND ts >= {sql_timestamp(start)} "
                f"AND ts < {sql_timestamp(start + DAY_MS)}")

    def due_days(self, cutoff_ms: int) -> list[tuple[str, str]]:
        return [(str(g), str(d)) for g, d in self.store.execute(
            f"SELECT log_group, strftime(ts, '%Y-%m-%d') AS day FROM {EVENTS_TABLE} "
            f"WHERE ts < {sql_timestamp(cutoff_ms)} GROUP BY ALL ORDER BY day, log_group")]

    def export_day(self, group: str, day: str, earlier: list[ArchivedFile], staging: Path) -> int:
        where = self._day(group, day)
        if earlier:  # events a file already holds (re-deliveries) are only deleted
            where += f" AND event_id NOT IN (SELECT event_id FROM {parquet_source(self.archive.readable_paths(earlier))})"
        columns = ", ".join(f'"{name}"' for name in EVENT_COLUMN_NAMES)
        return int(self.store.execute(
            f"COPY (SELECT {columns} FROM {EVENTS_TABLE} WHERE {where} ORDER BY ts, event_id) "
            f"TO {sql_text(str(staging))} (FORMAT parquet, COMPRESSION zstd)")[0][0])

    def file_facts(self, path: Path) -> FileFacts:
        rows, distinct, first, last = self.store.execute(
            f"SELECT count(*), count(DISTINCT event_id), epoch_ms(min(ts)), epoch_ms(max(ts)) "
            f"FROM {parquet_source([path])}")[0]
        columns = tuple(str(r[0]) for r in self.store.execute(
            f"SELECT name FROM parquet_schema({sql_text(str(path))}) WHERE num_children IS NULL"))
        return FileFacts(int(rows), int(distinct), int(first), int(last), columns)

    def delete_archived(self, group: str, day: str, files: list[ArchivedFile]) -> int:
        if not files:
            return 0
        return int(self.store.execute(
            f"DELETE FROM {EVENTS_TABLE} WHERE {self._day(group, day)} "
            f"AND event_id IN (SELECT event_id FROM {parquet_source(self.archive.readable_paths(files))})")[0][0])

    def events_relation(self, files: list[ArchivedFile]) -> str:
        present = {name for f in files for name in f.columns}
        live = ", ".join(f'"{name}"' for name, _ in EVENT_COLUMNS)
        # A column added after a file was written is NULL there, as it would be for old rows.
        archived = ", ".join(f'a."{name}"' if name in present else f'NULL::{_DUCKDB_TYPES[kind]} AS "{name}"'
                             for name, kind in EVENT_COLUMNS)
        low, high = min(f.min_ms for f in files), max(f.max_ms for f in files)
        source = parquet_source(self.archive.readable_paths(files))
        return (f"SELECT {live} FROM {EVENTS_TABLE} UNION ALL "
                f"SELECT {archived} FROM {source} a WHERE NOT EXISTS ("
                f"SELECT 1 FROM {EVENTS_TABLE} l WHERE l.ts BETWEEN {sql_timestamp(low)} AND {sql_timestamp(high)} "
                f"AND l.log_group = a.log_group AND l.event_id = a.event_id)")
