"""A store chore the server runs in the background every so often (retention, archiving).

:class:`PeriodicChore` owns the thread: it calls :meth:`~PeriodicChore.run_once` at start and then
every ``interval_s`` seconds until stopped. A failed run is logged and retried at the next
interval; it never stops the server. Subclasses say what one run does and keep their own counts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from dashcam.errors import DashcamError


class PeriodicChore:
    """Runs :meth:`run_once` in a daemon thread every ``interval_s`` seconds."""

    name = "chore"  # for the thread and the log: "retention sweep", "archive run"

    def __init__(self, interval_s: float, log: logging.Logger) -> None:
        if interval_s <= 0:
            raise ValueError(f"the {self.name} interval must be positive")
        self.interval_s = interval_s
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> Any:
        """One run now."""
        raise NotImplementedError

    def start(self):
        """Run in a daemon thread until :meth:`stop`; returns self."""
        self._thread = threading.Thread(target=self._run, name=f"dashcam-{self.name.split()[0]}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop (waits for a run in progress, at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except DashcamError as exc:
                self._log.warning("%s failed, retrying in %.0fs: %s", self.name, self.interval_s, exc)
            except Exception:  # noqa: BLE001 - a background chore must never take the server down
                self._log.exception("%s failed", self.name)
            self._stop.wait(self.interval_s)
