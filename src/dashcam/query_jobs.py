"""Asynchronous Logs Insights queries: start one, poll it, stop it, list recent ones.

CloudWatch's ``StartQuery`` / ``GetQueryResults`` / ``StopQuery`` / ``DescribeQueries`` and the
native ``POST /api/v1/queries`` + ``GET /api/v1/queries/{id}`` both sit on :class:`QueryJobs`: a
registry of :class:`QueryJob` run on a bounded thread pool.

- A job is compiled when it is started, so a malformed query fails at once (``StartQuery``
  answers ``MalformedQueryException``), then runs on one of ``workers`` threads. Its status goes
  ``Scheduled`` -> ``Running`` -> ``Complete`` | ``Failed`` | ``Cancelled``.
- At most ``max_active`` jobs may be scheduled or running at once (CloudWatch allows 100
  concurrent queries per account); one more is refused with :class:`TooManyQueriesError`.
- Stopping a scheduled job means it never runs; stopping a running one interrupts the engine
  (:class:`~dashcam.store.base.Interrupt`: DuckDB's interrupt, ClickHouse's ``KILL QUERY``). It
  reports ``Cancelled`` from the moment it is stopped.
- A job still running after ``timeout_seconds`` (default one hour, CloudWatch's limit) is
  interrupted the same way and reports ``Timeout``.
- Finished jobs are kept for :data:`KEEP_SECONDS` (one hour: CloudWatch's results pagination
  token is valid for an hour, and results are the bulk of the memory a job holds), and at most
  :data:`MAX_FINISHED` of them (the oldest finished are dropped first). A job that is gone is
  :class:`~dashcam.errors.NotFoundError`, like one that never existed.

Jobs started with ``pointers=True`` (the CloudWatch API) return ``@ptr`` as the last column of
event results, as ``GetQueryResults`` does; ``statistics=True`` also measures what CloudWatch
reports: events in scope (``recordsScanned``), events that passed the query's filters
(``recordsMatched``) and an estimate of the bytes scanned.

A query using ``unmask()`` is checked when it is started (the starting principal must be allowed
to unmask: ForbiddenError at once, audited) and has its originals swapped in when it finishes
(audited with the starter as actor). Its rows then hold originals, so only principals allowed to
unmask the groups they came from may read them (:meth:`QueryJob.require_readable`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dashcam.errors import DashcamError, ForbiddenError, NotFoundError, QueryError, QueryStoppedError
from dashcam.query import ast
from dashcam.query.compiler import CompiledQuery, QueryScope, compile_query
from dashcam.query.parser import parse
from dashcam.query.results import decode_rows
from dashcam.service import Dashcam, unmask_refusal
from dashcam.store.base import Interrupt

if TYPE_CHECKING:
    from dashcam.keys import Principal

SCHEDULED, RUNNING, COMPLETE, FAILED, CANCELLED, TIMEOUT = (
    "Scheduled", "Running", "Complete", "Failed", "Cancelled", "Timeout")
FINISHED = frozenset({COMPLETE, FAILED, CANCELLED, TIMEOUT})
STATUSES = (SCHEDULED, RUNNING, COMPLETE, FAILED, CANCELLED, TIMEOUT)

KEEP_SECONDS = 3600.0
TIMEOUT_SECONDS = 3600.0  # CloudWatch Logs Insights ends a query after 60 minutes
MAX_FINISHED = 200
MAX_ACTIVE = 100
DEFAULT_WORKERS = 4
BYTES_SAMPLE = 1000  # events whose sizes estimate bytesScanned


class TooManyQueriesError(DashcamError):
    """More queries are scheduled or running than the registry allows at once."""


@dataclass
class QueryJob:
    """One asynchronous query and, when it is finished, its result."""

    id: str
    text: str
    scope: QueryScope
    compiled: CompiledQuery
    query: ast.Query
    created_ms: int
    status: str = SCHEDULED
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: DashcamError | None = None
    started_at: float | None = None      # time.monotonic() when it began running
    finished_at: float | None = None     # time.monotonic() when it finished (or was stopped)
    statistics: dict[str, float] = field(default_factory=dict)
    measure: bool = False
    principal: "Principal | None" = field(default=None, repr=False)  # who started it (for unmask)
    unmasked_groups: tuple[str, ...] = ()  # the groups whose originals its rows show
    future: Future | None = field(default=None, repr=False)
    interrupt: Interrupt = field(default_factory=Interrupt, repr=False)  # stops it while it runs
    done: threading.Event = field(default_factory=threading.Event, repr=False)  # set once finished

    @property
    def seconds(self) -> float | None:
        """How long it ran (so far, while running); None before it starts."""
        if self.started_at is None:
            return None
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def log_groups(self) -> tuple[str, ...]:
        """The log groups it was started over (empty: all, or chosen by SOURCE)."""
        return self.scope.log_groups or ()

    def require_readable(self, principal: "Principal | None") -> None:
        """ForbiddenError when this job unmasks and ``principal`` may not unmask what its rows
        show (the groups they came from, once finished; the role, before): originals are not
        handed to whoever knows a query id."""
        if not self.compiled.unmasks:
            return
        refusal = unmask_refusal(principal, self.unmasked_groups)
        if refusal is not None:
            raise ForbiddenError(f"query {self.id} shows unmasked data: {refusal}")


class QueryJobs:
    """The registry of asynchronous queries over one :class:`~dashcam.service.Dashcam`."""

    def __init__(self, dashcam: Dashcam, *, workers: int = DEFAULT_WORKERS, max_active: int = MAX_ACTIVE,
                 keep_seconds: float = KEEP_SECONDS, max_finished: int = MAX_FINISHED,
                 timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.dashcam = dashcam
        self.timeout_seconds = timeout_seconds
        self.max_active = max_active
        self.keep_seconds = keep_seconds
        self.max_finished = max_finished
        self._jobs: dict[str, QueryJob] = {}   # insertion order = start order
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dashcam-query")

    # ------------------------------------------------------------------ lifecycle

    def start(
        self,
        text: str,
        *,
        log_groups: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 10_000,
        pointers: bool = False,
        statistics: bool = False,
        principal: "Principal | None" = None,
    ) -> QueryJob:
        """Compile ``text`` now (raising QueryError) and run it in the background; the new job.

        ``principal`` is who asks: a query using ``unmask()`` is refused (ForbiddenError) unless
        it may unmask (see :meth:`dashcam.service.Dashcam.query`)."""
        scope = QueryScope(tuple(log_groups) if log_groups else None, start_ms, end_ms, limit)
        query = parse(text)
        dialect = self.dashcam.store.dialect
        compiled = compile_query(query, scope, dialect)
        if pointers:
            compiled = _with_pointer(query, compiled, scope, dialect)
        if compiled.unmasks:
            self.dashcam.require_unmask(principal, scope.log_groups, query=text)
        job = QueryJob(id=str(uuid.uuid4()), text=text, scope=scope, compiled=compiled, query=query,
                       created_ms=int(time.time() * 1000), measure=statistics, principal=principal)
        with self._lock:
            self._expire()
            active = sum(1 for j in self._jobs.values() if j.status not in FINISHED)
            if active >= self.max_active:
                raise TooManyQueriesError(f"{active} queries are already scheduled or running; "
                                          f"at most {self.max_active} may be at once")
            self._jobs[job.id] = job
            job.future = self._pool.submit(self._run, job)
        return job

    def get(self, query_id: str) -> QueryJob:
        """The job with this id; NotFoundError when it never existed or has expired."""
        with self._lock:
            self._expire()
            job = self._jobs.get(query_id)
        if job is None:
            raise NotFoundError(f"query {query_id!r} does not exist (finished queries are kept "
                                f"for {int(self.keep_seconds)} s)")
        return job

    def stop(self, query_id: str) -> bool:
        """Cancel a scheduled or running job (interrupting the engine); False when it had already finished."""
        return self._end(self.get(query_id), CANCELLED)

    def _end(self, job: QueryJob, status: str) -> bool:
        """Finish an unfinished job as ``status`` (Cancelled, Timeout), interrupting its query."""
        with self._lock:
            if job.status in FINISHED:
                return False
            if job.future is not None:
                job.future.cancel()  # only succeeds while it waits for a worker
            job.status = status
            job.finished_at = time.monotonic()
            job.rows = []
            if status == TIMEOUT:
                job.error = QueryStoppedError(f"the query ran longer than the {self.timeout_seconds:g} s "
                                              "a query may run, and was stopped")
            job.done.set()
        job.interrupt.stop()
        return True

    def list(self, *, log_group: str | None = None, status: str | None = None) -> list[QueryJob]:
        """Known jobs, newest first, optionally only those over ``log_group`` or with ``status``."""
        with self._lock:
            self._expire()
            jobs = list(self._jobs.values())
        jobs.reverse()
        if log_group is not None:
            jobs = [j for j in jobs if log_group in j.log_groups]
        if status is not None:
            jobs = [j for j in jobs if j.status == status]
        return jobs

    def wait(self, query_id: str, timeout: float | None = None) -> QueryJob:
        """The job once it is finished, or as it is after ``timeout`` seconds."""
        job = self.get(query_id)
        job.done.wait(timeout)
        return job

    def close(self) -> None:
        """Stop taking jobs; scheduled ones are dropped, running ones finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ internals

    def _run(self, job: QueryJob) -> None:
        with self._lock:
            if job.status != SCHEDULED:
                return
            job.status = RUNNING
            job.started_at = time.monotonic()
        store = self.dashcam.store
        timer = threading.Timer(self.timeout_seconds, self._end, (job, TIMEOUT))
        timer.daemon = True
        timer.start()
        try:
            raw = store.execute(job.compiled.sql, interrupt=job.interrupt)
            rows = decode_rows(job.compiled, raw)
            if job.compiled.unmasks:
                job.unmasked_groups = tuple(self.dashcam.unmask_rows(job.compiled, raw, rows, job.principal,
                                                                     query=job.text))
            stats = self._statistics(job)
        except DashcamError as exc:
            outcome: dict[str, Any] = {"status": FAILED, "error": exc}
        except Exception as exc:  # noqa: BLE001 - a job must always finish, whatever the engine did
            outcome = {"status": FAILED, "error": QueryError(f"the query failed: {exc}")}
        else:
            outcome = {"status": COMPLETE, "rows": rows, "columns": [c.name for c in job.compiled.columns],
                       "statistics": stats}
        finally:
            timer.cancel()
        with self._lock:
            if job.status in (CANCELLED, TIMEOUT):
                return  # stopped while running: its rows are not wanted
            for name, value in outcome.items():
                setattr(job, name, value)
            job.finished_at = time.monotonic()
            job.done.set()

    def _statistics(self, job: QueryJob) -> dict[str, float]:
        """The job's statistics when asked for; a failure to measure never fails the query itself."""
        if not job.measure:
            return {}
        try:
            return _measure(self.dashcam, job)
        except DashcamError:
            return {}

    def _expire(self) -> None:
        """Drop finished jobs older than keep_seconds, then the oldest beyond max_finished (lock held)."""
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        for job in finished:
            if job.finished_at is not None and now - job.finished_at > self.keep_seconds:
                del self._jobs[job.id]
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        finished.sort(key=lambda j: j.finished_at or 0.0)
        for job in finished[:max(0, len(finished) - self.max_finished)]:
            del self._jobs[job.id]


# ---------------------------------------------------------------------- @ptr and statistics

# Commands that never change which events a query has matched, so recordsMatched needs no scan.
_NEUTRAL = (ast.Fields, ast.Display, ast.Sort, ast.Parse)


def _with_pointer(query: ast.Query, compiled: CompiledQuery, scope: QueryScope, dialect: str) -> CompiledQuery:
    """``compiled`` with ``@ptr`` as its last column when its rows are events (no ``stats``).

    The compiler resolves ``@ptr`` like any field, so the query is compiled again with a
    ``display`` of its own result columns plus ``@ptr`` (placed before a trailing ``dedup``, which
    only ``limit`` may follow). Should that not compile, the query goes without pointers.
    """
    names = [c.name for c in compiled.columns]
    if "@ptr" in names or any(isinstance(c, ast.Stats) for c in query.commands):
        return compiled
    items = tuple(ast.Projection(ast.FieldRef(path=tuple(n.split(".")), text=n), text=n) for n in names + ["@ptr"])
    commands = list(query.commands)
    at = next((i for i, c in enumerate(commands) if isinstance(c, ast.Dedup)), len(commands))
    commands.insert(at, ast.Display(items=items, text="display"))
    try:
        return compile_query(ast.Query(commands=tuple(commands)), scope, dialect)
    except DashcamError:
        return compiled


def _call(name: str, *args: ast.Expr) -> ast.Call:
    text = f"{name}({', '.join(a.text for a in args)})"
    return ast.Call(name=name, args=args, text=text)


def _stats(*aggregates: ast.Call) -> ast.Stats:
    items = tuple(ast.Projection(a, alias=f"v{i}", text=a.text) for i, a in enumerate(aggregates))
    return ast.Stats(aggregates=items, text="stats")


def _measure(dashcam: Dashcam, job: QueryJob) -> dict[str, float]:
    """CloudWatch's query statistics: events and log groups in scope, events matched, bytes scanned.

    Each figure is a small query compiled like any other. ``bytesScanned`` is an estimate: the
    events in scope times the mean size of a sample of their messages, because summing every
    message would read the whole message column, many times the cost of a query that only
    touches typed columns.
    """
    store, dialect, scope = dashcam.store, dashcam.store.dialect, job.scope
    unlimited = QueryScope(scope.log_groups, scope.start_ms, scope.end_ms, 1)
    star, message = ast.Star(text="*"), ast.FieldRef(path=("@message",), text="@message")

    def run(*commands: ast.Command) -> tuple[float, ...]:
        rows = store.execute(compile_query(ast.Query(commands=tuple(commands)), unlimited, dialect).sql)
        return tuple(float(v or 0) for v in rows[0]) if rows else (0.0,)

    sources = tuple(c for c in job.query.commands if isinstance(c, ast.Source))
    scanned, groups = run(*sources, _stats(_call("count", star),
                                           _call("count_distinct", ast.FieldRef(path=("@log",), text="@log"))))
    prefix: list[ast.Command] = []
    for command in job.query.commands:
        if isinstance(command, (ast.Stats, ast.Limit, ast.Dedup)):
            break
        prefix.append(command)
    if all(isinstance(c, _NEUTRAL + (ast.Source,)) for c in prefix):
        matched = scanned
    else:
        (matched,) = run(*prefix, _stats(_call("count", star)))
    mean_bytes = 0.0
    if scanned:
        (mean_bytes,) = run(*sources, ast.Limit(count=BYTES_SAMPLE), _stats(_call("avg", _call("strlen", message))))
    return {
        "recordsMatched": matched,
        "recordsScanned": scanned,
        "estimatedRecordsSkipped": 0.0,
        "bytesScanned": float(round(scanned * mean_bytes)),
        "estimatedBytesSkipped": 0.0,
        "logGroupsScanned": groups,
    }


