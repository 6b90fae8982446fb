"""Encrypted originals: what lets an admin unmask an event, for log groups whose policy keeps them.

The store only ever receives masked text. When a policy says ``keepOriginal``, the unmasked
message (after body switches, so a dropped body stays dropped) is encrypted with Fernet
(AES-128-CBC + HMAC-SHA256, from ``cryptography``) and kept in ``originals.sqlite`` in the data
directory, keyed by (log group, event id) — the event's ``@ptr``. Rows are committed (SQLite WAL,
``synchronous=FULL``) before the masked event is handed to the store, so an acknowledged event
that can be unmasked always can be.

The key: ``DASHCAM_UNMASK_KEYS`` (comma-separated Fernet keys, the first encrypts, all decrypt)
if set, else ``unmask.keys`` in the data directory (mode 0600, one key a line, created on first
use). Keeping the key in the environment keeps it out of backups and copies of the data
directory. :meth:`OriginalsVault.rotate` re-encrypts every original under a new first key and
then forgets the old ones.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from dashcam.errors import ConfigError, StoreError

VAULT_FILE = "originals.sqlite"
KEY_FILE = "unmask.keys"
KEY_ENV = "DASHCAM_UNMASK_KEYS"

_SCHEMA = """CREATE TABLE IF NOT EXISTS originals (
    log_group TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    ts_ms INTEGER,
    stored_ms INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (log_group, event_id)
) WITHOUT ROWID"""


class OriginalsVault:
    """Encrypted unmasked messages of one data directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / VAULT_FILE
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._keys: tuple[tuple[int, int] | None, MultiFernet] | None = None

    # ------------------------------------------------------------------ originals

    def put(self, rows: Iterable[tuple[str, int, int | None, str]]) -> int:
        """Encrypt and commit (log group, event id, timestamp ms or None, original); an event
        already kept keeps its first original (a re-delivery is the same event). Returns rows given."""
        fernet = self._fernet(create=True)
        now = int(time.time() * 1000)
        encrypted = [(g, i, ts, now, fernet.encrypt(text.encode())) for g, i, ts, text in rows]
        if not encrypted:
            return 0
        with self._lock:
            db = self._connect(create=True)
            try:
                with db:
                    db.executemany("INSERT OR IGNORE INTO originals VALUES (?, ?, ?, ?, ?)", encrypted)
            except sqlite3.Error as exc:
                raise StoreError(f"keeping encrypted originals in {self.path} failed: {exc}") from None
        return len(encrypted)

    def get(self, log_group: str, event_ids: Iterable[int]) -> dict[int, str]:
        """The originals kept for these events of ``log_group`` (events without one are absent)."""
        ids = list(event_ids)
        with self._lock:
            db = self._connect(create=False)
            if db is None or not ids:
                return {}
            marks = ", ".join("?" * len(ids))
            rows = db.execute("SELECT event_id, ciphertext FROM originals WHERE log_group = ?"
                              f" AND event_id IN ({marks})",
                              [log_group, *ids]).fetchall()
        fernet = self._fernet(create=False)
        found = {}
        for event_id, token in rows:
            try:
                found[event_id] = fernet.decrypt(token).decode()
            except InvalidToken:
                raise ConfigError(f"the original of event {event_id} cannot be decrypted with the unmask keys in use "
                                  f"({KEY_ENV} or {KEY_FILE}); was the key replaced without rotating?") from None
        return found

    def count(self) -> int:
        """How many originals are kept."""
        with self._lock:
            db = self._connect(create=False)
            return 0 if db is None else int(db.execute("SELECT count(*) FROM originals").fetchone()[0])

    def delete_group(self, log_group: str) -> int:
        """Forget every original of a log group (the group was deleted)."""
        return self._delete("log_group = ?", [log_group])

    def delete_expired(self, retention_days: dict[str, int], now_ms: int) -> int:
        """Forget originals of events older than their group's retention (by event time, else by
        when the original was kept)."""
        return sum(self._delete("log_group = ? AND coalesce(ts_ms, stored_ms) < ?", [group, now_ms - days * 86_400_000])
                   for group, days in retention_days.items())

    def _delete(self, where: str, params: list) -> int:
        with self._lock:
            db = self._connect(create=False)
            if db is None:
                return 0
            with db:
                return db.execute(f"DELETE FROM originals WHERE {where}", params).rowcount

    # ------------------------------------------------------------------ keys

    def rotate(self) -> int:
        """Re-encrypt every original under a fresh key and forget the old keys (file keys), or under
        the first of ``DASHCAM_UNMASK_KEYS`` (the old ones may then be dropped from it). Returns the
        originals re-encrypted. No other process may write originals meanwhile (stop the server)."""
        if os.environ.get(KEY_ENV):
            fernet = self._fernet(create=False)
        else:
            old = self._file_keys()
            fresh = Fernet.generate_key()
            self._write_keys([fresh, *old])
            fernet = self._fernet(create=False)
        with self._lock:
            db = self._connect(create=False)
            rotated = 0
            if db is not None:
                with db:
                    rows = db.execute("SELECT log_group, event_id, ciphertext FROM originals").fetchall()
                    try:
                        db.executemany("UPDATE originals SET ciphertext = ? WHERE log_group = ? AND event_id = ?",
                                       [(fernet.rotate(token), g, i) for g, i, token in rows])
                    except InvalidToken:
                        raise ConfigError("an original cannot be decrypted with the keys in use; "
                                          "nothing was rotated") from None
                    rotated = len(rows)
        if not os.environ.get(KEY_ENV):
            self._write_keys([fresh])
        return rotated

    def _fernet(self, *, create: bool) -> MultiFernet:
        from_env = os.environ.get(KEY_ENV)
        if from_env:
            try:
                return MultiFernet([Fernet(k.strip().encode()) for k in from_env.split(",") if k.strip()])
            except ValueError:
                raise ConfigError(f"{KEY_ENV} must be comma-separated Fernet keys (Fernet.generate_key())") from None
        path = self.directory / KEY_FILE
        try:
            stat = path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if self._keys is not None and self._keys[0] == stamp and stamp is not None:
            return self._keys[1]
        keys = self._file_keys()
        if not keys:
            if not create:
                raise ConfigError(f"there is no unmask key ({KEY_FILE} or {KEY_ENV}); nothing was ever kept to unmask")
            self._write_keys([Fernet.generate_key()])
            return self._fernet(create=False)
        fernet = MultiFernet([Fernet(k) for k in keys])
        self._keys = (stamp, fernet)
        return fernet

    def _file_keys(self) -> list[bytes]:
        try:
            return [line.strip() for line in (self.directory / KEY_FILE).read_bytes().splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def _write_keys(self, keys: list[bytes]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / KEY_FILE
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(b"\n".join(keys) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        self._keys = None

    # ------------------------------------------------------------------ the database

    def _connect(self, *, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            if not create and not self.path.exists():
                return None
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # created private, then opened by SQLite
            os.close(fd)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(_SCHEMA)
            db.commit()
            self._db = db
        return self._db

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
