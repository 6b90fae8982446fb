"""Running the gateway: in the foreground (``dashcam gateway``) or in a background thread (tests,
benchmarks), with its recorder started before and closed after.

Secure by default, as ``dashcam serve`` is: with no active key in the data directory the gateway
runs open (every caller is ``arn:dashcam:iam::anonymous``) and then binds only a loopback address.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from dashcam.errors import ConfigError
from dashcam.gateway.app import Gateway, create_gateway_app
from dashcam.gateway.config import GatewayConfig, with_region
from dashcam.gateway.recording import Recorder, recorder_settings
from dashcam.gateway.upstream import aws_credentials, aws_region
from dashcam.keys import KeyRing
# dashcam serve's uvicorn server that returns after a graceful SIGINT/SIGTERM stop instead of
# re-raising the signal, so the recorder is closed and the command exits 0.
from dashcam.server import GracefulServer
from dashcam.server import is_loopback

_UNSET: Any = object()


def build_gateway(config: GatewayConfig, data_dir: str | Path, *, store: str | None = None,
                  keys: KeyRing | None = None, credentials: Any = _UNSET, record: bool = True) -> Gateway:
    """A gateway over ``data_dir`` (its keys; its store, unless ``config.dashcam_url`` says where
    records go). AWS credentials and region come from the standard chain unless given."""
    config = with_region(config, aws_region())
    if credentials is _UNSET:
        credentials = aws_credentials() if config.bedrock_url is not None else None
    keys = keys if keys is not None else KeyRing(data_dir)
    recorder = None
    if record:
        recorder = Recorder(recorder_settings(url=config.dashcam_url, key=config.dashcam_key, data_dir=str(data_dir),
                                              store=store, body=config.body, log_group=config.log_group,
                                              queue_size=config.record_queue,
                                              flush_interval=config.flush_interval))
    try:
        return Gateway(config, keys=keys, recorder=recorder, credentials=credentials)
    except BaseException:
        if recorder is not None:
            recorder.close(0)
        raise


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> uvicorn.Config:
    # Upstream Date/Server headers are passed on, so uvicorn adds none of its own.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on",
                          timeout_graceful_shutdown=30, backlog=4096, server_header=False, date_header=False)


def run_gateway(config: GatewayConfig, data_dir: str | Path, *, store: str | None = None,
                log_level: str = "info") -> None:
    """Serve the gateway until interrupted; then deliver the records still queued."""
    if not 0 < config.port < 65536:
        raise ConfigError(f"port {config.port} is not between 1 and 65535")
    keys = KeyRing(data_dir)
    if not is_loopback(config.host) and not keys.active():
        raise ConfigError(f"refusing to run the gateway on {config.host} with no keys: anyone who can reach it "
                          "could call your models on your account. Create a key first (dashcam keys create "
                          "--role ingest), or listen on 127.0.0.1")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per forwarded call is not a log
    gateway = build_gateway(config, data_dir, store=store, keys=keys)
    try:
        GracefulServer(_uvicorn_config(create_gateway_app(gateway), config.host, config.port, log_level)).run()
    finally:
        if gateway.recorder is not None:
            gateway.recorder.close()


class GatewayHandle:
    """A gateway serving on 127.0.0.1 in a daemon thread: ``url`` is both boto3's ``endpoint_url``
    and, with ``/v1``, the OpenAI client's ``base_url``. Use as a context manager or call ``stop()``."""

    def __init__(self, gateway: Gateway, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self.gateway = gateway
        self.url = url
        self._server = server
        self._thread = thread

    @property
    def openai_url(self) -> str:
        """The OpenAI client's ``base_url``."""
        return self.url + "/v1"

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver every record of the calls answered so far; True if done within ``timeout``."""
        recorder = self.gateway.recorder
        return True if recorder is None else recorder.flush(timeout)

    def stop(self) -> None:
        """Stop serving, then deliver the records still queued."""
        self._server.should_exit = True
        self._thread.join(15)
        if self.gateway.recorder is not None:
            self.gateway.recorder.close(5)

    def __enter__(self) -> "GatewayHandle":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def start_gateway(gateway: Gateway, *, host: str = "127.0.0.1", port: int = 0) -> GatewayHandle:
    """Serve ``gateway`` in a background thread; returns once it accepts connections (port 0: any free)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(create_gateway_app(gateway), host, bound, "warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashcam-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the gateway did not start")
        time.sleep(0.005)
    url_host = f"[{host}]" if ":" in host else host
    return GatewayHandle(gateway, server, thread, f"http://{url_host}:{bound}")
