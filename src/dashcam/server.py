"""``dashcam serve``: the HTTP server on one port, over one data directory.

uvicorn runs the ASGI app; on SIGINT/SIGTERM it stops taking requests, lets the ones in flight
finish, and then the store is closed, which commits and checkpoints everything acknowledged.
"""

from __future__ import annotations

import ipaddress
import logging

import uvicorn

from dashcam.api.app import create_app
from dashcam.errors import ConfigError
from dashcam.service import Dashcam

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318  # OTLP/HTTP's port: stock exporters need no configuration


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(dashcam: Dashcam, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "info") -> None:
    """Serve ``dashcam`` until interrupted, then close it."""
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not between 1 and 65535")
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(message)s")
    config = uvicorn.Config(create_app(dashcam), host=host, port=port, log_level=log_level,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=30)
    try:
        uvicorn.Server(config).run()
    finally:
        dashcam.close()
