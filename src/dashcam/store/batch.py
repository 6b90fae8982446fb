"""Column-wise batches of events, built row by row and handed to a store as one Arrow table."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pyarrow as pa

from dashcam.records import RECORD_FIELDS, hot_values, normalize, stable_event_id, timestamp_ms
from dashcam.store.schema import ARROW_SCHEMA


class EventBatchBuilder:
    """Accumulates events column by column; duplicates within the batch are dropped on add.

    Building columns as Python lists and converting each once with ``pa.array`` is the cheapest
    way from Python objects to Arrow; one Arrow table then goes to the engine in one insert.
    """

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._groups: list[str] = []
        self._streams: list[str] = []
        self._ts: list[int] = []
        self._messages: list[str] = []
        self._hot: list[tuple[Any, ...]] = []
        self._seen: set[int] = set()
        self.duplicates = 0

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, log_group: str, log_stream: str, ts_ms: int, message: str, record: dict[str, Any]) -> bool:
        """Add one event whose ``record`` is already normalized; False if the batch has it already."""
        event_id = stable_event_id(log_group, message.encode())
        if event_id in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(event_id)
        self._ids.append(event_id)
        self._groups.append(log_group)
        self._streams.append(log_stream)
        self._ts.append(ts_ms)
        self._messages.append(message)
        self._hot.append(hot_values(record))
        return True

    def add_record(
        self, log_group: str, log_stream: str, record: dict[str, Any], *, source: str, provider: str = "aws.bedrock"
    ) -> bool:
        """Serialize, normalize and add an invocation record; ``@timestamp`` is its ``timestamp``."""
        message = orjson.dumps(record).decode()
        ts = record.get("timestamp")
        ts_ms = timestamp_ms(ts) if ts is not None else int(time.time() * 1000)
        return self.add(log_group, log_stream, ts_ms, message, normalize(record, source=source, provider=provider))

    def build(self, ingestion_ms: int | None = None) -> pa.Table:
        """The batch as an Arrow table in the store's column order; ``ingestion_ms`` defaults to now."""
        now = int(time.time() * 1000) if ingestion_ms is None else ingestion_ms
        n = len(self._ids)
        hot_columns = list(zip(*self._hot)) if n else [() for _ in RECORD_FIELDS]
        arrays = [
            pa.array(self._ids, pa.int64()),
            pa.array(self._groups, pa.string()),
            pa.array(self._streams, pa.string()),
            pa.array(self._ts, pa.int64()).cast(pa.timestamp("ms")),
            pa.repeat(pa.scalar(now, pa.int64()), n).cast(pa.timestamp("ms")) if n else pa.array([], pa.timestamp("ms")),
            pa.array(self._messages, pa.string()),
        ]
        for field, values in zip(list(ARROW_SCHEMA)[6:], hot_columns):
            arrays.append(pa.array(values, field.type))
        return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
