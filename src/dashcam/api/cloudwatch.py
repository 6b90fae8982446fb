"""The CloudWatch API (JSON 1.0, ``X-Amz-Target: GraniteServiceVersion20100801.*``) on ``POST /``.

boto3's ``cloudwatch`` client (which speaks awsJson 1.0 to CloudWatch) works against dashcam with
``endpoint_url``: ``GetMetricData`` (metric math, ``ScanBy``, ``MaxDatapoints`` and ``NextToken``
paging), ``GetMetricStatistics`` and ``ListMetrics`` over the ``AWS/Bedrock`` metrics that
:mod:`dashcam.metrics` derives from the stored records, plus the alarm and dashboard operations of
:mod:`dashcam.api.cloudwatch_alarms` and :mod:`dashcam.api.cloudwatch_dashboards` when installed.
The route itself is shared with CloudWatch Logs: :mod:`dashcam.api.cwlogs` dispatches here by the
target prefix.

A request goes through the same steps as a CloudWatch Logs one: content type and target, the
SigV4 check and the caller's role (:func:`authorize`), members against the operation's shape,
then the handler, off the event loop. Timestamps travel as epoch seconds, as botocore sends them.

Errors: ``{"__type": ..., "message": ...}`` plus the ``x-amzn-query-error: <code>;Sender`` header
CloudWatch sends because it is "awsQueryCompatible": botocore then reports the error under the
code the older query API used (``InvalidParameterValue``, ``MissingParameter``,
``InvalidParameterCombination``, ...), exactly as it does against AWS, and
``client.exceptions.InvalidParameterValueException`` catches it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from dashcam.api.auth import current_principal
from dashcam.api.awsjson import AwsError, Member, call_handler, decode_token, encode_token, read_members, region_of, validate
from dashcam.api.cwlogs_groups import Context, Handler
from dashcam.errors import (
    AlreadyExistsError,
    AuthError,
    ConfigError,
    DashcamError,
    ForbiddenError,
    InputError,
    NotFoundError,
    QueryError,
    StoreBusyError,
)
from dashcam.keys import Principal
from dashcam.metrics.definitions import NAMESPACE
from dashcam.metrics.engine import MetricQuery, MetricSeries, MetricStat
from dashcam.metrics.statistics import BASIC
from dashcam.query_jobs import QueryJobs

log = logging.getLogger("dashcam.cloudwatch")

TARGET_PREFIX = "GraniteServiceVersion20100801."
CONTENT_TYPE = "application/x-amz-json-1.0"
ACCEPTED_CONTENT_TYPES = frozenset({CONTENT_TYPE, "application/x-amz-json-1.1", "application/json"})
# Modules that add operations to this router (each with OPERATIONS and NEEDS), when installed.
EXTENSION_MODULES = ("dashcam.api.cloudwatch_alarms", "dashcam.api.cloudwatch_dashboards")

DEFAULT_MAX_DATAPOINTS = 100_800
MAX_STATISTICS_DATAPOINTS = 1_440  # GetMetricStatistics answers at most this many periods
LIST_PAGE = 500
RECENTLY_ACTIVE_MS = 3 * 3_600_000
_START_AFTER_END = "The parameter StartTime must be less than the parameter EndTime."



@functools.cache
def _query_codes() -> dict[str, str]:
    """CloudWatch's error shapes by name -> the code its query API used (botocore's service model)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("cloudwatch")
    return {shape.name: shape.metadata["error"]["code"] for shape in model.error_shapes
            if shape.metadata.get("error", {}).get("code")}


def query_code(error_type: str) -> str:
    """The code botocore will report for an error sent as ``__type`` ``error_type``."""
    return _query_codes().get(error_type, error_type)


# dashcam errors a handler lets through, as CloudWatch error codes (most specific first).
_CODES: tuple[tuple[type[BaseException], str, int], ...] = (
    (NotFoundError, "ResourceNotFound", 404),
    (AlreadyExistsError, "InvalidParameterValueException", 400),
    (StoreBusyError, "ServiceUnavailableException", 503),
    (InputError, "InvalidParameterValueException", 400),
    (ConfigError, "InvalidParameterValueException", 400),
    (QueryError, "InvalidParameterValueException", 400),
    (DashcamError, "InternalServiceFault", 500),
)


@dataclass
class MetricsContext(Context):
    """A handler's context, plus the log groups the caller may read (None: all)."""

    log_groups: list[str] | None = None
    principal: Principal | None = None


# ---------------------------------------------------------------------- shapes

_DIMENSION = Member("structure", fields={
    "Name": Member("string", required=True, low=1, high=255),
    "Value": Member("string", required=True, low=1, high=1024),
})
_DIMENSIONS = Member("list", high=30, items=_DIMENSION)
_DIMENSION_FILTERS = Member("list", high=10, items=Member("structure", fields={
    "Name": Member("string", required=True, low=1, high=255),
    "Value": Member("string", low=1, high=1024),
}))
_METRIC = Member("structure", fields={
    "Namespace": Member("string", low=1, high=255),
    "MetricName": Member("string", low=1, high=255),
    "Dimensions": _DIMENSIONS,
})
_QUERY = Member("structure", fields={
    "Id": Member("string", required=True, low=1, high=255),
    "MetricStat": Member("structure", fields={
        "Metric": Member("structure", required=True, fields=_METRIC.fields),
        "Period": Member("long", required=True, low=1),
        "Stat": Member("string", required=True),
        "Unit": Member("string"),
    }),
    "Expression": Member("string", low=1, high=2048),
    "Label": Member("string"),
    "ReturnData": Member("boolean"),
    "Period": Member("long", low=1),
    "AccountId": Member("string", low=1, high=255),
})
GET_METRIC_DATA = {
    "MetricDataQueries": Member("list", required=True, high=500, items=_QUERY),
    "NextToken": Member("string"),
    "ScanBy": Member("string", enum=("TimestampDescending", "TimestampAscending")),
    "MaxDatapoints": Member("long", low=1),
    "LabelOptions": Member("structure", fields={"Timezone": Member("string")}),
}
GET_METRIC_STATISTICS = {
    "Namespace": Member("string", required=True, low=1, high=255),
    "MetricName": Member("string", required=True, low=1, high=255),
    "Dimensions": _DIMENSIONS,
    "Period": Member("long", required=True, low=1),
    "Statistics": Member("list", low=1, high=5, items=Member("string", enum=BASIC)),
    "ExtendedStatistics": Member("list", low=1, high=10, items=Member("string")),
    "Unit": Member("string"),
}
LIST_METRICS = {
    "Namespace": Member("string", low=1, high=255),
    "MetricName": Member("string", low=1, high=255),
    "Dimensions": _DIMENSION_FILTERS,
    "NextToken": Member("string"),
    "RecentlyActive": Member("string", enum=("PT3H",)),
    "IncludeLinkedAccounts": Member("boolean"),
    "OwningAccount": Member("string"),
}
# Members that are timestamps (validated here: the shapes above have no timestamp kind).
_TIMES = {"GetMetricData": ("StartTime", "EndTime"), "GetMetricStatistics": ("StartTime", "EndTime")}


# ---------------------------------------------------------------------- request plumbing


def time_member_ms(params: dict[str, Any], name: str) -> int:
    """A timestamp member in epoch ms: epoch seconds as botocore sends them, or ISO-8601 text."""
    value = params.get(name)
    if value is None:
        raise AwsError("MissingRequiredParameterException", f"The parameter {name} is required.")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value * 1000)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
            return round(parsed.timestamp() * 1000)
    raise AwsError("InvalidParameterValueException",
                   f"The parameter {name} must be a timestamp (epoch seconds or ISO-8601), got {value!r}.")


def _seconds(ms: int) -> int | float:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _digest(params: dict[str, Any]) -> str:
    """What a NextToken is bound to: the request without its token."""
    rest = {k: v for k, v in params.items() if k != "NextToken"}
    return hashlib.sha256(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _offset(params: dict[str, Any], kind: str) -> int:
    token = params.get("NextToken")
    if token is None:
        return 0
    try:
        state = decode_token(token, kind)
    except AwsError:
        state = None
    if not (isinstance(state, dict) and state.get("digest") == _digest(params) and isinstance(state.get("offset"), int)
            and state["offset"] >= 0):
        raise AwsError("InvalidNextToken", "The NextToken is not valid for this request.")
    return state["offset"]


def _dimensions(items: list[dict[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple((d["Name"], d["Value"]) for d in items or [])


# ---------------------------------------------------------------------- operations


def get_metric_data(ctx: MetricsContext, params: dict[str, Any]) -> dict[str, Any]:
    """``GetMetricData``: every query's series, paged by ``MaxDatapoints`` over all results."""
    start_ms, end_ms = time_member_ms(params, "StartTime"), time_member_ms(params, "EndTime")
    if start_ms >= end_ms:
        raise AwsError("InvalidParameterValueException", _START_AFTER_END)
    queries = []
    for item in params["MetricDataQueries"]:
        stat, expression = item.get("MetricStat"), item.get("Expression")
        if (stat is None) == (expression is None):
            raise AwsError("InvalidParameterCombinationException",
                           f"The query {item['Id']!r} must specify exactly one of MetricStat and Expression.")
        metric_stat = None
        if stat is not None:
            metric = stat["Metric"]
            if not metric.get("MetricName"):
                raise AwsError("MissingRequiredParameterException",
                               f"The query {item['Id']!r} must name a MetricName.")
            metric_stat = MetricStat(metric["MetricName"], stat["Period"], stat["Stat"],
                                     _dimensions(metric.get("Dimensions")), metric.get("Namespace") or NAMESPACE)
        queries.append(MetricQuery(item["Id"], metric_stat, expression, item.get("Label"),
                                   item.get("ReturnData", True)))
    results = ctx.dashcam.metric_data(queries, start_ms, end_ms, log_groups=ctx.log_groups)
    descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    return _page(results, descending, params)


def _page(results: list[MetricSeries], descending: bool, params: dict[str, Any]) -> dict[str, Any]:
    """One page of at most ``MaxDatapoints`` datapoints across all results, in result order."""
    limit = params.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS
    offset = _offset(params, "GetMetricData")
    total = sum(len(r.timestamps) for r in results)
    page_end = min(offset + limit, total)
    out, seen = [], 0
    for result in results:
        pairs = list(zip(result.timestamps, result.values))
        if descending:
            pairs.reverse()
        first, last = max(offset - seen, 0), max(min(page_end - seen, len(pairs)), 0)
        chunk = pairs[first:last] if first < len(pairs) else []
        seen += len(pairs)
        out.append({
            "Id": result.id,
            "Label": result.label,
            "Timestamps": [_seconds(t) for t, _ in chunk],
            "Values": [v for _, v in chunk],
            "StatusCode": "PartialData" if last < len(pairs) else result.status_code,
            "Messages": [{"Code": m.get("code", ""), "Value": m.get("value", "")} for m in result.messages],
        })
    body: dict[str, Any] = {"MetricDataResults": out, "Messages": []}
    if page_end < total:
        body["NextToken"] = encode_token("GetMetricData", {"offset": page_end, "digest": _digest(params)})
    return body


def get_metric_statistics(ctx: MetricsContext, params: dict[str, Any]) -> dict[str, Any]:
    """``GetMetricStatistics``: basic xor extended statistics per period (at most 1,440 periods)."""
    start_ms, end_ms = time_member_ms(params, "StartTime"), time_member_ms(params, "EndTime")
    if start_ms >= end_ms:
        raise AwsError("InvalidParameterValueException", _START_AFTER_END)
    basic, extended = params.get("Statistics"), params.get("ExtendedStatistics")
    if (basic is None) == (extended is None):
        raise AwsError("InvalidParameterCombinationException",
                       "Exactly one of the parameters Statistics and ExtendedStatistics must be specified.")
    period = params["Period"]
    if period >= 60 and period % 60 == 0:
        step = period * 1000
        periods = -(-(end_ms - start_ms // step * step) // step)
        if periods > MAX_STATISTICS_DATAPOINTS:
            raise AwsError("InvalidParameterCombinationException",
                           f"You have requested up to {periods:,} datapoints, which exceeds the limit of "
                           f"{MAX_STATISTICS_DATAPOINTS:,}. You may reduce the datapoints requested by increasing "
                           "Period, or decreasing the time range.")
    asked = list(basic or extended)
    points = ctx.dashcam.metric_statistics(
        params["MetricName"], asked, start_ms, end_ms, period, dimensions=_dimensions(params.get("Dimensions")),
        namespace=params["Namespace"], log_groups=ctx.log_groups)
    datapoints = []
    for point in points:
        item: dict[str, Any] = {"Timestamp": _seconds(point.timestamp_ms), "Unit": point.unit}
        if basic:
            item.update(point.statistics)
        else:
            item["ExtendedStatistics"] = point.statistics
        datapoints.append(item)
    return {"Label": params["MetricName"], "Datapoints": datapoints}


def list_metrics(ctx: MetricsContext, params: dict[str, Any]) -> dict[str, Any]:
    """``ListMetrics``: metric and dimension combinations that have data, 500 a page."""
    namespace = params.get("Namespace")
    found: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    if namespace in (None, NAMESPACE):
        filters = [(d["Name"], d.get("Value")) for d in params.get("Dimensions") or []]
        since = int(time.time() * 1000) - RECENTLY_ACTIVE_MS if params.get("RecentlyActive") else None
        found = ctx.dashcam.list_metrics(params.get("MetricName"), filters, log_groups=ctx.log_groups,
                                         since_ms=since)
    offset = _offset(params, "ListMetrics")
    page = found[offset:offset + LIST_PAGE]
    body: dict[str, Any] = {"Metrics": [
        {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": [{"Name": n, "Value": v} for n, v in dims]}
        for name, dims in page]}
    if offset + LIST_PAGE < len(found):
        body["NextToken"] = encode_token("ListMetrics", {"offset": offset + LIST_PAGE, "digest": _digest(params)})
    return body


_OWN_OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    "GetMetricData": (GET_METRIC_DATA, get_metric_data),  # type: ignore[dict-item]
    "GetMetricStatistics": (GET_METRIC_STATISTICS, get_metric_statistics),  # type: ignore[dict-item]
    "ListMetrics": (LIST_METRICS, list_metrics),  # type: ignore[dict-item]
}

# What an operation needs of the caller's role; read unless named (extensions name their own).
_NEEDS: dict[str, str] = {}
_WRITE_PREFIXES = ("Put", "Delete", "Set", "Enable", "Disable", "Tag", "Untag", "Start", "Stop")


@functools.cache
def operations() -> dict[str, tuple[dict[str, Member], Handler]]:
    """Every CloudWatch operation served: the metric ones, and those of the installed
    :data:`EXTENSION_MODULES` (alarms; dashboards: PutDashboard, GetDashboard, ListDashboards,
    DeleteDashboards).

    Built on first use rather than at import, so an extension may import from this module.
    """
    table = dict(_OWN_OPERATIONS)
    for name in EXTENSION_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        extension = importlib.import_module(name)
        table.update(extension.OPERATIONS)
        _NEEDS.update(getattr(extension, "NEEDS", {}))
    return table


def needs(operation: str) -> str:
    """The role an operation needs: ``admin`` for operations that change configuration, else ``read``."""
    if operation in _NEEDS:
        return _NEEDS[operation]
    return "admin" if operation.startswith(_WRITE_PREFIXES) else "read"


# ---------------------------------------------------------------------- the endpoint


async def handle(request: Request) -> Response:
    """One CloudWatch operation, named by the ``X-Amz-Target`` header."""
    request_id = str(uuid.uuid4())
    try:
        operation, params = await parse_request(request)
        ctx = await authorize(request, operation)
        shape, handler = operations()[operation]
        _require(params, shape, _TIMES.get(operation, ()))
        validate(params, shape, code="InvalidParameterValueException")
        body = await run_in_threadpool(_run, handler, ctx, params)
        return _respond(200, body, request_id)
    except AwsError as exc:
        return _respond(exc.status, exc.body(), request_id, exc.code)


async def parse_request(request: Request) -> tuple[str, dict[str, Any]]:
    """The operation a request names and its JSON members; AwsError for anything malformed."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise AwsError("UnsupportedMediaTypeException",
                       f"Content-Type {content_type or '(none)'!r} is not supported; the CloudWatch API takes "
                       f"{CONTENT_TYPE}", status=415)
    target = request.headers.get("x-amz-target", "")
    operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
    if operation not in operations():
        hint = (" dashcam derives its metrics from the invocation records it stores; PutMetricData is not served."
                if operation == "PutMetricData" else "")
        raise AwsError("UnknownOperationException", f"Unknown operation {target!r}.{hint}")
    return operation, await read_members(request)


async def authorize(request: Request, operation: str) -> MetricsContext:
    """Check the SigV4 signature and the caller's role, and build the handler's context.

    Metrics cover only the log groups the caller may read: a key limited to some groups sees
    metrics computed from those groups' records alone.
    """
    try:
        principal = await current_principal(request)
        principal.require(needs(operation))
    except AuthError as exc:
        code = "InvalidSignatureException" if "signature" in str(exc) else "UnrecognizedClientException"
        raise AwsError(code, str(exc), status=403 if code == "InvalidSignatureException" else 400) from None
    except ForbiddenError as exc:
        raise AwsError("AccessDeniedException", str(exc), status=403) from None
    state = request.app.state
    jobs = getattr(state, "queries", None)
    if jobs is None:
        jobs = state.queries = QueryJobs(state.dashcam)
    log_groups = None
    if principal.log_groups != "*":
        log_groups = [g.name for g in state.dashcam.log_groups() if principal.may("read", g.name)]
    return MetricsContext(state.dashcam, jobs, region=region_of(request.headers.get("authorization")),
                          log_groups=log_groups, principal=principal)


def _require(params: dict[str, Any], shape: dict[str, Member], times: tuple[str, ...]) -> None:
    """MissingParameter for a required top-level member that is absent (as CloudWatch reports it)."""
    for name in [n for n, m in shape.items() if m.required] + list(times):
        if params.get(name) is None:
            raise AwsError("MissingRequiredParameterException", f"The parameter {name} is required.")


def _run(handler: Handler, ctx: MetricsContext, params: dict[str, Any]) -> dict[str, Any]:
    """Call ``handler``, turning the dashcam errors it lets through into AWS ones."""
    return call_handler(handler, ctx, params, _CODES, internal_code="InternalServiceFault", log=log)


def _respond(status: int, body: dict[str, Any], request_id: str, code: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if code is not None:
        fault = "Sender" if status < 500 else "Receiver"
        headers["x-amzn-query-error"] = f"{query_code(code)};{fault}"
    return Response(content=orjson.dumps(body), status_code=status, media_type=CONTENT_TYPE, headers=headers)
