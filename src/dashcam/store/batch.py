"""Column-wise batches of events, built row by row and handed to a store as one Arrow table."""

from __future__ import annotations

import bisect
import time
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from dashcam.records import RECORD_FIELDS, normalize, timestamp_ms
from dashcam.store.rows import EventRows
from dashcam.store.schema import ARROW_SCHEMA


class EventBatchBuilder(EventRows):
    """Accumulates events column by column; duplicates within the batch are dropped on add.

    Building columns as Python lists and converting each once with ``pa.array`` is the cheapest
    way from Python objects to Arrow; one Arrow table then goes to the engine in one insert.
    """

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
        return rows_table(self, ingestion_ms)


def rows_table(rows: EventRows, ingestion_ms: int | None = None) -> pa.Table:
    """Gathered events as an Arrow table in the store's column order; ``ingestion_ms`` defaults to now."""
    now = int(time.time() * 1000) if ingestion_ms is None else ingestion_ms
    n = len(rows)
    ids, groups, streams, ts, messages, hot = rows.columns()
    hot_columns = list(zip(*hot)) if n else [() for _ in RECORD_FIELDS]
    arrays = [
        pa.array(ids, pa.int64()),
        pa.array(groups, pa.string()),
        pa.array(streams, pa.string()),
        pa.array(ts, pa.int64()).cast(pa.timestamp("ms")),
        pa.repeat(pa.scalar(now, pa.int64()), n).cast(pa.timestamp("ms")) if n else pa.array([], pa.timestamp("ms")),
        pa.array(messages, pa.string()),
    ]
    for field, values in zip(list(ARROW_SCHEMA)[6:], hot_columns):
        arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


_SCAN_CHUNK = 16_384


class RawBatchBuilder:
    """Accumulates raw JSON lines (one invocation record each) for a store to normalize in bulk.

    Python only frames the lines; event ids, parsing and derived fields are left to the engine
    (see :meth:`dashcam.store.base.Store.write_raw`). Lines arrive in runs from one place, so
    their origins are kept as runs too and looked up by row when a line is refused.
    """

    def __init__(self) -> None:
        self._chunks: list[tuple[str, str, pa.Array, list[int]]] = []
        self._runs: list[tuple[int, str, int]] = []  # (first row, location, its line number)
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def extend(
        self, log_group: str, log_stream: str, lines: pa.Array, event_ids: list[int], location: str, first_line: int
    ) -> None:
        """Add consecutive lines of ``location`` (a binary or string array, no line feeds), the first
        being line number ``first_line``, with their :func:`~dashcam.records.stable_event_id` each."""
        self._runs.append((self._rows, location, first_line))
        self._chunks.append((log_group, log_stream, lines, event_ids))
        self._rows += len(lines)

    def origin(self, row_idx: int) -> tuple[str, int]:
        """(location, line number) of a row."""
        run = bisect.bisect_right(self._runs, (row_idx, "\U0010ffff", 0)) - 1
        first_row, location, first_line = self._runs[run]
        return location, first_line + row_idx - first_row

    def build(self) -> tuple[pa.Table, list[tuple[int, str]]]:
        """The batch as (row_idx, event_id, log_group, log_stream, message), and the rows refused here.

        Lines that are not UTF-8 are refused before they reach the engine: (row_idx, reason).
        """
        # Binary views (see sources.lines) keep the lines where they were read: nothing is copied.
        messages = pa.chunked_array([lines.cast(pa.binary_view()) for _, _, lines, _ in self._chunks],
                                    pa.binary_view())
        refused: list[tuple[int, str]] = []
        try:
            texts = messages.cast(pa.string_view())
        except pa.ArrowInvalid:
            decoded = []
            for index, data in enumerate(messages.to_pylist()):
                try:
                    decoded.append(data.decode())
                except UnicodeDecodeError:
                    refused.append((index, "line is not UTF-8"))
                    decoded.append(None)
            texts = pa.chunked_array([pa.array(decoded, pa.large_string())])  # not views: filtered below
        table = pa.table({
            "row_idx": pa.array(range(self._rows), pa.int64()),
            "event_id": pa.array([i for *_, ids in self._chunks for i in ids], pa.int64()),
            "log_group": pa.chunked_array([pa.repeat(pa.scalar(g, pa.string()), len(c)) for g, _, c, _ in self._chunks]),
            "log_stream": pa.chunked_array([pa.repeat(pa.scalar(s, pa.string()), len(c)) for _, s, c, _ in self._chunks]),
            "message": texts,
        })
        # Engines scan an Arrow table one record batch per thread: small batches use every core.
        table = pa.Table.from_batches(table.to_batches(max_chunksize=_SCAN_CHUNK))
        if refused:
            table = table.filter(pc.is_valid(table["message"]))
        return table, refused
