"""CloudWatch Logs API: log groups, log streams and retention, and what every operation shares.

Shared: :class:`Context` (what a handler gets besides its request members), the member shapes
for names and identifiers, ARNs, and the existence checks. dashcam has no AWS account: ARNs
and ``@log`` use :data:`ACCOUNT_ID`, and the region the request was signed for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from dashcam.api.awsjson import AwsError, Member, decode_token, encode_token
from dashcam.errors import AlreadyExistsError, DashcamError, NotFoundError
from dashcam.keys import Principal
from dashcam.query.dialects import col, get_dialect, lit
from dashcam.query_jobs import QueryJobs
from dashcam.service import Dashcam, local_admin
from dashcam.store.base import RETENTION_DAYS, LogStreamInfo
from dashcam.store.schema import LOG_GROUPS_TABLE

ACCOUNT_ID = "000000000000"

GROUP_PATTERN = r"[\.\-_/#A-Za-z0-9]+"
STREAM_PATTERN = r"[^:*]*"
IDENTIFIER_PATTERN = r"[\w#+=/:,.@-]*"
_GROUP_ARN = re.compile(r"arn:[\w-]+:logs:[^:]*:[^:]*:log-group:([^:]+)(?::\*)?")

GROUP_NAME = Member("string", low=1, high=512, pattern=GROUP_PATTERN)
STREAM_NAME = Member("string", low=1, high=512, pattern=STREAM_PATTERN)
GROUP_IDENTIFIER = Member("string", low=1, high=2048, pattern=IDENTIFIER_PATTERN)
TOKEN = Member("string", low=1)


@dataclass
class Context:
    """What a handler works with: the service, the query registry, and where the caller is.

    ``principal`` is who the request acts as, when the dispatcher passes it; :func:`caller` finds
    it otherwise."""

    dashcam: Dashcam
    jobs: QueryJobs
    region: str = "us-east-1"
    account: str = ACCOUNT_ID
    principal: Principal | None = None

    def group_arn(self, name: str, *, star: bool = False) -> str:
        """``arn:aws:logs:<region>:<account>:log-group:<name>`` (with ``:*`` as ``arn`` has it)."""
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{name}{':*' if star else ''}"


Handler = Callable[[Context, dict[str, Any]], dict[str, Any]]


def caller(ctx: Context) -> Principal:
    """The principal the request acts as, for the operations whose rights depend on a member
    (``unmask: true`` needs admin where a read needs read): the one the dispatcher authorized, or,
    for a handler called outside a request, the local process (an admin, like the command line)."""
    return ctx.principal if ctx.principal is not None else local_admin()


# ---------------------------------------------------------------------- checks shared by operations


def group_name(params: dict[str, Any], *, name_key: str = "logGroupName",
               identifier_key: str = "logGroupIdentifier") -> str:
    """The log group a request names by ``logGroupName`` xor ``logGroupIdentifier`` (name or ARN)."""
    name, identifier = params.get(name_key), params.get(identifier_key)
    if (name is None) == (identifier is None):
        raise AwsError("InvalidParameterException",
                       f"Specify exactly one of {name_key} and {identifier_key}.")
    return name if name is not None else group_from_identifier(identifier)


def group_from_identifier(identifier: str) -> str:
    """A log group name from a name or a log group ARN (``arn:aws:logs:...:log-group:NAME[:*]``)."""
    if identifier.startswith("arn:"):
        found = _GROUP_ARN.fullmatch(identifier)
        if not found:
            raise AwsError("InvalidParameterException", f"{identifier!r} is not a log group ARN.")
        return found.group(1)
    if not re.fullmatch(GROUP_PATTERN, identifier) or len(identifier) > 512:
        raise AwsError("InvalidParameterException", f"{identifier!r} is not a valid log group name.")
    return identifier


def group_retention(ctx: Context, name: str) -> int | None:
    """The group's retention in days (None: forever); ResourceNotFoundException when it does not exist.

    A point read of the log-groups table through the Store port: the Store's ``list_log_groups``
    also sums every event's size, far too much work for a check made on every PutLogEvents.
    An engine whose tables differ falls back to that listing.
    """
    store = ctx.dashcam.store
    dialect = get_dialect(store.dialect)
    sql = dialect.sql(exp.select(col("retention_days")).from_(exp.to_identifier(LOG_GROUPS_TABLE))
                      .where(exp.EQ(this=col("name"), expression=lit(name))))
    try:
        rows = store.execute(sql)
    except DashcamError:
        rows = [(g.retention_days,) for g in store.list_log_groups(name) if g.name == name]
    if not rows:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.")
    return rows[0][0]


def require_stream(ctx: Context, group: str, stream: str) -> LogStreamInfo:
    """The stream; ResourceNotFoundException naming what is missing (the group or the stream)."""
    try:
        streams = ctx.dashcam.store.list_log_streams(group, stream)
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.") from None
    for info in streams:
        if info.name == stream:
            return info
    raise AwsError("ResourceNotFoundException", "The specified log stream does not exist.")


def page(items: list[Any], params: dict[str, Any], kind: str, *, limit_key: str = "limit",
         default: int = 50) -> tuple[list[Any], str | None]:
    """One page of ``items`` and the token for the next (None at the end); tokens hold offsets."""
    start = 0
    if params.get("nextToken") is not None:
        start = decode_token(params["nextToken"], kind)
        if not isinstance(start, int) or start < 0:
            raise AwsError("InvalidParameterException", "The specified nextToken is not valid.")
    size = params.get(limit_key) or default
    chunk = items[start:start + size]
    more = start + size < len(items)
    return chunk, encode_token(kind, start + size) if more else None


# ---------------------------------------------------------------------- operations


CREATE_LOG_GROUP = {
    "logGroupName": Member("string", True, 1, 512, GROUP_PATTERN),
    "kmsKeyId": Member("string", high=256),
    "tags": Member("map", low=1, high=50),
    "logGroupClass": Member("string", enum=("STANDARD", "INFREQUENT_ACCESS", "DELIVERY")),
    "deletionProtectionEnabled": Member("boolean"),
}


def create_log_group(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Create an empty group. Tags, KMS keys and classes are accepted and not kept."""
    try:
        ctx.dashcam.store.create_log_group(params["logGroupName"])
    except AlreadyExistsError:
        raise AwsError("ResourceAlreadyExistsException", "The specified log group already exists") from None
    return {}


DELETE_LOG_GROUP = {"logGroupName": Member("string", True, 1, 512, GROUP_PATTERN)}


def delete_log_group(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Delete a group with its streams and events."""
    try:
        ctx.dashcam.store.delete_log_group(params["logGroupName"])
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.") from None
    return {}


DESCRIBE_LOG_GROUPS = {
    "accountIdentifiers": Member("list", high=20, items=Member("string", low=12, high=12)),
    "logGroupNamePrefix": GROUP_NAME,
    "logGroupNamePattern": Member("string", high=512, pattern=r"[\.\-_/#A-Za-z0-9]*"),
    "nextToken": TOKEN,
    "limit": Member("long", low=1, high=50),
    "includeLinkedAccounts": Member("boolean"),
    "logGroupClass": Member("string", enum=("STANDARD", "INFREQUENT_ACCESS", "DELIVERY")),
    "logGroupIdentifiers": Member("list", low=1, high=50, items=GROUP_IDENTIFIER),
}


def describe_log_groups(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Groups by name, filtered by prefix, substring pattern or identifiers, 50 a page.

    ``dataProtectionStatus`` is ``ACTIVATED`` for a group a data-protection policy applies to (its
    own or a pattern's) and absent otherwise: dashcam keeps no history of removed policies, so it
    never reports AWS's ``DELETED``."""
    prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
    if prefix is not None and pattern is not None:
        raise AwsError("InvalidParameterException",
                       "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive.")
    groups = ctx.dashcam.store.list_log_groups(prefix or "")
    if pattern:
        groups = [g for g in groups if pattern in g.name]
    if params.get("logGroupIdentifiers"):
        wanted = {group_from_identifier(i) for i in params["logGroupIdentifiers"]}
        groups = [g for g in groups if g.name in wanted]
    if params.get("logGroupClass") not in (None, "STANDARD"):
        groups = []  # every dashcam group is a STANDARD one
    chunk, token = page(groups, params, "groups")
    protection = ctx.dashcam.protection  # None for a store opened without data protection
    out = []
    for g in chunk:
        item = {
            "logGroupName": g.name,
            "creationTime": g.created_ms,
            "metricFilterCount": 0,
            "arn": ctx.group_arn(g.name, star=True),
            "storedBytes": g.stored_bytes,
            "logGroupClass": "STANDARD",
            "logGroupArn": ctx.group_arn(g.name),
            "deletionProtectionEnabled": False,
        }
        if g.retention_days is not None:
            item["retentionInDays"] = g.retention_days
        if protection is not None and protection.policies.for_group(g.name) is not None:
            item["dataProtectionStatus"] = "ACTIVATED"
        out.append(item)
    return {"logGroups": out, **({"nextToken": token} if token else {})}


CREATE_LOG_STREAM = {
    "logGroupName": Member("string", True, 1, 512, GROUP_PATTERN),
    "logStreamName": Member("string", True, 1, 512, STREAM_PATTERN),
}


def create_log_stream(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Create an empty stream in an existing group."""
    group, stream = params["logGroupName"], params["logStreamName"]
    try:
        ctx.dashcam.store.create_log_stream(group, stream)
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.") from None
    except AlreadyExistsError:
        raise AwsError("ResourceAlreadyExistsException", "The specified log stream already exists") from None
    except NotImplementedError as exc:
        raise AwsError("InvalidOperationException", str(exc)) from None
    return {}


DESCRIBE_LOG_STREAMS = {
    "logGroupName": GROUP_NAME,
    "logGroupIdentifier": GROUP_IDENTIFIER,
    "logStreamNamePrefix": STREAM_NAME,
    "orderBy": Member("string", enum=("LogStreamName", "LastEventTime")),
    "descending": Member("boolean"),
    "nextToken": TOKEN,
    "limit": Member("long", low=1, high=50),
}


def describe_log_streams(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Streams by name (or by last event time), 50 a page."""
    group = group_name(params)
    order = params.get("orderBy") or "LogStreamName"
    prefix = params.get("logStreamNamePrefix")
    if prefix is not None and order == "LastEventTime":
        raise AwsError("InvalidParameterException",
                       "Cannot order by LastEventTime with a logStreamNamePrefix.")
    try:
        streams = ctx.dashcam.store.list_log_streams(group, prefix or "")
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.") from None
    if order == "LastEventTime":
        streams.sort(key=lambda s: (s.last_event_ms or 0, s.name))
    if params.get("descending"):
        streams.reverse()
    chunk, token = page(streams, params, "streams")
    out = []
    for s in chunk:
        item: dict[str, Any] = {
            "logStreamName": s.name,
            "creationTime": s.created_ms,
            "arn": f"{ctx.group_arn(group)}:log-stream:{s.name}",
            "storedBytes": 0,  # AWS reports 0 here since 2019
        }
        for key, value in (("firstEventTimestamp", s.first_event_ms), ("lastEventTimestamp", s.last_event_ms),
                           ("lastIngestionTime", s.last_ingestion_ms)):
            if value is not None:
                item[key] = value
        out.append(item)
    return {"logStreams": out, **({"nextToken": token} if token else {})}


PUT_RETENTION_POLICY = {
    "logGroupName": Member("string", True, 1, 512, GROUP_PATTERN),
    "retentionInDays": Member("long", True, enum=RETENTION_DAYS),
}


def put_retention_policy(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Keep the group's events for ``retentionInDays`` (one of CloudWatch's values)."""
    try:
        ctx.dashcam.store.set_retention(params["logGroupName"], params["retentionInDays"])
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.") from None
    return {}


DELETE_RETENTION_POLICY = {"logGroupName": Member("string", True, 1, 512, GROUP_PATTERN)}


def delete_retention_policy(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Keep the group's events forever."""
    try:
        ctx.dashcam.store.set_retention(params["logGroupName"], None)
    except NotFoundError:
        raise AwsError("ResourceNotFoundException", "The specified log group does not exist.") from None
    return {}


OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    "CreateLogGroup": (CREATE_LOG_GROUP, create_log_group),
    "DeleteLogGroup": (DELETE_LOG_GROUP, delete_log_group),
    "DescribeLogGroups": (DESCRIBE_LOG_GROUPS, describe_log_groups),
    "CreateLogStream": (CREATE_LOG_STREAM, create_log_stream),
    "DescribeLogStreams": (DESCRIBE_LOG_STREAMS, describe_log_streams),
    "PutRetentionPolicy": (PUT_RETENTION_POLICY, put_retention_policy),
    "DeleteRetentionPolicy": (DELETE_RETENTION_POLICY, delete_retention_policy),
}
