"""Keys on dashcam's JSON API: who is calling, and (for admins) listing, issuing and revoking keys.

* ``GET /api/v1/whoami`` — the caller's key id, role and log-group pattern, and whether the
  server requires keys (any role; the dashboard shows or hides its admin controls with it).
* ``GET /api/v1/keys`` — every key, revoked ones included, never with a secret.
* ``POST /api/v1/keys`` ``{"role", "logGroups", "description"}`` — issue a key; the answer is the
  only time its secret is shown (as a bearer token and as an AWS access key pair).
* ``DELETE /api/v1/keys/{id}`` — revoke a key; it stops working at once.

Managing keys needs an ``admin`` key over every log group: an admin limited to some groups could
otherwise issue itself a wider key. Issuing and revoking are audited by
:class:`~dashcam.keys.KeyRing` under the caller's key; refused attempts are audited here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from dashcam.api.auth import current_principal
from dashcam.audit import AuditLog
from dashcam.errors import ForbiddenError
from dashcam.keys import ROLES, KeyInfo, KeyRing, Principal

router = APIRouter(prefix="/api/v1", tags=["keys"])


class NewKey(BaseModel):
    """A key to issue."""

    role: str = Field(..., description=f"One of {', '.join(ROLES)}")
    logGroups: str = Field("*", min_length=1, max_length=512, description="Log-group glob the key is limited to")
    description: str = Field("", max_length=500, description="What the key is for (shown in listings)")


def key_ring(request: Request) -> KeyRing:
    """The key ring the server checks credentials against (the data directory's when it checks none)."""
    authenticator = getattr(request.app.state, "auth", None)
    if authenticator is not None:
        return authenticator.keys
    return KeyRing(request.app.state.dashcam.data_dir)


def key_body(key: KeyInfo) -> dict[str, Any]:
    """A key as the API lists it (no secret)."""
    return {"id": key.key_id, "role": key.role, "logGroups": key.log_groups, "createdMs": key.created_ms,
            "revokedMs": key.revoked_ms, "description": key.description}


def _require_key_admin(request: Request, principal: Principal, action: str, target: str) -> KeyRing:
    """The key ring, once ``principal`` is an admin over every log group; a refusal is audited."""
    keys = key_ring(request)
    problem = None
    if not principal.may("admin"):
        problem = f"key {principal.key_id} (role {principal.role}) may not manage keys"
    elif principal.log_groups != "*":
        problem = (f"key {principal.key_id} is limited to {principal.log_groups!r}; managing keys needs an "
                   "admin key over every log group")
    if problem:
        if action != "key.list":  # only changes are audited, as everywhere else
            AuditLog(keys.directory).record(action, target, outcome="denied", details={"error": problem})
        raise ForbiddenError(problem)
    return keys


@router.get("/whoami", summary="The calling key: id, role, log groups")
def whoami(request: Request, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Who the request acts as; ``secured`` says whether the server requires a key at all."""
    authenticator = getattr(request.app.state, "auth", None)
    secured = authenticator is not None and authenticator.keys.active()
    return {"data": {"keyId": principal.key_id, "role": principal.role, "logGroups": principal.log_groups,
                     "secured": secured}}


@router.get("/keys", summary="List keys (admins)")
def list_keys(request: Request, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Every key by creation time, revoked ones included; secrets are never shown again."""
    keys = _require_key_admin(request, principal, "key.list", "")
    return {"data": [key_body(k) for k in keys.list()]}


@router.post("/keys", status_code=201, summary="Issue a key (admins)")
def create_key(request: Request, body: NewKey, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """The new key with its secret, shown this once. The first active key secures the server:
    from then on every request needs a key."""
    keys = _require_key_admin(request, principal, "key.create", body.role)
    issued = keys.create(body.role, log_groups=body.logGroups, description=body.description)
    listed = next(k for k in keys.list() if k.key_id == issued.key_id)
    return {"data": {**key_body(listed), "secret": issued.secret, "bearer": issued.bearer,
                     "awsAccessKeyId": issued.key_id, "awsSecretAccessKey": issued.secret}}


@router.delete("/keys/{key_id}", summary="Revoke a key (admins)")
def revoke_key(request: Request, key_id: str, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Revoke the key: it stops working at once (404 when there is no such key)."""
    keys = _require_key_admin(request, principal, "key.revoke", key_id)
    keys.revoke(key_id)
    revoked = next(k for k in keys.list() if k.key_id == key_id)
    return {"data": key_body(revoked)}
