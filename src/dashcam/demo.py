"""``dashcam demo``: the product brief's story, played live on one machine.

An assistant works for 10 users, is fine at 50, and at 100 latency climbs and requests start
failing. The demo starts every piece for real and lets them talk over HTTP on 127.0.0.1:

* a dashcam server on the embedded store (the dashboard, the APIs, the alarms),
* the model simulator (:mod:`dashcam.simulate.server`) in its own process, with a Claude Sonnet
  quota that 100 users exceed and 50 do not,
* the load driver (:mod:`dashcam.simulate.load`): virtual users with real boto3 clients,
  recorded by in-process capture (:mod:`dashcam.capture`) into the server.

Time is compressed: the simulator runs ``speed`` times faster, and capture's ``before_send``
moves each record onto the story clock (and states latencies in story time), so 15 minutes of
traffic play in 3 and every per-minute chart and alarm reads as it would have live. The story
clock ends at the wall clock's "now" when the load ends, so all records are in the past.

At the end the demo prints the answers to the four core questions and the alarms that fired,
and (unless ``quick``) keeps the dashboard running until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson

from dashcam.errors import ConfigError
from dashcam.service import DEFAULT_LOG_GROUP, Dashcam
from dashcam.simulate.load import LoadDriver, Stage, StageReport, default_client_factory

SONNET = "us.anthropic.claude-sonnet-4-20250514-v1:0"
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
MODEL_MIX = ((SONNET, 0.5), (HAIKU, 0.3), (NOVA, 0.2))
# Sonnet's quota: 50 users stay under it, 100 users go over (requests/min, tokens/min, concurrency).
SONNET_QUOTA = "300,200000,35"
THINK_SECONDS = 3.0


@dataclass(frozen=True)
class Plan:
    """How long each act of the story lasts (story minutes) and how fast it plays."""

    stages: tuple[Stage, ...]
    speed: float

    @property
    def story_seconds(self) -> float:
        """The story's length in story time."""
        return sum(stage.seconds for stage in self.stages)


FULL = Plan((Stage(10, 300, "10 users: smooth"), Stage(50, 300, "50 users: fine"),
             Stage(100, 300, "100 users: latency climbs, throttling starts")), speed=5.0)
QUICK = Plan((Stage(10, 60, "10 users: smooth"), Stage(50, 60, "50 users: fine"),
              Stage(100, 120, "100 users: latency climbs, throttling starts")), speed=8.0)

# The alarms the demo sets before the story starts (CloudWatch PutMetricAlarm members).
ALARMS: tuple[dict[str, Any], ...] = (
    {"AlarmName": "bedrock-throttling", "AlarmDescription": "Requests are being throttled (2 minutes in a row).",
     "Namespace": "AWS/Bedrock", "MetricName": "InvocationThrottles", "Statistic": "Sum", "Period": 60,
     "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Threshold": 0,
     "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"},
    {"AlarmName": "sonnet-latency-p90", "AlarmDescription": "Claude Sonnet's p90 latency is over 20 s.",
     "Namespace": "AWS/Bedrock", "MetricName": "InvocationLatency", "ExtendedStatistic": "p90", "Period": 60,
     "Dimensions": [{"Name": "ModelId", "Value": SONNET}],
     "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "Threshold": 20_000,
     "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"},
)


class StoryClock:
    """Story time: ``speed`` times faster than the wall clock, ending at the wall clock's "now"
    when ``wall_seconds`` have passed since it was made."""

    def __init__(self, speed: float, story_seconds: float) -> None:
        self.speed = speed
        self.wall_start = time.time()
        self.story_start = self.wall_start - story_seconds + story_seconds / speed

    def story(self, wall: float) -> float:
        """The story time (epoch seconds) of a wall-clock time."""
        return self.story_start + (wall - self.wall_start) * self.speed

    def now(self) -> float:
        """The story time now."""
        return self.story(time.time())

    def before_send(self, record: dict[str, Any]) -> dict[str, Any]:
        """Capture's ``before_send``: the record moved onto the story clock, its latencies in story
        time (the model's own statement of latency wins: the simulator reports it uncompressed)."""
        started = datetime.fromisoformat(record["timestamp"]).timestamp()
        record["timestamp"] = datetime.fromtimestamp(self.story(started), tz=timezone.utc).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        stated = _stated_latency(record)
        if record.get("latencyMs") is not None:
            record["latencyMs"] = stated if stated is not None else round(record["latencyMs"] * self.speed)
        if record.get("timeToFirstTokenMs") is not None:
            ttft = round(record["timeToFirstTokenMs"] * self.speed)
            record["timeToFirstTokenMs"] = min(ttft, record.get("latencyMs") or ttft)
        return record


def _stated_latency(record: dict[str, Any]) -> float | None:
    body = (record.get("output") or {}).get("outputBodyJson")
    chunks = body if isinstance(body, list) else [body]
    for chunk in reversed(chunks):
        if isinstance(chunk, dict):
            metrics = chunk.get("metrics") or (chunk.get("metadata") or {}).get("metrics") or {}
            if isinstance(metrics, dict) and isinstance(metrics.get("latencyMs"), (int, float)):
                return metrics["latencyMs"]
    return None


@dataclass
class DemoResult:
    """What the demo did: the stage reports, the server URL, the alarms that fired."""

    url: str
    data_dir: Path
    stages: list[StageReport]
    fired: list[tuple[str, str, str]] = field(default_factory=list)  # (story time, alarm, reason)
    captured: int = 0
    dropped: int = 0


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if it can be bound on 127.0.0.1, else any free port."""
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise ConfigError("no free port on 127.0.0.1")


class _Simulator:
    """``dashcam simulate`` in its own process, so its work does not compete with the demo's
    threads for one interpreter."""

    def __init__(self, speed: float, seed: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "dashcam.cli", "simulate", "--port", str(self.port), "--seed", str(seed),
                   "--speed", str(speed), "--quota", f"{SONNET}={SONNET_QUOTA}"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/v1/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self.stop()
                raise ConfigError(f"the model simulator did not start: {error.strip()[-500:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class _Server:
    """The dashcam server (API, dashboard) in a background thread of this process."""

    def __init__(self, dashcam: Dashcam, port: int) -> None:
        import uvicorn

        from dashcam.api.app import create_app
        from dashcam.api.auth import Authenticator
        from dashcam.keys import KeyRing

        self.token = secrets.token_urlsafe(32)
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(dashcam, authenticator=Authenticator(KeyRing(dashcam.data_dir), local_token=self.token))
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="dashcam-demo-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ConfigError(f"the dashcam server did not start on port {port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)


def run_demo(dashcam: Dashcam, *, quick: bool = False, port: int | None = 4318, seed: int = 7,
             on_start: Callable[[str], None] = lambda url: None,
             on_progress: Callable[[Stage, StageReport, float], None] = lambda stage, report, clock: None,
             at_end: Callable[["DemoResult"], None] = lambda result: None) -> DemoResult:
    """Play the story against ``dashcam`` and return what happened.

    ``on_start(url)`` is called once the server is up, ``on_progress(stage, report, story_now)``
    a few times a second, and ``at_end(result)`` once the story is over, with the server still
    running (it may block to keep the dashboard up).
    """
    import dashcam.capture as capture

    plan = QUICK if quick else FULL
    simulator = _Simulator(plan.speed, seed)
    server = None
    try:
        server = _Server(dashcam, free_port(port))
        on_start(server.url)
        for alarm in ALARMS:
            dashcam.alarms.put(dict(alarm))
        clock = StoryClock(plan.speed, plan.story_seconds)
        scheduler = dashcam.alarm_scheduler(clock=clock.now)
        capture.instrument(url=server.url, key=server.token, openai=False, existing_clients=False,
                           log_group=DEFAULT_LOG_GROUP, app="demo-assistant", flush_interval=0.25,
                           before_send=clock.before_send)
        evaluated = {"minute": int(clock.now() // 60)}

        def progress(index: int, report: StageReport) -> None:
            now = clock.now()
            minute = int(now // 60)
            if minute > evaluated["minute"]:  # a story minute ended: judge the alarms as the server would
                evaluated["minute"] = minute
                capture.flush(2)
                scheduler.run_once(int(now * 1000))
            on_progress(plan.stages[index], report, now)

        driver = LoadDriver(simulator.url, plan.stages, MODEL_MIX, seed=seed, think_seconds=THINK_SECONDS,
                            speed=plan.speed, client_factory=default_client_factory(), on_progress=progress)
        stages = driver.run()
        capture.flush(30)
        stats = capture.uninstrument(10)
        end_ms = int(clock.now() * 1000)
        for settle_minutes in (0, 1, 2):  # the last minutes, once they are complete
            scheduler.run_once(end_ms + settle_minutes * 60_000)
        result = DemoResult(server.url, dashcam.data_dir, stages, _fired(dashcam), stats.captured, stats.dropped)
        at_end(result)
        return result
    finally:
        simulator.stop()
        if server is not None:
            server.stop()


def _fired(dashcam: Dashcam) -> list[tuple[str, str, str]]:
    """Every transition into ALARM, oldest first, as (time, alarm name, reason)."""
    fired = []
    for item in dashcam.alarms.history():
        data = orjson.loads(item.data) if item.data else {}
        if item.item_type == "StateUpdate" and (data.get("newState") or {}).get("stateValue") == "ALARM":
            reason = (data.get("newState") or {}).get("stateReason") or item.summary
            fired.append((_iso(item.timestamp_ms), item.alarm_name, reason))
    return sorted(fired)


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%H:%M:%S UTC")


def default_data_dir() -> Path | None:
    """The data directory the user chose through the environment, if any."""
    chosen = os.environ.get("DASHCAM_DATA")
    return Path(chosen) if chosen else None
