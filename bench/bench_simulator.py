"""The model simulator's own throughput: requests/s answered to concurrent real boto3 clients.

    python bench/bench_simulator.py [--seconds 10] [--processes 2] [--threads 8] [--speed 1000000]

Starts `dashcam simulate` in its own process with a huge --speed (simulated latencies and quota
windows shrink to nothing, so what is measured is the simulator's own cost per request), then
drives it from --processes client processes of --threads threads, each thread with its own boto3
bedrock-runtime client, for --seconds per operation: non-streaming Converse, and ConverseStream
read to its last event. Reports requests/s (successful calls; throttles are counted apart) and
the server's CPU time per request. The clients share the machine with the server, and boto3
costs more CPU per call than the simulator does, so on a small machine the requests/s figure is
bounded by the clients; the CPU time per request tells what the simulator alone could do.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import subprocess
import sys
import threading
import time

import httpx
import psutil

MODEL = "amazon.nova-lite-v1:0"


def _client_process(url: str, operation: str, threads: int, seconds: float, start_at: float, out) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    ok = [0] * threads
    throttled = [0] * threads

    def worker(index: int) -> None:
        client = boto3.client("bedrock-runtime", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret",
                              config=Config(retries={"mode": "standard", "total_max_attempts": 1},
                                            max_pool_connections=4))
        n = 0
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.time() < deadline:
            n += 1
            args = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": f"question {index} {n}"}]}],
                    "inferenceConfig": {"maxTokens": 100}}
            try:
                if operation == "converse":
                    client.converse(**args)
                else:
                    for _ in client.converse_stream(**args)["stream"]:
                        pass
                ok[index] += 1
            except ClientError:
                throttled[index] += 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put((sum(ok), sum(throttled)))


def _run(url: str, operation: str, processes: int, threads: int, seconds: float) -> tuple[float, int]:
    results: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 2.0  # all clients built before the clock starts
    workers = [multiprocessing.Process(target=_client_process, args=(url, operation, threads, seconds, start_at,
                                                                     results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    totals = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return sum(ok for ok, _ in totals) / seconds, sum(t for _, t in totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--speed", type=float, default=1_000_000.0)
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "dashcam.cli", "simulate", "--port", str(port),
                               "--speed", str(args.speed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/v1/models", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        clients = args.processes * args.threads
        process = psutil.Process(server.pid)
        for operation in ("converse", "converse_stream"):
            cpu_before = sum(process.cpu_times()[:2])
            rate, throttled = _run(url, operation, args.processes, args.threads, args.seconds)
            cpu = sum(process.cpu_times()[:2]) - cpu_before  # includes the 2 s warm-up, when the server idles
            per_request_ms = cpu / (rate * args.seconds) * 1000 if rate else float("nan")
            print(f"{operation:16s} {rate:8,.0f} requests/s  ({clients} boto3 clients, {args.seconds:g} s, "
                  f"{throttled} throttled); server CPU {per_request_ms:.2f} ms/request "
                  f"(~{1000 / per_request_ms:,.0f} requests/s per core if clients were free)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
