"""The archive's manifest: which Parquet files hold which log group's days, and what is in them.

One JSON file in the data directory (``archive-manifest.json``, 0600, replaced atomically). An
entry is added only after its file is written and confirmed at the destination, and before the
archived rows are deleted from the store; ``liveDeleted`` turns true once they are. Queries read
every entry: a row that is in a file *and* still in the store (a crash between the two steps, or
a re-delivered event) is counted once, from the store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import quote

import orjson

from dashcam.errors import ConfigError
from dashcam.store.archive.config import write_private

MANIFEST_FILE = "archive-manifest.json"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class ArchivedFile:
    """One Parquet file of one log group's UTC day."""

    log_group: str
    day: str                    # YYYY-MM-DD (UTC)
    key: str                    # path under the destination
    location: str               # the destination it was written to
    rows: int
    stored_bytes: int           # as stored (encrypted or not)
    sha256: str                 # of the plain Parquet bytes
    min_ms: int                 # first and last @timestamp in the file
    max_ms: int
    columns: tuple[str, ...]
    encrypted: bool
    live_deleted: bool = False  # its rows are gone from the store

    def to_json(self) -> dict:
        """The entry as the manifest file holds it."""
        return asdict(self) | {"columns": list(self.columns)}


def partition_key(log_group: str, day: str, part: int) -> str:
    """``log_group=<escaped>/date=YYYY-MM-DD/part-<n>.parquet`` (the name percent-escaped whole)."""
    return f"log_group={quote(log_group, safe='')}/date={day}/part-{part}.parquet"


def day_of(ms: int) -> str:
    """The UTC date of an epoch-ms instant, as YYYY-MM-DD."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date().isoformat()


def day_start_ms(day: str | date) -> int:
    """Epoch ms of a UTC date's midnight."""
    moment = datetime.fromisoformat(str(day)).replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


class Manifest:
    """The manifest file's entries; callers serialise changes (the archive holds a lock)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / MANIFEST_FILE
        self._files: tuple[ArchivedFile, ...] = self._load()

    def _load(self) -> tuple[ArchivedFile, ...]:
        try:
            raw = orjson.loads(self.path.read_bytes())
            return tuple(ArchivedFile(**(item | {"columns": tuple(item["columns"])})) for item in raw["files"])
        except FileNotFoundError:
            return ()
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"the archive manifest {self.path} is unreadable ({exc}); "
                              "restore it from a backup before archiving again") from None

    @property
    def files(self) -> tuple[ArchivedFile, ...]:
        """Every archived file (an immutable snapshot)."""
        return self._files

    def partition(self, log_group: str, day: str) -> list[ArchivedFile]:
        """The files of one log group's day."""
        return [f for f in self._files if f.log_group == log_group and f.day == day]

    def next_part(self, log_group: str, day: str) -> int:
        """The part number a new file of the day gets."""
        taken = [int(f.key.rsplit("part-", 1)[1].split(".")[0]) for f in self.partition(log_group, day)]
        return max(taken, default=-1) + 1

    def overlapping(self, log_groups: set[str] | None, start_ms: int | None, end_ms: int | None) -> list[ArchivedFile]:
        """Files that may hold events of ``log_groups`` (None: any) within [start, end] (None: open)."""
        return [f for f in self._files
                if (log_groups is None or f.log_group in log_groups)
                and (start_ms is None or f.max_ms >= start_ms) and (end_ms is None or f.min_ms <= end_ms)]

    def add(self, entry: ArchivedFile) -> None:
        """Record a new file and save."""
        self._save(self._files + (entry,))

    def mark_deleted(self, log_group: str, day: str) -> None:
        """Record that a day's archived rows are gone from the store, and save."""
        self._save(tuple(replace(f, live_deleted=True) if (f.log_group, f.day) == (log_group, day) else f
                         for f in self._files))

    def remove(self, gone: list[ArchivedFile]) -> None:
        """Forget files (deleted from the destination) and save."""
        keys = {(f.location, f.key) for f in gone}
        self._save(tuple(f for f in self._files if (f.location, f.key) not in keys))

    def _save(self, files: tuple[ArchivedFile, ...]) -> None:
        write_private(self.path, orjson.dumps({"version": 1, "files": [f.to_json() for f in files]},
                                              option=orjson.OPT_INDENT_2))
        self._files = files
