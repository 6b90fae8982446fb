"""``dashcam metrics``: series per period as a table, JSON or CSV, and ``--list``."""

from __future__ import annotations

import csv
import io
import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.service import Dashcam

T0 = 1_772_442_000_000  # 2026-03-02T09:00:00Z
GROUP = "/aws/bedrock/modelinvocations"


def record(ts_ms: int, model: str, latency: float, *, error: str | None = None) -> dict:
    body = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts_ms, "operation": "Converse",
            "modelId": model, "requestId": f"{model}-{ts_ms}", "latencyMs": latency,
            "requestMetadata": {"team": "care" if model == "model-a" else "data"}}
    return {**body, "errorCode": error} if error else body


# (minute, model, latency, error)
CALLS = [(0, "model-a", 100.0, None), (0, "model-a", 300.0, None), (0, "model-b", 50.0, None),
         (1, "model-a", 200.0, None), (1, "model-b", 70.0, "ThrottlingException"), (3, "model-b", 90.0, None)]


@pytest.fixture
def data_dir(tmp_path):
    directory = tmp_path / "data"
    with Dashcam.open(directory) as dashcam:
        dashcam.store.write_records(GROUP, "s", [record(T0 + m * 60_000 + i, model, latency, error=error)
                                                 for i, (m, model, latency, error) in enumerate(CALLS)], source="api")
    return directory


def run(data_dir, *args: str):
    return CliRunner().invoke(main, ["--data", str(data_dir), "metrics", *args])


def test_default_is_invocations_per_minute_over_all_data(data_dir):
    result = run(data_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    expected: dict[int, int] = {}
    for minute, _, _, error in CALLS:
        if error is None:
            expected[minute] = expected.get(minute, 0) + 1
    assert rows == [{"timestamp": f"2026-03-02 09:{m:02d}:00.000", "Invocations Sum": n} for m, n in expected.items()]


def test_several_metrics_one_model_and_a_statistic_as_csv(data_dir):
    result = run(data_dir, "--metric", "InvocationLatency", "--metric", "InvocationThrottles", "--stat", "Maximum",
                 "--model", "model-a", "--period", "120", "--start", "2026-03-02T09:00:00Z", "--end", "1h",
                 "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    latencies = [lat for m, model, lat, err in CALLS if model == "model-a" and err is None]
    assert rows == [{"timestamp": "2026-03-02 09:00:00.000", "InvocationLatency Maximum": str(int(max(latencies))),
                     "InvocationThrottles Maximum": ""}]


def test_dimensions_and_the_default_statistic_per_unit(data_dir):
    result = run(data_dir, "--metric", "InvocationLatency", "--dimension", "team=data", "--period", "3600")
    assert result.exit_code == 0, result.output
    assert "InvocationLatency Average" in result.stdout
    assert "70" in result.stdout and "(1 row)" in result.stdout  # (50 + 90) / 2; the throttled call is no sample


def test_list_shows_metrics_and_dimension_values(data_dir):
    result = run(data_dir, "--list", "--metric", "InvocationThrottles", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {"metric": "InvocationThrottles", "unit": "Count", "dimensions": "ModelId=model-b"} in rows
    assert all(r["metric"] == "InvocationThrottles" for r in rows)
    teams = json.loads(run(data_dir, "--list", "--metric", "Invocations", "--dimension", "team",
                           "--format", "json").stdout)
    assert [r["dimensions"] for r in teams] == ["team=care", "team=data"]


@pytest.mark.parametrize("args, message", [
    (("--period", "90"), "period 90"),
    (("--stat", "p101"), "p101"),
    (("--metric", "Nope"), "Nope"),
    (("--dimension", "team"), "needs a value"),
])
def test_bad_arguments_exit_2_with_the_reason_on_stderr(data_dir, args, message):
    result = run(data_dir, *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""


def test_while_a_server_owns_the_data_directory_the_command_asks_it(data_dir):
    """DuckDB lets one process open the file: the command then goes through the server's native API."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    local = json.loads(run(data_dir, "--metric", "InvocationLatency", "--stat", "p50", "--format", "json").stdout)
    listed = json.loads(run(data_dir, "--list", "--format", "json").stdout)
    server = subprocess.Popen([sys.executable, "-m", "dashcam.cli", "--data", str(data_dir), "serve", "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (data_dir / "server.json").exists():
            assert server.poll() is None and time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        remote = run(data_dir, "--metric", "InvocationLatency", "--stat", "p50", "--format", "json",
                     "--start", "2026-03-02T09:00:00Z", "--end", "2026-03-02T10:00:00Z")
        assert remote.exit_code == 0, remote.output
        assert json.loads(remote.stdout) == local
        assert json.loads(run(data_dir, "--list", "--format", "json").stdout) == listed
        refused = run(data_dir, "--period", "90")
        assert refused.exit_code == 2 and "period 90" in refused.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
