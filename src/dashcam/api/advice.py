"""``GET /api/v1/advice``: recommendations from the stored invocations (see :mod:`dashcam.advise`).

Needs the ``read`` role; a key limited to some log groups gets advice about those groups only.
The body is ``{"data": Advice.to_dict()}``, the same document ``dashcam advise --format json`` prints.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from dashcam.advise import advise
from dashcam.api.auth import current_principal
from dashcam.api.native import readable_groups
from dashcam.errors import InputError
from dashcam.keys import Principal
from dashcam.timespec import parse_time

router = APIRouter(prefix="/api/v1", tags=["dashcam"])


@router.get("/advice", summary="Recommendations: token waste, prompt caching, throttling, cheaper and faster models")
def get_advice(
    request: Request,
    start: str | None = Query(None, description="ISO-8601, epoch seconds, or relative (1h, 7d); default: all data"),
    end: str | None = Query(None, description="Same forms as start; default: all data"),
    logGroup: list[str] | None = Query(None, description="Log group to consider (repeatable); default: all readable"),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Each recommendation names its subject, the numbers behind it, an action, its assumptions,
    an estimated saving where one applies, and a Logs Insights query that shows the evidence."""
    dashcam = request.app.state.dashcam
    groups = readable_groups(dashcam, principal, logGroup)
    start_ms = parse_time(start) if start else None
    end_ms = parse_time(end) if end else None
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise InputError("start is after end")
    return {"data": advise(dashcam.store, start_ms=start_ms, end_ms=end_ms, log_groups=groups).to_dict()}
