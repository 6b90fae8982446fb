"""`dashcam serve` as a user runs it: a real process, real signals, the data directory's files."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "bedrock-invocation-logs.jsonl"
DASHCAM = [sys.executable, "-m", "dashcam.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else "server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not come up")


def test_serve_announces_itself_keeps_acknowledged_writes_and_cleans_up_on_sigterm(tmp_path):
    data, port = tmp_path / "data", _free_port()
    process = subprocess.Popen([*DASHCAM, "--data", str(data), "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, process)
        announced = orjson.loads((data / "server.json").read_bytes())
        assert announced["url"] == url and announced["pid"] == process.pid and len(announced["token"]) > 30
        assert oct((data / "server.json").stat().st_mode & 0o777) == "0o600"
        records = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]
        written = httpx.post(f"{url}/api/v1/records", json=records).json()["data"]["written"]
        assert written == 6
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert process.returncode == 0
    assert not (data / "server.json").exists()
    rows = subprocess.run([*DASHCAM, "--data", str(data), "query", "--format", "json", "stats count(*) as n"],
                          capture_output=True, text=True, check=True).stdout
    assert orjson.loads(rows) == [{"n": 6}]


def test_serve_refuses_a_non_loopback_address_without_keys(tmp_path):
    done = subprocess.run([*DASHCAM, "--data", str(tmp_path / "data"), "serve", "--host", "0.0.0.0",
                           "--port", str(_free_port())], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 with no keys" in done.stderr


def test_with_keys_the_server_wants_them(tmp_path):
    data, port = tmp_path / "data", _free_port()
    created = subprocess.run([*DASHCAM, "--data", str(data), "keys", "create", "--role", "read"],
                             capture_output=True, text=True, check=True).stdout
    token = next(line.split()[-1] for line in created.splitlines() if line.startswith("bearer token:"))
    process = subprocess.Popen([*DASHCAM, "--data", str(data), "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, process)
        assert httpx.get(f"{url}/api/v1/log-groups").status_code == 401
        headers = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/api/v1/log-groups", headers=headers).status_code == 200
        denied = httpx.post(f"{url}/api/v1/records", headers=headers, json=[])
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "ForbiddenError"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)



def test_while_a_server_owns_the_directory_query_and_import_go_through_it(tmp_path):
    data, port = tmp_path / "data", _free_port()
    process = subprocess.Popen([*DASHCAM, "--data", str(data), "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", process)
        bad = tmp_path / "bad.jsonl"
        bad.write_bytes(SAMPLES.read_bytes() + b"{oops\n")
        imported = subprocess.run([*DASHCAM, "--data", str(data), "import", str(bad)],
                                  capture_output=True, text=True, timeout=60)
        assert imported.returncode == 0, imported.stderr
        assert "imported 6 new records" in imported.stderr and f"{bad}:7: not valid JSON" in imported.stderr
        queried = subprocess.run([*DASHCAM, "--data", str(data), "query", "--format", "json",
                                  "stats count(*) as n by operation | sort operation asc"],
                                 capture_output=True, text=True, timeout=60)
        assert queried.returncode == 0, queried.stderr
        assert orjson.loads(queried.stdout) == [{"operation": "Converse", "n": 2},
                                                {"operation": "ConverseStream", "n": 1},
                                                {"operation": "InvokeModel", "n": 3}]
        malformed = subprocess.run([*DASHCAM, "--data", str(data), "query", "stats count(*) by"],
                                   capture_output=True, text=True, timeout=60)
        assert malformed.returncode == 2 and "line 1, column" in malformed.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def test_the_server_caps_the_embedded_store_memory_and_names_the_setting(tmp_path, monkeypatch):
    from dashcam.errors import ConfigError, QueryExecutionError
    from dashcam.server import DUCKDB_MEMORY_LIMIT_ENV, limit_store_memory
    from dashcam.store import open_store

    store = open_store(tmp_path / "store")
    try:
        monkeypatch.setenv(DUCKDB_MEMORY_LIMIT_ENV, "lots")
        with pytest.raises(ConfigError, match=DUCKDB_MEMORY_LIMIT_ENV):
            limit_store_memory(store)
        monkeypatch.setenv(DUCKDB_MEMORY_LIMIT_ENV, "8MB")
        limit_store_memory(store)
        assert store.execute("SELECT current_setting('memory_limit')")[0][0] in ("8.0 MiB", "7.6 MiB")
        # A query that cannot spill tells the user which setting to raise.
        with pytest.raises(QueryExecutionError, match=DUCKDB_MEMORY_LIMIT_ENV):
            store.execute("SELECT quantile_cont(x, 0.99) FROM (SELECT random() AS x FROM range(5000000))")
    finally:
        store.close()
