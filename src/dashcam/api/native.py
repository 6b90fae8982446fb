"""dashcam's own JSON API under ``/api/v1``: ingest invocation records, run queries, list log groups.

Success bodies are ``{"data": ...}``; errors are ``{"error": {"code", "message", ...}}`` (see
:func:`dashcam.api.app.error_body`).
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from dashcam.api.auth import current_principal
from dashcam.errors import ForbiddenError, InputError
from dashcam.keys import Principal
from dashcam.ingest import BatchWriter
from dashcam.records import check_log_group_name
from dashcam.service import DEFAULT_QUERY_LIMIT, Dashcam
from dashcam.sources.lines import frame_lines
from dashcam.timespec import parse_time

router = APIRouter(prefix="/api/v1", tags=["dashcam"])

MAX_BODY_BYTES = 64 << 20  # after decompression
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


async def read_body(request: Request) -> bytes:
    """The request body, gunzipped when ``Content-Encoding: gzip``; InputError when too large or corrupt."""
    raw = await request.body()
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
        raise InputError(f"the body is larger than {MAX_BODY_BYTES >> 20} MiB")
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
    dashcam = _dashcam(request)

    def commit() -> tuple[Any, list]:
        writer = BatchWriter(dashcam.store, source=API_SOURCE)
        with writer:
            framed = frame_lines(b"\n".join(lines) + b"\n") if lines else None
            if framed:
                writer.add_lines(logGroup, logStream, framed.array, framed.items, "body", 0)
        return writer.result, writer.rejections

    async with request.app.state.write_gate.slot():
        result, rejections = await run_in_threadpool(commit)
    return {"data": {
        "written": result.written,
        "duplicates": result.duplicates,
        "rejected": [{"index": r.line, "reason": r.reason} for r in rejections],
    }}


def _as_lines(body: bytes, *, ndjson: bool) -> list[bytes]:
    """One serialized record per element: NDJSON lines as they are, a JSON array re-serialized."""
    if ndjson:
        return body.split(b"\n") if body.strip() else []
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the body is not valid JSON ({exc}); send a JSON array or NDJSON") from None
    items = decoded if isinstance(decoded, list) else [decoded]
    return [orjson.dumps(item) for item in items]


@router.post("/query", summary="Run a Logs Insights query and wait for its rows")
def run_query(
    request: Request, body: QueryRequest, principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    """Rows as objects with keys in result order; numbers as numbers; timestamps as text."""
    result = _dashcam(request).query(
        body.query,
        log_groups=readable_groups(_dashcam(request), principal, body.logGroups),
        start_ms=_time(body.start),
        end_ms=_time(body.end),
        limit=body.limit,
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
    request: Request, body: QueryRequest, principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    """Compile the query now (a malformed one is a 400 here) and run it in the background.

    Poll ``GET /api/v1/queries/{queryId}`` until ``status`` is ``Complete`` (or ``Failed``,
    ``Cancelled``). Finished results are kept for an hour.
    """
    job = request.app.state.queries.start(
        body.query, log_groups=readable_groups(_dashcam(request), principal, body.logGroups),
        start_ms=_time(body.start), end_ms=_time(body.end), limit=body.limit,
    )
    return {"data": _job_body(job)}


@router.get("/queries/{query_id}", summary="A started query: its status and, when complete, its rows")
def get_query(request: Request, query_id: str, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Status ``Scheduled``, ``Running``, ``Complete`` (with columns, rows, statistics), ``Failed``
    (with the error) or ``Cancelled``; 404 for an unknown or expired id."""
    principal.require("read")
    job = request.app.state.queries.get(query_id)
    # A reader limited to some groups sees only queries over groups it may read.
    if principal.log_groups != "*" and (not job.log_groups or not all(principal.may("read", g) for g in job.log_groups)):
        raise ForbiddenError(f"key {principal.key_id} may not read the log groups of query {query_id}")
    return {"data": _job_body(job)}
