"""``dashcam demo --quick`` end to end: a real server, the simulator in its own process, virtual users
with real boto3 clients and capture on, then the answers and the alarms."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

import orjson
import pytest

from dashcam.demo import StoryClock
from dashcam.query.library import CORE_QUESTIONS
from dashcam.service import Dashcam


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo") / "data"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("DASHCAM_STORE", None)  # the demo plays on the embedded default store
    done = subprocess.run([sys.executable, "-m", "dashcam.cli", "demo", "--quick", "--data", str(data),
                           "--port", "0"], capture_output=True, text=True, timeout=600, env=env)
    return done, data


def test_the_quick_demo_tells_the_story_and_exits(demo_run):
    done, data = demo_run
    assert done.returncode == 0, done.stderr[-3000:]
    out = " ".join(done.stdout.split())  # immune to wrapping
    for saved in CORE_QUESTIONS:
        assert " ".join(saved.title.split()) in out, saved.title
    assert "Alarms that fired" in out
    assert f"dashcam --data {data}" in done.stdout


@pytest.mark.usefixtures("embedded_store")  # where the demo played (see demo_run)
def test_what_the_demo_printed_is_what_dashcam_stored(demo_run):
    done, data = demo_run
    assert done.returncode == 0, done.stderr[-3000:]
    with Dashcam.open(data) as dashcam:
        by_model = dashcam.query("stats count(*) as n, sum(throttled) as throttles by modelId").rows
        throttled_minutes = dashcam.query("filter throttled = 1 | stats count(*) as n by bin(1m) as m").rows
        sources = dashcam.query("stats count(*) as n by source, app").rows
        fired = [item.alarm_name for item in dashcam.alarms.history()
                 if item.item_type == "StateUpdate" and '"stateValue":"ALARM"' in item.data.replace(" ", "")]
    total = sum(row["n"] for row in by_model)
    assert f"{total:,} calls captured, 0 dropped" in done.stdout
    assert sources == [{"source": "sdk", "app": "demo-assistant", "n": total}]
    # Only the quota-limited model is throttled, and only once the load grows.
    assert {row["modelId"] for row in by_model if row["throttles"]} == {"us.anthropic.claude-sonnet-4-20250514-v1:0"}
    assert len(throttled_minutes) >= 2
    assert "bedrock-throttling" in fired


def test_the_story_clock_ends_at_the_wall_clock_and_rescales_latency():
    clock = StoryClock(speed=10, story_seconds=600)
    # 60 wall seconds from the start is the story's end, which is the wall clock then.
    assert clock.story(clock.wall_start + 60) == pytest.approx(clock.wall_start + 60)
    assert clock.story(clock.wall_start) == pytest.approx(clock.wall_start + 60 - 600)
    started = datetime.fromtimestamp(clock.wall_start + 30, tz=timezone.utc)
    record = {"timestamp": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
              "latencyMs": 120, "timeToFirstTokenMs": 30, "output": {"outputBodyJson": {"metrics": {"latencyMs": 1234}}}}
    moved = clock.before_send(orjson.loads(orjson.dumps(record)))
    story = datetime.fromisoformat(moved["timestamp"]).timestamp()
    sent_at = datetime.fromisoformat(record["timestamp"]).timestamp()  # whole milliseconds, as capture writes
    assert story == pytest.approx(clock.story(sent_at), abs=0.002)
    assert moved["latencyMs"] == 1234  # the model's own (uncompressed) statement wins
    assert moved["timeToFirstTokenMs"] == 300  # measured, scaled to story time
    unstated = clock.before_send({"timestamp": record["timestamp"], "latencyMs": 120, "timeToFirstTokenMs": 30})
    assert unstated["latencyMs"] == 1200
