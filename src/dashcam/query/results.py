"""Turn the raw rows an engine returns for a compiled query into result rows.

The conventions are DESIGN.md's, the same for the CLI, the HTTP API and the UI: one dict per
row, keys in result order; numbers as numbers; missing as ``None``; booleans as 1/0; timestamps
as ``YYYY-MM-DD HH:MM:SS.mmm`` in UTC; JSON values decoded when they are scalars and kept as
compact JSON text when they are objects or arrays.

A float with an integral value is returned as an int (``1843.0`` -> ``1843``), as CloudWatch
prints numbers; NaN and infinities (not JSON) are returned as ``None``.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import orjson

from dashcam.query.compiler import CompiledQuery

_EXACT_FLOAT = 2.0**53


def decode_rows(compiled: CompiledQuery, raw_rows: list[tuple]) -> list[dict]:
    """Rows as dicts, keys in result order; numbers as numbers; missing as None; booleans 0/1;
    datetimes as 'YYYY-MM-DD HH:MM:SS.mmm' (UTC); JSON scalars decoded; JSON objects/arrays as compact JSON text."""
    decoders = [_DECODERS.get(c.kind, decode_value) for c in compiled.columns]
    names = [c.name for c in compiled.columns]
    return [{name: dec(value) for name, dec, value in zip(names, decoders, row)} for row in raw_rows]


def format_timestamp(value: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` in UTC (naive datetimes are taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    # isoformat is C code and truncates to milliseconds: ~6x faster than strftime on big results.
    return value.isoformat(sep=" ", timespec="milliseconds")


def decode_value(value: Any) -> Any:
    """One plain engine value in result form."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Decimal):
        return _number(float(value)) if value != value.to_integral_value() else int(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat() + " 00:00:00.000"
    if isinstance(value, (dict, list, tuple)):
        return orjson.dumps(value, default=str).decode()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return str(value)


def decode_json(value: Any) -> Any:
    """A JSON column: text decoded; scalars returned as values, objects/arrays as compact text."""
    if value is None:
        return None
    if isinstance(value, (bytes, str)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return decode_value(value)


def decode_timestamp(value: Any) -> Any:
    """A timestamp column: datetimes formatted; epoch milliseconds formatted; text kept."""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return format_timestamp(datetime.fromtimestamp(value / 1000, tz=timezone.utc))
    return decode_value(value)


def _number(value: float) -> int | float | None:
    if not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < _EXACT_FLOAT:
        return int(value)
    return value


_DECODERS = {"value": decode_value, "json": decode_json, "timestamp": decode_timestamp}
