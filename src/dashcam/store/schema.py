"""The store's one event table, derived from the hot-field table in :mod:`dashcam.records`.

Every adapter creates the same logical columns; only the SQL types differ per engine.
"""

from __future__ import annotations

import pyarrow as pa

from dashcam.records import RECORD_FIELDS

EVENTS_TABLE = "events"
LOG_GROUPS_TABLE = "log_groups"
LOG_STREAMS_TABLE = "log_streams"

# (column, kind) in table order: identity and system columns first, then the record's hot fields.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "int"),
    ("log_group", "string"),
    ("log_stream", "string"),
    ("ts", "timestamp"),
    ("ingestion_time", "timestamp"),
    ("message", "string"),
) + tuple((f.column, f.kind) for f in RECORD_FIELDS)

EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in EVENT_COLUMNS)

_ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "timestamp": pa.timestamp("ms"),
}

ARROW_SCHEMA = pa.schema([pa.field(name, _ARROW_TYPES[kind]) for name, kind in EVENT_COLUMNS])
