"""The ``Store`` port: the few things dashcam asks of a database.

Adapters (DuckDB embedded, ClickHouse) implement it and translate their engine's errors into
:mod:`dashcam.errors`. Everything above the store speaks only this interface and SQL compiled
for the adapter's ``dialect``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
import pyarrow as pa

from dashcam.errors import InputError, QueryStoppedError, StoreError
from dashcam.records import normalize, timestamp_ms
from dashcam.store.batch import EventBatchBuilder

# The retention values CloudWatch Logs accepts (days).
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                  2557, 2922, 3288, 3653)


class Interrupt:
    """Lets another thread stop a query while the store runs it (StopQuery, a time limit).

    The adapter running the query attaches a way to cancel it for as long as it runs
    (:meth:`attach`); :meth:`stop` cancels it then, or, when called first, makes the query refuse
    to start.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel: Callable[[], None] | None = None
        self.stopped = False

    def stop(self) -> None:
        """Stop the query: now if it runs, or before it starts."""
        with self._lock:
            self.stopped = True
            cancel = self._cancel
        if cancel is not None:
            cancel()

    def attach(self, cancel: Callable[[], None]) -> None:
        """While a query runs, ``cancel`` stops it; QueryStoppedError when already stopped."""
        with self._lock:
            if self.stopped:
                raise QueryStoppedError("the query was stopped before it started")
            self._cancel = cancel

    def detach(self) -> None:
        """The query is over: nothing left to cancel."""
        with self._lock:
            self._cancel = None


@dataclass(frozen=True)
class WriteResult:
    """What a committed write did: events newly stored, and events already there (re-deliveries)."""

    written: int
    duplicates: int

    def __add__(self, other: "WriteResult") -> "WriteResult":
        return WriteResult(self.written + other.written, self.duplicates + other.duplicates)


@dataclass(frozen=True)
class RawWriteResult:
    """A committed raw write: the totals, and the rows refused as (row_idx, reason).

    With ``write_raw(..., report_rows=True)`` it also says which rows were newly stored
    (``stored_rows``) and which were re-deliveries (``duplicate_rows``), as row_idx lists: callers
    that commit several requests together give each its own counts. Otherwise both are None.
    """

    written: int
    duplicates: int
    rejected: list[tuple[int, str]]
    stored_rows: list[int] | None = None
    duplicate_rows: list[int] | None = None

    @classmethod
    def nothing_stored(cls, rejected: list[tuple[int, str]], *, report_rows: bool) -> "RawWriteResult":
        """A write that stored no row (an empty batch, or every row refused)."""
        return cls(0, 0, rejected, [] if report_rows else None, [] if report_rows else None)


@dataclass
class PreparedRaw:
    """A raw batch readied for commit by :meth:`Store.prepare_raw`: parsed, derived and checked as
    far as that store goes without its writer. Commit it with :meth:`Store.commit_raw` exactly once,
    or give up on it with :meth:`discard`."""

    batch: pa.Table
    source: str
    provider: str

    def discard(self) -> None:
        """Free what preparing held (nothing here; adapters hold staging state)."""


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


def _json_type(value: Any) -> str:
    """JSON's own name for a decoded value's type, as error messages use it."""
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class Store(ABC):
    """Where events live. One writer at a time; reads never wait for writes."""

    dialect: ClassVar[str]
    # Whether write_raw(..., report_rows=True) lists stored and duplicate rows (see RawWriteResult).
    reports_rows: ClassVar[bool] = False
    # The fewest rows for which a commit costs least per row (0: size makes no difference). Group
    # committers gather requests up to it while the store is busy committing.
    efficient_commit_rows: ClassVar[int] = 0

    @abstractmethod
    def write_batch(self, batch: pa.Table) -> WriteResult:
        """Commit a batch shaped like :data:`dashcam.store.schema.ARROW_SCHEMA`.

        Returns only after the batch is durable. Events whose ``event_id`` is already stored in
        the same log group are skipped and counted as duplicates. Log groups and streams named by
        the batch are created as needed.
        """

    def write_raw(
        self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock", report_rows: bool = False
    ) -> RawWriteResult:
        """Normalize and commit raw JSON records built by :class:`~dashcam.store.batch.RawBatchBuilder`.

        Blank lines are passed over. Rows that are not a JSON object with a usable ``timestamp``
        are refused as (row_idx, reason); the rest are committed as one batch, re-deliveries
        counted as duplicates (and, with ``report_rows``, listed: see :class:`RawWriteResult`).
        This default parses in Python with :func:`dashcam.records.normalize`; adapters may do the
        same work inside their engine.
        """
        builder = EventBatchBuilder()
        rejected: list[tuple[int, str]] = []
        columns = batch.to_pydict()
        for row_idx, group, stream, message in zip(
            columns["row_idx"], columns["log_group"], columns["log_stream"], columns["message"]
        ):
            message = message.rstrip("\r\n")
            if not message.strip():
                continue
            try:
                record = orjson.loads(message)
            except orjson.JSONDecodeError:
                rejected.append((row_idx, "not valid JSON"))
                continue
            if not isinstance(record, dict):
                rejected.append((row_idx, f"expected a JSON object, got {_json_type(record)}"))
                continue
            if record.get("timestamp") is None:
                rejected.append((row_idx, "record has no 'timestamp'"))
                continue
            try:
                ts = timestamp_ms(record["timestamp"])
            except InputError:
                stamp = orjson.dumps(record["timestamp"]).decode()
                rejected.append((row_idx, f"timestamp {stamp} is not an RFC 3339 date-time"))
                continue
            builder.add(group, stream, ts, message, normalize(record, source=source, provider=provider))
        result = self.write_batch(builder.build())
        return RawWriteResult(result.written, result.duplicates + builder.duplicates, rejected)

    def prepare_raw(self, batch: pa.Table, *, source: str, provider: str = "aws.bedrock") -> PreparedRaw:
        """The first half of :meth:`write_raw`: the work that needs no writer (parsing, deriving,
        refusing). It may run on another thread while an earlier batch commits, which is how a
        bulk import keeps both halves busy. This default defers everything to :meth:`commit_raw`.
        """
        return PreparedRaw(batch, source, provider)

    def bulk_writes(self) -> AbstractContextManager[None]:
        """A context for a pipeline of large writes (see :class:`dashcam.ingest.BatchWriter`),
        during which the adapter may tune its engine for them. This default changes nothing."""
        return nullcontext()

    def commit_raw(self, prepared: PreparedRaw, *, report_rows: bool = False) -> RawWriteResult:
        """The second half of :meth:`write_raw`: commit a batch from :meth:`prepare_raw` (the
        same result as ``write_raw`` of it). Releases the preparation whether or not it commits."""
        try:
            return self.write_raw(prepared.batch, source=prepared.source, provider=prepared.provider,
                                  report_rows=report_rows)
        finally:
            prepared.discard()

    @abstractmethod
    def execute(self, sql: str, *, interrupt: Interrupt | None = None) -> list[tuple[Any, ...]]:
        """Run compiled read-only SQL and return its rows; engine errors become QueryExecutionError.

        With an ``interrupt``, :meth:`Interrupt.stop` from another thread ends the query with
        QueryStoppedError."""

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
        """Streams of a log group whose name starts with ``prefix``, by name (NotFoundError when
        the group does not exist)."""

    def create_log_stream(self, log_group: str, name: str) -> None:
        """Create an empty log stream in an existing group (CloudWatch's ``CreateLogStream``).

        NotFoundError when the group does not exist, AlreadyExistsError when the stream does.
        Streams are otherwise created by the first events written to them; this default, for an
        adapter that keeps no empty streams, says so rather than pretend.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot create an empty log stream yet")

    @abstractmethod
    def set_retention(self, log_group: str, days: int | None) -> None:
        """Set (or with ``None`` remove) a log group's retention in days."""

    def delete_expired(self, now_ms: int) -> int:
        """Delete the events older than their log group's retention as of ``now_ms`` (epoch ms:
        an event expires when ``@timestamp`` < now - retention days); returns the events deleted.
        Run periodically by the server (:mod:`dashcam.store.retention`)."""
        raise StoreError(f"{type(self).__name__} cannot enforce retention yet")

    def reprice(self, start_ms: int | None = None, end_ms: int | None = None) -> int:
        """Recompute ``costUsd`` of stored events in a time range with the current price catalog
        (events whose record carried its own ``costUsd`` keep it); returns the events repriced."""
        raise StoreError(f"{type(self).__name__} cannot reprice stored events yet")

    def scan_events(self, log_group: str, batch_rows: int = 100_000) -> Iterator[pa.Table]:
        """Every event of ``log_group``, oldest first, as tables of at most ``batch_rows`` rows in
        :data:`~dashcam.store.schema.ARROW_SCHEMA` (``dashcam migrate`` copies stores with it)."""
        raise StoreError(f"{type(self).__name__} cannot export its events yet")

    def restore_log_group(self, info: LogGroupInfo, streams: list[LogStreamInfo]) -> None:
        """Create a log group as another store had it: creation time, retention and streams
        (``dashcam migrate``); its events follow through :meth:`write_batch`."""
        raise StoreError(f"{type(self).__name__} cannot restore log groups yet")

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
