"""The archive on ClickHouse: the same Parquet files as on DuckDB, read by ClickHouse itself.

**Reading.** Queries read archived files with ClickHouse's own table functions, in the store's
SQL: ``file()`` when ClickHouse runs in this process (chDB) — over the same local paths DuckDB
reads: a plain local archive in place, S3 and encrypted files from the checked local cache
(downloaded, decrypted, compared with the manifest's SHA-256) — and ``s3()`` when it is a
server, which cannot see this machine's disk and so reads the bucket itself. A file list
becomes one glob per directory (``file('/dir/{a.parquet,b.parquet}')``): ClickHouse plans one
table function over hundreds of files in milliseconds, where a ``UNION ALL`` of one call per
file takes a second. Every read names the store's column types (``structure``), so files
written before a column existed read it as NULL.

**Writing.** A day's events stream out of ClickHouse as Arrow and pyarrow writes the file
(zstd, ordered by time, :data:`~dashcam.store.archive.engines.ARCHIVE_SCHEMA`). Arrow rather
than ``INSERT INTO FUNCTION file(...)``: ``file()`` writes on the machine ClickHouse runs on, so
a server would leave the file on *its* disk where dashcam cannot check or upload it; and
pyarrow writes exactly the Parquet types DuckDB's ``COPY`` writes (microsecond timestamps
without a zone), so the two engines share one archive format. The file is checked with pyarrow,
stored, then read back by ClickHouse (rows, distinct ids) before it is listed, so a server that
cannot read the bucket fails the run before anything is deleted.

**On a server** (``clickhouse://``) the archive must be plain S3: a local directory is on the
wrong machine, and an encrypted file is decrypted only by dashcam into its local cache, which
the server cannot read either (ClickHouse cannot read a whole-file AES-GCM blob as Parquet).
:func:`check_server_archive` refuses both with a ConfigError. The server reads S3 with the
credentials boto3 finds for dashcam (passed in the ``s3()`` call; ClickHouse logs its secret
key as ``[HIDDEN]``), or its own when boto3 finds none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dashcam.errors import ConfigError, QueryError, StoreError
from dashcam.store.archive.config import ArchiveConfig
from dashcam.store.archive.destination import S3Destination
from dashcam.store.archive.engines import ARCHIVE_SCHEMA, ArchiveEngine, FileFacts
from dashcam.store.archive.manifest import DAY_MS, ArchivedFile, day_start_ms
from dashcam.store.clickhouse_schema import column_type, quote_ident, quote_string
from dashcam.store.schema import EVENT_COLUMN_NAMES, EVENT_COLUMNS, EVENTS_TABLE

ROW_GROUP_ROWS = 122_880           # DuckDB's row group size: files of both engines read alike
_GLOB_CHARACTERS = set("*?{},")    # file() reads these as a pattern (keys are percent-escaped: never)
_KINDS = dict(EVENT_COLUMNS)


def check_server_archive(destination: str, encrypted: bool, store: str) -> None:
    """ConfigError unless a ClickHouse server can read an archive at ``destination``: it reads
    only plain S3 (``store`` names the server for the message)."""
    if not destination.startswith("s3://"):
        raise ConfigError(f"the store is a ClickHouse server ({store}), which reads archived files itself and "
                          f"cannot see this machine's directory {destination}: archive to s3://bucket/prefix, "
                          "which the server reads with s3()")
    if encrypted:
        raise ConfigError(f"the store is a ClickHouse server ({store}): archive files encrypted by dashcam are "
                          "decrypted only into dashcam's local cache, which the server cannot read, and ClickHouse "
                          "cannot read them encrypted; archive without --encrypt-key-file and encrypt the bucket "
                          "(S3 server-side encryption) instead")


def ch_timestamp(ms: int) -> str:
    """A ClickHouse ``DateTime64(3, 'UTC')`` for epoch milliseconds."""
    return f"fromUnixTimestamp64Milli(toInt64({int(ms)}), 'UTC')"


def to_archive_schema(table: pa.Table) -> pa.Table:
    """Events in :data:`~dashcam.store.schema.ARROW_SCHEMA` as an archive file holds them."""
    return table.cast(ARCHIVE_SCHEMA)


class ClickHouseArchiveEngine(ArchiveEngine):
    """The archive on a :class:`~dashcam.store.clickhouse.ClickHouseStore` (see the module docstring)."""

    dialect = "clickhouse"

    @property
    def server_side(self) -> bool:
        """True when ClickHouse is a server, which reads archived files from S3 itself; False for
        chDB, which reads them from this machine as DuckDB does."""
        return bool(self.store.target.interface != "chdb")  # type: ignore[attr-defined]

    @property
    def reads_local_copies(self) -> bool:  # type: ignore[override]
        return not self.server_side

    def check_config(self, config: ArchiveConfig) -> None:
        if self.server_side:
            check_server_archive(config.destination, config.encrypted,
                                 self.store.target.describe())  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ archiving

    def _day(self, group: str, day: str) -> str:
        start = day_start_ms(day)
        return (f"log_group = {quote_string(group)} AND ts >= {ch_timestamp(start)} "
                f"AND ts < {ch_timestamp(start + DAY_MS)}")

    def due_days(self, cutoff_ms: int) -> list[tuple[str, str]]:
        return [(str(g), str(d)) for g, d in self.store.execute(
            f"SELECT log_group, toString(toDate(ts, 'UTC')) AS day FROM {EVENTS_TABLE} "
            f"WHERE ts < {ch_timestamp(cutoff_ms)} GROUP BY log_group, day ORDER BY day, log_group")]

    def export_day(self, group: str, day: str, earlier: list[ArchivedFile], staging: Path) -> int:
        condition = self._day(group, day)
        if earlier:  # events a file already holds (re-deliveries) are only deleted
            condition += f" AND event_id NOT IN (SELECT event_id FROM {self.source(earlier, ('event_id',))})"
        written, pending = 0, []
        with pq.ParquetWriter(staging, ARCHIVE_SCHEMA, compression="zstd") as writer:
            for table in self.store.stream_events(condition):  # type: ignore[attr-defined]
                pending.append(to_archive_schema(table))
                if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
                    written += self._flush(writer, pending)
                    pending = []
            written += self._flush(writer, pending)
        return written

    @staticmethod
    def _flush(writer: pq.ParquetWriter, tables: list[pa.Table]) -> int:
        if not tables:
            return 0
        table = pa.concat_tables(tables)
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        return table.num_rows

    def file_facts(self, path: Path) -> FileFacts:
        parquet = pq.ParquetFile(path)
        table = parquet.read(columns=["event_id", "ts"])
        if table.num_rows == 0:
            return FileFacts(0, 0, 0, 0, tuple(parquet.schema_arrow.names))
        span = pc.min_max(table["ts"].cast(pa.int64()))  # microseconds
        return FileFacts(table.num_rows, pc.count_distinct(table["event_id"]).as_py(),
                         span["min"].as_py() // 1000, span["max"].as_py() // 1000,
                         tuple(parquet.schema_arrow.names))

    def confirm_readable(self, entry: ArchivedFile) -> None:
        try:
            rows, distinct = self.store.execute(
                f"SELECT count(), uniqExact(event_id) FROM {self.source([entry], ('event_id',))}")[0]
        except (QueryError, StoreError) as exc:
            raise StoreError(f"ClickHouse cannot read the archive file {entry.key} at {entry.location} ({exc}); "
                             "nothing was deleted") from None
        if rows != entry.rows or distinct != entry.rows:
            raise StoreError(f"ClickHouse reads {rows} events ({distinct} distinct) from the archive file {entry.key} "
                             f"at {entry.location}, not the {entry.rows} written; nothing was deleted")

    def delete_archived(self, group: str, day: str, files: list[ArchivedFile]) -> int:
        if not files:
            return 0
        return int(self.store.delete_events(  # type: ignore[attr-defined]
            f"{self._day(group, day)} AND event_id IN (SELECT event_id FROM {self.source(files, ('event_id',))})"))

    # ------------------------------------------------------------------ reading

    def events_relation(self, files: list[ArchivedFile]) -> str:
        columns = ", ".join(quote_ident(name) for name in EVENT_COLUMN_NAMES)
        groups = ", ".join(quote_string(g) for g in sorted({f.log_group for f in files}))
        low, high = min(f.min_ms for f in files), max(f.max_ms for f in files)
        # Inside its own definition, `events` is still the table (the expression is not recursive).
        return (f"SELECT {columns} FROM {EVENTS_TABLE} UNION ALL "
                f"SELECT {columns} FROM {self.source(files)} WHERE (log_group, event_id) NOT IN ("
                f"SELECT log_group, event_id FROM {EVENTS_TABLE} WHERE log_group IN ({groups}) "
                f"AND ts BETWEEN {ch_timestamp(low)} AND {ch_timestamp(high)})")

    def source(self, files: list[ArchivedFile], columns: tuple[str, ...] = EVENT_COLUMN_NAMES) -> str:
        """The files as a relation of ``columns`` (the store's types): ``file()`` calls for chDB,
        ``s3()`` calls for a server, one per directory or prefix."""
        structure = quote_string(", ".join(f"{quote_ident(name)} {column_type(name, _KINDS[name], codec=False)}"
                                           for name in columns))
        calls = self._s3_calls(files, structure) if self.server_side else self._file_calls(files, structure)
        if len(calls) == 1:
            return calls[0]
        listed = ", ".join(quote_ident(name) for name in columns)
        return "(" + " UNION ALL ".join(f"SELECT {listed} FROM {call}" for call in calls) + ")"

    def _file_calls(self, files: list[ArchivedFile], structure: str) -> list[str]:
        by_root: dict[str, list[str]] = {}
        for entry, path in zip(files, self.archive.readable_paths(files)):
            root = path[:len(path) - len(entry.key)]
            if not path.endswith(entry.key) or _GLOB_CHARACTERS & set(root):
                raise ConfigError(f"ClickHouse's file() would read the archive path {path} as a pattern "
                                  f"(it holds one of {''.join(sorted(_GLOB_CHARACTERS))}); move the data "
                                  "directory or the archive to a path without them")
            by_root.setdefault(root, []).append(entry.key)
        return [f"file({quote_string(root + _alternatives(keys))}, 'Parquet', {structure})"
                for root, keys in by_root.items()]

    def _s3_calls(self, files: list[ArchivedFile], structure: str) -> list[str]:
        by_location: dict[str, list[str]] = {}
        for entry in files:
            check_server_archive(entry.location, entry.encrypted, self.store.target.describe())  # type: ignore[attr-defined]
            by_location.setdefault(entry.location, []).append(quote(entry.key, safe="/="))
        calls = []
        for location, keys in by_location.items():
            destination: Any = self.archive.destination(location)
            if not isinstance(destination, S3Destination):  # pragma: no cover - check_server_archive refused it
                raise ConfigError(f"a ClickHouse server cannot read the archive at {location}")
            credentials = destination.credentials()
            secret = "" if credentials is None else "".join(
                f"{quote_string(part or '')}, " for part in credentials)
            url = quote_string(destination.http_base() + _alternatives(keys))
            calls.append(f"s3({url}, {secret}'Parquet', {structure})")
        return calls


def _alternatives(keys: list[str]) -> str:
    """One key, or a ClickHouse glob matching exactly the keys listed."""
    return keys[0] if len(keys) == 1 else "{" + ",".join(keys) + "}"
