"""OTLP/HTTP receiver: ``POST /v1/traces`` and ``POST /v1/logs``, protobuf and JSON, gzip.

Per the OTLP specification (``../shared/reference/otel-genai.md`` §3):

* ``Content-Type: application/x-protobuf`` or ``application/json`` (OTLP/JSON: hex ids,
  lowerCamelCase, 64-bit integers as strings or numbers, unknown fields ignored); the response
  has the request's content type. Anything else is 415.
* ``Content-Encoding: gzip`` or ``deflate`` (or none); a corrupt or truncated body is 400.
* 200 with an empty ``Export*ServiceResponse`` when everything was accepted (spans that are not
  GenAI model calls are accepted and not stored — they are counted, see ``/api/v1/otlp/stats``);
  200 with ``partial_success`` when some items were rejected (bad ids, no start time), which the
  client must not retry.
* 400 with a ``google.rpc.Status`` naming the problem for an undecodable request; 413 for a body
  over 64 MiB (before or after decompression); 503 with ``Retry-After`` when the server is
  overloaded or the store cannot commit — both retryable by OTLP clients.

Every record is committed before the 200 (acknowledged means committed). Records go to the log
group ``/dashcam/otlp/<service.name>`` — see :mod:`dashcam.sources.otlp` for the mapping and for
how content log records are joined to their spans (the join buffer, holding a span briefly while
its content arrives, and content events for content that comes too late). Bodies are decoded and
mapped by :mod:`dashcam.api.otlp_decode`, for trace exports mostly in a worker process
(:mod:`dashcam.api.otlp_workers`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, FastAPI, Request, Response
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool

from dashcam.api.auth import current_principal
from dashcam.api.bodies import MAX_BODY_BYTES, read_capped
from dashcam.api.otlp_decode import JSON, PROTOBUF, OtlpError, decode, record_rows, traces_rows
from dashcam.api.otlp_workers import WorkerLost, configured_workers, shared_pool
from dashcam.errors import AuthError, DashcamError, ForbiddenError, InputError, TooLargeError
from dashcam.ingest_group import CommitQueue
from dashcam.keys import Principal
from dashcam.sources.otlp import JoinBuffer, Record, TraceResult, finish_spans, map_logs
from dashcam.store.base import WriteResult
from dashcam.store.batch import rows_table
from dashcam.store.rows import EventRows

log = logging.getLogger("dashcam.otlp")

MAX_INFLIGHT_REQUESTS = 64  # beyond this many requests being decoded or committed: 503
# ... or this many body bytes held in memory: decoded and mapped, a body takes several times
# its size, and the server should stay near 500 MB resident however hard it is pushed.
MAX_INFLIGHT_BYTES = 64 << 20
RETRY_AFTER_SECONDS = 1
HOLD_SECONDS = 2.0  # how long a span may wait for its completion's log records
SWEEP_SECONDS = 1.0
GROUP_COMMIT_ROWS = 16_384  # at most this many events in one commit


_MEDIA_TYPES = {
    "application/x-protobuf": PROTOBUF,
    "application/protobuf": PROTOBUF,
    "application/json": JSON,
}
_RESPONSE_TYPES = {PROTOBUF: "application/x-protobuf", JSON: "application/json"}
# google.rpc.Code values for the Status body (clients read the HTTP status, not these).
_RPC_CODES = {400: 3, 413: 8, 415: 3, 503: 14, 500: 13}



def event_table(records: list[Record]) -> pa.Table:
    """Records as a batch of store events (normalized, hot columns typed, event ids set)."""
    return rows_table(record_rows(records))


def traces_table(raw: bytes, content_encoding: str, encoding: str, join: JoinBuffer | Any, *,
                 hold: bool) -> tuple[TraceResult, pa.Table, int]:
    """A trace export's body to (what the mapping made of it, its events as a table, records in it):
    everything a ``/v1/traces`` request costs before its commit (``bench/bench_otlp_mapping.py``
    times this)."""
    result, rows = traces_rows(raw, content_encoding, encoding, join, hold=hold)
    return result, rows_table(rows), rows.offered


def write_tables(store, tables: list[pa.Table]) -> WriteResult:
    """Commit event batches (any groups) as one transaction; returns once durable.

    Each batch is free of repeats already, but two requests committed together may carry the same
    event (a client retrying while its first attempt is in flight): only the first is kept.
    """
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return WriteResult(0, 0)
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    repeats = 0
    # Repeats share an event id: when every id is distinct (counted in Arrow, not per row in
    # Python), there is nothing to look for.
    if len(tables) > 1 and pc.count_distinct(table.column("event_id")).as_py() < table.num_rows:
        seen: set[tuple[int, str]] = set()
        keep = []
        for event_id, group in zip(table.column("event_id").to_pylist(), table.column("log_group").to_pylist()):
            key = (event_id, group)
            keep.append(key not in seen)
            seen.add(key)
        repeats = keep.count(False)
        if repeats:
            table = table.filter(pa.array(keep))
    result = store.write_batch(table)
    return WriteResult(result.written, result.duplicates + repeats)


class GroupCommitter:
    """One writer thread committing what concurrent requests hand it, many requests per commit.

    A DuckDB commit costs about the same for 500 rows as for 5,000, so while one commit runs the
    next requests queue up and go together in the next one. Each request's future completes only
    when its records are durable (or fails with the store's error, for all requests in that commit).
    Requests hand over their events as lists; this thread makes the Arrow table of each group.
    """

    def __init__(self, store_of: Callable[[], Any]) -> None:
        self._store_of = store_of
        self._queue: CommitQueue[tuple[EventRows, concurrent.futures.Future]] = CommitQueue(
            self._commit_group, lambda item: len(item[0]), max_rows=GROUP_COMMIT_ROWS, name="dashcam-otlp-commit")

    def submit(self, rows: EventRows) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((rows, future))
        return future

    def stop(self) -> None:
        self._queue.stop()

    def _commit_group(self, items: list[tuple[EventRows, concurrent.futures.Future]]) -> None:
        try:
            result = write_tables(self._store_of(), [rows_table(rows) for rows, _ in items])
        except BaseException as exc:  # handed to every waiting request, never lost
            for _, future in items:
                future.set_exception(exc)
        else:
            for _, future in items:
                future.set_result(result)


class Receiver:
    """Per-app OTLP state: the join buffer, counters, the in-flight budget, the writer, the sweeper."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.join = JoinBuffer()
        self.stats: Counter[str] = Counter()
        self.inflight_requests = 0
        self.inflight_bytes = 0
        self.mapping_here = 0  # trace exports given to the mapping thread rather than a worker
        self.committer = GroupCommitter(lambda: self.app.state.dashcam.store)
        # Mapping is Python: threads mapping side by side only take turns on the interpreter lock,
        # and each turn evicts the other's data from the cache. One thread maps every request.
        self.mapper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dashcam-otlp-map")
        # ... and beyond that thread's core, worker processes map trace exports (see otlp_workers).
        self.pool = shared_pool(configured_workers())
        self._unwritten: list[Record] = []  # swept content whose commit failed: retried
        self._sweeper: asyncio.Task | None = None

    async def commit(self, rows: EventRows) -> None:
        """Wait until ``rows`` are committed; store errors become OTLP statuses."""
        if not len(rows):
            return
        try:
            await asyncio.wrap_future(self.committer.submit(rows))
        except InputError as exc:
            raise OtlpError(400, str(exc)) from None
        except DashcamError as exc:
            # Nothing from this request was stored; the client may retry it.
            raise OtlpError(503, f"the store could not commit this export: {exc}", retry_after=5) from None

    def ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            await self.sweep()

    async def sweep(self) -> None:
        """Write content that waited in vain for its span (and retry earlier failed writes)."""
        records = self._unwritten + self.join.expired()
        self._unwritten = []
        if not records:
            return
        try:
            await self.commit(await run_in_threadpool(record_rows, records))
            self.stats["content_events_expired"] += len(records)
        except OtlpError as exc:
            log.warning("otlp: could not write %d content events yet: %s", len(records), exc)
            self._unwritten = records

    def close(self) -> None:
        """Stop sweeping and writing; write everything still waiting (server shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.committer.stop()
        self.mapper.shutdown()
        records = self._unwritten + self.join.drain()
        self._unwritten = []
        if records:
            write_tables(self.app.state.dashcam.store, [event_table(records)])
            self.stats["content_events_expired"] += len(records)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    receiver = getattr(app.state, "otlp", None)
    if receiver is not None:
        try:
            await run_in_threadpool(receiver.close)
        except DashcamError as exc:
            log.error("otlp: content still waiting for its spans could not be written at shutdown: %s", exc)


router = APIRouter(tags=["otlp"], lifespan=_lifespan)


def receiver_of(app: FastAPI) -> Receiver:
    """The app's OTLP receiver, created on first use."""
    receiver = getattr(app.state, "otlp", None)
    if receiver is None:
        receiver = app.state.otlp = Receiver(app)
    return receiver


@router.post("/v1/traces", summary="OTLP/HTTP trace export (GenAI spans become invocation records)")
async def export_traces(request: Request) -> Response:
    """Accept an ``ExportTraceServiceRequest``; GenAI model-call spans are stored as records."""
    return await _export(request, "traces")


@router.post("/v1/logs", summary="OTLP/HTTP log export (GenAI content events are joined to their spans)")
async def export_logs(request: Request) -> Response:
    """Accept an ``ExportLogsServiceRequest``; GenAI content events are joined to their calls."""
    return await _export(request, "logs")


@router.get("/api/v1/otlp/stats", summary="OTLP receiver counters")
def otlp_stats(request: Request) -> dict[str, Any]:
    """Spans and log records received, stored, ignored (not GenAI), skipped, rejected, joined."""
    receiver = receiver_of(request.app)
    return {"data": {**receiver.stats, "content_waiting": len(receiver.join)}}


async def _export(request: Request, signal: str) -> Response:
    encoding = JSON
    receiver = receiver_of(request.app)
    receiver.ensure_sweeper()
    try:
        encoding = _encoding_of(request)
        principal = await _principal(request)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise OtlpError(413, f"the body is larger than {MAX_BODY_BYTES >> 20} MiB")
        if receiver.inflight_requests >= MAX_INFLIGHT_REQUESTS or receiver.inflight_bytes > MAX_INFLIGHT_BYTES:
            receiver.stats["shed_requests"] += 1
            raise OtlpError(503, "dashcam is busy writing earlier exports; retry later",
                            retry_after=RETRY_AFTER_SECONDS)
        raw = await _read_capped(request)
        receiver.inflight_requests += 1
        receiver.inflight_bytes += len(raw)
        try:
            content_encoding = request.headers.get("content-encoding", "identity")
            if signal == "traces":
                response = await _traces(receiver, raw, content_encoding, encoding, principal)
            else:
                response = await _logs(receiver, raw, content_encoding, encoding, principal)
        finally:
            receiver.inflight_requests -= 1
            receiver.inflight_bytes -= len(raw)
        return _reply(encoding, response)
    except OtlpError as error:
        receiver.stats[f"{signal}_status_{error.status}"] += 1
        return _error_reply(encoding, error)


async def _principal(request: Request) -> Principal:
    """The caller, who must be allowed to ingest (exporters send keys via OTEL_EXPORTER_OTLP_HEADERS)."""
    try:
        principal = await current_principal(request)
        principal.require("ingest")
    except AuthError as exc:
        raise OtlpError(401, str(exc)) from None
    except ForbiddenError as exc:
        raise OtlpError(403, str(exc)) from None
    return principal


def _check_groups(principal: Principal, rows: EventRows) -> None:
    """Refuse the whole export when a record would land in a log group the key may not write."""
    if principal.log_groups == "*":
        return
    for group in rows.log_groups():
        if not principal.may("ingest", group):
            raise OtlpError(403, f"key {principal.key_id} may not ingest into log group {group!r}")


async def _map_and_commit(receiver: Receiver, principal: Principal,
                          mapping: Callable[[], Awaitable[tuple[Any, EventRows]]]) -> Any:
    """Run ``mapping`` (giving what it made of an export, and its events), check the key may write
    the events' log groups, and return what it made once the events are committed."""
    outcome, rows = await mapping()
    _check_groups(principal, rows)
    await receiver.commit(rows)
    return outcome


async def _traces(receiver: Receiver, raw: bytes, content_encoding: str, encoding: str,
                  principal: Principal) -> Any:
    async def mapping():
        result, rows = await _map_traces(receiver, raw, content_encoding, encoding)
        return (result, rows.offered), rows

    result, written = await _map_and_commit(receiver, principal, mapping)
    stats = receiver.stats
    stats["spans_received"] += result.spans
    stats["spans_ignored_not_genai"] += result.ignored
    stats["spans_skipped_not_model_calls"] += result.skipped
    stats["spans_rejected"] += result.rejected
    stats["records_written"] += written
    response = ExportTraceServiceResponse()
    if result.rejected:
        response.partial_success.rejected_spans = result.rejected
        response.partial_success.error_message = "; ".join(result.errors)
    return response


async def _map_traces(receiver: Receiver, raw: bytes, content_encoding: str,
                      encoding: str) -> tuple[TraceResult, EventRows]:
    """A trace export as (counts, its events): mapped in a worker process when one
    has room or the receiver's own mapping thread is busy, else on that thread."""
    pool = receiver.pool
    if pool is None or (not pool.has_room() and not receiver.mapping_here):
        receiver.mapping_here += 1
        try:
            return await _map_here(receiver, raw, content_encoding, encoding)
        finally:
            receiver.mapping_here -= 1
    try:
        mapped = await pool.map(raw, content_encoding, encoding, receiver.join.content_services())
    except WorkerLost:
        return await _map_here(receiver, raw, content_encoding, encoding)
    except InputError as exc:
        raise OtlpError(400, str(exc)) from None
    receiver.stats["spans_mapped_in_workers"] += mapped.result.spans
    result, rows = mapped.result, mapped.rows
    late = receiver.join.written_elsewhere(mapped.notes)
    if late:  # content that arrived while its spans were in the worker
        receiver.stats["content_events_late"] += len(late)
        rows.extend(await _guarded(receiver, lambda: record_rows(late)))
    if mapped.deferred is not None:  # spans of services that send content log records
        here, here_rows = await _map_here(receiver, mapped.deferred, "identity", PROTOBUF)
        result.spans += here.spans
        result.ignored += here.ignored
        result.skipped += here.skipped
        result.rejected += here.rejected
        result.errors = (result.errors + here.errors)[:5]
        rows.extend(here_rows)
    return result, rows


async def _map_here(receiver: Receiver, raw: bytes, content_encoding: str,
                    encoding: str) -> tuple[TraceResult, EventRows]:
    """:func:`_map_traces` on the receiver's mapping thread, with the join buffer at hand."""
    result, rows = await _guarded(
        receiver, lambda: traces_rows(raw, content_encoding, encoding, receiver.join, hold=HOLD_SECONDS > 0))
    if result.pending:
        # Spans still awaiting their completion's log records: wait a little, unanswered.
        receiver.stats["spans_held"] += len(result.pending)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_SECONDS
        while loop.time() < deadline and not all(receiver.join.has_output(p.key) for p in result.pending):
            await asyncio.sleep(0.02)
        held = finish_spans(result.pending, receiver.join)
        rows.extend(await _guarded(receiver, lambda: record_rows(held)))
    return result, rows


async def _logs(receiver: Receiver, raw: bytes, content_encoding: str, encoding: str,
                principal: Principal) -> Any:
    def decode_and_map():
        request = decode(raw, content_encoding, encoding, ExportLogsServiceRequest)
        result = map_logs(request, join=receiver.join)
        return result, record_rows(result.records)

    result = await _map_and_commit(receiver, principal, lambda: _guarded(receiver, decode_and_map))
    stats = receiver.stats
    stats["log_records_received"] += result.log_records
    stats["log_records_ignored_not_genai"] += result.ignored
    stats["content_joined"] += result.joined
    stats["content_events_late"] += result.late
    stats["content_redundant"] += result.redundant
    stats["log_records_rejected"] += result.rejected
    response = ExportLogsServiceResponse()
    if result.rejected:
        response.partial_success.rejected_log_records = result.rejected
        response.partial_success.error_message = "; ".join(result.errors)
    return response


async def _guarded(receiver: Receiver, work):
    """Run decoding and mapping work on the receiver's mapping thread, turning input errors into a 400."""
    try:
        return await asyncio.get_running_loop().run_in_executor(receiver.mapper, work)
    except OtlpError:
        raise
    except InputError as exc:
        raise OtlpError(400, str(exc)) from None


# --------------------------------------------------------------------------- decoding


def _encoding_of(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = _MEDIA_TYPES.get(content_type)
    if encoding is None:
        raise OtlpError(415, f"Content-Type {content_type or '(none)'!r} is not supported; "
                             "send application/x-protobuf or application/json")
    return encoding


async def _read_capped(request: Request) -> bytes | bytearray:
    try:
        return await read_capped(request, MAX_BODY_BYTES)
    except TooLargeError as exc:
        raise OtlpError(413, str(exc)) from None


# --------------------------------------------------------------------------- responses


def _reply(encoding: str, message: Any) -> Response:
    if encoding == JSON:
        body = json_format.MessageToJson(message, indent=None).encode()
    else:
        body = message.SerializeToString()
    return Response(body, status_code=200, media_type=_RESPONSE_TYPES[encoding])


def _error_reply(encoding: str, error: OtlpError) -> Response:
    status = status_pb2.Status(code=_RPC_CODES.get(error.status, 2), message=str(error))
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    if encoding == JSON:
        body = json_format.MessageToJson(status, indent=None).encode()
    else:
        body = status.SerializeToString()
    return Response(body, status_code=error.status, media_type=_RESPONSE_TYPES[encoding], headers=headers)


