"""Fixtures for gateway tests: the model simulator, gateways in front of it, real clients, records.

pytest runs with --import-mode=importlib, so helpers are handed out as fixtures, not imported.
"""

from __future__ import annotations

import socket
from typing import Any

import boto3
import openai
import pytest
from botocore.config import Config
from botocore.credentials import Credentials

from dashcam.gateway.config import load_config
from dashcam.gateway.server import build_gateway, start_gateway
from dashcam.simulate.server import start_simulator

# The gateway's own AWS credentials (what it re-signs with); callers use others.
GATEWAY_CREDENTIALS = Credentials("AKIDGATEWAY", "gateway-secret")
LOG_GROUP = "/dashcam/gateway"

RECORD_FIELDS = (
    "operation, modelId, errorCode, status, throttled, latencyMs, timeToFirstTokenMs, input.inputTokenCount, "
    "output.outputTokenCount, identity.arn, source, provider, region, requestId, requestMetadata.attempt, "
    "requestMetadata.invocationId, requestMetadata.gatewayAttempts, requestMetadata.gatewayWaitMs, "
    "requestMetadata.gatewayShaped, requestMetadata.tenant, errorMessage, app, userId"
)


@pytest.fixture(scope="module")
def simulator():
    """A model simulator at 200x speed (a 1 s answer takes 5 ms), seeded, for the module."""
    with start_simulator(seed=11, speed=200) as handle:
        yield handle


def _bedrock(url: str, key_id: str = "AKIDCALLER", secret: str = "caller-secret", attempts: int = 1) -> Any:
    return boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret,
                        config=Config(retries={"mode": "standard", "total_max_attempts": attempts},
                                      max_pool_connections=128))


def _openai(base_url: str, api_key: str = "sk-caller", **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, **kwargs)


@pytest.fixture
def bedrock_client():
    """make(url, key_id=, secret=, attempts=1): a real boto3 bedrock-runtime client on ``url``."""
    return _bedrock


@pytest.fixture
def openai_client():
    """make(base_url, api_key=, **kwargs): a real OpenAI client on ``base_url`` (no retries)."""
    return _openai


@pytest.fixture
def make_gateway(tmp_path):
    """make(record_to=server, keys=None, record_key=None, **settings) -> a running gateway.

    Settings are :func:`~dashcam.gateway.config.load_config` keywords (upstreams, limits, ...);
    records go to ``record_to`` (a RunningServer) with ``record_key``. Stopped after the test."""
    handles = []

    def make(*, record_to=None, keys=None, record_key=None, **settings: Any):
        settings.setdefault("flush_interval", 0.05)
        if record_to is not None:
            settings.update(dashcam_url=record_to.url, dashcam_key=record_key)
        config = load_config(None, env={}, **settings)
        gateway = build_gateway(config, tmp_path / "gateway-data", keys=keys, credentials=GATEWAY_CREDENTIALS,
                                record=record_to is not None)
        handle = start_gateway(gateway)
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        handle.stop()


@pytest.fixture
def records():
    """read(gateway, server, query=""): flush the gateway and return its records in the server's store."""
    def read(gateway, server, query: str = "") -> list[dict[str, Any]]:
        assert gateway.flush(10), "the gateway did not deliver its records within 10 s"
        text = f"fields {RECORD_FIELDS}" + (f" | {query}" if query else "") + " | sort @timestamp asc | limit 10000"
        return server.dashcam.query(text, log_groups=[LOG_GROUP]).rows
    return read


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (a port just bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class _Upstream:
    """A stand-in provider on 127.0.0.1 answering every request with ``handler`` (real uvicorn)."""

    def __init__(self, handler) -> None:
        import threading
        import time

        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route("/{path:path}", handler, methods=["GET", "POST"])])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the stand-in upstream did not start"
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def fake_upstream():
    """serve(handler) -> base URL of a stand-in provider whose every answer ``handler(request)``
    gives (for faults the simulator does not make: broken bodies, cut streams, ...)."""
    started = []

    def serve(handler) -> str:
        started.append(_Upstream(handler))
        return started[-1].url

    yield serve
    for upstream in started:
        upstream.stop()
