"""Swap originals into the rows of a query that used ``unmask()``.

The store only ever holds masked text and the engine never holds the unmask key, so ``unmask(x)``
cannot be computed in SQL. The compiler marks the column instead (:attr:`OutputColumn.unmask`:
the path of ``x`` in the event's message) and makes every raw row end with the event's log group
and event id (:attr:`CompiledQuery.hidden`); the SQL returns the masked value. After the query,
whoever may unmask looks the kept originals up by those keys (:func:`events_of`) and
:func:`swap_originals` replaces each marked value by the value at the same path in the original
message. Rows whose event has no kept original keep their masked value.

What a path means in the original, so the swapped value reads like the masked one would:

* ``()`` — the message itself: its text (a JSON column, ``unmask(jsonParse(@message))``,
  decodes it as JSON).
* a field cached as a typed column (``identity.arn``, ``userId``, ...) — the value the store
  would have derived from the original record (:func:`dashcam.records.normalize`).
* any other path — the JSON value at that path (array elements by index).

Nothing here decides who may unmask or reads the key: that is the service's job.
"""

from __future__ import annotations

from typing import Any

import orjson

from dashcam.query.compiler import CompiledQuery
from dashcam.query.results import decode_json, decode_value
from dashcam.records import RECORD_FIELDS, hot_values, normalize

_RECORD_FIELD_INDEX = {f.path: i for i, f in enumerate(RECORD_FIELDS)}
_MISSING = object()


def events_of(compiled: CompiledQuery, raw_rows: list[tuple]) -> dict[str, list[int]]:
    """The events whose originals the marked columns need, as ``{log group: [event ids]}``
    (each id once, in row order); empty when the query unmasks nothing."""
    if not compiled.unmasks:
        return {}
    at = len(compiled.columns)
    wanted: dict[str, dict[int, None]] = {}
    for row in raw_rows:
        group, event_id = row[at], row[at + 1]
        if group is not None and event_id is not None:
            wanted.setdefault(str(group), {})[int(event_id)] = None
    return {group: list(ids) for group, ids in wanted.items()}


def swap_originals(compiled: CompiledQuery, raw_rows: list[tuple], rows: list[dict[str, Any]],
                   originals: dict[tuple[str, int], str]) -> int:
    """Replace, in ``rows`` (decoded from ``raw_rows``, in the same order), every marked value
    whose event has an original in ``originals`` (keyed by log group and event id); returns the
    number of rows changed."""
    marked = [(c.name, c.kind, c.unmask) for c in compiled.columns if c.unmask is not None]
    if not marked or not originals:
        return 0
    at = len(compiled.columns)
    changed = 0
    for raw, row in zip(raw_rows, rows):
        group, event_id = raw[at], raw[at + 1]
        if group is None or event_id is None:
            continue
        text = originals.get((str(group), int(event_id)))
        if text is None:
            continue
        for name, kind, path in marked:
            row[name] = original_value(text, path, kind)
        changed += 1
    return changed


def original_value(text: str, path: tuple[str, ...], kind: str) -> Any:
    """The value at ``path`` in the original message ``text``, decoded as a column of ``kind``
    (see the module docstring); None when the original has no such value."""
    if not path:
        return decode_json(text) if kind == "json" else text
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    index = _RECORD_FIELD_INDEX.get(".".join(path))
    if index is not None and isinstance(record, dict):
        return decode_value(hot_values(normalize(record, source=""))[index])
    value = _at(record, path)
    if value is _MISSING or value is None:
        return None
    return decode_json(orjson.dumps(value))


def _at(value: Any, path: tuple[str, ...]) -> Any:
    """The JSON value at a dotted path: object keys, or array indexes for numeric segments."""
    for segment in path:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return _MISSING
    return value
