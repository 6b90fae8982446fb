"""Evaluates every alarm once a minute, on a background thread the server starts and stops.

:meth:`AlarmScheduler.run_once` is one round at a given moment: read each alarm's datapoints
(:class:`~dashcam.alarms.fetch.AlarmData`), judge them (:func:`~dashcam.alarms.evaluate.evaluate`),
and record what changed through the :class:`~dashcam.alarms.manager.AlarmManager` (which runs the
actions). Tests call it with an injected clock; :meth:`start` runs it on a thread at once and then
a few seconds after each full minute, when the minute that just ended has had time to arrive.

An alarm whose data cannot be read goes to INSUFFICIENT_DATA with the error as its reason; one
failing alarm never stops the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dashcam.alarms.evaluate import Evaluation, evaluate, failed_evaluation
from dashcam.alarms.fetch import AlarmData
from dashcam.alarms.manager import AlarmManager
from dashcam.alarms.repository import StoredAlarm
from dashcam.errors import DashcamError

log = logging.getLogger("dashcam.alarms")

INTERVAL_S = 60.0
SETTLE_S = 10.0  # run this long after the minute, so the minute that ended is in the store
PRUNE_EVERY_MS = 3_600_000


@dataclass(frozen=True)
class RoundReport:
    """What one round did."""

    at_ms: int
    evaluations: dict[str, Evaluation]
    changed: list[str]
    seconds: float


class AlarmScheduler:
    """Runs evaluation rounds; ``start``/``stop`` the background thread, or call ``run_once``."""

    def __init__(self, manager: AlarmManager, data: AlarmData, *, interval_s: float = INTERVAL_S,
                 settle_s: float = SETTLE_S, clock: Callable[[], float] = time.time) -> None:
        self.manager = manager
        self.data = data
        self.interval_s = interval_s
        self.settle_s = settle_s
        self.clock = clock
        self.last_round: RoundReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._round_lock = threading.Lock()
        self._pruned_ms = 0

    def run_once(self, now_ms: int | None = None) -> RoundReport:
        """Evaluate every alarm at ``now_ms`` (default: the clock) and record the outcome."""
        now_ms = int(self.clock() * 1000) if now_ms is None else now_ms
        started = time.perf_counter()
        with self._round_lock:
            alarms = self.manager.repository.list()
            self.data.forget_others(a.definition for a in alarms)
            evaluations: dict[str, Evaluation] = {}
            unchanged: list[tuple[StoredAlarm, Evaluation]] = []
            changed: list[str] = []
            for alarm in alarms:
                evaluation = self._evaluate(alarm, now_ms)
                evaluations[alarm.name] = evaluation
                if evaluation.changed:
                    if self.manager.apply(alarm, evaluation):
                        changed.append(alarm.name)
                else:
                    unchanged.append((alarm, evaluation))
            self.manager.note_unchanged(unchanged)
            if now_ms - self._pruned_ms >= PRUNE_EVERY_MS:
                self.manager.repository.prune_history(now_ms)
                self._pruned_ms = now_ms
        report = RoundReport(now_ms, evaluations, changed, time.perf_counter() - started)
        self.last_round = report
        return report

    def _evaluate(self, alarm: StoredAlarm, now_ms: int) -> Evaluation:
        definition, previous = alarm.definition, alarm.state.value
        try:
            points = self.data.datapoints(definition, now_ms)
        except DashcamError as exc:
            return failed_evaluation(definition, previous, str(exc), now_ms)
        except Exception as exc:  # noqa: BLE001 - one broken alarm must not stop the round
            log.exception("alarm %s: reading its data failed", alarm.name)
            return failed_evaluation(definition, previous, f"{type(exc).__name__}: {exc}", now_ms)
        return evaluate(definition, points, previous, now_ms)

    # ------------------------------------------------------------------ the thread

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start evaluating on a daemon thread: a round now, then one per interval, ``settle_s``
        past the interval's start."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dashcam-alarm-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after the round under way, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        # A round at once (states are fresh right after a restart), then one per interval.
        while True:
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the scheduler outlives a failed round (the database was busy, ...)
                log.exception("alarm evaluation round failed")
            now = self.clock()
            next_run = (now - self.settle_s) // self.interval_s * self.interval_s + self.interval_s + self.settle_s
            if self._stop.wait(max(0.0, next_run - now)):
                return
