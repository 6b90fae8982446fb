"""dashcam's own alarm routes under ``/api/v1/alarms``: list, get, put, delete, history, set state.

Definitions are PutMetricAlarm's members (the same JSON ``dashcam alarms put --file`` reads and
boto3 sends; see :mod:`dashcam.alarms.model`). Reading needs the ``read`` role, changing
anything ``admin``, and either needs a key for every log group (alarms see all of them). Success bodies are ``{"data": ...}``; errors dashcam's one error shape.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request

from dashcam.alarms.repository import HISTORY_TYPES, HistoryItem, StoredAlarm
from dashcam.api.auth import current_principal
from dashcam.api.cloudwatch_alarms import check_unrestricted
from dashcam.errors import InputError
from dashcam.keys import Principal
from dashcam.timespec import parse_time

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def alarm_body(alarm: StoredAlarm) -> dict[str, Any]:
    """An alarm in the native shape: its definition (PutMetricAlarm members), kind and state."""
    state = alarm.state
    return {
        "name": alarm.name,
        "kind": alarm.definition.kind,
        "state": {"value": state.value, "reason": state.reason, "reasonData": _json(state.reason_data),
                  "updatedMs": state.updated_ms, "transitionedMs": state.transitioned_ms,
                  "lastEvaluatedMs": state.last_evaluated_ms, "lastValue": state.last_value},
        "definition": alarm.definition.to_params(),
        "createdMs": alarm.created_ms,
        "configurationUpdatedMs": alarm.configuration_updated_ms,
    }


def history_body(item: HistoryItem) -> dict[str, Any]:
    """A history item in the native shape."""
    return {"alarmName": item.alarm_name, "timestampMs": item.timestamp_ms, "type": item.item_type,
            "summary": item.summary, "data": _json(item.data)}


def _alarms(request: Request, principal: Principal, action: str) -> Any:
    """The alarms, once ``principal`` may ``action`` (``read`` or ``admin``) them."""
    principal.require(action)
    check_unrestricted(principal)
    return request.app.state.dashcam.alarms


@router.get("", summary="List alarms")
def list_alarms(request: Request, prefix: str | None = Query(None, description="Only names starting with this"),
                state: str | None = Query(None, description="OK, ALARM or INSUFFICIENT_DATA"),
                principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Alarms in name order with their state."""
    return {"data": [alarm_body(a) for a in _alarms(request, principal, "read").describe(prefix=prefix, state=state)]}


@router.get("/{name}", summary="One alarm")
def get_alarm(request: Request, name: str, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The alarm's definition and state; 404 when there is none by that name."""
    return {"data": alarm_body(_alarms(request, principal, "read").get(name))}


@router.put("/{name}", summary="Create or replace an alarm")
def put_alarm(request: Request, name: str, definition: dict[str, Any] = Body(..., description="PutMetricAlarm members"),
              principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The body is PutMetricAlarm's members; ``AlarmName`` may be left out (the path names it)."""
    alarms = _alarms(request, principal, "admin")
    given = definition.get("AlarmName")
    if given is not None and given != name:
        raise InputError(f"the body names alarm {given!r} but the path names {name!r}")
    return {"data": alarm_body(alarms.put({**definition, "AlarmName": name}))}


@router.delete("/{name}", summary="Delete an alarm")
def delete_alarm(request: Request, name: str, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Delete the alarm; its history stays (30 days)."""
    _alarms(request, principal, "admin").delete([name])
    return {"data": {"deleted": name}}


@router.get("/{name}/history", summary="An alarm's history")
def alarm_history(request: Request, name: str,
                  type: str | None = Query(None, description="ConfigurationUpdate, StateUpdate or Action"),
                  start: str | None = Query(None, description="ISO-8601, epoch seconds, or relative (1h, 7d)"),
                  end: str | None = Query(None, description="Same forms as start"),
                  limit: int = Query(100, ge=1, le=1000),
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Newest first; kept 30 days, also after the alarm is deleted."""
    alarms = _alarms(request, principal, "read")
    if type is not None and type not in HISTORY_TYPES:
        raise InputError(f"type {type!r} is not one of {', '.join(HISTORY_TYPES)}")
    items = alarms.history(name, item_type=type, start_ms=parse_time(start) if start else None,
                                     end_ms=parse_time(end) + 1 if end else None, limit=limit)
    return {"data": [history_body(item) for item in items]}


@router.post("/{name}/state", summary="Set an alarm's state (to test its actions)")
def set_alarm_state(request: Request, name: str, body: dict[str, Any] = Body(
        ..., examples=[{"state": "ALARM", "reason": "testing the pager"}]),
        principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """As SetAlarmState: actions run if the state changes; the next evaluation may change it back."""
    alarms = _alarms(request, principal, "admin")
    state, reason = body.get("state"), body.get("reason", "set through the API")
    if not isinstance(state, str) or not isinstance(reason, str):
        raise InputError('the body needs "state" (OK, ALARM or INSUFFICIENT_DATA) and optionally "reason" (text)')
    data = body.get("reasonData")
    text = None if data is None else (data if isinstance(data, str) else orjson.dumps(data).decode())
    return {"data": alarm_body(alarms.set_state(name, state, reason, text))}
