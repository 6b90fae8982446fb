"""The CloudWatch Logs API (JSON 1.1, ``X-Amz-Target: Logs_20140328.*``) on ``POST /``.

``POST /`` is shared with the CloudWatch API (``GraniteServiceVersion20100801.*``, in
:mod:`dashcam.api.cloudwatch`): :func:`aws_json` dispatches by the target's prefix.

boto3's ``logs`` client and the AWS CLI work against dashcam with ``endpoint_url`` /
``--endpoint-url``. A request goes through four steps, each in one place:

1. :func:`parse_request`: the content type, the ``X-Amz-Target`` operation, the JSON body.
2. :func:`authorize`: **the** place where signatures are checked (accepts everything today).
3. :func:`dashcam.api.awsjson.validate`: members against the operation's shape, as AWS checks them.
4. The operation's handler (a table: operation name -> (shape, handler)), run off the event loop.

Errors are AWS's: ``{"__type": code, "message": ...}`` with HTTP 400 (5xx for dashcam's own
trouble), so botocore raises ``ClientError`` with the right ``Error.Code``. The operations live
in :mod:`~dashcam.api.cwlogs_groups` (groups, streams, retention), :mod:`~dashcam.api.cwlogs_events`
(PutLogEvents, GetLogEvents, FilterLogEvents, GetLogRecord) and :mod:`~dashcam.api.cwlogs_queries`
(StartQuery, GetQueryResults, StopQuery, DescribeQueries).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from dashcam.api import cwlogs_events, cwlogs_groups, cwlogs_protection, cwlogs_queries
from dashcam.api import cloudwatch
from dashcam.api.auth import current_principal
from dashcam.api.awsjson import AwsError, Member, call_handler, read_members, region_of, validate
from dashcam.api.cwlogs_groups import Context, Handler
from dashcam.errors import (
    AlreadyExistsError,
    AuthError,
    ConfigError,
    DashcamError,
    ForbiddenError,
    InputError,
    NotFoundError,
    OverloadedError,
    QueryError,
    StoreBusyError,
    StoreFullError,
)
from dashcam.query_jobs import QueryJobs, TooManyQueriesError
from dashcam.keys import Principal

log = logging.getLogger("dashcam.cwlogs")

router = APIRouter(tags=["cloudwatch-logs"])

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
# What boto3 and the CLI send, and plain JSON for people trying the API with curl.
ACCEPTED_CONTENT_TYPES = frozenset({CONTENT_TYPE, "application/x-amz-json-1.0", "application/json"})

OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    **cwlogs_groups.OPERATIONS,
    **cwlogs_events.OPERATIONS,
    **cwlogs_queries.OPERATIONS,
    **cwlogs_protection.OPERATIONS,
}

# dashcam errors a handler lets through, as AWS error codes (most specific first).
_CODES: tuple[tuple[type[BaseException], str, int], ...] = (
    (NotFoundError, "ResourceNotFoundException", 400),
    (AlreadyExistsError, "ResourceAlreadyExistsException", 400),
    (TooManyQueriesError, "LimitExceededException", 400),
    (StoreBusyError, "ServiceUnavailableException", 503),
    (StoreFullError, "ServiceUnavailableException", 503),
    (InputError, "InvalidParameterException", 400),
    (ConfigError, "InvalidParameterException", 400),
    (QueryError, "InvalidParameterException", 400),
    (NotImplementedError, "InvalidOperationException", 400),
    (DashcamError, "ServiceUnavailableException", 500),
)


@router.post("/", summary="AWS JSON APIs: CloudWatch Logs (X-Amz-Target: Logs_20140328.<Operation>) "
                          "and CloudWatch (GraniteServiceVersion20100801.<Operation>)")
async def aws_json(request: Request) -> Response:
    """One AWS JSON request, sent to the service its ``X-Amz-Target`` prefix names: CloudWatch
    (:mod:`dashcam.api.cloudwatch`) or, for anything else, CloudWatch Logs, which answers unknown
    targets with ``UnknownOperationException``."""
    if request.headers.get("x-amz-target", "").startswith(cloudwatch.TARGET_PREFIX):
        return await cloudwatch.handle(request)
    return await cloudwatch_logs(request)


async def cloudwatch_logs(request: Request) -> Response:
    """One CloudWatch Logs operation, named by the ``X-Amz-Target`` header."""
    request_id = str(uuid.uuid4())
    try:
        operation, params = await parse_request(request)
        principal = await authorize(request, operation, params)
        shape, handler = OPERATIONS[operation]
        validate(params, shape)
        if operation == "PutLogEvents":
            try:
                async with request.app.state.write_gate.slot():
                    body = await run_in_threadpool(_run, handler, _context(request, principal), params)
            except OverloadedError as exc:
                raise AwsError("ServiceUnavailableException", str(exc), status=503) from None
        else:
            body = await run_in_threadpool(_run, handler, _context(request, principal), params)
        return _respond(200, body, request_id)
    except AwsError as exc:
        return _respond(exc.status, exc.body(), request_id)


async def parse_request(request: Request) -> tuple[str, dict[str, Any]]:
    """The operation a request names and its JSON members; AwsError for anything malformed."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise AwsError("UnsupportedMediaTypeException",
                       f"Content-Type {content_type or '(none)'!r} is not supported; "
                       f"the CloudWatch Logs API takes {CONTENT_TYPE}", status=415)
    target = request.headers.get("x-amz-target", "")
    service, _, operation = target.partition(".")
    if not target:
        raise AwsError("UnknownOperationException",
                       "The X-Amz-Target header is missing; it names the operation, e.g. "
                       f"{TARGET_PREFIX}DescribeLogGroups")
    if f"{service}." != TARGET_PREFIX or operation not in OPERATIONS:
        raise AwsError("UnknownOperationException", f"Unknown operation {target!r}")
    return operation, await read_members(request)


# What each operation needs of the caller's role (see dashcam.keys.Principal.may).
_NEEDS = {
    "CreateLogGroup": "ingest", "CreateLogStream": "ingest", "PutLogEvents": "ingest",
    "DeleteLogGroup": "admin", "PutRetentionPolicy": "admin", "DeleteRetentionPolicy": "admin",
    **cwlogs_protection.NEEDS,
}


async def authorize(request: Request, operation: str, params: dict[str, Any]) -> Principal:
    """Decide whether the caller may run ``operation`` with ``params``: the one place for auth.

    The SigV4 signature is verified against the keys dashcam issued (an open server, with no
    keys, accepts any), then the key's role is checked for the operation and for every log group
    the request names. It runs before members are validated or any handler runs. Returns who the
    request acts as (handlers need it where a member asks for more, e.g. ``unmask: true``).
    """
    try:
        principal = await current_principal(request)
        action = _NEEDS.get(operation, "read")
        # Members are not validated yet: a list member of another type names no group here (and is
        # refused by validation after this check).
        listed = [g for name in ("logGroupNames", "logGroupIdentifiers")
                  if isinstance(params.get(name), list) for g in params[name]]
        groups = [params.get("logGroupName"), params.get("logGroupIdentifier"), *listed]
        named = [g for g in groups if isinstance(g, str)]
        for group in named or [None]:
            principal.require(action, group.rsplit(":log-group:", 1)[-1].removesuffix(":*") if group else None)
        return principal
    except AuthError as exc:
        code = "InvalidSignatureException" if "signature" in str(exc) else "UnrecognizedClientException"
        raise AwsError(code, str(exc), status=403 if code == "InvalidSignatureException" else 400) from None
    except ForbiddenError as exc:
        raise AwsError("AccessDeniedException", str(exc)) from None


def _context(request: Request, principal: Principal) -> Context:
    state = request.app.state
    jobs = getattr(state, "queries", None)
    if jobs is None:  # an app built without create_app's registry: make one on first use
        jobs = state.queries = QueryJobs(state.dashcam)
    return Context(state.dashcam, jobs, region=region_of(request.headers.get("authorization")), principal=principal)


def _run(handler: Handler, ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Call ``handler``, turning the dashcam errors it lets through into AWS ones."""
    return call_handler(handler, ctx, params, _CODES, internal_code="InternalFailure", log=log)


def _respond(status: int, body: dict[str, Any], request_id: str) -> Response:
    return Response(content=orjson.dumps(body), status_code=status, media_type=CONTENT_TYPE,
                    headers={"x-amzn-RequestId": request_id})
