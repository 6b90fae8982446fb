"""CloudWatch dashboard operations (JSON 1.0, ``GraniteServiceVersion20100801.*``) over dashcam's dashboards.

:data:`OPERATIONS` (name -> (member shapes, handler)) is merged by the CloudWatch router
(:mod:`dashcam.api.cloudwatch`); :data:`NEEDS` says which operations change something and need
the ``admin`` role (the others need ``read``). Handlers take the router's context (anything
with ``dashcam``) and the request members, and return the response members.

- ``PutDashboard``: the body is checked as :mod:`dashcam.dashboards.body` describes. A body with
  errors is refused with ``InvalidParameterInput`` (botocore's ``DashboardInvalidInputError``),
  whose ``dashboardValidationMessages`` list each ``DataPath`` and ``Message``; a body that is
  stored may still come back with warnings in ``DashboardValidationMessages`` (widgets or
  namespaces dashcam does not draw). The body text is stored exactly as given.
- ``GetDashboard``: ``DashboardArn``, ``DashboardBody``, ``DashboardName``; ``ResourceNotFound``
  (``DashboardNotFoundError``) for a name that does not exist.
- ``ListDashboards``: ``DashboardEntries`` (name, ARN, ``LastModified`` in epoch seconds,
  ``Size`` in bytes) in name order, 1,000 a page, narrowed by ``DashboardNamePrefix``.
- ``DeleteDashboards``: all or nothing: if any name does not exist, nothing is deleted and the
  answer is ``ResourceNotFound`` naming the missing ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from dashcam.api.awsjson import AwsError, Member, decode_token, encode_token
from dashcam.dashboards.body import check_body
from dashcam.dashboards.repository import NAME_PATTERN, DashboardRepository, StoredDashboard
from dashcam.errors import InputError, NotFoundError
from dashcam.service import Dashcam


class DashboardContext(Protocol):
    """What a handler needs of the router's context."""

    dashcam: Dashcam


Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]

NEEDS = {"PutDashboard": "admin", "DeleteDashboards": "admin", "GetDashboard": "read", "ListDashboards": "read"}
PAGE_SIZE = 1_000

NAME = Member("string", low=1, high=255)


def repository(ctx: DashboardContext) -> DashboardRepository:
    """The dashboards of the context's data directory."""
    return DashboardRepository.in_directory(ctx.dashcam.data_dir)


def _aws_errors(handler: Handler) -> Handler:
    """Report the dashcam errors a handler lets through in CloudWatch's words."""

    @functools.wraps(handler)
    def wrapper(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return handler(ctx, params)
        except NotFoundError as exc:
            raise AwsError("ResourceNotFound", str(exc), status=404) from None
        except InputError as exc:
            raise AwsError("InvalidParameterValue", str(exc)) from None

    return wrapper


def _check_name(name: str) -> None:
    if NAME_PATTERN.fullmatch(name) is None:
        raise AwsError("InvalidParameterInput",
                       "The value for field DashboardName contains invalid characters. It can only contain "
                       "alphanumerics, dash (-) and underscore (_), up to 255 characters.",
                       dashboardValidationMessages=[])


def entry(dashboard: StoredDashboard) -> dict[str, Any]:
    """A dashboard in ListDashboards' ``DashboardEntry`` shape."""
    return {"DashboardName": dashboard.name, "DashboardArn": dashboard.arn,
            "LastModified": dashboard.last_modified_ms / 1000, "Size": dashboard.size}


# ---------------------------------------------------------------------- PutDashboard

PUT_DASHBOARD = {
    "DashboardName": Member("string", True),
    "DashboardBody": Member("string", True),
    "Tags": Member("list", high=50, items=Member("structure", fields={
        "Key": Member("string", True, 1, 128), "Value": Member("string", True, 0, 256)})),
}


@_aws_errors
def put_dashboard(ctx: DashboardContext, params: dict[str, Any]) -> dict[str, Any]:
    """Create or replace a dashboard; warnings come back in ``DashboardValidationMessages``."""
    name = params["DashboardName"]
    _check_name(name)
    check = check_body(params["DashboardBody"])
    if check.errors:
        count = len(check.errors)
        details = "; ".join(f"{m.data_path or '/'}: {m.message}" for m in check.errors)
        raise AwsError("InvalidParameterInput",
                       f"The dashboard body is invalid, there {'is' if count == 1 else 'are'} {count} validation "
                       f"error{'' if count == 1 else 's'}: {details}",
                       dashboardValidationMessages=[m.to_aws() for m in check.errors])
    _, warnings = repository(ctx).put(name, check)
    return {"DashboardValidationMessages": [m.to_aws() for m in warnings]}


# ---------------------------------------------------------------------- GetDashboard

GET_DASHBOARD = {"DashboardName": Member("string", True)}


@_aws_errors
def get_dashboard(ctx: DashboardContext, params: dict[str, Any]) -> dict[str, Any]:
    """One dashboard's ARN, body (as it was put) and name."""
    dashboard = repository(ctx).require(params["DashboardName"])
    return {"DashboardArn": dashboard.arn, "DashboardBody": dashboard.body, "DashboardName": dashboard.name}


# ---------------------------------------------------------------------- ListDashboards

LIST_DASHBOARDS = {"DashboardNamePrefix": Member("string", high=255), "NextToken": Member("string")}


@_aws_errors
def list_dashboards(ctx: DashboardContext, params: dict[str, Any]) -> dict[str, Any]:
    """Dashboards in name order, 1,000 a page."""
    after = None
    if params.get("NextToken") is not None:
        try:
            after = decode_token(params["NextToken"], "ListDashboards")
        except AwsError:
            after = None
        if not isinstance(after, str):
            raise AwsError("InvalidParameterValue", "The specified NextToken is not valid.")
    found = repository(ctx).list(params.get("DashboardNamePrefix") or "", after=after, limit=PAGE_SIZE + 1)
    body: dict[str, Any] = {"DashboardEntries": [entry(d) for d in found[:PAGE_SIZE]]}
    if len(found) > PAGE_SIZE:
        body["NextToken"] = encode_token("ListDashboards", found[PAGE_SIZE - 1].name)
    return body


# ---------------------------------------------------------------------- DeleteDashboards

DELETE_DASHBOARDS = {"DashboardNames": Member("list", True, high=100, items=NAME)}


@_aws_errors
def delete_dashboards(ctx: DashboardContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete the named dashboards, all or none."""
    repository(ctx).delete(params["DashboardNames"])
    return {}


OPERATIONS: dict[str, tuple[dict[str, Member], Handler]] = {
    "PutDashboard": (PUT_DASHBOARD, put_dashboard),
    "GetDashboard": (GET_DASHBOARD, get_dashboard),
    "ListDashboards": (LIST_DASHBOARDS, list_dashboards),
    "DeleteDashboards": (DELETE_DASHBOARDS, delete_dashboards),
}
