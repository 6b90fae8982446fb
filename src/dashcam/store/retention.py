"""Retention, enforced continuously: a background sweep that deletes expired events.

Each log group may have a retention (CloudWatch's day values, ``PutRetentionPolicy``). The
server runs a :class:`RetentionEnforcer`: at start and then every ``interval_s`` seconds it asks
the store to delete what expired (:meth:`dashcam.store.base.Store.delete_expired`). The clock
is injectable, so tests decide what "now" is. A failed sweep is logged and retried at the next
interval; it never stops the server. As in CloudWatch, an expired event may stay visible until
the next sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from dashcam.errors import DashcamError
from dashcam.store.base import Store

DEFAULT_INTERVAL_S = 300.0

log = logging.getLogger("dashcam.retention")


def wall_clock_ms() -> int:
    """Now, in epoch milliseconds."""
    return int(time.time() * 1000)


class RetentionEnforcer:
    """Deletes expired events of ``store`` every ``interval_s`` seconds, as of ``clock()``."""

    def __init__(self, store: Store, *, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        if interval_s <= 0:
            raise ValueError("the retention interval must be positive")
        self.store = store
        self.interval_s = interval_s
        self.clock = clock
        self.deleted = 0      # events deleted by this enforcer so far
        self.sweeps = 0       # sweeps completed (failed ones not counted)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """One sweep now; returns the events deleted."""
        deleted = self.store.delete_expired(self.clock())
        self.deleted += deleted
        self.sweeps += 1
        if deleted:
            log.info("retention: deleted %d expired events", deleted)
        return deleted

    def start(self) -> "RetentionEnforcer":
        """Sweep in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="dashcam-retention", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop sweeping (waits for a sweep in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except DashcamError as exc:
                log.warning("retention sweep failed, retrying in %.0fs: %s", self.interval_s, exc)
            except Exception:  # noqa: BLE001 - a sweep must never take the server down
                log.exception("retention sweep failed")
            self._stop.wait(self.interval_s)
