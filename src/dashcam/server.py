"""``dashcam serve``: the HTTP server on one port, over one data directory.

uvicorn runs the ASGI app; on SIGINT/SIGTERM it stops taking requests, lets the ones in flight
finish, and then the store is closed, which commits and checkpoints everything acknowledged.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import uvicorn

from dashcam.api.app import create_app
from dashcam.api.auth import Authenticator
from dashcam.api.otlp_workers import configured_workers
from dashcam.keys import KeyRing
from dashcam.errors import ConfigError, DashcamError
from dashcam.service import Dashcam
from dashcam.store.retention import DEFAULT_INTERVAL_S, RetentionEnforcer
from dashcam.store.archive.archiver import DEFAULT_ARCHIVE_INTERVAL_S, Archiver

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4318  # OTLP/HTTP's port: stock exporters need no configuration
SERVER_FILE = "server.json"
# Ingest allocates tens of short-lived containers per record and frees them by reference count;
# at CPython's default (700) the collector runs every few records, and each full pass walks the
# whole heap. A larger first threshold and a frozen start-up heap cut that to ~1% of ingest CPU.
GC_THRESHOLDS = (50_000, 20, 100)
# DuckDB's buffer pool defaults to 80% of RAM and fills with what it reads and writes: a cap keeps
# the server's resident size under DESIGN.md's 500 MB while ingesting (JSON API from 4 clients at
# ~65k records/s: 440-480 MB at 160 MB, 490-510 MB at 192 MB, the same speed); queries larger
# than it spill to disk (the core questions, a p99 by model or by hour and a 10M-key stats over
# 10M records ran as at 192 MB).
DUCKDB_MEMORY_LIMIT_ENV = "DASHCAM_DUCKDB_MEMORY_LIMIT"
DEFAULT_DUCKDB_MEMORY_LIMIT = "160MB"
_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.I)


class GracefulServer(uvicorn.Server):
    """uvicorn, except that after a graceful stop on SIGINT/SIGTERM it returns instead of
    re-raising the signal (which would kill the process before the store is closed)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    dashcam: Dashcam,
    data_dir: str | Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_level: str = "info",
    retention_interval_s: float = DEFAULT_INTERVAL_S,
    archive_interval_s: float = DEFAULT_ARCHIVE_INTERVAL_S,
) -> None:
    """Serve ``dashcam`` until interrupted, then close it.

    Keys come from ``data_dir``; with none, only a loopback address may be bound (secure by
    default). While serving, ``server.json`` in ``data_dir`` tells the other ``dashcam`` commands
    where the server is and gives them a local admin token that dies with the server. Retention
    is enforced in the background every ``retention_interval_s`` seconds, and alarms are evaluated
    once a minute (the scheduler is ``app.state.alarm_scheduler``). Events older than the archive's
    hot window move to Parquet every ``archive_interval_s`` seconds (``dashcam archive configure``).
    """
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not between 1 and 65535")
    keys = KeyRing(data_dir)
    if not is_loopback(host) and not keys.active():
        raise ConfigError(
            f"refusing to serve on {host} with no keys: anyone who can reach it could read and write. "
            "Create a key first (dashcam keys create --role admin), or serve on 127.0.0.1"
        )
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(message)s")
    limit_store_memory(dashcam.store)
    configured_workers()  # a bad DASHCAM_OTLP_WORKERS is refused now, not at the first export
    local_token = secrets.token_urlsafe(32)
    app = create_app(dashcam, authenticator=Authenticator(keys, local_token=local_token))
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=30)
    address = Path(data_dir) / SERVER_FILE
    alarm_scheduler = app.state.alarm_scheduler = dashcam.alarm_scheduler()  # every alarm, once a minute
    retention = RetentionEnforcer(dashcam.store, interval_s=retention_interval_s).start()
    archiver = Archiver(dashcam.store, interval_s=archive_interval_s).start()  # does nothing until configured
    alarm_scheduler.start()
    # Log group sizes take one scan of every message the first time (seconds on a big store): do
    # it now, in the background, rather than in the first DescribeLogGroups or settings page.
    threading.Thread(target=_warm_log_group_sizes, args=(dashcam,), name="dashcam-warm-up", daemon=True).start()
    tune_gc()
    try:
        _write_private(address, {"url": f"http://{_url_host(host)}:{port}", "pid": os.getpid(), "token": local_token})
        GracefulServer(config).run()
    finally:
        address.unlink(missing_ok=True)
        alarm_scheduler.stop()
        retention.stop()
        archiver.stop()
        dashcam.close()


def limit_store_memory(store) -> None:
    """Cap an embedded DuckDB store's memory (``DASHCAM_DUCKDB_MEMORY_LIMIT``, default 192MB); larger
    work spills to disk, and what cannot (one percentile over very many records) says to raise it."""
    limit = os.environ.get(DUCKDB_MEMORY_LIMIT_ENV, DEFAULT_DUCKDB_MEMORY_LIMIT).strip()
    if not _MEMORY_SIZE.fullmatch(limit):
        raise ConfigError(f"{DUCKDB_MEMORY_LIMIT_ENV}={limit!r} is not a size such as 128MB or 1GB")
    while getattr(store, "inner", None) is not None:  # archive and protection wrappers
        store = store.inner
    if store.dialect == "duckdb":
        store.execute(f"SET memory_limit = '{limit}'")


def _warm_log_group_sizes(dashcam: Dashcam) -> None:
    try:
        dashcam.log_groups()
    except DashcamError as exc:  # the first request will say what is wrong; nothing to do here
        logging.getLogger("dashcam.server").warning("warming up log group sizes failed: %s", exc)


def tune_gc() -> None:
    """Collect garbage less often while serving: everything loaded so far lives as long as the
    process (frozen out of every pass), and ingest's garbage is acyclic, freed without the collector."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(data))
