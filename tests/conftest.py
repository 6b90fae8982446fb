"""Fixtures shared across the test suite."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from dashcam.service import ImportProgress

# In CI, property tests replay the same examples every run (a landing must not hinge on luck);
# on developers' machines they keep exploring new ones.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


class ProgressRecorder(ImportProgress):
    """Keeps every progress call an import makes."""

    def __init__(self) -> None:
        self.starts: list[tuple[int, int]] = []
        self.advances: list[int] = []

    def start(self, files: int, total_bytes: int) -> None:
        self.starts.append((files, total_bytes))

    def advance(self, bytes_read: int) -> None:
        assert self.starts, "advance() before start()"
        self.advances.append(bytes_read)


@pytest.fixture
def progress_recorder() -> ProgressRecorder:
    """A fresh recorder of import progress calls."""
    return ProgressRecorder()


class RunningServer:
    """A real dashcam server on 127.0.0.1 in a background thread (real HTTP, real uvicorn)."""

    def __init__(self, data_dir, *, authenticated: bool = False) -> None:
        import socket
        import threading

        import uvicorn

        from dashcam.api.app import create_app
        from dashcam.api.auth import Authenticator
        from dashcam.keys import KeyRing
        from dashcam.service import Dashcam

        self.dashcam = Dashcam.open(data_dir)
        self.keys = KeyRing(data_dir)
        authenticator = Authenticator(self.keys) if authenticated else None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(self.dashcam, authenticator=authenticator)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        import time

        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self.dashcam.close()


def serve_in_subprocess(data, *, env: dict | None = None, timeout: float = 30):
    """``dashcam serve`` over ``data`` in a process of its own on a free port, once it answers
    ``/healthz``: (the process, its URL). The caller ends the process."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "dashcam.cli", "--data", str(data), "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
            return process, url
        except httpx.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"dashcam serve did not come up (exit code {process.poll()})") from None
            time.sleep(0.1)


@pytest.fixture
def server(tmp_path):
    """A running dashcam server over a fresh data directory; ``server.url``, ``server.dashcam``."""
    running = RunningServer(tmp_path / "server-data")
    yield running
    running.stop()


@pytest.fixture
def secured_server(tmp_path):
    """Like ``server``, but checking credentials against ``secured_server.keys`` (issue keys there)."""
    running = RunningServer(tmp_path / "server-data", authenticated=True)
    yield running
    running.stop()


# ---------------------------------------------------------------------- stores on both engines
#
# The store and query suites run on DuckDB and on ClickHouse (chDB, in-process). chDB allows one
# data directory per process, so every ClickHouse store a test opens in this process lives in
# one directory — the one DASHCAM_STORE names when it is a chdb:// URL, else a temporary one —
# each in a database of its own. Tests that need a second process give it its own directory.

ENGINES = ("duckdb", "clickhouse")
_CHDB: dict[str, object] = {}


def chdb_root() -> str:
    """The one chDB directory of this test process."""
    if "root" not in _CHDB:
        import atexit
        import shutil
        import tempfile

        url = os.environ.get("DASHCAM_STORE", "")
        if url.startswith("chdb://") and "memory" not in url:
            from dashcam.store import parse_store_url

            _CHDB["root"] = parse_store_url(url).path
        else:
            root = tempfile.mkdtemp(prefix="dashcam-chdb-")
            atexit.register(shutil.rmtree, root, True)
            _CHDB["root"] = root
    return str(_CHDB["root"])


def fresh_database() -> str:
    """A database name no other test of this run uses."""
    import uuid

    return f"test_{uuid.uuid4().hex[:12]}"


class StoreOpener:
    """Opens stores of either engine for a test, and closes (and drops) them afterwards."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.opened: list = []
        self.databases: list[str] = []

    def __call__(self, engine: str, name: str = "store", database: str | None = None):
        """A store of ``engine``: DuckDB in ``<tmp>/<name>``, or ClickHouse in database
        ``database`` (a fresh one by default; the same name opens the same data again)."""
        from dashcam.store import open_store

        if engine == "duckdb":
            store = open_store(self.directory / name)
        else:
            database = database or fresh_database()
            self.databases.append(database)
            store = open_store(f"chdb://{chdb_root()}?database={database}")
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()
        if self.databases:
            drop_chdb_databases(set(self.databases))


def drop_chdb_databases(names: set[str]) -> None:
    """Drop test databases from the process's chDB directory (keeps it from growing)."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(interface="chdb", path=chdb_root())
    try:
        for name in names:
            client.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
    finally:
        client.close()


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    """Each engine in turn: ``duckdb``, ``clickhouse`` (chDB)."""
    return request.param


@pytest.fixture(scope="module", params=ENGINES)
def module_engine(request) -> str:
    """Each engine in turn, for module-scoped stores."""
    return request.param


@pytest.fixture
def open_engine_store(tmp_path):
    """``open_engine_store(engine, name="store", database=None)``: a store closed after the test."""
    opener = StoreOpener(tmp_path)
    yield opener
    opener.close()


@pytest.fixture
def store_of(open_engine_store, engine):
    """``store_of(name="store", database=None)``: a store of the test's engine."""
    return lambda name="store", database=None: open_engine_store(engine, name, database)


@pytest.fixture(scope="module")
def module_store_opener(tmp_path_factory):
    """Like ``open_engine_store``, for stores shared by a module."""
    opener = StoreOpener(tmp_path_factory.mktemp("stores"))
    yield opener
    opener.close()


def _release_chdb_before_children(monkeypatch) -> None:
    """A child process the test starts (``dashcam serve``, the CLI) opens this process's chDB
    directory: let go of the engine this process keeps for its life before any child starts
    (the adapter keeps it so that opening stores again and again does not rebuild it)."""
    import subprocess

    from dashcam.store.clickhouse import release_chdb_engine

    class ReleasingPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            release_chdb_engine()
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", ReleasingPopen)


@pytest.fixture(autouse=True)
def _own_database_per_test(monkeypatch):
    """With DASHCAM_STORE set to ClickHouse, each test sees an empty database of its own there,
    as it would see an empty data directory of its own (tests assume they start from nothing)."""
    url = os.environ.get("DASHCAM_STORE", "")
    if not url.startswith(("chdb://", "clickhouse://", "clickhouses://")):
        yield
        return
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    database = fresh_database()
    query = dict(parse_qsl(parts.query), database=database)
    if parts.scheme == "chdb":
        # One chDB directory per process: the store, and the test stores, use chdb_root().
        setting = f"chdb://{chdb_root()}?{urlencode(query)}"
    else:
        setting = urlunsplit(parts._replace(query=urlencode(query)))
    monkeypatch.setenv("DASHCAM_STORE", setting)
    if parts.scheme == "chdb":
        _release_chdb_before_children(monkeypatch)
    yield
    if parts.scheme == "chdb":
        try:
            drop_chdb_databases({database})
        except Exception:  # noqa: BLE001 - a store still open elsewhere in the process; left for atexit
            pass


@pytest.fixture
def embedded_store(monkeypatch):
    """The test runs on the embedded DuckDB store whatever ``DASHCAM_STORE`` says: for features
    only the embedded store has (its file's encryption, reading its files raw).
    Name it first (``usefixtures`` or the first argument), before fixtures that open a store."""
    monkeypatch.delenv("DASHCAM_STORE", raising=False)


@pytest.fixture(autouse=True)
def _shipped_prices():
    """Opening a data directory installs its price overrides process-wide; undo that per test."""
    from dashcam import pricing

    yield
    pricing.use(pricing.PriceCatalog.shipped())


@pytest.fixture
def chdb_url():
    """``chdb_url()``: a URL of a fresh chDB database in this process's chDB directory."""
    made: list[str] = []

    def make() -> str:
        made.append(fresh_database())
        return f"chdb://{chdb_root()}?database={made[-1]}"

    yield make
    if made:
        drop_chdb_databases(set(made))
