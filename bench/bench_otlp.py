"""OTLP ingest throughput: GenAI spans/s sustained into the embedded store over real HTTP.

    python bench/bench_otlp.py [--seconds 20] [--senders 4] [--batch 512] [--work bench/out]
                               [--phoenix /tmp/phoenix-venv/bin/python]

Starts ``dashcam serve`` in its own process on a free 127.0.0.1 port over a fresh data directory,
then several sender threads (in this process) post pre-encoded OTLP/HTTP protobuf batches of
``--batch`` GenAI LLM spans (OpenInference attributes plus the OTel GenAI ones, a short prompt and
answer each, distinct trace and span ids) as fast as the server acknowledges them, for
``--seconds``. Every acknowledged span is committed (the server answers after the commit), so
spans/s is acknowledged spans over wall time. Also reports the server's CPU (its own process and
its mapping workers, ``DASHCAM_OTLP_WORKERS``, which this process's environment passes on), its
peak resident memory with its workers (RSS and PSS, sampled every 0.25 s), the time until a query
sees every span, and that the count is exact.

With ``--phoenix PYTHON`` (the interpreter of a venv with ``arize-phoenix`` installed), the same
spans go to an Arize Phoenix server started from that venv in the same run, through its OTLP HTTP
endpoint; Phoenix ingests asynchronously, so its rate is spans over the time until its REST API
returns all of them, and the ratio dashcam / Phoenix is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

MODELS = ("anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0", "meta.llama3-8b-instruct-v1:0")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def make_batches(count: int, size: int, service: str = "bench-app") -> list[bytes]:
    """``count`` serialized ExportTraceServiceRequests of ``size`` OpenInference LLM spans each.

    Every span has its own trace and span id, model, token counts, prompt and answer; spans are
    copied from a template and then varied, which is far quicker than building each from scratch.
    """
    template = ExportTraceServiceRequest().resource_spans.add().scope_spans.add().spans.add()
    template.name = "bedrock.converse"
    template.kind = 1
    template.status.code = 1
    template.attributes.extend([
        _kv("openinference.span.kind", "LLM"),
        _kv("llm.provider", "aws"),
        _kv("llm.system", "anthropic"),
        _kv("llm.model_name", ""),  # 3
        _kv("llm.invocation_parameters", '{"max_tokens": 512, "temperature": 0.2}'),
        _kv("llm.token_count.prompt", 0),  # 5
        _kv("llm.token_count.completion", 0),  # 6
        _kv("llm.token_count.total", 0),  # 7
        _kv("llm.input_messages.0.message.role", "user"),
        _kv("llm.input_messages.0.message.content", ""),  # 9
        _kv("llm.output_messages.0.message.role", "assistant"),
        _kv("llm.output_messages.0.message.content", ""),  # 11
        _kv("input.value", ""),  # 12
        _kv("output.value", ""),  # 13
        _kv("session.id", ""),  # 14
        _kv("user.id", ""),  # 15
    ])
    batches = []
    start = time.time_ns() - 3_600_000_000_000
    n = 0
    for _ in range(count):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        rs.resource.attributes.extend([_kv("service.name", service)])
        scope = rs.scope_spans.add()
        scope.scope.name = "openinference.instrumentation.bedrock"
        for _ in range(size):
            n += 1
            prompt_tokens, completion_tokens = 200 + n % 300, 50 + n % 120
            question = f"Question {n}: what is the capital of country number {n % 190}?"
            answer = f"The capital of country {n % 190} is City {n % 977}."
            span = scope.spans.add()
            span.CopyFrom(template)
            span.trace_id = n.to_bytes(16, "big")
            span.span_id = (n + 1).to_bytes(8, "big")
            span.start_time_unix_nano = start + n * 1_000_000
            span.end_time_unix_nano = span.start_time_unix_nano + (300 + n % 2000) * 1_000_000
            attrs = span.attributes
            attrs[3].value.string_value = MODELS[n % len(MODELS)]
            attrs[5].value.int_value = prompt_tokens
            attrs[6].value.int_value = completion_tokens
            attrs[7].value.int_value = prompt_tokens + completion_tokens
            attrs[9].value.string_value = attrs[12].value.string_value = question
            attrs[11].value.string_value = attrs[13].value.string_value = answer
            attrs[14].value.string_value = f"session-{n % 1000}"
            attrs[15].value.string_value = f"user-{n % 100}"
        batches.append(request.SerializeToString())
    return batches


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children, sampled until stopped: the sum of their
    RSS (which counts pages they share once per process) and of their PSS (shared pages divided
    among the processes sharing them: what they take from the machine together)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = self.peak_pss = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
                self.peak_pss = max(self.peak_pss, sum(p.memory_full_info().pss for p in procs))
            except psutil.Error:
                pass
            self.stopped.wait(0.25)


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of a process and of each of its children (mapping workers)."""
    out = {}
    parent = psutil.Process(pid)
    for process in [parent, *parent.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        out[process.pid] = times.user + times.system
    return out


def blast(url: str, batches: list[bytes], batch_size: int, senders: int, seconds: float) -> tuple[int, float, int]:
    """Post batches from ``senders`` threads for ``seconds``; (spans acknowledged, wall seconds, retries)."""
    acked = [0] * senders
    retries = [0] * senders
    next_batch = iter(range(len(batches)))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def sender(index: int) -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    b = next(next_batch, None)
                if b is None:
                    return
                while True:
                    response = client.post(url, content=batches[b], headers={"content-type": "application/x-protobuf"})
                    if response.status_code == 200:
                        acked[index] += batch_size
                        break
                    if response.status_code in (429, 503):
                        retries[index] += 1
                        if time.monotonic() > deadline:
                            return
                        time.sleep(float(response.headers.get("retry-after", "1")))
                        continue
                    raise SystemExit(f"export failed: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(acked), time.perf_counter() - started, sum(retries)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_dashcam(args, batches: list[bytes]) -> float:
    data = Path(tempfile.mkdtemp(prefix="dashcam-otlp-", dir=args.work))
    port = free_port()
    code = "from dashcam.cli import main; main()"
    # The server's log goes to a file: a pipe nobody reads fills up and stops the server mid-run.
    process = subprocess.Popen([sys.executable, "-c", code, "--data", str(data), "serve", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=open(data / "server.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/healthz", process)
        sampler = RssSampler(process.pid)
        sampler.start()
        cpu_before = tree_cpu(process.pid)
        spans, seconds, retries = blast(f"{base}/v1/traces", batches, args.batch, args.senders, args.seconds)
        cpu_after = tree_cpu(process.pid)
        acked_at = time.perf_counter()
        query = {"query": "stats count(*) as n, sum(input.inputTokenCount) as t"}
        counted = httpx.post(f"{base}/api/v1/query", json=query, timeout=120).json()["data"]["rows"][0]["n"]
        queryable = time.perf_counter() - acked_at
        sampler.stopped.set()
        sampler.join()
        rate = spans / seconds
        print(f"dashcam: {spans:,} GenAI spans acknowledged in {seconds:.1f} s = {rate:,.0f} spans/s "
              f"({args.senders} senders, {args.batch} spans/batch, {retries} 429/503 retries)")
        cpu = sum(cpu_after.values()) - sum(cpu_before.values())
        main_cpu = cpu_after[process.pid] - cpu_before[process.pid]
        print(f"dashcam: server CPU {cpu:.1f} s = {cpu / spans * 1e6:.0f} µs per span "
              f"({spans / cpu:,.0f} spans per CPU-second; {main_cpu:.1f} s in the server process, "
              f"{cpu - main_cpu:.1f} s in its mapping workers); machine load average {os.getloadavg()[0]:.1f}")
        print(f"dashcam: peak server RSS {sampler.peak / 2**20:,.0f} MiB (PSS {sampler.peak_pss / 2**20:,.0f} MiB); all {counted:,} records queryable "
              f"{queryable * 1000:.0f} ms after the last acknowledgement (count exact: {counted == spans})")
        return rate
    finally:
        stop(process)
        shutil.rmtree(data, ignore_errors=True)


def run_phoenix(args, batches: list[bytes]) -> float | None:
    work = Path(tempfile.mkdtemp(prefix="phoenix-otlp-", dir=args.work))
    port = free_port()
    env = {**os.environ, "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(free_port()),
           "PHOENIX_WORKING_DIR": str(work), "PHOENIX_TELEMETRY_ENABLED": "false",
           "PHOENIX_HOST": "127.0.0.1"}
    process = subprocess.Popen([args.phoenix, "-m", "phoenix.server.main", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=open(work / "phoenix.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/healthz", process)
        sampler = RssSampler(process.pid)
        sampler.start()
        started = time.perf_counter()
        spans, seconds, retries = blast(f"{base}/v1/traces", batches, args.batch, args.senders, args.seconds)
        # Phoenix acknowledges before it stores: wait until its API returns every span.
        stored = 0
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            stored = phoenix_span_count(base)
            if stored >= spans:
                break
            time.sleep(0.5)
        total = time.perf_counter() - started
        sampler.stopped.set()
        sampler.join()
        rate = stored / total
        print(f"phoenix: {spans:,} spans acknowledged in {seconds:.1f} s ({spans / seconds:,.0f}/s accepted, "
              f"{retries} 429/503 retries), "
              f"{stored:,} stored after {total:.1f} s = {rate:,.0f} spans/s; peak RSS {sampler.peak / 2**20:,.0f} MiB")
        return rate
    finally:
        stop(process)
        shutil.rmtree(work, ignore_errors=True)


def phoenix_span_count(base: str) -> int:
    """Spans stored in all of Phoenix's projects (its GraphQL ``recordCount``)."""
    query = {"query": "{ projects { edges { node { name recordCount } } } }"}
    try:
        response = httpx.post(f"{base}/graphql", json=query, timeout=60)
        edges = response.json()["data"]["projects"]["edges"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return 0
    return sum(edge["node"]["recordCount"] for edge in edges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--work", default="bench/out")
    parser.add_argument("--phoenix", help="python of a venv with arize-phoenix, to compare in the same run")
    parser.add_argument("--phoenix-seconds", type=float, default=None,
                        help="send to Phoenix for this long (default: --seconds)")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    # Enough distinct batches for the run at up to 40k spans/s; built before any timing.
    count = max(8, int(args.seconds * 40_000 / args.batch))
    started = time.perf_counter()
    batches = make_batches(count, args.batch)
    print(f"built {count} batches of {args.batch} spans ({sum(map(len, batches)) / 2**20:,.0f} MiB) "
          f"in {time.perf_counter() - started:.1f} s")
    dashcam_rate = run_dashcam(args, batches)
    if args.phoenix:
        if args.phoenix_seconds:
            args.seconds = args.phoenix_seconds
        phoenix_rate = run_phoenix(args, batches)
        if phoenix_rate:
            print(f"ratio dashcam / phoenix: {dashcam_rate / phoenix_rate:,.1f}x")


if __name__ == "__main__":
    main()
