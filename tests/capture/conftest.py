"""Fixtures for capture tests: the model simulator, capture sessions, and reading records back."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest

import dashcam.capture
from dashcam.capture.settings import DEFAULT_LOG_GROUP

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
GPT = "gpt-4o-mini"
OPENAI_EMBED = "text-embedding-3-small"

# Every field a test compares, in one query.
RECORD_FIELDS = (
    "operation, modelId, errorCode, status, throttled, latencyMs, timeToFirstTokenMs, input.inputTokenCount, "
    "output.outputTokenCount, input.cacheReadInputTokenCount, input.cacheWriteInputTokenCount, stopReason, "
    "requestId, requestMetadata.attempt, requestMetadata.invocationId, provider, source, app, userId, sessionId, "
    "region, input.inputBodyJson.stream"
)


@pytest.fixture(scope="module")
def simulator():
    """A model simulator at 50x speed (a 1.5 s answer takes 30 ms), seeded, for the module."""
    from dashcam.simulate.server import start_simulator

    with start_simulator(seed=7, speed=50) as handle:
        yield handle


@pytest.fixture
def capture_session():
    """``capture_session(**settings)`` starts capture; it is always turned off after the test."""
    def start(**settings: Any):
        settings.setdefault("flush_interval", 0.05)
        return dashcam.capture.instrument(**settings)

    yield start
    dashcam.capture.uninstrument(timeout=5)


@pytest.fixture
def captured_to(secured_server, capture_session):
    """Capture on, shipping to a real authenticated dashcam server with an ingest key; yields the server."""
    key = secured_server.keys.create("ingest")
    capture_session(url=secured_server.url, key=key.bearer, app="tests")
    return secured_server


def delivered(server, query: str = "", *, log_group: str = DEFAULT_LOG_GROUP) -> list[dict[str, Any]]:
    """Flush capture and return the records the server stored (RECORD_FIELDS of each)."""
    assert dashcam.capture.flush(10), "capture did not deliver within 10 s"
    text = f"fields {RECORD_FIELDS}" + (f" | {query}" if query else "") + " | sort @timestamp asc | limit 10000"
    return server.dashcam.query(text, log_groups=[log_group]).rows


def by_model(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records summed per model the way the simulator's stats() counts calls."""
    summary: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "requests": 0, "succeeded": 0, "throttled": 0, "errors": Counter(), "input_tokens": 0, "output_tokens": 0,
        "cache_read_tokens": 0, "cache_write_tokens": 0})
    for row in rows:
        entry = summary[row["modelId"]]
        entry["requests"] += 1
        entry["throttled"] += row["throttled"]
        if row["errorCode"] is None:
            entry["succeeded"] += 1
            entry["input_tokens"] += row["input.inputTokenCount"] or 0
            entry["output_tokens"] += row["output.outputTokenCount"] or 0
            entry["cache_read_tokens"] += row["input.cacheReadInputTokenCount"] or 0
            entry["cache_write_tokens"] += row["input.cacheWriteInputTokenCount"] or 0
        else:
            entry["errors"][row["errorCode"]] += 1
    return summary


def simulator_delta(before: dict, after: dict) -> dict[str, dict[str, Any]]:
    """What the simulator did between two stats() snapshots, per model."""
    delta: dict[str, dict[str, Any]] = {}
    for model, now in after.items():
        then = before.get(model, {})
        entry = {}
        for key, value in now.items():
            if isinstance(value, dict):
                entry[key] = Counter(value) - Counter(then.get(key, {}))
            else:
                entry[key] = value - then.get(key, 0)
        if entry["requests"]:
            delta[model] = entry
    return delta
