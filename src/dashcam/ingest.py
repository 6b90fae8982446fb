"""The batched write path every source feeds: events in, committed batches out.

Three stages overlap: the caller reads and frames a batch (Python, holds the GIL), a stager thread
has the store parse the previous one (:meth:`~dashcam.store.base.Store.prepare_raw`, in the engine,
GIL released), and a writer thread commits the one before that. Each hand-over waits until the
next thread takes the batch, so a slow store slows the reader instead of growing memory.
"""

from __future__ import annotations

import queue
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from dashcam.errors import DashcamError, StoreError
from dashcam.sources.lines import FramedLines
from dashcam.store.base import PreparedRaw, Store, WriteResult
from dashcam.store.batch import EventBatchBuilder, RawBatchBuilder

DEFAULT_BATCH_SIZE = 2 * 122_880  # two of DuckDB's row groups (see add_lines)
_STOP = object()


@dataclass(frozen=True)
class Rejection:
    """A line the store refused: where it came from and why."""

    location: str
    line: int
    reason: str


@dataclass
class _RawBatch:
    table: pa.Table
    builder: RawBatchBuilder
    refused: list[tuple[int, str]]
    prepared: PreparedRaw | None = None  # set by the stager thread


class BatchWriter:
    """Collects events into batches of ``batch_size`` rows and commits each on a background thread.

    Two kinds of input: normalized records (:meth:`add`) and raw JSON lines that the store parses
    in bulk (:meth:`add_lines`). Use as a context manager, or call :meth:`close`; :attr:`result`
    adds up what was written and what was already stored, and :attr:`rejections` lists refused
    lines. An error raised by the store is re-raised in the caller's thread on the next call.
    """

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        source: str = "api",
        provider: str = "aws.bedrock",
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.source = source
        self.provider = provider
        self.rejections: list[Rejection] = []  # appended by the writer thread only
        self._committed = WriteResult(0, 0)  # updated by the writer thread only
        self._duplicates_in_batches = 0  # updated by the caller's thread only
        self._events = EventBatchBuilder()
        self._raw = RawBatchBuilder()
        self._engine_tuning = ExitStack()  # left when the threads are done
        self._engine_tuning.enter_context(store.bulk_writes())
        # Hand-over points, not buffers: a put returns once the next thread has taken the item, so
        # at most three batches are held (one read, one staged, one committed; each ~0.4 GB of
        # Bedrock logs at the default size).
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)  # caller -> stager
        self._staged: queue.Queue[Any] = queue.Queue(maxsize=1)  # stager -> writer
        self._error: BaseException | None = None
        self._stager = threading.Thread(target=self._stage_batches, name="dashcam-stager", daemon=True)
        self._thread = threading.Thread(target=self._run, name="dashcam-writer", daemon=True)
        self._stager.start()
        self._thread.start()

    @property
    def result(self) -> WriteResult:
        """Events committed so far, and re-deliveries skipped (within a batch or already stored)."""
        return self._committed + WriteResult(0, self._duplicates_in_batches)

    def add(self, log_group: str, log_stream: str, ts_ms: int, message: str, record: dict[str, Any]) -> None:
        """Queue one normalized event; commits happen in batches behind the caller's back."""
        self._raise_pending()
        self._events.add(log_group, log_stream, ts_ms, message, record)
        if len(self._events) >= self.batch_size:
            self._hand_over()

    def add_lines(self, log_group: str, log_stream: str, lines: FramedLines, location: str, first_line: int) -> None:
        """Queue raw JSON lines (one record each) of ``location``, the first being ``first_line``.

        Batches are cut at exactly ``batch_size`` rows: the default is two DuckDB row groups, and
        a commit of whole row groups is written once, where a partial one is rewritten later.
        """
        done = 0
        while done < len(lines):
            self._raise_pending()
            part = lines.slice(done, done + self.batch_size - len(self._raw))
            self._raw.extend(log_group, log_stream, part.array, part.event_ids(log_group), location, first_line + done)
            done += len(part)
            if len(self._raw) >= self.batch_size:
                self._hand_over()

    def flush(self) -> None:
        """Commit everything added so far and wait until it is durable."""
        self._hand_over()
        done = threading.Event()
        self._put(done)
        while not done.wait(0.1):
            if not (self._thread.is_alive() and self._stager.is_alive()):
                break
        self._raise_pending()

    def close(self) -> WriteResult:
        """Flush, stop the stager and writer threads, and return the totals."""
        try:
            self.flush()
        finally:
            self._queue.put(_STOP)
            self._stager.join()
            self._thread.join()
            self._engine_tuning.close()
        return self.result

    def __enter__(self) -> "BatchWriter":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller failed: still commit what was read, but let the caller's exception win.
        try:
            self.close()
        except DashcamError as error:
            self.rejections.append(Rejection("(store)", 0, f"final commit failed too: {error}"))

    def _hand_over(self) -> None:
        if len(self._events):
            events, self._events = self._events, EventBatchBuilder()
            self._duplicates_in_batches += events.duplicates
            self._put(events.build())
        if len(self._raw):
            raw, self._raw = self._raw, RawBatchBuilder()
            table, refused = raw.build()
            self._put(_RawBatch(table, raw, refused))

    def _put(self, item: Any) -> None:
        while True:
            self._raise_pending()
            try:
                self._queue.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        self._queue.join()  # the stager has taken it

    def _stage_batches(self) -> None:
        """Prepare raw batches in order and pass everything on to the writer thread."""
        while True:
            item = self._queue.get()
            self._queue.task_done()
            if isinstance(item, _RawBatch) and self._error is None:
                try:
                    item.prepared = self.store.prepare_raw(item.table, source=self.source, provider=self.provider)
                except BaseException as exc:  # handed to the caller's thread, never lost
                    self._fail(exc)
            self._staged.put(item)
            self._staged.join()  # the writer has taken it
            if item is _STOP:
                return

    def _run(self) -> None:
        while True:
            item = self._staged.get()
            self._staged.task_done()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            if self._error is not None or (isinstance(item, _RawBatch) and item.prepared is None):
                # After a failure (the stager's, or a commit's): drain without writing; the caller
                # gets the error.
                if isinstance(item, _RawBatch) and item.prepared is not None:
                    item.prepared.discard()
                continue
            try:
                self._write(item)
            except BaseException as exc:  # handed to the caller's thread, never lost
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def _write(self, item: Any) -> None:
        if isinstance(item, _RawBatch):
            result = self.store.commit_raw(item.prepared)
            for row_idx, reason in sorted(item.refused + result.rejected):
                location, line = item.builder.origin(row_idx)
                self.rejections.append(Rejection(location, line, reason))
            self._committed += WriteResult(result.written, result.duplicates)
        else:
            self._committed += self.store.write_batch(item)

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            if isinstance(error, DashcamError):
                raise error
            raise StoreError(f"write failed: {error}") from error
