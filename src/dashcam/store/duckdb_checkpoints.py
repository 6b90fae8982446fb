"""Checkpoints of the embedded store's write-ahead log that happen even while batches are staged.

DuckDB moves its write-ahead log into the database file (a checkpoint) at the commit that takes
the log past ``checkpoint_threshold``, unless another write transaction is under way at that
moment: then it skips the checkpoint without a word. Until it is checkpointed, everything in the
log is also held in memory, uncompressed. Staging a raw batch (temp tables: a write transaction)
runs beside the commit of the one before, so under steady ingest most checkpoints were skipped:
the log grew to 150-290 MB and the memory it held spilled past the store's memory limit.

:class:`CheckpointGate` makes the checkpoint happen: after a commit that leaves the log past the
threshold, new staging waits, the staging under way finishes, and the log is checkpointed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

# How long a due checkpoint waits for staging under way (a 245,760-line import batch stages in
# about a second) before it gives up until the next commit.
STAGING_WAIT_S = 30.0

_log = logging.getLogger("dashcam.store")


class CheckpointGate:
    """Counts the batches being staged, and checkpoints between them when the log is too long."""

    def __init__(self, wal_path: Path, threshold_bytes: int) -> None:
        self.wal_path = wal_path
        self.threshold_bytes = threshold_bytes
        self.checkpoints = 0  # made here, after DuckDB skipped its own
        self._changed = threading.Condition()
        self._staging = 0
        self._due = False

    @contextmanager
    def staging(self) -> Iterator[None]:
        """Stage a batch: wait while a checkpoint is due, and hold the next one back until done."""
        with self._changed:
            self._changed.wait_for(lambda: not self._due)
            self._staging += 1
        try:
            yield
        finally:
            with self._changed:
                self._staging -= 1
                self._changed.notify_all()

    def after_commit(self, con: duckdb.DuckDBPyConnection) -> None:
        """Checkpoint on ``con`` if the log is past the threshold (DuckDB skipped it at the commit).
        Called by the one writer, holding the store's write lock; a failure waits for the next commit."""
        if self._log_bytes() > self.threshold_bytes:
            self.checkpoint(con)

    def checkpoint(self, con: duckdb.DuckDBPyConnection) -> None:
        """Checkpoint on ``con`` between staged batches, unless staging outlasts STAGING_WAIT_S or
        another write is under way (then the next due checkpoint does it). The caller holds the
        write lock."""
        try:
            with self._changed:
                self._due = True
                self._changed.notify_all()
                if not self._changed.wait_for(lambda: self._staging == 0, timeout=STAGING_WAIT_S):
                    return
            con.execute("CHECKPOINT")
            self.checkpoints += 1
        except duckdb.Error as exc:  # another write under way; the log stays until the next commit
            _log.debug("checkpoint postponed: %s", exc)
        finally:
            with self._changed:
                self._due = False
                self._changed.notify_all()

    def _log_bytes(self) -> int:
        try:
            return self.wal_path.stat().st_size
        except OSError:  # no log (just checkpointed), or unreadable: nothing to do after a commit
            return 0
