"""CloudWatch Logs API: Logs Insights queries (StartQuery, GetQueryResults, StopQuery, DescribeQueries).

Queries run on the shared :class:`~dashcam.query_jobs.QueryJobs` registry with ``@ptr`` and
statistics on. ``GetQueryResults`` answers as AWS does: every value a string, missing values
left out of their row, statistics as numbers.

A query using ``unmask()`` (CloudWatch's ``logs:Unmask``) needs an admin key on the groups it
reads: others get AccessDeniedException from ``StartQuery``, and from ``GetQueryResults`` of
someone else's unmasking query.
"""

from __future__ import annotations

from typing import Any

from dashcam.api.awsjson import AwsError, Member
from dashcam.api.cwlogs_groups import (
    GROUP_IDENTIFIER, GROUP_NAME, TOKEN, Context, Handler, caller, group_from_identifier, group_retention, page,
)
from dashcam.errors import ForbiddenError, NotFoundError, QuerySyntaxError
from dashcam.query import ast
from dashcam.query.parser import parse
from dashcam.query_jobs import FINISHED, STATUSES, QueryJob

MAX_QUERY_GROUPS = 50
DEFAULT_LIMIT = 10_000
QUERY_LANGUAGES = ("CWLI", "SQL", "PPL")
_ZERO_STATS = {"recordsMatched": 0.0, "recordsScanned": 0.0, "estimatedRecordsSkipped": 0.0, "bytesScanned": 0.0,
               "estimatedBytesSkipped": 0.0, "logGroupsScanned": 0.0}


START_QUERY = {
    "queryLanguage": Member("string", enum=QUERY_LANGUAGES),
    "logGroupName": GROUP_NAME,
    "logGroupNames": Member("list", high=MAX_QUERY_GROUPS, items=GROUP_NAME),
    "logGroupIdentifiers": Member("list", high=MAX_QUERY_GROUPS, items=GROUP_IDENTIFIER),
    "startTime": Member("long", True, low=0),
    "endTime": Member("long", True, low=0),
    "queryString": Member("string", True, 0, 10_000),
    "limit": Member("long", low=1, high=100_000),
}


def start_query(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Start a Logs Insights query over the named groups (or SOURCE), ``startTime``..``endTime`` in
    epoch seconds, both inclusive; MalformedQueryException with line and column for bad text."""
    if (params.get("queryLanguage") or "CWLI") != "CWLI":
        raise AwsError("InvalidParameterException",
                       f"queryLanguage {params['queryLanguage']} is not supported; dashcam runs CWLI queries.")
    text = params["queryString"]
    try:
        query = parse(text)
    except QuerySyntaxError as exc:
        raise malformed(text, exc) from None
    given = [k for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if params.get(k)]
    has_source = any(isinstance(c, ast.Source) for c in query.commands)
    if len(given) > 1 or (not given and not has_source):
        raise AwsError("InvalidParameterException", "Specify exactly one of logGroupName, logGroupNames and "
                       "logGroupIdentifiers, or select log groups with SOURCE in the query.")
    if given and has_source:
        raise AwsError("InvalidParameterException",
                       "A query with SOURCE selects its own log groups; do not also name them.")
    if given == ["logGroupName"]:
        groups = [params["logGroupName"]]
    elif given == ["logGroupNames"]:
        groups = list(params["logGroupNames"])
    elif given:
        groups = [group_from_identifier(i) for i in params["logGroupIdentifiers"]]
    else:
        groups = []
    for group in groups:
        try:
            group_retention(ctx, group)
        except AwsError:
            raise AwsError("ResourceNotFoundException", f"Log group '{group}' does not exist.") from None
    start, end = params["startTime"], params["endTime"]
    if end < start:
        raise AwsError("InvalidParameterException", "endTime must not be before startTime.")
    try:
        job = ctx.jobs.start(text, log_groups=list(dict.fromkeys(groups)) or None, start_ms=start * 1000,
                             end_ms=end * 1000 + 999, limit=params.get("limit") or DEFAULT_LIMIT,
                             pointers=True, statistics=True, principal=caller(ctx))
    except QuerySyntaxError as exc:
        raise malformed(text, exc) from None
    except ForbiddenError as exc:
        raise AwsError("AccessDeniedException", str(exc)) from None
    return {"queryId": job.id}


def malformed(text: str, error: QuerySyntaxError) -> AwsError:
    """MalformedQueryException with AWS's ``queryCompileError`` (character offsets) and line/column."""
    lines = text.split("\n")
    offset = sum(len(line) + 1 for line in lines[:max(error.line - 1, 0)]) + max(error.column - 1, 0)
    offset = min(offset, len(text))
    return AwsError("MalformedQueryException", str(error), queryCompileError={
        "location": {"startCharOffset": offset, "endCharOffset": min(offset + 1, len(text))},
        "message": error.detail,
    })


GET_QUERY_RESULTS = {
    "queryId": Member("string", True, 0, 256),
    "nextToken": TOKEN,
    "maxItems": Member("long", low=0, high=10_000),
}


def get_query_results(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """The query's status, statistics and (once complete) its rows as field/value string pairs."""
    job = _job(ctx, params["queryId"])
    if job.compiled.unmasks:  # its rows hold originals: only for those who may unmask them
        try:
            job.require_readable(caller(ctx))
        except ForbiddenError as exc:
            raise AwsError("AccessDeniedException", str(exc)) from None
    rows = job.rows if job.status in FINISHED else []
    chunk, token = page(rows, params, f"results:{job.id}", limit_key="maxItems", default=10_000)
    results = [[{"field": name, "value": as_text(value)} for name, value in row.items() if value is not None]
               for row in chunk]
    response: dict[str, Any] = {
        "queryLanguage": "CWLI",
        "results": results,
        "statistics": job.statistics or dict(_ZERO_STATS),
        "status": job.status,
    }
    if token:
        response["nextToken"] = token
    return response


def as_text(value: Any) -> str:
    """A result value as GetQueryResults prints it."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    return str(value)


STOP_QUERY = {"queryId": Member("string", True, 0, 256)}


def stop_query(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Cancel a scheduled or running query; ``success`` is false when it had already finished."""
    _job(ctx, params["queryId"])
    return {"success": ctx.jobs.stop(params["queryId"])}


DESCRIBE_QUERIES = {
    "logGroupName": GROUP_NAME,
    "status": Member("string", enum=STATUSES + ("Unknown",)),
    "maxResults": Member("long", low=1, high=1000),
    "nextToken": TOKEN,
    "queryLanguage": Member("string", enum=QUERY_LANGUAGES),
}


def describe_queries(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Recent queries, newest first (finished ones are kept for an hour)."""
    jobs = ctx.jobs.list(log_group=params.get("logGroupName"), status=params.get("status"))
    if params.get("queryLanguage") not in (None, "CWLI"):
        jobs = []
    chunk, token = page(jobs, params, "queries", limit_key="maxResults", default=1000)
    queries = [_describe(job) for job in chunk]
    return {"queries": queries, **({"nextToken": token} if token else {})}


def _describe(job: QueryJob) -> dict[str, Any]:
    item: dict[str, Any] = {
        "queryLanguage": "CWLI",
        "queryId": job.id,
        "queryString": job.text,
        "status": job.status,
        "createTime": job.created_ms,
    }
    if job.log_groups:
        item["logGroupName"] = job.log_groups[0]
    if job.seconds is not None:
        item["queryDuration"] = int(job.seconds * 1000)
    if job.statistics:
        item["bytesScanned"] = job.statistics["bytesScanned"]
    return item


def _job(ctx: Context, query_id: str) -> QueryJob:
    try:
        return ctx.jobs.get(query_id)
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", f"Query {query_id} does not exist.") from None


OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    "StartQuery": (START_QUERY, start_query),
    "GetQueryResults": (GET_QUERY_RESULTS, get_query_results),
    "StopQuery": (STOP_QUERY, stop_query),
    "DescribeQueries": (DESCRIBE_QUERIES, describe_queries),
}
