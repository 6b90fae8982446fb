"""The HTTP server: one ASGI app over the service façade, every interface on one port.

Routers, one module each: :mod:`dashcam.api.native` (dashcam's own JSON API under ``/api/v1``),
:mod:`dashcam.api.otlp` (OTLP/HTTP ``/v1/traces`` and ``/v1/logs``), :mod:`dashcam.api.cwlogs`
(the CloudWatch Logs JSON 1.1 API on ``POST /``). Errors: every dashcam error becomes one JSON
error shape with a 4xx/5xx status here; routers whose clients expect another shape (AWS, OTLP)
answer in that shape themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dashcam import __version__
from dashcam.errors import (
    AlreadyExistsError,
    AuthError,
    ForbiddenError,
    ConfigError,
    DashcamError,
    InputError,
    NotFoundError,
    OverloadedError,
    QueryError,
    QuerySyntaxError,
    StoreBusyError,
    StoreFullError,
    TooLargeError,
)
from dashcam.api.auth import Authenticator
from dashcam.api.limits import WriteGate
from dashcam.query_jobs import QueryJobs
from dashcam.service import Dashcam

access_log = logging.getLogger("dashcam.access")

# Status codes by error class, most specific first.
_STATUS: tuple[tuple[type[DashcamError], int], ...] = (
    (AuthError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (StoreBusyError, 503),
    (StoreFullError, 503),
    (OverloadedError, 503),
    (QueryError, 400),
    (TooLargeError, 413),
    (InputError, 400),
    (ConfigError, 400),
)


def error_body(error: DashcamError | str, *, code: str | None = None) -> dict:
    """dashcam's one error shape: ``{"error": {"code", "message"[, "line", "column"]}}``."""
    if isinstance(error, DashcamError):
        body = {"code": code or type(error).__name__, "message": str(error)}
        if isinstance(error, QuerySyntaxError):
            body.update(line=error.line, column=error.column)
        return {"error": body}
    return {"error": {"code": code or "BadRequest", "message": error}}


def status_of(error: DashcamError) -> int:
    """The HTTP status for a dashcam error (500 for a store failure)."""
    return next((status for kind, status in _STATUS if isinstance(error, kind)), 500)


def create_app(dashcam: Dashcam, *, authenticator: Authenticator | None = None) -> FastAPI:
    """The ASGI app serving ``dashcam`` (which the caller opens and closes).

    Without an ``authenticator`` the app is open: every request acts as an anonymous admin.
    """
    app = FastAPI(
        title="dashcam",
        version=__version__,
        description="Observability for generative-AI applications: ingest invocation records, "
        "ask CloudWatch Logs Insights questions.",
    )
    app.state.dashcam = dashcam
    app.state.queries = QueryJobs(dashcam)  # async queries: CloudWatch StartQuery, /api/v1/queries
    app.state.auth = authenticator
    app.state.write_gate = WriteGate()

    @app.exception_handler(DashcamError)
    async def dashcam_error(_: Request, exc: DashcamError) -> JSONResponse:
        retry_after = getattr(exc, "retry_after", None)  # overload, a full disk: worth retrying later
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse(error_body(exc), status_code=status_of(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse(error_body(problems or "invalid request", code="ValidationError"), status_code=400)

    @app.middleware("http")
    async def log_access(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        access_log.info(orjson.dumps({
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "client": request.client.host if request.client else None,
            "target": request.headers.get("x-amz-target"),
        }).decode())
        return response

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The store answers queries")
    def readyz() -> JSONResponse:
        try:
            dashcam.store.execute("SELECT 1")
        except DashcamError as exc:
            return JSONResponse(error_body(exc, code="NotReady"), status_code=503)
        return JSONResponse({"status": "ready"})

    from dashcam.api import cwlogs, native, otlp  # routers import create_app's helpers above

    app.include_router(native.router)
    app.include_router(otlp.router)
    app.include_router(cwlogs.router)

    from dashcam.api import advice, prometheus  # GET /metrics, GET /api/v1/advice

    app.include_router(prometheus.router)
    app.include_router(advice.router)

    from dashcam.web import routes as web  # the dashboard: page shell, assets, saved queries

    app.include_router(web.router)

    from dashcam.api import protection  # /api/v1/protection, /api/v1/unmask, /api/v1/audit

    app.include_router(protection.router)

    from dashcam.api import dashboards  # /api/v1/dashboards, /api/v1/widgets/data

    app.include_router(dashboards.router)

    from dashcam.api import alarms  # /api/v1/alarms (the scheduler itself is started by serve())

    app.include_router(alarms.router)

    from dashcam.api import keys, prices, retention  # /api/v1/keys, /whoami, /prices, log-group retention

    app.include_router(keys.router)
    app.include_router(prices.router)
    app.include_router(retention.router)
    return app
