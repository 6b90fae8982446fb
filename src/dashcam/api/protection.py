"""Data protection and the audit log on dashcam's JSON API (under ``/api/v1``).

* ``GET /api/v1/protection`` — policies, the built-in detectors, and counts of what was masked
  and dropped since the server started (read role).
* ``PUT /api/v1/protection?logGroup=G`` / ``DELETE ...`` — set or remove a group's policy
  (admin on that group; the policy body is :meth:`dashcam.protect.policy.Policy.as_dict`'s shape).
* ``POST /api/v1/unmask`` ``{"ptrs": [...]}`` — the kept originals of events, by ``@ptr`` (admin on
  each event's group). Every call is audited, refused ones too.
* ``GET /api/v1/audit`` — the audit log (admin over every log group).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from dashcam.api.auth import current_principal
from dashcam.api.bodies import read_capped
from dashcam.audit import AuditLog
from dashcam.errors import ConfigError, ForbiddenError, InputError
from dashcam.keys import Principal
from dashcam.protect.detectors import BUILTIN
from dashcam.protect.policy import Policy, check_group_pattern
from dashcam.query.compiler import parse_ptr
from dashcam.service import Dashcam
from dashcam.timespec import parse_time

router = APIRouter(prefix="/api/v1", tags=["data protection"])

MAX_UNMASK = 1000


class UnmaskRequest(BaseModel):
    """Events to unmask, by the ``@ptr`` values a query returned."""

    ptrs: list[str] = Field(..., min_length=1, max_length=MAX_UNMASK, description="@ptr values")


def _protection(request: Request) -> Any:
    dashcam: Dashcam = request.app.state.dashcam
    if dashcam.protection is None:
        raise ConfigError("data protection is not enabled for this store (open it with Dashcam.open)")
    return dashcam.protection


@router.get("/protection", summary="Data protection policies, detectors and masking counts")
def get_protection(request: Request, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Every policy the caller may read, the built-in detectors, and what was masked and dropped."""
    principal.require("read")
    protection = _protection(request)
    return {"data": {
        "policies": [p.as_dict() for p in protection.policies.policies() if principal.may("read", p.log_group)],
        "detectors": [{"name": d.name, "identifier": d.identifier, "description": d.description} for d in BUILTIN],
        "counts": [row for row in protection.stats.as_rows() if principal.may("read", row["logGroup"])],
    }}


@router.put("/protection", summary="Set a log group's data protection policy")
async def put_protection(
    request: Request,
    logGroup: str = Query(..., description="Log group name, or a glob such as /aws/bedrock/*"),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Replace the policy of ``logGroup``; applies to events ingested from now on."""
    check_group_pattern(logGroup)
    principal.require("admin", logGroup)
    try:
        body = orjson.loads(await read_capped(request))
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the policy is not valid JSON ({exc})") from None
    policy = Policy.from_dict(body, log_group=logGroup)
    return {"data": _protection(request).policies.put(policy).as_dict()}


@router.delete("/protection", summary="Remove a log group's data protection policy")
def delete_protection(
    request: Request, logGroup: str = Query(...), principal: Principal = Depends(current_principal)
) -> dict[str, Any]:
    """Remove the policy stored under ``logGroup``; stored events stay masked."""
    principal.require("admin", logGroup)
    _protection(request).policies.remove(logGroup)
    return {"data": {"logGroup": logGroup, "removed": True}}


@router.post("/unmask", summary="The unmasked originals of events (admins, where a policy kept them)")
def unmask(request: Request, body: UnmaskRequest, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Per ``@ptr``: the original message, or ``found: false`` when none was kept (the event was
    not masked, or its group's policy does not keep originals)."""
    protection = _protection(request)
    wanted: dict[str, list[tuple[str, int]]] = {}
    for ptr in body.ptrs:
        try:
            group, event_id = parse_ptr(ptr)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        wanted.setdefault(group, []).append((ptr, event_id))
    try:
        for group in wanted:
            principal.require("admin", group)
    except ForbiddenError as exc:
        protection.audit.record("unmask", ",".join(sorted(wanted)), outcome="denied",
                                details={"events": len(body.ptrs), "error": str(exc)})
        raise
    results = []
    for group, items in wanted.items():
        originals = protection.unmask(group, [event_id for _, event_id in items])
        results += [{"ptr": ptr, "logGroup": group, "found": event_id in originals,
                     "message": originals.get(event_id)} for ptr, event_id in items]
    protection.audit.record("unmask", ",".join(sorted(wanted)), details={
        "events": len(body.ptrs), "found": sum(r["found"] for r in results), "ptrs": body.ptrs[:100]})
    return {"data": results}


@router.get("/audit", summary="The audit log of admin actions")
def audit(
    request: Request,
    start: str | None = Query(None, description="ISO-8601, epoch seconds, or relative (1h, 7d)"),
    end: str | None = Query(None),
    action: str | None = Query(None, description="e.g. key.create, or a prefix such as key."),
    actor: str | None = Query(None, description="A key id, or local:<user>"),
    limit: int = Query(1000, ge=1, le=100_000),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Entries oldest first (the newest ``limit``); needs an admin key over every log group."""
    principal.require("admin")
    if principal.log_groups != "*":
        raise ForbiddenError(f"key {principal.key_id} is limited to {principal.log_groups!r}; the audit log "
                             "covers every log group")
    dashcam: Dashcam = request.app.state.dashcam
    entries = AuditLog(dashcam.data_dir).entries(
        start_ms=parse_time(start) if start else None, end_ms=parse_time(end) if end else None,
        action=action, actor=actor, limit=limit)
    return {"data": [e.as_dict() for e in entries]}
