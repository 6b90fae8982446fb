"""The load driver: N virtual users calling a Bedrock runtime endpoint, following a schedule.

Each virtual user is a thread with its own real boto3 ``bedrock-runtime`` client. It sends a
prompt from the sample applications (:func:`dashcam.simulate.sample_logs.prompt_catalog`) with
Converse or ConverseStream (reading the stream to its end, as an application does), then thinks
for an exponentially distributed while, and again, for as long as its stage wants it. A
:class:`Stage` says how many users are active for how long; users beyond the current count wait.

Time compression: with ``speed`` > 1 think times and stage lengths are divided by ``speed``, as
the simulator divides its latencies, so a 10-minute story plays in one minute. Latencies the
driver reports are the ones the simulator states in each response (uncompressed), so the numbers
read as they would at full speed.

Everything the driver decides is drawn from ``random.Random`` seeded per user, so the requests a
user sends do not depend on thread scheduling (their timing does). The driver never raises out of
a user thread: every call's outcome is counted (ok, throttled, other error by code).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dashcam.simulate.sample_logs import prompt_catalog

STREAM_SHARE = 0.35  # share of calls made with ConverseStream
_POLL_SECONDS = 0.05  # how often an idle user looks whether its stage wants it


@dataclass(frozen=True)
class Stage:
    """``users`` virtual users active for ``seconds`` of story time (wall time × speed)."""

    users: int
    seconds: float
    name: str = ""


@dataclass
class StageReport:
    """What happened in one stage, from the callers' side."""

    stage: Stage
    calls: int = 0
    ok: int = 0
    throttled: int = 0
    errors: Counter = field(default_factory=Counter)  # error code -> calls
    latencies_ms: list[float] = field(default_factory=list)  # of successful calls, as the model reported

    def percentile(self, pct: float) -> float | None:
        """The ``pct`` percentile of successful latencies (nearest rank), or None with no calls."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]

    @property
    def throttle_rate(self) -> float:
        """Throttled calls as a share of all calls (0 with no calls)."""
        return self.throttled / self.calls if self.calls else 0.0


ClientFactory = Callable[[str], Any]  # endpoint URL -> a bedrock-runtime client


def default_client_factory(region: str = "us-east-1", attempts: int = 3) -> ClientFactory:
    """Real boto3 ``bedrock-runtime`` clients with dummy credentials (the simulator accepts any
    signature) and botocore's standard retry mode with ``attempts`` tries in all (botocore's
    default), so throttles are retried as applications do."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name=region)
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts}, max_pool_connections=4,
                    connect_timeout=5, read_timeout=120)
    lock = threading.Lock()  # a boto3 Session is not thread-safe; clients are

    def make(endpoint_url: str) -> Any:
        with lock:
            return session.client("bedrock-runtime", endpoint_url=endpoint_url, config=config)

    return make


class LoadDriver:
    """Virtual users against ``endpoint_url`` through ``stages``; :meth:`run` blocks until done."""

    def __init__(self, endpoint_url: str, stages: Sequence[Stage], models: Sequence[tuple[str, float]], *,
                 seed: int = 0, think_seconds: float = 3.0, speed: float = 1.0,
                 client_factory: ClientFactory | None = None,
                 on_progress: Callable[[int, StageReport], None] | None = None,
                 progress_seconds: float = 0.5) -> None:
        if not stages:
            raise ValueError("a load needs at least one stage")
        if not models:
            raise ValueError("a load needs at least one model")
        self.endpoint_url = endpoint_url
        self.stages = tuple(stages)
        self.models = tuple(models)
        self.seed = seed
        self.think_seconds = think_seconds
        self.speed = speed
        self.client_factory = client_factory or default_client_factory()
        self.on_progress = on_progress
        self.progress_seconds = progress_seconds
        self.reports = [StageReport(stage) for stage in self.stages]
        self._stage = 0
        self._active_users = 0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._prompts = prompt_catalog()

    # ------------------------------------------------------------------ running

    def run(self) -> list[StageReport]:
        """Play every stage in order; returns one report per stage."""
        users = max(stage.users for stage in self.stages)
        clients = [self.client_factory(self.endpoint_url) for _ in range(users)]
        threads = [threading.Thread(target=self._user, args=(index, client), name=f"virtual-user-{index}",
                                    daemon=True) for index, client in enumerate(clients)]
        for thread in threads:
            thread.start()
        try:
            for index, stage in enumerate(self.stages):
                with self._lock:
                    self._stage, self._active_users = index, stage.users
                self._wait(stage.seconds / self.speed, index)
        finally:
            self._done.set()
            for thread in threads:
                thread.join(30)
        return self.reports

    def stop(self) -> None:
        """End the run early (users finish their current call)."""
        self._done.set()

    def _wait(self, seconds: float, stage_index: int) -> None:
        deadline = time.monotonic() + seconds
        while not self._done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._done.wait(min(left, self.progress_seconds))
            if self.on_progress:
                self.on_progress(stage_index, self.reports[stage_index])

    def _user(self, index: int, client: Any) -> None:
        rng = random.Random(f"{self.seed}:{index}")
        while not self._done.is_set():
            with self._lock:
                active, stage_index = index < self._active_users, self._stage
            if not active:
                self._done.wait(_POLL_SECONDS)
                continue
            outcome, latency_ms = self._call(client, rng, index)
            self._count(stage_index, outcome, latency_ms)
            self._done.wait(rng.expovariate(1.0 / self.think_seconds) / self.speed)

    # ------------------------------------------------------------------ one call

    def _call(self, client: Any, rng: random.Random, user: int) -> tuple[str, float | None]:
        """One Converse or ConverseStream call; ("ok", latency) or (error code, None)."""
        model_id = rng.choices([m for m, _ in self.models], weights=[w for _, w in self.models])[0]
        task, system, prompt, max_tokens = rng.choice(self._prompts)
        request = {
            "modelId": model_id,
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens},
            "requestMetadata": {"app": "demo-assistant", "task": task, "userId": f"user-{user:03d}"},
        }
        if system:
            request["system"] = [{"text": system}]
        try:
            if rng.random() < STREAM_SHARE:
                response = client.converse_stream(**request)
                latency = None
                for event in response["stream"]:
                    if "metadata" in event:
                        latency = event["metadata"].get("metrics", {}).get("latencyMs")
                return "ok", latency
            response = client.converse(**request)
            return "ok", response.get("metrics", {}).get("latencyMs")
        except Exception as error:  # every failure is an outcome to count, never a crash of the user
            return _error_code(error), None

    def _count(self, stage_index: int, outcome: str, latency_ms: float | None) -> None:
        with self._lock:
            report = self.reports[stage_index]
            report.calls += 1
            if outcome == "ok":
                report.ok += 1
                if latency_ms is not None:
                    report.latencies_ms.append(float(latency_ms))
            elif outcome == "ThrottlingException":
                report.throttled += 1
            else:
                report.errors[outcome] += 1


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


def summary_line(report: StageReport) -> str:
    """One short line for a terminal: users, calls, throttled share, other errors, latency p50/p90."""
    p50, p90 = report.percentile(50), report.percentile(90)
    latency = f"p50 {p50 / 1000:,.1f}s p90 {p90 / 1000:,.1f}s" if p50 is not None else "no answers yet"
    errors = sum(report.errors.values())
    return (f"{report.stage.users:>3} users  {report.calls:>6,} calls  {report.throttle_rate:>4.0%} throttled  "
            f"{errors:,} errors  latency {latency}")
