"""The archive: events older than a hot window move from the store to Parquet files (a local
directory or S3, partitioned by log group and UTC day, optionally encrypted) and keep answering
queries (see docs/data-protection.md, "Archive").

- :mod:`~dashcam.store.archive.config`: ``archive.json`` and file encryption
- :mod:`~dashcam.store.archive.destination`: local directory and S3
- :mod:`~dashcam.store.archive.manifest`: which files hold what
- :mod:`~dashcam.store.archive.archiver`: moving events out, retention, the scheduled run
- :mod:`~dashcam.store.archive.engines`: the SQL each store engine runs (DuckDB's here)
- :mod:`~dashcam.store.archive.clickhouse`: ClickHouse's (chDB reads ``file()``, a server ``s3()``)
- :mod:`~dashcam.store.archive.store`: the store wrapper that reads archived events back
"""

from dashcam.store.archive.archiver import Archive, Archiver, ArchiveRun, archive_once
from dashcam.store.archive.config import ArchiveConfig, configure, load_config
from dashcam.store.archive.store import ArchivedStore

__all__ = ["Archive", "ArchiveConfig", "ArchiveRun", "ArchivedStore", "Archiver", "archive_once", "configure",
           "load_config"]
