"""A kill -9 during sustained ingest loses nothing that was acknowledged."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import orjson

from dashcam.service import Dashcam
from tests.conftest import serve_in_subprocess

def _batch(start: int, size: int) -> bytes:
    return b"\n".join(orjson.dumps({
        "schemaType": "ModelInvocationLog", "timestamp": f"2026-03-02T10:{(start + i) // 60000 % 60:02d}:00Z",
        "requestId": f"req-{start + i:08d}", "operation": "Converse", "modelId": "amazon.nova-lite-v1:0",
        "input": {"inputTokenCount": i % 100}, "output": {"outputTokenCount": 5},
    }) for i in range(size))


def test_kill_9_mid_ingest_keeps_every_acknowledged_record(tmp_path):
    data = tmp_path / "data"
    process, url = serve_in_subprocess(data)

    acknowledged: list[int] = []
    stop = threading.Event()

    def sender() -> None:
        with httpx.Client(timeout=10) as client:
            start = 0
            while not stop.is_set():
                try:
                    response = client.post(f"{url}/api/v1/records", params={"logGroup": "durable"},
                                           content=_batch(start, 500),
                                           headers={"content-type": "application/x-ndjson"})
                except httpx.TransportError:
                    return  # the server is gone: whatever was not answered was not acknowledged
                if response.status_code == 200 and response.json()["data"]["written"] == 500:
                    acknowledged.append(start)
                start += 500

    threads = [threading.Thread(target=sender) for _ in range(1)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(acknowledged) >= 3, "the sender should have had several batches acknowledged"

    with Dashcam.open(data) as dashcam:  # recovery replays DuckDB's write-ahead log
        stored = {row["requestId"] for row in dashcam.query("fields requestId", limit=100_000).rows}
    missing = [start for start in acknowledged if f"req-{start:08d}" not in stored
               or f"req-{start + 499:08d}" not in stored]
    assert missing == []
