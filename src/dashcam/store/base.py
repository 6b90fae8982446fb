"""The ``Store`` port: the few things dashcam asks of a database.

Adapters (DuckDB embedded, ClickHouse) implement it and translate their engine's errors into
:mod:`dashcam.errors`. Everything above the store speaks only this interface and SQL compiled
for the adapter's ``dialect``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from dashcam.store.batch import EventBatchBuilder

# The retention values CloudWatch Logs accepts (days).
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                  2557, 2922, 3288, 3653)


@dataclass(frozen=True)
class WriteResult:
    """What a committed write did: events newly stored, and events already there (re-deliveries)."""

    written: int
    duplicates: int

    def __add__(self, other: "WriteResult") -> "WriteResult":
        return WriteResult(self.written + other.written, self.duplicates + other.duplicates)


@dataclass(frozen=True)
class LogGroupInfo:
    """A log group as ``DescribeLogGroups`` reports it."""

    name: str
    created_ms: int
    retention_days: int | None
    events: int
    stored_bytes: int


@dataclass(frozen=True)
class LogStreamInfo:
    """A log stream as ``DescribeLogStreams`` reports it."""

    log_group: str
    name: str
    created_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    last_ingestion_ms: int | None


class Store(ABC):
    """Where events live. One writer at a time; reads never wait for writes."""

    dialect: ClassVar[str]

    @abstractmethod
    def write_batch(self, batch: pa.Table) -> WriteResult:
        """Commit a batch shaped like :data:`dashcam.store.schema.ARROW_SCHEMA`.

        Returns only after the batch is durable. Events whose ``event_id`` is already stored in
        the same log group are skipped and counted as duplicates. Log groups and streams named by
        the batch are created as needed.
        """

    @abstractmethod
    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        """Run compiled read-only SQL and return its rows; engine errors become QueryExecutionError."""

    @abstractmethod
    def create_log_group(self, name: str, *, exist_ok: bool = False) -> None:
        """Create an empty log group (``ResourceAlreadyExists`` unless ``exist_ok``)."""

    @abstractmethod
    def delete_log_group(self, name: str) -> None:
        """Delete a log group with all its streams and events."""

    @abstractmethod
    def list_log_groups(self, prefix: str = "") -> list[LogGroupInfo]:
        """Log groups whose name starts with ``prefix``, by name."""

    @abstractmethod
    def list_log_streams(self, log_group: str, prefix: str = "") -> list[LogStreamInfo]:
        """Streams of a log group whose name starts with ``prefix``, by name."""

    @abstractmethod
    def set_retention(self, log_group: str, days: int | None) -> None:
        """Set (or with ``None`` remove) a log group's retention in days."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store."""

    def write_records(
        self,
        log_group: str,
        log_stream: str,
        records: Iterable[dict[str, Any]],
        *,
        source: str,
        provider: str = "aws.bedrock",
    ) -> WriteResult:
        """Normalize and commit invocation records (dicts) in one batch; ``@message`` is their JSON."""
        builder = EventBatchBuilder()
        for record in records:
            builder.add_record(log_group, log_stream, record, source=source, provider=provider)
        return self.write_batch(builder.build()) if len(builder) else WriteResult(0, 0)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
