"""dashcam's own JSON API under ``/api/v1``: ingest invocation records, run queries, list log groups,
open one event by its ``@ptr``.

Success bodies are ``{"data": ...}``; errors are ``{"error": {"code", "message", ...}}`` (see
:func:`dashcam.api.app.error_body`).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlglot import exp
from starlette.concurrency import run_in_threadpool

from dashcam.api.auth import current_principal
from dashcam.api.bodies import MAX_BODY_BYTES, read_capped
from dashcam.errors import ForbiddenError, InputError, NotFoundError, TooLargeError
from dashcam.ingest_group import GroupCommitter
from dashcam.keys import Principal
from dashcam.query.compiler import parse_ptr
from dashcam.query.dialects import and_, col, get_dialect, lit
from dashcam.query.results import decode_value
from dashcam.records import RECORD_FIELDS, check_log_group_name
from dashcam.service import DEFAULT_QUERY_LIMIT, Dashcam
from dashcam.sources.lines import frame_lines
from dashcam.store.schema import EVENTS_TABLE
from dashcam.timespec import format_ms, parse_time

router = APIRouter(prefix="/api/v1", tags=["dashcam"])

DEFAULT_API_LOG_GROUP = "/dashcam/api"
API_SOURCE = "api"


class QueryRequest(BaseModel):
    """A Logs Insights query and the events it covers."""

    query: str = Field(..., description="Logs Insights query text", max_length=10_000)
    logGroups: list[str] | None = Field(None, description="Log groups to query; all when omitted")
    start: str | int | None = Field(None, description="ISO-8601, epoch seconds, or relative (1h, 7d)")
    end: str | int | None = Field(None, description="Same forms as start")
    limit: int = Field(DEFAULT_QUERY_LIMIT, ge=1, le=100_000)


def _dashcam(request: Request) -> Dashcam:
    return request.app.state.dashcam


async def read_body(request: Request) -> bytes | bytearray:
    """The request body, gunzipped when ``Content-Encoding: gzip``; TooLargeError past 64 MiB
    (sent or decompressed), InputError when corrupt."""
    raw = await read_capped(request, MAX_BODY_BYTES)
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "gzip":
        try:
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
            data = inflater.decompress(raw, MAX_BODY_BYTES + 1)
        except zlib.error as exc:
            raise InputError(f"the body is not valid gzip ({exc})") from None
        if not inflater.eof and len(data) <= MAX_BODY_BYTES:
            raise InputError("the gzip body ends early (truncated)")
    elif encoding in ("identity", ""):
        data = raw
    else:
        raise InputError(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    if len(data) > MAX_BODY_BYTES:
        raise TooLargeError(f"the body is larger than {MAX_BODY_BYTES >> 20} MiB once decompressed")
    return data


@router.post("/records", summary="Ingest invocation records")
async def ingest_records(
    request: Request,
    logGroup: str = Query(DEFAULT_API_LOG_GROUP, description="Log group to write to"),
    logStream: str = Query("default", description="Log stream to write to"),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Store Bedrock-shaped invocation records: a JSON array (or one object), or NDJSON.

    The answer comes after the records are committed. Records already stored (the same JSON in
    the same group) are counted as duplicates, not stored again; records that cannot be stored
    are listed by their 0-based position with the reason, and the rest are stored.
    """
    check_log_group_name(logGroup)
    principal.require("ingest", logGroup)
    body = await read_body(request)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    lines = _as_lines(body, ndjson=content_type in ("application/x-ndjson", "application/jsonl", "text/plain"))
    async with request.app.state.write_gate.slot():
        framed = await run_in_threadpool(frame_lines, lines)
        outcome = await asyncio.wrap_future(_committer(request.app).submit(logGroup, logStream, framed))
    return {"data": {
        "written": outcome.written,
        "duplicates": outcome.duplicates,
        "rejected": [{"index": index, "reason": reason} for index, reason in outcome.rejected],
    }}


def _committer(app: Any) -> GroupCommitter:
    """The app's one committer of ingest requests (see :mod:`dashcam.ingest_group`), made on first use."""
    committer = getattr(app.state, "ingest_committer", None)
    if committer is None:
        committer = app.state.ingest_committer = GroupCommitter(lambda: app.state.dashcam.store, source=API_SOURCE)
    return committer


def _as_lines(body: bytes, *, ndjson: bool) -> bytes:
    """One serialized record per line: NDJSON as it is (the last line's feed optional), a JSON
    array re-serialized."""
    if ndjson:
        return body
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the body is not valid JSON ({exc}); send a JSON array or NDJSON") from None
    items = decoded if isinstance(decoded, list) else [decoded]
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


@router.post("/query", summary="Run a Logs Insights query and wait for its rows")
def run_query(
    request: Request, body: QueryRequest, principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    """Rows as objects with keys in result order; numbers as numbers; timestamps as text.
    ``unmask()`` columns show originals to admins of the events' groups (403 for other keys)."""
    result = _dashcam(request).query(
        body.query,
        log_groups=readable_groups(_dashcam(request), principal, body.logGroups),
        start_ms=_time(body.start),
        end_ms=_time(body.end),
        limit=body.limit,
        principal=principal,
    )
    return {"data": {"columns": result.columns, "rows": result.rows,
                     "statistics": {"seconds": round(result.seconds, 6), "rows": len(result.rows)}}}


@router.get("/log-groups", summary="List log groups")
def log_groups(
    request: Request, prefix: str = "", principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    """Log groups with their creation time, retention, event count and stored bytes."""
    principal.require("read")
    return {"data": [
        {"name": g.name, "createdMs": g.created_ms, "retentionInDays": g.retention_days,
         "events": g.events, "storedBytes": g.stored_bytes}
        for g in _dashcam(request).log_groups(prefix) if principal.may("read", g.name)
    ]}


def readable_groups(dashcam: Dashcam, principal: Principal, asked: list[str] | None) -> list[str] | None:
    """The log groups a query may cover: those asked for (each must be readable), or when none are
    named, every group the principal may read (None, meaning all, for an unrestricted reader)."""
    principal.require("read")
    if asked:
        for group in asked:
            principal.require("read", group)
        return asked
    if principal.log_groups == "*":
        return None
    allowed = [g.name for g in dashcam.log_groups() if principal.may("read", g.name)]
    if not allowed:
        raise ForbiddenError(f"key {principal.key_id} may not read any existing log group")
    return allowed


def _time(value: str | int | None) -> int | None:
    if value is None:
        return None
    return parse_time(str(value))


# ---------------------------------------------------------------------- asynchronous queries


class StartQueryRequest(QueryRequest):
    """A query to run in the background."""

    pointers: bool = Field(False, description="End event rows with @ptr, the pointer GET /api/v1/event takes")


def _job_body(job: Any) -> dict[str, Any]:
    """A query job in the native shape: rows only once it is complete."""
    from dashcam.api.app import error_body
    from dashcam.query_jobs import COMPLETE

    body: dict[str, Any] = {"queryId": job.id, "status": job.status, "query": job.text,
                            "createdMs": job.created_ms}
    if job.status == COMPLETE:
        body.update(columns=job.columns, rows=job.rows,
                    statistics={"seconds": round(job.seconds or 0.0, 6), "rows": len(job.rows)})
    if job.error is not None:
        body["error"] = error_body(job.error)["error"]
    return body


@router.post("/queries", status_code=202, summary="Start a Logs Insights query; poll it by its id")
def start_query(
    request: Request, body: StartQueryRequest, principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    """Compile the query now (a malformed one is a 400 here) and run it in the background.

    Poll ``GET /api/v1/queries/{queryId}`` until ``status`` is ``Complete`` (or ``Failed``, ``Timeout``,
    ``Cancelled``). Finished results are kept for an hour. With ``pointers``, event results (no
    ``stats``) end with an ``@ptr`` column that ``GET /api/v1/event`` opens.
    """
    job = request.app.state.queries.start(
        body.query, log_groups=readable_groups(_dashcam(request), principal, body.logGroups),
        start_ms=_time(body.start), end_ms=_time(body.end), limit=body.limit,
        pointers=body.pointers, principal=principal,
    )
    return {"data": _job_body(job)}


@router.get("/queries/{query_id}", summary="A started query: its status and, when complete, its rows")
def get_query(
    request: Request, query_id: str, principal: Principal = Depends(current_principal),
    wait: float = Query(0, ge=0, le=20, description="Seconds to wait for the query to finish before answering"),
) -> dict[str, Any]:
    """Status ``Scheduled``, ``Running``, ``Complete`` (with columns, rows, statistics), ``Failed``
    (with the error), ``Cancelled`` (stopped) or ``Timeout`` (ran past the server's query time limit,
    an hour); 404 for an unknown or expired id. With ``wait``, the answer
    comes as soon as the query finishes (or after that many seconds), so a client need not poll fast."""
    principal.require("read")
    job = request.app.state.queries.get(query_id)
    # A reader limited to some groups sees only queries over groups it may read.
    if principal.log_groups != "*" and (not job.log_groups or not all(principal.may("read", g) for g in job.log_groups)):
        raise ForbiddenError(f"key {principal.key_id} may not read the log groups of query {query_id}")
    if wait:
        job.done.wait(wait)
    job.require_readable(principal)  # a query that unmasks shows originals to those who may unmask only
    return {"data": _job_body(job)}


# ---------------------------------------------------------------------- one event


@router.get("/event", summary="One event by the @ptr a query returned")
def get_event(
    request: Request,
    ptr: str = Query(..., description="An @ptr value from a query result", max_length=1100),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """The event's system fields, its record as stored (``record``: the parsed ``@message``, or
    null when it is not JSON) and the fields dashcam derived at ingest (``derived``)."""
    try:
        group, event_id = parse_ptr(ptr)
    except ValueError:
        raise InputError(f"{ptr!r} is not an event pointer (a query's @ptr value)") from None
    principal.require("read", group)
    store = _dashcam(request).store
    dialect = get_dialect(store.dialect)
    select = (
        exp.select(dialect.epoch_ms(col("ts")), dialect.epoch_ms(col("ingestion_time")), col("log_stream"),
                   col("message"), *(col(f.column) for f in RECORD_FIELDS))
        .from_(exp.Table(this=exp.to_identifier(EVENTS_TABLE)))
        .where(and_(exp.EQ(this=col("log_group"), expression=lit(group)),
                    exp.EQ(this=col("event_id"), expression=lit(event_id))))
        .limit(lit(1))
    )
    rows = store.execute(dialect.sql(select))
    if not rows:
        raise NotFoundError(f"no event {ptr!r} (it may have expired under the log group's retention)")
    timestamp, ingested, stream, message, *values = rows[0]
    try:
        record = orjson.loads(message)
    except orjson.JSONDecodeError:
        record = None
    return {"data": {
        "ptr": ptr, "logGroup": group, "logStream": stream,
        "timestamp": format_ms(int(timestamp)), "ingestionTime": format_ms(int(ingested)),
        "message": message, "record": record,
        "derived": {f.path: decode_value(v) for f, v in zip(RECORD_FIELDS, values) if f.derived},
    }}


# ---------------------------------------------------------------------- metrics


class MetricStatBody(BaseModel):
    """One metric aggregated per period, as :class:`dashcam.metrics.engine.MetricStat`."""

    model_config = {"populate_by_name": True}

    metric_name: str = Field(..., alias="metricName", description="Invocations, InvocationLatency, CostUSD, ...")
    period: int = Field(60, description="Seconds, a multiple of 60")
    stat: str = Field("Sum", description="Sum, Average, SampleCount, Minimum, Maximum, p99, IQM, TM(10%:90%), ...")
    dimensions: dict[str, str] | list[tuple[str, str]] = Field(
        default_factory=dict, description='{"ModelId": "..."} or [["ModelId", "..."]]; none means all records')
    namespace: str = "AWS/Bedrock"


class MetricQueryBody(BaseModel):
    """One query, as :class:`dashcam.metrics.engine.MetricQuery`: a metric or an expression."""

    model_config = {"populate_by_name": True}

    id: str
    metric_stat: MetricStatBody | None = Field(None, alias="metricStat")
    expression: str | None = Field(None, description="Metric math over other ids, e.g. m2/m1*100")
    label: str | None = None
    return_data: bool = Field(True, alias="returnData")


class MetricsRequest(BaseModel):
    """Queries and the time range they cover (default: the last 3 hours)."""

    model_config = {"populate_by_name": True}

    queries: list[MetricQueryBody] = Field(..., min_length=1, max_length=500)
    start: str | int | None = Field(None, description="ISO-8601, epoch seconds, or relative (1h, 7d); default 3h ago")
    end: str | int | None = Field(None, description="Same forms as start; default now")
    log_groups: list[str] | None = Field(None, alias="logGroups", description="Log groups; all readable when omitted")


def _metric_query(body: MetricQueryBody) -> Any:
    from dashcam.metrics.engine import MetricQuery, MetricStat

    stat = None
    if body.metric_stat is not None:
        given = body.metric_stat
        pairs = given.dimensions.items() if isinstance(given.dimensions, dict) else given.dimensions
        stat = MetricStat(given.metric_name, given.period, given.stat, tuple((n, v) for n, v in pairs), given.namespace)
    return MetricQuery(body.id, stat, body.expression, body.label, body.return_data)


@router.post("/metrics", summary="CloudWatch-style metrics: GetMetricData over the stored records")
def metric_data(request: Request, body: MetricsRequest,
                principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """One series per query (timestamps are period starts in epoch ms, ascending); a period
    without samples has no datapoint. The metric table is in docs/metrics.md."""
    dashcam = _dashcam(request)
    end_ms = _time(body.end) if body.end is not None else parse_time("now")
    start_ms = _time(body.start) if body.start is not None else end_ms - 3 * 3_600_000
    results = dashcam.metric_data([_metric_query(q) for q in body.queries], start_ms, end_ms,
                                  log_groups=readable_groups(dashcam, principal, body.log_groups))
    return {"data": {"start": start_ms, "end": end_ms, "results": [
        {"id": r.id, "label": r.label, "timestamps": r.timestamps, "values": r.values, "statusCode": r.status_code,
         "messages": r.messages} for r in results]}}


@router.get("/metrics/list", summary="Metrics and dimension combinations that have data")
def metric_list(
    request: Request,
    metricName: str | None = Query(None, description="Only this metric"),
    dimension: list[str] = Query([], description="Name or Name=Value (repeatable): only combinations having it"),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Every metric without dimensions and by ModelId, Operation, Caller and App; a dimension
    filter may name others (UserId, requestMetadata keys)."""
    from dashcam.metrics.definitions import METRICS, NAMESPACE

    dashcam = _dashcam(request)
    filters = [(d.split("=", 1)[0], d.split("=", 1)[1] if "=" in d else None) for d in dimension]
    found = dashcam.list_metrics(metricName, filters, log_groups=readable_groups(dashcam, principal, None))
    return {"data": [
        {"namespace": NAMESPACE, "metricName": name, "unit": METRICS[name].unit,
         "dimensions": [{"name": n, "value": v} for n, v in dims]}
        for name, dims in found]}
