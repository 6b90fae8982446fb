"""Retention on dashcam's JSON API: how long a log group keeps its events.

* ``PUT /api/v1/log-groups/{name}/retention`` ``{"days": 30}`` — keep the group's events that
  many days (one of CloudWatch Logs' values, :data:`~dashcam.store.base.RETENTION_DAYS`);
  ``{"days": null}`` keeps them forever. Needs ``admin`` on the group. The server deletes expired
  events in the background; the change is audited (``retention.put`` / ``retention.delete``).

``GET /api/v1/log-groups`` (in :mod:`dashcam.api.native`) lists each group's retention. The
group's name is the rest of the path, slashes included (``/api/v1/log-groups//aws/bedrock/x/retention``
or with the slashes percent-encoded).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from dashcam.api.auth import current_principal
from dashcam.errors import InputError
from dashcam.keys import Principal
from dashcam.store.base import RETENTION_DAYS

router = APIRouter(prefix="/api/v1/log-groups", tags=["dashcam"])


@router.put("/{name:path}/retention", summary="Set or remove a log group's retention")
def put_retention(request: Request, name: str,
                  body: dict[str, Any] = Body(..., examples=[{"days": 30}, {"days": None}]),
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Keep the group's events ``days`` days (null: forever); 404 when the group does not exist."""
    principal.require("admin", name)
    if "days" not in body:
        raise InputError('send {"days": N} (one of ' + ", ".join(map(str, RETENTION_DAYS)) + ') or {"days": null}')
    days = body["days"]
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise InputError(f"days must be a whole number of days or null, got {days!r}")
    request.app.state.dashcam.store.set_retention(name, days)
    return {"data": {"name": name, "retentionInDays": days}}
