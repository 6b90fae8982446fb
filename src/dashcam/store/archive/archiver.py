"""Moving events older than the hot window out of the store into Parquet files, and back in
for queries.

:func:`archive_once` (run by the server's :class:`Archiver` on a schedule, or ``dashcam archive
run``) goes one log group's UTC day at a time, oldest first, over days wholly older than the hot
window. For each day it

1. writes the day's events (less those an earlier file of the day already holds) to a Parquet
   file — DuckDB with ``COPY``, ClickHouse through Arrow and pyarrow (the store's
   :class:`~dashcam.store.archive.engines.ArchiveEngine`) — and reads the file back to check its rows,
2. stores it at the destination (encrypted if configured), confirms it is there intact and that
   the store's engine reads it,
3. adds it to the manifest — from here queries read it,
4. deletes from the store exactly the events the day's files hold, and marks the day done.

A crash after 3 leaves rows both in a file and in the store: queries count them once (the file's
copy is skipped while the store has the event), and the next run finishes step 4 first. A crash
before 3 leaves an unlisted file that the next run overwrites. Re-running never duplicates.

Archived days are deleted with the log group's retention (:meth:`Archive.expire`, called from the
store's retention sweep), by whole files: a file goes when its newest event has expired.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashcam.errors import ConfigError, StoreError
from dashcam.store.archive.config import (
    ArchiveConfig, archive_key, decrypt, encrypt, env_key, load_config, write_private,
)
from dashcam.store.archive.destination import Destination, open_destination
from dashcam.store.archive.engines import ArchiveEngine, engine_for
from dashcam.store.archive.manifest import DAY_MS, ArchivedFile, Manifest, partition_key
from dashcam.store.base import Store
from dashcam.store.periodic import PeriodicChore
from dashcam.store.retention import wall_clock_ms
from dashcam.store.schema import LOG_GROUPS_TABLE

CACHE_DIR = "archive-cache"
DEFAULT_ARCHIVE_INTERVAL_S = 600.0

log = logging.getLogger("dashcam.archive")


@dataclass
class ArchiveRun:
    """What one :func:`archive_once` did."""

    files: list[str] = field(default_factory=list)   # keys written
    rows_archived: int = 0                           # events written to new files
    rows_deleted: int = 0                            # events deleted from the store
    cutoff_ms: int | None = None                     # events before this were due (None: not configured)


class Archive:
    """A data directory's archive: settings, manifest, destinations and the local cache."""

    def __init__(self, data_dir: str | Path, *, s3_client: Any = None) -> None:
        self.data_dir = Path(data_dir)
        self.cache_dir = self.data_dir / CACHE_DIR
        self.manifest = Manifest(self.data_dir)
        self.generation = 0          # bumped whenever what a query must read changes
        self.lock = threading.RLock()  # one change at a time; queries take it to read a stable state
        self._s3_client = s3_client
        self._destinations: dict[str, Destination] = {}
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------ settings and places

    def config(self) -> ArchiveConfig | None:
        """The current settings (``archive.json``), or None when archiving is off."""
        return load_config(self.data_dir)

    def engine(self, store: Store) -> ArchiveEngine:
        """The SQL this archive runs on ``store``'s engine (DuckDB or ClickHouse)."""
        return engine_for(store, self)

    def destination(self, location: str) -> Destination:
        """The destination at ``location`` (opened once)."""
        if location not in self._destinations:
            self._destinations[location] = open_destination(location, s3_client=self._s3_client)
        return self._destinations[location]

    def _key(self) -> bytes | None:
        config = self.config()
        if config is not None:
            return archive_key(config)
        return env_key()

    def _cache_path(self, entry: ArchivedFile) -> Path:
        place = hashlib.sha256(entry.location.encode()).hexdigest()[:16]
        return self.cache_dir / place / entry.key

    def readable_paths(self, files: Iterable[ArchivedFile]) -> list[str]:
        """Local paths the store's engine (DuckDB, chDB) can read the files at: the destination
        itself for a plain local archive, else the cache, filled (downloaded, decrypted, checked)
        on first use."""
        paths = []
        for entry in files:
            direct = self.destination(entry.location).local_path(entry.key)
            if direct is not None and not entry.encrypted:
                paths.append(str(direct))
                continue
            cached = self._cache_path(entry)
            with self._cache_lock:
                if not cached.exists():
                    data = decrypt(self.destination(entry.location).get(entry.key), self._key(), entry.key)
                    if hashlib.sha256(data).hexdigest() != entry.sha256:
                        raise StoreError(f"archive file {entry.key} at {entry.location} does not match its manifest")
                    write_private(cached, data)
            paths.append(str(cached))
        return paths

    # ------------------------------------------------------------------ archiving

    def archive_once(self, store: Store, now_ms: int) -> ArchiveRun:
        """Archive every log group's days older than the hot window as of ``now_ms`` (see the
        module docstring). ``store`` is the store the events live in (not a query wrapper)."""
        config = self.config()
        if config is None:
            return ArchiveRun()
        engine = self.engine(store)
        engine.check_config(config)
        key = archive_key(config)
        cutoff = (now_ms // DAY_MS - config.hot_days) * DAY_MS
        run = ArchiveRun(cutoff_ms=cutoff)
        with self.lock:
            for group, day in sorted({(f.log_group, f.day) for f in self.manifest.files if not f.live_deleted}):
                run.rows_deleted += self._delete_archived_rows(engine, group, day)
            for group, day in engine.due_days(cutoff):
                self._archive_day(engine, config, key, group, day, run)
        if run.files:
            log.info("archive: %d events to %d files, %d deleted from the store",
                     run.rows_archived, len(run.files), run.rows_deleted)
        return run

    def _archive_day(self, engine: ArchiveEngine, config: ArchiveConfig, key: bytes | None, group: str, day: str,
                     run: ArchiveRun) -> None:
        earlier = self.manifest.partition(group, day)
        staging = self.cache_dir / ".staging" / f"{uuid.uuid4().hex}.parquet"
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            written = engine.export_day(group, day, earlier, staging)
            if written:
                entry = self._store_file(engine, config, key, group, day, staging, written)
                engine.confirm_readable(entry)
                with self.lock:
                    self.manifest.add(entry)
                    self.generation += 1
                run.files.append(entry.key)
                run.rows_archived += written
        finally:
            staging.unlink(missing_ok=True)
        if earlier or written:
            run.rows_deleted += self._delete_archived_rows(engine, group, day)

    def _store_file(self, engine: ArchiveEngine, config: ArchiveConfig, key: bytes | None, group: str, day: str,
                    staging: Path, expected: int) -> ArchivedFile:
        """Check the staged file, put it at the destination, and describe it for the manifest."""
        facts = engine.file_facts(staging)
        if facts.rows != expected or facts.distinct_ids != expected:
            raise StoreError(f"the archive file for {group} {day} holds {facts.rows} events "
                             f"({facts.distinct_ids} distinct), not the {expected} written; nothing was deleted")
        data = staging.read_bytes()
        name = partition_key(group, day, self.manifest.next_part(group, day))
        blob = encrypt(data, key, name) if key is not None else data
        destination = self.destination(config.destination)
        destination.put(name, blob)
        entry = ArchivedFile(group, day, name, config.destination, facts.rows, len(blob), hashlib.sha256(data).hexdigest(),
                             facts.first_ms, facts.last_ms, facts.columns, key is not None)
        if engine.reads_local_copies and (destination.local_path(name) is None or key is not None):
            cached = self._cache_path(entry)  # queries need not fetch back what was just written
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staging, cached)
        return entry

    def _delete_archived_rows(self, engine: ArchiveEngine, group: str, day: str) -> int:
        """Delete from the store the events of a day its files hold, then mark the day done."""
        files = self.manifest.partition(group, day)
        with self.lock:
            deleted = engine.delete_archived(group, day, files)
            self.manifest.mark_deleted(group, day)
            self.generation += 1
        return deleted

    # ------------------------------------------------------------------ retention and deletion

    def expire(self, store: Store, now_ms: int) -> int:
        """Delete archived files whose newest event is past the log group's retention as of
        ``now_ms``; returns the events they held."""
        if not self.manifest.files:
            return 0
        retention = {str(name): int(days) for name, days in store.execute(
            f"SELECT name, retention_days FROM {LOG_GROUPS_TABLE} WHERE retention_days IS NOT NULL")}
        gone = [f for f in self.manifest.files
                if f.log_group in retention and f.max_ms < now_ms - retention[f.log_group] * DAY_MS]
        return self._remove(gone)

    def delete_group(self, log_group: str) -> int:
        """Delete every archived file of a log group (it was deleted); returns the events they held."""
        return self._remove([f for f in self.manifest.files if f.log_group == log_group])

    def _remove(self, gone: list[ArchivedFile]) -> int:
        if not gone:
            return 0
        with self.lock:
            self.manifest.remove(gone)  # first: a file that cannot be deleted is no longer read
            self.generation += 1
        for entry in gone:
            self._cache_path(entry).unlink(missing_ok=True)
            try:
                self.destination(entry.location).delete(entry.key)
            except StoreError as exc:
                log.warning("archive: %s (the file is no longer listed; delete it by hand)", exc)
        return sum(f.rows for f in gone)

    # ------------------------------------------------------------------ reporting

    def status(self) -> dict[str, Any]:
        """Settings, and per log group: archived files, events, bytes and the days covered."""
        config = self.config()
        groups: dict[str, dict[str, Any]] = {}
        for f in self.manifest.files:
            g = groups.setdefault(f.log_group, {"logGroup": f.log_group, "files": 0, "events": 0, "storedBytes": 0,
                                                "firstDay": f.day, "lastDay": f.day, "pendingDeletes": 0})
            g["files"] += 1
            g["events"] += f.rows
            g["storedBytes"] += f.stored_bytes
            g["firstDay"], g["lastDay"] = min(g["firstDay"], f.day), max(g["lastDay"], f.day)
            g["pendingDeletes"] += 0 if f.live_deleted else 1
        cache_bytes = sum(p.stat().st_size for p in self.cache_dir.rglob("*.parquet")) if self.cache_dir.exists() else 0
        return {"configured": config is not None, "config": config.to_json() if config else None,
                "groups": [groups[name] for name in sorted(groups)], "cacheBytes": cache_bytes}


def archive_once(store: Store, now_ms: int) -> ArchiveRun:
    """Archive what is due as of ``now_ms`` in a store opened with its archive
    (:class:`~dashcam.store.archive.store.ArchivedStore`)."""
    archive = getattr(store, "archive", None)
    if not isinstance(archive, Archive):
        raise ConfigError("this store was not opened with its archive (ArchivedStore)")
    return archive.archive_once(store.inner, now_ms)  # type: ignore[attr-defined]


class Archiver(PeriodicChore):
    """Runs :func:`archive_once` on ``store`` every ``interval_s`` seconds, as of ``clock()``,
    in a daemon thread; a failed run is logged and retried at the next interval."""

    name = "archive run"

    def __init__(self, store: Store, *, interval_s: float = DEFAULT_ARCHIVE_INTERVAL_S,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        super().__init__(interval_s, log)
        self.store = store
        self.clock = clock
        self.runs = 0

    def run_once(self) -> ArchiveRun:
        """One run now (nothing when the store has no archive or archiving is not configured)."""
        if getattr(self.store, "archive", None) is None:
            return ArchiveRun()
        run = archive_once(self.store, self.clock())
        self.runs += 1
        return run
