"""Capture overhead per call: an instrumented client against an uninstrumented one, same run.

    python bench/bench_capture.py [--calls 1000] [--body on|metadata|off] [--speed 10000] [--work bench/out]

Starts the model simulator (``dashcam simulate``) and a dashcam server (``dashcam serve`` over a
fresh data directory) each in its own process, so neither competes with the measured client for
this interpreter's GIL. Then, for each operation — Bedrock Converse, ConverseStream, InvokeModel,
InvokeModelWithResponseStream through boto3, and OpenAI chat completions (plain and streamed) and
embeddings — it makes ``--calls`` calls with a plain client and as many with a captured client
(``dashcam.capture(client)``, shipping to the server), alternating one call of each, so drift in
the machine's load affects both alike. Streams are read to the end; InvokeModel bodies are read.

Reported per operation: the median and p99 wall time per call of each client, and the overhead
(captured minus plain) at the median and at p99; also the median of the per-pair differences.
The simulator runs at ``--speed`` (latencies divided by it) so a call costs about what the HTTP
round trip costs and the overhead is not lost in model time. At the end, capture's counters show
that every captured call was delivered (``sent``) and none dropped. Target: < 50 µs median.

Over real HTTP a p99 is mostly the machine's scheduling noise (milliseconds on a busy 2-core
box), which hides a cost of microseconds. So a second table replays the simulator's own responses
(recorded from it at the start of the run) inside the clients — botocore through a
``before-send`` handler that returns the recorded bytes, OpenAI through an ``httpx.MockTransport``
— so each call runs every client layer and every capture hook, but no network: there the p99
difference is capture's own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx
import openai
from botocore.config import Config

import dashcam
import dashcam.capture

NOVA = "amazon.nova-lite-v1:0"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
GPT = "gpt-4o-mini"
EMBED = "text-embedding-3-small"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], health_url: str) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(health_url, timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{command[:3]} did not start: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)


def operations(bedrock, chat: openai.OpenAI) -> dict[str, Callable[[], object]]:
    """One call of each measured operation; the same request every time."""
    messages = [{"role": "user", "content": [{"text": "Give me a short status line."}]}]
    config = {"maxTokens": 40}
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 40,
                       "messages": [{"role": "user", "content": "Give me a short status line."}]})
    chat_messages = [{"role": "user", "content": "Give me a short status line."}]

    def converse_stream():
        for _ in bedrock.converse_stream(modelId=NOVA, messages=messages, inferenceConfig=config)["stream"]:
            pass

    def invoke_stream():
        for _ in bedrock.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"]:
            pass

    def chat_stream():
        for _ in chat.chat.completions.create(model=GPT, messages=chat_messages, max_tokens=40, stream=True,
                                              stream_options={"include_usage": True}):
            pass

    return {
        "Converse": lambda: bedrock.converse(modelId=NOVA, messages=messages, inferenceConfig=config),
        "ConverseStream": converse_stream,
        "InvokeModel": lambda: bedrock.invoke_model(modelId=HAIKU, body=body)["body"].read(),
        "InvokeModelWithResponseStream": invoke_stream,
        "openai chat": lambda: chat.chat.completions.create(model=GPT, messages=chat_messages, max_tokens=40),
        "openai chat stream": chat_stream,
        "openai embeddings": lambda: chat.embeddings.create(model=EMBED, input="a short text to embed"),
    }


def clients(simulator_url: str):
    bedrock = boto3.client("bedrock-runtime", endpoint_url=simulator_url, region_name="us-east-1",
                           aws_access_key_id="bench", aws_secret_access_key="bench",
                           config=Config(retries={"mode": "standard", "total_max_attempts": 1},
                                         max_pool_connections=4))
    chat = openai.OpenAI(base_url=simulator_url + "/v1", api_key="bench", max_retries=0)
    return bedrock, chat


class RecordedBody:
    """The raw body of a recorded response, read as urllib3's response is read by botocore."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def stream(self, amt: int = 1024, decode_content: bool = True):
        while self._at < len(self._data):
            chunk = self._data[self._at:self._at + amt]
            self._at += len(chunk)
            yield chunk

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        end = len(self._data) if amt is None else self._at + amt
        chunk = self._data[self._at:end]
        self._at += len(chunk)
        return chunk

    def close(self) -> None:
        self._at = len(self._data)


def record_responses(simulator_url: str) -> tuple[dict[str, tuple[int, dict, bytes]], dict[str, tuple]]:
    """One raw response per operation from the simulator: Bedrock by URL suffix, OpenAI by path."""
    auth = {"authorization": "AWS4-HMAC-SHA256 bench"}
    messages = [{"role": "user", "content": [{"text": "Give me a short status line."}]}]
    anthropic = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 40,
                 "messages": [{"role": "user", "content": "Give me a short status line."}]}
    bedrock = {}
    for suffix, model, body in (("/converse", NOVA, {"messages": messages, "inferenceConfig": {"maxTokens": 40}}),
                                ("/converse-stream", NOVA, {"messages": messages, "inferenceConfig": {"maxTokens": 40}}),
                                ("/invoke", HAIKU, anthropic), ("/invoke-with-response-stream", HAIKU, anthropic)):
        response = httpx.post(f"{simulator_url}/model/{model}{suffix}", json=body, headers=auth, timeout=30)
        headers = {k: v for k, v in response.headers.items() if k != "transfer-encoding"}
        bedrock[suffix] = (response.status_code, headers, response.content)
    chat = [{"role": "user", "content": "Give me a short status line."}]
    openai_answers = {}
    for name, path, body in (("chat", "/v1/chat/completions", {"model": GPT, "messages": chat, "max_tokens": 40}),
                             ("stream", "/v1/chat/completions", {"model": GPT, "messages": chat, "max_tokens": 40,
                                                                 "stream": True,
                                                                 "stream_options": {"include_usage": True}}),
                             ("embeddings", "/v1/embeddings", {"model": EMBED, "input": "a short text to embed"})):
        response = httpx.post(simulator_url + path, json=body, headers={"authorization": "Bearer x"}, timeout=30)
        headers = {k: v for k, v in response.headers.items() if k not in ("transfer-encoding", "content-length")}
        openai_answers[name] = (response.status_code, headers, response.content)
    return bedrock, openai_answers


def replaying_clients(bedrock_answers: dict, openai_answers: dict):
    """Clients whose requests are answered, in-process, with the recorded responses."""
    from botocore.awsrequest import AWSResponse

    bedrock, _ = clients("http://replay.invalid")

    def answer(request, **_):
        for suffix in sorted(bedrock_answers, key=len, reverse=True):
            if request.url.endswith(suffix):
                status, headers, data = bedrock_answers[suffix]
                return AWSResponse(request.url, status, headers, RecordedBody(data))
        return None

    bedrock.meta.events.register("before-send.bedrock-runtime", answer)

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/embeddings"):
            name = "embeddings"
        else:
            name = "stream" if b'"stream":true' in request.content.replace(b" ", b"") else "chat"
        status, headers, data = openai_answers[name]
        pieces = [data[i:i + 256] for i in range(0, len(data), 256)] if name == "stream" else [data]
        return httpx.Response(status, headers=headers, content=iter(pieces))

    chat = openai.OpenAI(base_url="http://replay.invalid/v1", api_key="bench", max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(respond)))
    return bedrock, chat


def report(title: str, plain_ops: dict, captured_ops: dict, calls: int) -> list[float]:
    print(f"\n{title}")
    header = (f"{'operation':<31}{'plain p50':>11}{'capt p50':>11}{'overhead p50':>14}"
              f"{'plain p99':>11}{'capt p99':>11}{'overhead p99':>14}{'paired p50':>12}")
    print(header)
    print("-" * len(header))
    overheads = []
    for name in plain_ops:
        plain_times, captured_times = measure(plain_ops[name], captured_ops[name], calls)
        p50 = statistics.median(plain_times), statistics.median(captured_times)
        p99 = percentile(plain_times, 0.99), percentile(captured_times, 0.99)
        paired = statistics.median(c - p for c, p in zip(captured_times, plain_times))
        overheads.append((p50[1] - p50[0]) * 1e6)
        print(f"{name:<31}{p50[0] * 1e6:>9,.0f}µs{p50[1] * 1e6:>9,.0f}µs{(p50[1] - p50[0]) * 1e6:>12,.1f}µs"
              f"{p99[0] * 1e6:>9,.0f}µs{p99[1] * 1e6:>9,.0f}µs{(p99[1] - p99[0]) * 1e6:>12,.1f}µs"
              f"{paired * 1e6:>10,.1f}µs")
    print(f"median of the operations' median overheads: {statistics.median(overheads):,.1f} µs (target < 50 µs)")
    return overheads


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(plain: Callable[[], object], captured: Callable[[], object], calls: int) -> tuple[list[float], list[float]]:
    for _ in range(max(20, calls // 20)):  # warm up connections and caches on both sides
        plain()
        captured()
    plain_times, captured_times = [], []
    clock = time.perf_counter
    for i in range(calls):
        # Alternate which goes first, so neither always follows the other's work.
        order = ((plain, plain_times), (captured, captured_times)) if i % 2 == 0 \
            else ((captured, captured_times), (plain, plain_times))
        for call, times in order:
            started = clock()
            call()
            times.append(clock() - started)
    return plain_times, captured_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="calls per operation and client")
    parser.add_argument("--body", default="on", choices=("on", "metadata", "off"))
    parser.add_argument("--speed", type=float, default=10_000.0, help="simulator speed-up of model latencies")
    parser.add_argument("--work", default="bench/out")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="capture-bench-", dir=args.work)
    sim_port, server_port = free_port(), free_port()
    dashcam_cli = [shutil.which("dashcam", path=os.path.dirname(sys.executable)) or "dashcam"]
    simulator = start(dashcam_cli + ["simulate", "--port", str(sim_port), "--speed", str(args.speed)],
                      f"http://127.0.0.1:{sim_port}/v1/models")
    server = start(dashcam_cli + ["--data", data_dir, "serve", "--port", str(server_port)],
                   f"http://127.0.0.1:{server_port}/healthz")
    try:
        simulator_url = f"http://127.0.0.1:{sim_port}"
        recorded = record_responses(simulator_url)
        plain_bedrock, plain_chat = clients(simulator_url)
        captured_bedrock, captured_chat = clients(simulator_url)
        dashcam.capture(captured_bedrock, url=f"http://127.0.0.1:{server_port}", body=args.body)
        dashcam.capture(captured_chat)
        print(f"capture overhead per call, {args.calls} calls per client, body={args.body}, "
              f"simulator speed x{args.speed:g}, python {sys.version.split()[0]}, {os.cpu_count()} cores")
        report("over HTTP, against the simulator", operations(plain_bedrock, plain_chat),
               operations(captured_bedrock, captured_chat), args.calls)

        plain_bedrock, plain_chat = replaying_clients(*recorded)
        captured_bedrock, captured_chat = replaying_clients(*recorded)
        dashcam.capture(captured_bedrock)
        dashcam.capture(captured_chat)
        report("replayed simulator responses, in-process (capture's own cost)",
               operations(plain_bedrock, plain_chat), operations(captured_bedrock, captured_chat), args.calls)

        dashcam.capture.flush(30)
        stats = dashcam.capture.stats()
        print(f"\ncapture: captured={stats.captured} sent={stats.sent} dropped={stats.dropped} "
              f"failed={stats.failed} errors={stats.errors}")
        dashcam.capture.uninstrument()
    finally:
        for process in (simulator, server):
            process.terminate()
            process.wait(30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
