"""The capture session the hooks report to, and per-context labels.

Hooks read :data:`ACTIVE` once per call: ``None`` means capture is off and the hook does nothing.
:func:`dashcam.capture.instrument` swaps in a new :class:`Runtime`; a call already in flight
finishes against the runtime it started with.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashcam.capture.attempt import Attempt
    from dashcam.capture.settings import CaptureSettings
    from dashcam.capture.shipper import Shipper

log = logging.getLogger("dashcam.capture")

_CONTEXT_LABELS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "dashcam_capture_labels", default=None
)


class Runtime:
    """An active capture session: its settings and the shipper its records go to."""

    def __init__(self, settings: "CaptureSettings", shipper: "Shipper") -> None:
        self.settings = settings
        self.shipper = shipper
        self.body = settings.body
        self._static_labels = dict(settings.labels)
        self._errors_lock = threading.Lock()
        self._logged_error = False

    def labels(self) -> Mapping[str, str]:
        """The labels a call made now carries: the settings' own, then the context's."""
        extra = _CONTEXT_LABELS.get()
        return self._static_labels if not extra else {**self._static_labels, **extra}

    def submit(self, attempt: "Attempt") -> None:
        """Hand a finished attempt to the shipper (never blocks; a full queue counts a drop)."""
        self.shipper.submit(attempt)

    def internal_error(self, where: str, error: BaseException) -> None:
        """Count a failure inside capture itself; the application never sees it. Logged once at
        WARNING (later ones at DEBUG) so a bug shows without flooding the application's log."""
        self.shipper.count_error()
        with self._errors_lock:
            first, self._logged_error = not self._logged_error, True
        log.log(logging.WARNING if first else logging.DEBUG, "dashcam capture failed in %s: %r", where, error,
                exc_info=first)


ACTIVE: Runtime | None = None


@contextlib.contextmanager
def labels(**values: object) -> Iterator[None]:
    """Label every call made inside the block (in this thread or task): ``user`` and ``session``
    fill ``userId`` and ``sessionId``; other names are kept as given. Nested blocks add up."""
    from dashcam.capture.settings import LABEL_KEYS

    current = dict(_CONTEXT_LABELS.get() or {})
    current.update({LABEL_KEYS.get(k, k): str(v) for k, v in values.items() if v is not None})
    token = _CONTEXT_LABELS.set(current)
    try:
        yield
    finally:
        _CONTEXT_LABELS.reset(token)
