"""Dashboards in dashcam's own JSON API, for the web UI: list, get, put, delete, and widget data.

- ``GET /api/v1/dashboards?prefix=``: name, ARN, last modified (epoch ms), size and widget count.
- ``GET /api/v1/dashboards/{name}``: the body as a JSON document (and as the stored text), its
  widgets' places and types, and the body's warnings (widgets dashcam does not draw, ...).
- ``PUT /api/v1/dashboards/{name}``: the request body is the dashboard body (CloudWatch's JSON).
  A body with errors is a 400 whose ``error.messages`` list each ``dataPath`` and ``message``.
- ``DELETE /api/v1/dashboards/{name}``: 404 when there is no such dashboard.
- ``POST /api/v1/dashboards/{name}/widgets/{index}/data?start=&end=``: one widget resolved over the
  time range (:func:`dashcam.dashboards.resolve.resolve_widget`). A JSON body ``{"widget": {...}}``
  resolves that widget instead of the stored one (a widget being edited).
- ``GET /api/v1/dashboards/{name}/data?start=&end=``: every widget resolved.
- ``POST /api/v1/widgets/data``: a widget that belongs to no dashboard, ``{"widget", "start",
  "end", "periodOverride"}``.

``start``/``end`` take CloudWatch's forms (``-PT3H``, ISO-8601) and dashcam's (``3h``, epoch);
without them the dashboard's own range is used, else the last 3 hours. Viewing needs the ``read``
role, and a key limited to some log groups sees data from those groups only; changing needs
``admin``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from dashcam.api.auth import current_principal
from dashcam.api.native import read_body, readable_groups
from dashcam.dashboards.body import (
    PERIOD_OVERRIDES,
    DashboardBody,
    ValidationMessage,
    check_body,
    parse_body,
    parse_widget,
)
from dashcam.dashboards.repository import DashboardRepository, StoredDashboard
from dashcam.dashboards.resolve import WidgetData, dashboard_time_range, resolve_widget, time_range
from dashcam.errors import InputError, NotFoundError
from dashcam.keys import Principal
from dashcam.service import Dashcam

router = APIRouter(prefix="/api/v1", tags=["dashboards"])

_TIME_HELP = "-PT3H, -P7D, ISO-8601, or dashcam's forms (3h, epoch); default: the dashboard's range, else 3 hours"


def _dashcam(request: Request) -> Dashcam:
    return request.app.state.dashcam


def _repository(request: Request) -> DashboardRepository:
    return DashboardRepository.in_directory(_dashcam(request).data_dir)


def _messages(messages: Sequence[ValidationMessage]) -> list[dict[str, str]]:
    return [{"dataPath": m.data_path, "message": m.message, "severity": "error" if m.error else "warning"}
            for m in messages]


def _summary(dashboard: StoredDashboard, widgets: int) -> dict[str, Any]:
    return {"name": dashboard.name, "arn": dashboard.arn, "lastModified": dashboard.last_modified_ms,
            "size": dashboard.size, "widgets": widgets}


def _widget_count(text: str) -> int:
    # Stored bodies were checked when they were put; counting needs no second check.
    return len(orjson.loads(text).get("widgets", []))


def widget_data(dashcam: Dashcam, principal: Principal) -> WidgetData:
    """The data callables of a caller: metrics, queries and searches over the log groups it may read."""

    def fetch_metrics(queries: Sequence[Any], start_ms: int, end_ms: int) -> list[Any]:
        return dashcam.metric_data(queries, start_ms, end_ms, log_groups=readable_groups(dashcam, principal, None))

    def run_query(text: str, groups: Sequence[str] | None, start_ms: int, end_ms: int) -> tuple[list, list]:
        asked = list(groups) if groups else None
        result = dashcam.query(text, log_groups=readable_groups(dashcam, principal, asked), start_ms=start_ms,
                               end_ms=end_ms, principal=principal)
        return result.columns, result.rows

    def list_metrics(filters: Sequence[tuple[str, str | None]], since_ms: int, metric_name: str | None) -> list[Any]:
        return dashcam.list_metrics(metric_name, filters, log_groups=readable_groups(dashcam, principal, None),
                                    since_ms=since_ms)

    def alarm_states(names: Sequence[str]) -> list[dict[str, Any]]:
        from dashcam.alarms.manager import alarm_arn

        return [{"name": a.name, "arn": alarm_arn(a.name), "state": a.state.value, "reason": a.state.reason,
                 "updatedMs": a.state.updated_ms} for a in dashcam.alarms.describe(names=list(names))]

    return WidgetData(fetch_metrics, run_query, list_metrics, alarm_states)


# ---------------------------------------------------------------------- dashboards


@router.get("/dashboards", summary="List dashboards")
def list_dashboards(request: Request, prefix: str = Query("", description="Only names starting with this"),
                    principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Dashboards in name order."""
    principal.require("read")
    found = _repository(request).list(prefix)
    return {"data": [_summary(d, _widget_count(d.body)) for d in found]}


@router.get("/dashboards/{name}", summary="One dashboard: its body and widgets")
def get_dashboard(request: Request, name: str, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The body as stored (``bodyText``) and parsed (``body``), the widgets, and the body's warnings."""
    principal.require("read")
    dashboard = _repository(request).require(name)
    check = check_body(dashboard.body)
    body = check.require()
    return {"data": {
        **_summary(dashboard, len(body.widgets)),
        "body": body.document,
        "bodyText": dashboard.body,
        "widgets": [{"index": w.index, "type": w.type, "view": w.view, "title": w.title, "x": w.x, "y": w.y,
                     "width": w.width, "height": w.height, "drawn": w.drawn} for w in body.widgets],
        "messages": _messages(check.warnings),
    }}


@router.put("/dashboards/{name}", summary="Create or replace a dashboard (a CloudWatch dashboard body)")
async def put_dashboard(request: Request, name: str,
                        principal: Principal = Depends(current_principal)) -> JSONResponse:
    """Store the request body, a CloudWatch dashboard body, as the dashboard ``name``."""
    principal.require("admin")
    raw = await read_body(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the dashboard body is not UTF-8 text") from None
    check = check_body(text)
    if check.errors:
        return JSONResponse({"error": {"code": "InvalidDashboardBody",
                                       "message": f"the dashboard body has {len(check.errors)} error"
                                                  f"{'' if len(check.errors) == 1 else 's'}",
                                       "messages": _messages(check.errors)}}, status_code=400)
    stored, warnings = await run_in_threadpool(_repository(request).put, name, check)
    return JSONResponse({"data": {**_summary(stored, len(check.require().widgets)), "messages": _messages(warnings)}})


@router.delete("/dashboards/{name}", summary="Delete a dashboard")
def delete_dashboard(request: Request, name: str, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Delete the dashboard (404 when there is none by that name)."""
    principal.require("admin")
    _repository(request).delete([name])
    return {"data": {"deleted": name}}


# ---------------------------------------------------------------------- widget data


class WidgetRequest(BaseModel):
    """A widget to resolve (optional for a stored dashboard's widget) and the time range."""

    model_config = {"populate_by_name": True}

    widget: dict[str, Any] | None = Field(None, description="A widget object as in a dashboard body")
    start: str | None = Field(None, description=_TIME_HELP)
    end: str | None = Field(None, description=_TIME_HELP)
    period_override: str | None = Field(None, alias="periodOverride", description="auto or inherit")


def _stored_body(request: Request, name: str) -> DashboardBody:
    return parse_body(_repository(request).require(name).body)


@router.post("/dashboards/{name}/widgets/{index}/data", summary="One widget's data, ready to draw")
def dashboard_widget_data(request: Request, name: str, index: int, body: WidgetRequest | None = None,
                          start: str | None = Query(None, description=_TIME_HELP),
                          end: str | None = Query(None, description=_TIME_HELP),
                          principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The widget at ``index`` of the dashboard (or the body's ``widget``), resolved."""
    principal.require("read")
    dashboard = _stored_body(request, name)
    body = body or WidgetRequest()
    if body.widget is not None:
        widget = parse_widget(body.widget, index)
    elif 0 <= index < len(dashboard.widgets):
        widget = dashboard.widgets[index]
    else:
        raise NotFoundError(f"dashboard {name} has no widget {index} (it has {len(dashboard.widgets)})")
    when = dashboard_time_range(dashboard, start or body.start, end or body.end)
    override = _period_override(body.period_override or dashboard.period_override)
    return {"data": resolve_widget(widget, widget_data(_dashcam(request), principal), when,
                                   period_override=override)}


@router.get("/dashboards/{name}/data", summary="Every widget's data, ready to draw")
def dashboard_data(request: Request, name: str, start: str | None = Query(None, description=_TIME_HELP),
                   end: str | None = Query(None, description=_TIME_HELP),
                   principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Each widget of the dashboard, resolved over the same time range."""
    principal.require("read")
    dashboard = _stored_body(request, name)
    when = dashboard_time_range(dashboard, start, end)
    data = widget_data(_dashcam(request), principal)
    return {"data": {"start": when.start_ms, "end": when.end_ms, "widgets": [
        resolve_widget(w, data, when, period_override=dashboard.period_override) for w in dashboard.widgets]}}


@router.post("/widgets/data", summary="Data of a widget that belongs to no dashboard (a preview)")
def widget_preview(request: Request, body: WidgetRequest,
                   principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The body's ``widget`` resolved over ``start``/``end`` (default: the last 3 hours)."""
    principal.require("read")
    if body.widget is None:
        raise InputError("send the widget to draw: {\"widget\": {\"type\": \"metric\", \"properties\": {...}}}")
    widget = parse_widget(body.widget)
    when = time_range(body.start, body.end)
    return {"data": resolve_widget(widget, widget_data(_dashcam(request), principal), when,
                                   period_override=_period_override(body.period_override or "auto"))}


def _period_override(value: str) -> str:
    if value not in PERIOD_OVERRIDES:
        raise InputError(f"periodOverride {value!r} is not one of {', '.join(PERIOD_OVERRIDES)}")
    return value
