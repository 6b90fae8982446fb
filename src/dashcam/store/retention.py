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
import time
from collections.abc import Callable

from dashcam.store.base import Store
from dashcam.store.periodic import PeriodicChore

DEFAULT_INTERVAL_S = 300.0

log = logging.getLogger("dashcam.retention")


def wall_clock_ms() -> int:
    """Now, in epoch milliseconds."""
    return int(time.time() * 1000)


class RetentionEnforcer(PeriodicChore):
    """Deletes expired events of ``store`` every ``interval_s`` seconds, as of ``clock()``."""

    name = "retention sweep"

    def __init__(self, store: Store, *, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        super().__init__(interval_s, log)
        self.store = store
        self.clock = clock
        self.deleted = 0      # events deleted by this enforcer so far
        self.sweeps = 0       # sweeps completed (failed ones not counted)

    def run_once(self) -> int:
        """One sweep now; returns the events deleted."""
        deleted = self.store.delete_expired(self.clock())
        self.deleted += deleted
        self.sweeps += 1
        if deleted:
            log.info("retention: deleted %d expired events", deleted)
        return deleted
