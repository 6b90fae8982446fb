"""Group commit for requests that each carry a few raw records: many requests, one commit.

A store commit costs nearly as much for 500 lines as for 5,000 (planning, the write-ahead log,
checkpoints), so a server answering many small ingest requests one commit each spends its time
committing. Here one thread commits: while it commits, the requests that arrive queue up, and the
next commit takes all of them (parsed by a second thread in the meantime). Under heavy load the
groups are shaped to the store's cheapest commit size (see GroupCommitter). Each request still gets
its own counts — the store lists which rows it stored and which were re-deliveries — and its answer
only once its records are durable.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dashcam.errors import DashcamError, StoreError
from dashcam.ingest import DEFAULT_BATCH_SIZE
from dashcam.sources.lines import FramedLines
from dashcam.store.base import PreparedRaw, RawWriteResult, Store
from dashcam.store.batch import RawBatchBuilder

T = TypeVar("T")
log = logging.getLogger("dashcam.ingest")


@dataclass(frozen=True)
class RequestOutcome:
    """What one request's commit did: lines newly stored, re-deliveries, and refused lines as
    (0-based line index in the request, reason)."""

    written: int
    duplicates: int
    rejected: list[tuple[int, str]]


@dataclass
class _Pending:
    log_group: str
    log_stream: str
    lines: FramedLines
    future: concurrent.futures.Future


_WAKE = object()  # queued by CommitQueue.wake: what the group is waiting for may have happened


class CommitQueue(Generic[T]):
    """A writer thread that takes what is queued in groups — everything waiting, up to ``max_rows``
    as counted by ``rows_of`` — and hands each group to ``commit_group`` (which must not raise).

    Two optional rules shape the groups: a group of ``rows`` takes another queued item only while
    ``take_more(rows)``, and when nothing is queued it waits for the next item (rather than going
    as it is) while ``wait_for_more(rows)``. Whatever may turn ``wait_for_more`` false calls
    :meth:`wake`.
    """

    def __init__(self, commit_group: Callable[[list[T]], None], rows_of: Callable[[T], int], *,
                 max_rows: int, name: str, take_more: Callable[[int], bool] = lambda rows: True,
                 wait_for_more: Callable[[int], bool] = lambda rows: False) -> None:
        self._commit_group = commit_group
        self._rows_of = rows_of
        self.max_rows = max_rows
        self._take_more = take_more
        self._wait_for_more = wait_for_more
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        """Queue one item for the next group."""
        self._queue.put(item)

    def wake(self) -> None:
        """Have a group waiting for more items ask ``wait_for_more`` again."""
        self._queue.put(_WAKE)

    def stop(self) -> None:
        """Commit what is queued, then end the writer thread."""
        self._queue.put(None)
        self._thread.join(60)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _WAKE:
                continue
            if first is None:
                return
            group, stopping = [first], False
            rows = self._rows_of(first)
            while rows < self.max_rows and self._take_more(rows):
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    if not self._wait_for_more(rows):
                        break
                    more = self._queue.get()  # another item, or a wake
                if more is _WAKE:
                    continue
                if more is None:
                    stopping = True
                    break
                group.append(more)
                rows += self._rows_of(more)
            try:
                self._commit_group(group)
            except Exception:  # a bug there must not stop every later commit with it
                log.exception("%s: committing a group failed", self._thread.name)
            if stopping:
                return


@dataclass
class _Prepared:
    """A group whose lines the store has parsed, waiting for the committing thread."""

    store: Store
    group: list[_Pending]
    prepared: PreparedRaw
    refused: list[tuple[int, str]]
    starts: list[int]  # the row where each request's lines begin


class GroupCommitter:
    """Two threads committing the raw lines of concurrent requests, many per commit.

    The first takes the queued requests, up to ``max_rows`` lines, and has the store parse them
    (:meth:`~dashcam.store.base.Store.prepare_raw`) while the second commits the group before. So
    parsing and committing, the two halves of a write, run side by side. ``store_of`` returns the
    store to write to (looked up per group, so a test may swap it). Stores that cannot list rows
    per outcome (``Store.reports_rows``) get one commit per request.
    """

    def __init__(self, store_of: Callable[[], Store], *, source: str, max_rows: int = DEFAULT_BATCH_SIZE) -> None:
        self._store_of = store_of
        self.source = source
        self.commits = 0  # how many commits carried the requests so far
        self._ready: queue.Queue[_Prepared | None] = queue.Queue(maxsize=1)
        self._committer = threading.Thread(target=self._commit_prepared, name="dashcam-ingest-commit", daemon=True)
        self._committer.start()
        self._last_rows = 0  # lines in the group last handed to the committing thread
        self._queue: CommitQueue[_Pending] = CommitQueue(
            self._prepare_group, lambda pending: len(pending.lines), max_rows=max_rows, name="dashcam-ingest-prepare",
            take_more=self._take_more, wait_for_more=self._wait_for_more)

    def submit(self, log_group: str, log_stream: str, lines: FramedLines) -> concurrent.futures.Future:
        """Queue one request's lines; the future gives its :class:`RequestOutcome` once durable,
        or the store's error (then nothing of the request was stored)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        if not len(lines):
            future.set_result(RequestOutcome(0, 0, []))
        else:
            self._queue.put(_Pending(log_group, log_stream, lines, future))
        return future

    def stop(self) -> None:
        """Commit what is queued, then end both threads."""
        self._queue.stop()
        self._ready.put(None)
        self._committer.join(60)

    # Group shapes. The store commits a group of ``efficient_commit_rows`` lines or more for much
    # less per line; parsing runs alongside the commit before, so while the committing thread has
    # a group, two groups of that size beat one big and one small (which happens when every
    # request waiting is taken).

    def _take_more(self, rows: int) -> bool:
        """A group takes another waiting request if it is still small, or if the committing thread
        is free (then nothing is gained by leaving requests for the next group), or if the store
        commits every size alike."""
        cheap_from = self._store_of().efficient_commit_rows
        return not cheap_from or rows < cheap_from or not self._committer_busy()

    def _committer_busy(self) -> bool:
        # A group handed over and not yet done (task_done after its commit), under the queue's lock.
        return self._ready.unfinished_tasks > 0

    def _wait_for_more(self, rows: int) -> bool:
        """A small group waits for the next request while the committing thread is busy — only if
        the group it has was a full one: requests then come fast enough to fill this group during
        that commit. Under lighter load a small group is parsed at once, alongside the commit."""
        return self._committer_busy() and rows < self._store_of().efficient_commit_rows <= self._last_rows

    def _prepare_group(self, group: list[_Pending]) -> None:
        store = self._store_of()
        for part in [group] if store.reports_rows else [[pending] for pending in group]:
            try:
                prepared = self._prepare(store, part)
            except BaseException as exc:  # handed to every waiting request, never lost
                _fail(part, exc)
                continue
            self._last_rows = sum(len(pending.lines) for pending in part)
            self._ready.put(prepared)

    def _prepare(self, store: Store, group: list[_Pending]) -> _Prepared:
        builder = RawBatchBuilder()
        starts = []
        for pending in group:
            starts.append(len(builder))
            lines = pending.lines
            builder.extend(pending.log_group, pending.log_stream, lines.array, lines.event_ids(pending.log_group),
                           "request", 0)
        table, refused = builder.build()
        return _Prepared(store, group, store.prepare_raw(table, source=self.source), refused, starts)

    def _commit_prepared(self) -> None:
        while (prepared := self._ready.get()) is not None:
            try:
                outcomes = self._commit(prepared)
            except BaseException as exc:  # handed to every waiting request, never lost
                prepared.prepared.discard()
                _fail(prepared.group, exc)
                continue
            finally:
                self._ready.task_done()
                self._queue.wake()
            self.commits += 1
            for pending, outcome in zip(prepared.group, outcomes):
                pending.future.set_result(outcome)

    @staticmethod
    def _commit(prepared: _Prepared) -> list[RequestOutcome]:
        """Commit one prepared group as one batch: each request's outcome."""
        together = len(prepared.group) > 1
        result = prepared.store.commit_raw(prepared.prepared, report_rows=together)
        if not together:
            return [RequestOutcome(result.written, result.duplicates, sorted(prepared.refused + result.rejected))]
        return _split(result, prepared.refused, prepared.starts)


def _fail(group: list[_Pending], exc: BaseException) -> None:
    """Answer every request of ``group`` with the error (nothing of theirs was stored)."""
    error = exc if isinstance(exc, DashcamError) else StoreError(f"write failed: {exc}")
    for pending in group:
        pending.future.set_exception(error)


def _split(result: RawWriteResult, refused: list[tuple[int, str]], starts: list[int]) -> list[RequestOutcome]:
    """Each request's share of one commit, by the row ranges its lines took (``starts``)."""
    written = [0] * len(starts)
    duplicates = [0] * len(starts)
    rejected: list[list[tuple[int, str]]] = [[] for _ in starts]
    for row in result.stored_rows or ():
        written[bisect.bisect_right(starts, row) - 1] += 1
    for row in result.duplicate_rows or ():
        duplicates[bisect.bisect_right(starts, row) - 1] += 1
    for row, reason in sorted(refused + result.rejected):
        index = bisect.bisect_right(starts, row) - 1
        rejected[index].append((row - starts[index], reason))
    return [RequestOutcome(w, d, r) for w, d, r in zip(written, duplicates, rejected)]
