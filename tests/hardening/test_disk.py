"""A full disk and a read-only disk: a clear error, nothing acknowledged lost, no corruption, and
writes succeed again once space returns.

The data directory lives on a small tmpfs this test mounts (CI runs as root): a real file system
that really fills, so DuckDB sees ENOSPC exactly as on a full disk, and that can be grown again
(``mount -o remount,size=...``) under the running server, as an operator freeing space would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from dashcam.service import Dashcam

# The store must live on the small disk: the embedded store in the data directory, whatever
# DASHCAM_STORE says (the servers started here inherit the environment without it).
pytestmark = pytest.mark.usefixtures("embedded_store")

DASHCAM = [sys.executable, "-m", "dashcam.cli"]
SIZE_MB = 48


@pytest.fixture
def small_disk(tmp_path):
    """A SIZE_MB tmpfs mounted at a fresh directory, unmounted afterwards."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mountpoint)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("the disk tests mount a small tmpfs: no mount command here")
    if mounted.returncode != 0:
        # Only root (CAP_SYS_ADMIN) may mount; .ci/run runs as root, a developer's pytest may not.
        pytest.skip(f"the disk tests mount a small tmpfs, which needs root: {mounted.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _remount(mountpoint: Path, option: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{option}", str(mountpoint)], check=True)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(data: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen([*DASHCAM, "--data", str(data), "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
            return process, url
        except httpx.TransportError:
            assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
            time.sleep(0.1)


def _batch(start: int, size: int = 200) -> bytes:
    # Random-looking bodies do not compress: the disk fills after a predictable number of batches.
    return b"\n".join(orjson.dumps({
        "schemaType": "ModelInvocationLog", "timestamp": "2026-03-02T10:00:00Z", "requestId": f"req-{start + i:08d}",
        "operation": "Converse", "modelId": "amazon.nova-lite-v1:0",
        "input": {"inputTokenCount": 1, "inputBodyJson": {"text": os.urandom(300).hex()}},
        "output": {"outputTokenCount": 5}}) for i in range(size))


def _send(client: httpx.Client, url: str, start: int) -> httpx.Response:
    return client.post(f"{url}/api/v1/records", params={"logGroup": "disk"}, content=_batch(start),
                       headers={"content-type": "application/x-ndjson"})


def _fill(mountpoint: Path, leave_bytes: int) -> Path:
    filler = mountpoint / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler


def _stored(data: Path) -> set[str]:
    with Dashcam.open(data) as dashcam:
        return {row["requestId"] for row in dashcam.query("fields requestId", limit=10**7).rows}


def test_a_full_disk_is_a_clear_error_loses_nothing_and_recovers(small_disk):
    data = small_disk / "data"
    process, url = _serve(data)
    acknowledged: list[int] = []
    try:
        with httpx.Client(timeout=60) as client:
            for start in range(0, 2000, 200):
                assert _send(client, url, start).status_code == 200
                acknowledged.append(start)
            _fill(small_disk, leave_bytes=2 << 20)
            start, refused = 2000, None
            for start in range(2000, 200_000, 200):
                response = _send(client, url, start)
                if response.status_code != 200:
                    refused = response
                    break
                acknowledged.append(start)
            assert refused is not None, "the disk never filled"
            assert refused.status_code == 503, refused.text  # retryable, as clients expect
            assert refused.headers.get("Retry-After"), refused.headers
            assert refused.json()["error"]["code"] == "StoreFullError"
            assert f"the disk holding {data} is full" in refused.json()["error"]["message"], refused.text

            # Space returns: the same server takes writes again (a retried batch is a duplicate-free retry).
            _remount(small_disk, f"size={SIZE_MB * 4}m")
            for retry in range(50):
                response = _send(client, url, start)
                if response.status_code == 200:
                    break
                time.sleep(0.2)
            assert response.status_code == 200, response.text
            acknowledged.append(start)
            assert _send(client, url, start + 200).status_code == 200
            acknowledged.append(start + 200)
    finally:
        process.terminate()
        process.wait(30)

    stored = _stored(data)  # reopens cleanly: no corruption
    missing = [s for s in acknowledged if f"req-{s:08d}" not in stored or f"req-{s + 199:08d}" not in stored]
    assert missing == []


def test_a_read_only_disk_is_a_clear_error_and_the_store_survives_it(small_disk):
    # A file system cannot be remounted read-only under a process writing to it (EBUSY), so the
    # server is stopped, the disk goes read-only, and dashcam is started on it.
    data = small_disk / "data"
    process, url = _serve(data)
    try:
        with httpx.Client(timeout=60) as client:
            assert _send(client, url, 0).status_code == 200
    finally:
        process.terminate()
        process.wait(30)
    _remount(small_disk, "ro")
    for command in (["serve", "--port", str(_free_port())], ["query", "stats count(*) as n"]):
        refused = subprocess.run([*DASHCAM, "--data", str(data), *command], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1, refused
        assert "Read-only file system" in refused.stderr and str(data) in refused.stderr, refused.stderr
    _remount(small_disk, "rw")
    process, url = _serve(data)
    try:
        with httpx.Client(timeout=60) as client:
            assert _send(client, url, 200).status_code == 200
    finally:
        process.terminate()
        process.wait(30)
    assert len(_stored(data)) == 400
