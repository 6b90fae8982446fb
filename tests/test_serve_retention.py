"""`dashcam serve` enforces retention by itself: expired events disappear without anyone asking."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dashcam.records import timestamp_ms
from dashcam.service import Dashcam

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "bedrock-invocation-logs.jsonl"


def test_the_server_deletes_expired_events_in_the_background(tmp_path):
    data = tmp_path / "data"
    with Dashcam.open(data) as dashcam:
        assert dashcam.import_logs([SAMPLES], log_group="/kept-a-day").written == 6
        assert dashcam.import_logs([SAMPLES], log_group="/kept-forever").written == 6
        dashcam.store.set_retention("/kept-a-day", 1)
    # The samples are from a fixed past date: more than a day old by the wall clock.
    assert timestamp_ms("2026-03-02T23:59:59Z") < time.time() * 1000 - 86_400_000
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "dashcam.cli", "--data", str(data), "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                groups = {g["name"]: g["events"] for g in httpx.get(f"{url}/api/v1/log-groups", timeout=2).json()["data"]}
            except httpx.TransportError:
                groups = {}
            if groups.get("/kept-a-day") == 0:
                break
            assert time.monotonic() < deadline, f"expired events were never deleted: {groups}"
            time.sleep(0.1)
        assert groups == {"/kept-a-day": 0, "/kept-forever": 6}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert process.returncode == 0
