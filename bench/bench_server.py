"""Native JSON ingest into a running server: records/s sustained over real HTTP, and server RSS.

    python bench/bench_server.py [--records 500000] [--batch 5000] [--senders 2]

Starts `dashcam serve` on a fresh data directory, sends generated Bedrock records as NDJSON
batches from --senders concurrent clients, and reports records/s (acknowledged = committed) and the
server's peak resident memory (sampled from /proc while sending).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from dashcam.simulate.sample_logs import SampleSpec, generate_lines


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--senders", type=int, default=2)
    args = parser.parse_args()

    lines = [line for _, line in generate_lines(SampleSpec(records=args.records))]
    bodies = [b"\n".join(lines[i:i + args.batch]) for i in range(0, len(lines), args.batch)]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen([sys.executable, "-m", "dashcam.cli", "--data", data, "serve", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        peak = [0.0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mb(server.pid))
                time.sleep(0.2)

        written = [0]
        lock = threading.Lock()

        def send(share: list[bytes]) -> None:
            with httpx.Client(timeout=120) as client:
                for body in share:
                    while True:
                        response = client.post(f"{url}/api/v1/records", params={"logGroup": "bench"}, content=body,
                                               headers={"content-type": "application/x-ndjson"})
                        if response.status_code == 503:
                            time.sleep(float(response.headers.get("retry-after", "1")))
                            continue
                        response.raise_for_status()
                        with lock:
                            written[0] += response.json()["data"]["written"]
                        break

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        senders = [threading.Thread(target=send, args=(bodies[i::args.senders],)) for i in range(args.senders)]
        started, cpu_before = time.perf_counter(), _cpu_seconds(server.pid)
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        elapsed = time.perf_counter() - started
        server_cpu = _cpu_seconds(server.pid) - cpu_before
        done.set()
        stopping = time.perf_counter()
        server.terminate()  # a graceful stop: what was left for later (a checkpoint) is done now
        server.wait(60)
        stopped = time.perf_counter() - stopping
    print(f"native JSON ingest: {written[0]:,} records in {elapsed:.1f}s = {written[0] / elapsed:,.0f} records/s "
          f"({args.senders} senders, {args.batch:,}-record NDJSON batches); server peak RSS {peak[0]:,.0f} MB, "
          f"server CPU {server_cpu / max(written[0], 1) * 1e6:.1f} µs/record ({server_cpu / elapsed:.2f} cores); "
          f"the server stopped {stopped:.1f}s after")


if __name__ == "__main__":
    main()
