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

    def __init__(self, data_dir) -> None:
        import socket
        import threading

        import uvicorn

        from dashcam.api.app import create_app
        from dashcam.service import Dashcam

        self.dashcam = Dashcam.open(data_dir)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(self.dashcam)
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


@pytest.fixture
def server(tmp_path):
    """A running dashcam server over a fresh data directory; ``server.url``, ``server.dashcam``."""
    running = RunningServer(tmp_path / "server-data")
    yield running
    running.stop()
