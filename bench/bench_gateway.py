"""What the gateway adds: latency at 100 and 500 requests/s, and its top throughput.

    python bench/bench_gateway.py [--seconds 8] [--rounds 2] [--rates 100,500] [--concurrency 64]

Starts `dashcam simulate` (with a huge --speed, so the model answers at once and what is measured
is plumbing) and `dashcam gateway` in front of it, each in its own process, as they would run. The
gateway runs as configured in production: recording every call into a data directory, shaping
the model (limits far above the load, so the buckets are checked but never wait) and ready to
retry. This process then sends Bedrock Converse calls at a fixed rate (open loop: a call starts
on schedule whether or not the previous ones have finished), alternating between the simulator
directly and through the gateway, in rounds, and reports per rate the median and p99 latency of
both and what the gateway adds (the difference). Then it measures the most calls per second the
gateway answers with --concurrency calls in flight, and the same directly, and the gateway's
CPU time per call.

All processes share this machine (the client too), so absolute figures move with what else runs
on it; the added latency is measured in the same run against the same simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

import aiohttp
import httpx
import psutil

MODEL = "amazon.nova-lite-v1:0"
AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited: {process.stderr.read() if process.stderr else ''}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def _body(number: int) -> bytes:
    return (b'{"messages":[{"role":"user","content":[{"text":"question %d about the refund policy"}]}],'
            b'"inferenceConfig":{"maxTokens":64}}' % number)


FAILED: list[str] = []  # answers other than 200, to report (a benchmark that hides errors misleads)


async def _call(client: aiohttp.ClientSession, base: str, number: int) -> float:
    started = time.perf_counter()
    async with client.post(f"{base}/model/{MODEL}/converse", data=_body(number),
                           headers={"content-type": "application/json", "authorization": AUTH,
                                    "x-amz-date": "20260101T000000Z"}) as response:
        body = await response.read()
    if response.status != 200:
        FAILED.append(f"{base}: HTTP {response.status}: {body[:200]!r}")
    return (time.perf_counter() - started) * 1000


async def _open_loop(client: aiohttp.ClientSession, base: str, rate: float, seconds: float) -> tuple[list[float], float]:
    """Start one call every 1/rate s for ``seconds``; latencies (ms) and how late the last start was."""
    tasks = []
    start = time.perf_counter()
    total = int(rate * seconds)
    for number in range(total):
        due = start + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_call(client, base, number)))
    lag = time.perf_counter() - (start + (total - 1) / rate)
    return list(await asyncio.gather(*tasks)), lag


async def _closed_loop(client: aiohttp.ClientSession, base: str, concurrency: int, seconds: float) -> float:
    """Calls per second with ``concurrency`` calls always in flight."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        number = index
        while time.perf_counter() < stop:
            await _call(client, base, number)
            done += 1
            number += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


async def _measure(args: argparse.Namespace, direct: str, gateway: str, gateway_process: psutil.Process) -> None:
    # aiohttp's client: at a tenth of httpx's CPU per call it leaves the cores to what is measured.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=60)) as client:
        for base in (direct, gateway):  # warm up connections and code paths
            await _open_loop(client, base, 100, 2)
        print(f"{'rate':>6} {'path':>8} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8}   added p50 / p99 (ms)")
        for rate in args.rates:
            results: dict[str, list[float]] = {"direct": [], "gateway": []}
            lags = []
            for _ in range(args.rounds):
                for name, base in (("direct", direct), ("gateway", gateway)):
                    latencies, lag = await _open_loop(client, base, rate, args.seconds)
                    results[name] += latencies
                    lags.append(lag)
            for name in ("direct", "gateway"):
                values = results[name]
                line = f"{rate:>6} {name:>8} {len(values):>6} {_pct(values, 50):>8.2f} {_pct(values, 99):>8.2f}"
                if name == "gateway":
                    added50 = _pct(values, 50) - _pct(results["direct"], 50)
                    added99 = _pct(values, 99) - _pct(results["direct"], 99)
                    line += f"   {added50:+.2f} / {added99:+.2f}"
                print(line, flush=True)
            if max(lags) > 0.5:
                print(f"       (the client fell {max(lags):.2f}s behind schedule: the machine is saturated)")
        print()
        for name, base in (("direct", direct), ("gateway", gateway)):
            cpu_before = gateway_process.cpu_times()
            rate = await _closed_loop(client, base, args.concurrency, args.seconds)
            cpu = gateway_process.cpu_times()
            used = (cpu.user + cpu.system) - (cpu_before.user + cpu_before.system)
            extra = f", gateway CPU {used / (rate * args.seconds) * 1e6:.0f} us/call" if name == "gateway" else ""
            print(f"max throughput {name:>8}: {rate:,.0f} calls/s with {args.concurrency} in flight{extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=2, help="direct/gateway alternations per rate")
    parser.add_argument("--rates", default="100,500", help="calls per second, comma-separated")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight for the throughput run")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]

    sim_port, gateway_port = _free_port(), _free_port()
    data = tempfile.mkdtemp(prefix="dashcam-bench-gateway-")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDGATEWAY", "AWS_SECRET_ACCESS_KEY": "gateway-secret"}
    env.pop("DASHCAM_URL", None)
    command = [sys.executable, "-m", "dashcam.cli"]
    # Quotas lifted too: at this speed windows vanish, but calls in flight would still be capped.
    simulator = subprocess.Popen(command + ["simulate", "--port", str(sim_port), "--speed", "1000000",
                                            "--quota", f"{MODEL}=100000000,100000000000,100000"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    gateway = subprocess.Popen(
        command + ["--data", data, "gateway", "--port", str(gateway_port), "--bedrock-upstream",
                   f"http://127.0.0.1:{sim_port}", "--openai-upstream", f"http://127.0.0.1:{sim_port}/v1",
                   "--limit", f"{MODEL}=100000000:10000000000"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        direct, through = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gateway_port}"
        _wait_until_up(direct + "/v1/models", simulator)
        _wait_until_up(through + "/healthz", gateway)
        print(f"machine: {os.cpu_count()} cores, shared with other work; python {sys.version.split()[0]}")
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        asyncio.run(_measure(args, direct, through, psutil.Process(gateway.pid)))
        if FAILED:
            print(f"{len(FAILED)} calls failed, e.g. {FAILED[0]}")
    finally:
        for process in (gateway, simulator):
            process.terminate()
        for process in (gateway, simulator):
            process.wait(30)
    recorded = subprocess.run(command + ["--data", data, "query", "--format", "csv", "stats count(*)"],
                              capture_output=True, text=True)
    print(f"records the gateway stored: {recorded.stdout.strip().splitlines()[-1] if recorded.stdout else '?'}"
          f" (data directory {data})")


if __name__ == "__main__":
    main()
