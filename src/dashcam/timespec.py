"""Points in time as people type them: ISO-8601, epoch numbers, or relative (``1h``, ``7d`` ago)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from dashcam.errors import ConfigError

_UNIT_MS = {
    "ms": 1, "msec": 1, "millisecond": 1,
    "s": 1000, "sec": 1000, "second": 1000,
    "m": 60_000, "min": 60_000, "minute": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hour": 3_600_000,
    "d": 86_400_000, "day": 86_400_000,
    "w": 604_800_000, "week": 604_800_000,
}
_UNITS = "|".join(sorted(_UNIT_MS, key=len, reverse=True))
_RELATIVE = re.compile(rf"^\s*(\d+(?:\.\d+)?)\s*({_UNITS})s?\s*(ago)?\s*$", re.IGNORECASE)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_time(text: str, *, now_ms: int | None = None) -> int:
    """Epoch milliseconds for ``text``.

    Accepts ``now``; a relative duration meaning that long before now (``15m``, ``1h``, ``7d``,
    ``2w``, optionally followed by ``ago``); ISO-8601 dates and date-times (UTC unless an offset is
    given, ``Z`` allowed); or epoch seconds / milliseconds as digits.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    value = text.strip()
    if value.lower() == "now":
        return now
    match = _RELATIVE.match(value)
    if match:
        return now - int(float(match.group(1)) * _UNIT_MS[match.group(2).lower()])
    if value.isdigit():
        number = int(value)
        return number * 1000 if number < 100_000_000_000 else number
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"cannot read time {text!r}: use ISO-8601 (2026-03-02T14:00:00Z), epoch seconds, "
            "'now', or a relative form such as 15m, 1h, 7d"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def format_ms(epoch_ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` in UTC, the one timestamp format of dashcam's results."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{epoch_ms % 1000:03d}"
