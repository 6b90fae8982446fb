"""Running the model simulator: in a background thread (tests, benchmarks, the demo) or in the
foreground (``dashcam simulate``).

One Starlette app serves the Bedrock runtime API at the root (boto3's ``endpoint_url``) and the
OpenAI-compatible API under ``/v1`` (the OpenAI client's ``base_url``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from dashcam.errors import ConfigError
from dashcam.simulate.bedrock_api import bedrock_routes
from dashcam.simulate.engine import Simulator
from dashcam.simulate.models import DEFAULT_MODELS, ModelSpec
from dashcam.simulate.openai_api import openai_routes

__all__ = ["DEFAULT_PORT", "create_simulator_app", "SimulatorHandle", "start_simulator", "run_simulator",
           "with_quotas"]

DEFAULT_PORT = 4319  # next to dashcam's own 4318


def create_simulator_app(simulator: Simulator) -> Starlette:
    """The ASGI app serving both APIs over ``simulator``."""

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if request.url.path.startswith("/v1/"):
            return Response(orjson.dumps({"error": {"message": f"Unknown request URL: {request.method} "
                                                               f"{request.url.path}.", "type": "invalid_request_error",
                                                    "param": None, "code": "unknown_url"}}),
                            status_code=status, media_type="application/json")
        code = "UnknownOperationException" if status in (404, 405) else "InternalServerException"
        return Response(orjson.dumps({"message": None if code == "UnknownOperationException" else str(exc)}),
                        status_code=404 if status in (404, 405) else status, media_type="application/json",
                        headers={"x-amzn-RequestId": simulator.request_id(), "x-amzn-ErrorType": code})

    app = Starlette(routes=bedrock_routes(simulator) + openai_routes(simulator),
                    exception_handlers={HTTPException: not_found})
    app.state.simulator = simulator
    return app


class SimulatorHandle:
    """A simulator serving on 127.0.0.1 (or ``host``) in a daemon thread.

    ``url`` is the Bedrock ``endpoint_url``; ``url + "/v1"`` is the OpenAI ``base_url``.
    ``stats()`` tells what the simulator did, per model. Use as a context manager or call ``stop()``.
    """

    def __init__(self, simulator: Simulator, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self.simulator = simulator
        self.url = url
        self._server = server
        self._thread = thread

    @property
    def openai_url(self) -> str:
        """The OpenAI client's ``base_url``."""
        return self.url + "/v1"

    def stats(self) -> dict:
        """Per model: requests, succeeded, throttled, errors{code: n}, operations{name: n}, and the
        input/output/cache tokens of the calls that succeeded."""
        return self.simulator.stats.snapshot()

    def stop(self) -> None:
        """Stop serving and wait for the thread (streams in flight are cut)."""
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> "SimulatorHandle":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _config(simulator: Simulator, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(create_simulator_app(simulator), host=host, port=port, log_level=log_level,
                          access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                          backlog=4096, limit_concurrency=None)


def start_simulator(*, seed: int = 0, speed: float = 1.0, host: str = "127.0.0.1", port: int = 0,
                    models: list[ModelSpec] | tuple[ModelSpec, ...] | None = None) -> SimulatorHandle:
    """Start a simulator in a background thread and return once it accepts connections.

    ``port`` 0 picks a free port. ``speed`` compresses time (latencies and quota windows);
    ``models`` replaces the default catalog (``models.DEFAULT_MODELS``).
    """
    simulator = Simulator(seed=seed, speed=speed, models=models)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(simulator, host, bound_port, "warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashcam-simulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the simulator did not start")
        time.sleep(0.005)
    url_host = f"[{host}]" if ":" in host else host
    return SimulatorHandle(simulator, server, thread, f"http://{url_host}:{bound_port}")


def with_quotas(overrides: list[str] | tuple[str, ...], models: tuple[ModelSpec, ...] = DEFAULT_MODELS
                ) -> tuple[ModelSpec, ...]:
    """``models`` with quotas changed by ``MODEL=RPM,TPM,CONCURRENCY`` overrides (an empty field
    keeps the model's value), e.g. ``us.anthropic.claude-sonnet-4-20250514-v1:0=60,,10``."""
    by_id = {spec.model_id: spec for spec in models}
    for override in overrides:
        model_id, sep, values = override.partition("=")
        fields = values.split(",")
        if not sep or model_id not in by_id or len(fields) != 3:
            known = ", ".join(by_id)
            raise ConfigError(f"--quota {override!r}: expected MODEL=RPM,TPM,CONCURRENCY with MODEL one of {known}")
        try:
            numbers = [int(f) if f.strip() else None for f in fields]
        except ValueError:
            raise ConfigError(f"--quota {override!r}: RPM, TPM and CONCURRENCY must be whole numbers") from None
        if any(n is not None and n < 1 for n in numbers):
            raise ConfigError(f"--quota {override!r}: quotas must be at least 1")
        by_id[model_id] = by_id[model_id].with_quota(*numbers)
    return tuple(by_id.values())


def run_simulator(*, seed: int = 0, speed: float = 1.0, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  models: tuple[ModelSpec, ...] | None = None, log_level: str = "info") -> None:
    """Serve the simulator in the foreground until interrupted (``dashcam simulate``)."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(message)s")
    simulator = Simulator(seed=seed, speed=speed, models=models)
    uvicorn.Server(_config(simulator, host, port, log_level)).run()
