"""Prices on dashcam's JSON API: the catalog in use, and admins' overrides in ``prices.json``.

* ``GET /api/v1/prices`` — every price in use (the shipped catalog with the data directory's
  ``prices.json`` laid over it): model, USD per million input/output/cache-read/cache-write
  tokens, the date it takes effect, and where it comes from (``catalog`` or ``override``).
* ``PUT /api/v1/prices/{model}`` ``{"input", "output", "cacheRead", "cacheWrite", "effective"}``
  — set an override (admins). It replaces an override of the same model and date; ingestion
  prices new records with it at once.
* ``DELETE /api/v1/prices/{model}`` (``?effective=YYYY-MM-DD`` for one date) — remove overrides.
* ``POST /api/v1/prices/reprice`` ``{"start", "end"}`` — recompute stored events' ``costUsd``
  with the prices in use now (what ``dashcam reprice`` does); stored events keep the cost they
  were given until then.

Overrides are the entries of ``prices.json`` (the file ``dashcam prices`` reads and people may
edit by hand; both shapes, a list or ``{"models": [...]}``, are kept as found). Changes are
written atomically and audited (``price.put``, ``price.delete``, ``events.reprice``).
"""

from __future__ import annotations

import os
import threading
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from dashcam.api.auth import current_principal
from dashcam.audit import AuditLog
from dashcam.errors import ConfigError, ForbiddenError, NotFoundError
from dashcam.keys import Principal
from dashcam.pricing import OVERRIDES_FILE, Price, PriceCatalog, PricingError
from dashcam.service import Dashcam, use_prices
from dashcam.timespec import format_ms, parse_time

router = APIRouter(prefix="/api/v1/prices", tags=["prices"])

_WRITE_LOCK = threading.Lock()  # one override change at a time: read, change, replace the file


class PriceOverride(BaseModel):
    """An override: USD per million tokens, from a date on (from the beginning when omitted)."""

    input: float = Field(..., ge=0, description="USD per 1M input tokens")
    output: float = Field(..., ge=0, description="USD per 1M output tokens")
    cacheRead: float | None = Field(None, ge=0, description="USD per 1M cache-read tokens (default: the input price)")
    cacheWrite: float | None = Field(None, ge=0, description="USD per 1M cache-write tokens (default: the input price)")
    effective: str | None = Field(None, description="YYYY-MM-DD (UTC) the price takes effect; omitted: always")
    provider: str = Field("aws.bedrock", max_length=100)

    @field_validator("effective")
    @classmethod
    def _a_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"effective must be a date like 2026-03-01, got {value!r}") from None
        return value


class RepriceRequest(BaseModel):
    """The stored events to reprice, by time (all when omitted)."""

    start: str | None = Field(None, description="ISO-8601, epoch seconds, or relative (30d)")
    end: str | None = Field(None, description="Same forms as start")


def _dashcam(request: Request) -> Dashcam:
    return request.app.state.dashcam


def _require_admin(request: Request, principal: Principal, action: str, target: str) -> None:
    """Prices apply to every log group, so changing them needs an admin over all of them."""
    problem = None
    if not principal.may("admin"):
        problem = f"key {principal.key_id} (role {principal.role}) may not change prices"
    elif principal.log_groups != "*":
        problem = f"key {principal.key_id} is limited to {principal.log_groups!r}; prices apply to every log group"
    if problem:
        AuditLog(_dashcam(request).data_dir).record(action, target, outcome="denied", details={"error": problem})
        raise ForbiddenError(problem)


def price_body(price: Price) -> dict[str, Any]:
    """A price as the API shows it."""
    return {"model": price.model, "input": price.input, "output": price.output, "cacheRead": price.cache_read,
            "cacheWrite": price.cache_write, "effective": format_ms(price.effective_ms)[:10] if price.effective_ms else None,
            "provider": price.provider, "source": "catalog" if price.source == "catalog" else "override"}


def _read_overrides(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The override entries and whether the file wraps them as ``{"models": [...]}``."""
    if not path.exists():
        return [], False
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix it by hand first") from None
    if isinstance(data, dict) and isinstance(data.get("models"), list):
        return list(data["models"]), True
    if isinstance(data, list):
        return list(data), False
    raise ConfigError(f"{path} must hold a list of prices (or {{\"models\": [...]}}); fix it by hand first")


def _write_overrides(path: Path, entries: list[dict[str, Any]], wrapped: bool) -> None:
    """Replace the file atomically: readers (another dashcam process) see the old file or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    content = {"models": entries} if wrapped else entries
    temporary.write_bytes(orjson.dumps(content, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(temporary, path)


def _change_overrides(dashcam: Dashcam, change: Any) -> list[dict[str, Any]]:
    """Apply ``change(entries) -> entries`` to ``prices.json`` and put the new catalog in use; the
    file is restored when the result does not load."""
    path = Path(dashcam.data_dir) / OVERRIDES_FILE
    with _WRITE_LOCK:
        before = path.read_bytes() if path.exists() else None
        entries, wrapped = _read_overrides(path)
        changed = change(entries)
        _write_overrides(path, changed, wrapped)
        try:
            use_prices(dashcam.data_dir)
        except ConfigError:
            if before is None:
                path.unlink()
            else:
                path.write_bytes(before)
            use_prices(dashcam.data_dir)
            raise
    return changed


@router.get("", summary="Prices in use: the shipped catalog and overrides")
def list_prices(request: Request, principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Every price by model then date, with the catalog's version."""
    principal.require("read")
    try:  # read afresh: the file may have been edited by hand since the server started
        catalog = PriceCatalog.load(_dashcam(request).data_dir)
    except PricingError as exc:
        raise ConfigError(str(exc)) from None
    return {"data": {"version": catalog.version, "file": OVERRIDES_FILE,
                     "prices": [price_body(p) for p in catalog.prices()]}}


@router.put("/{model:path}", summary="Set a price override (admins)")
def put_price(request: Request, model: str, body: PriceOverride,
              principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Override ``model``'s price from ``effective`` on; new records are priced with it at once."""
    _require_admin(request, principal, "price.put", model)
    entry: dict[str, Any] = {"model": model, "input": body.input, "output": body.output}
    for name in ("cacheRead", "cacheWrite", "effective"):
        if getattr(body, name) is not None:
            entry[name] = getattr(body, name)
    if body.provider != "aws.bedrock":
        entry["provider"] = body.provider

    def replace(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        same = [e for e in entries if isinstance(e, dict) and e.get("model") == model
                and e.get("effective") == body.effective]
        return [e for e in entries if not any(e is s for s in same)] + [entry]

    _change_overrides(_dashcam(request), replace)
    AuditLog(_dashcam(request).data_dir).record("price.put", model, details=entry)
    return {"data": entry}


@router.delete("/{model:path}", summary="Remove a model's price overrides (admins)")
def delete_price(request: Request, model: str,
                 effective: str | None = Query(None, description="Only the override taking effect on this date"),
                 principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Remove the overrides of ``model`` (all, or the one for ``effective``); the catalog's price,
    if any, applies again. 404 when there is no such override."""
    _require_admin(request, principal, "price.delete", model)
    removed: list[dict[str, Any]] = []

    def drop(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for e in entries:
            if isinstance(e, dict) and e.get("model") == model and (effective is None or e.get("effective") == effective):
                removed.append(e)
        if not removed:
            on = f" taking effect on {effective}" if effective else ""
            raise NotFoundError(f"no price override for {model!r}{on} in {OVERRIDES_FILE}")
        return [e for e in entries if not any(e is r for r in removed)]

    _change_overrides(_dashcam(request), drop)
    AuditLog(_dashcam(request).data_dir).record("price.delete", model, details={"removed": len(removed)})
    return {"data": {"model": model, "removed": len(removed)}}


@router.post("/reprice", summary="Recompute stored events' cost with the prices in use (admins)")
async def reprice(request: Request, body: RepriceRequest | None = None,
                  principal: Principal = Depends(current_principal)) -> dict[str, Any]:
    """Events whose record carried its own ``costUsd`` keep it; returns how many were repriced."""
    body = body or RepriceRequest()
    _require_admin(request, principal, "events.reprice", "")
    dashcam = _dashcam(request)
    start_ms = parse_time(body.start) if body.start else None
    end_ms = parse_time(body.end) if body.end else None
    async with request.app.state.write_gate.slot():
        count = await run_in_threadpool(dashcam.store.reprice, start_ms, end_ms)
    AuditLog(dashcam.data_dir).record("events.reprice", "", details={"startMs": start_ms, "endMs": end_ms,
                                                                    "events": count})
    return {"data": {"repriced": count}}
