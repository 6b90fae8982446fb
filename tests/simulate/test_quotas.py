"""Quota windows, the concurrency limit, the latency model and the stats."""

from __future__ import annotations

import random

import pytest

from dashcam.simulate.models import DEFAULT_MODELS, ModelApiError, Quota
from dashcam.simulate.quotas import LOAD_SLOWDOWN, WINDOW_S, ModelGate, SimClock, SimulatorStats, plan_latency


class _StoppedClock(SimClock):
    """A simulated clock the test moves by hand (the gate reads only ``now``)."""

    def __init__(self, speed: float = 10.0) -> None:
        super().__init__(speed)
        self.t = 1000.0

    def now(self) -> float:
        return self.t


def _throttle(gate: ModelGate, tokens: int = 1) -> ModelApiError:
    with pytest.raises(ModelApiError) as caught:
        gate.admit(tokens)
    assert caught.value.code == "ThrottlingException" and caught.value.status == 429
    return caught.value


def test_requests_per_minute_is_a_sliding_window():
    clock = _StoppedClock()
    gate = ModelGate(Quota(3, 10**9, 100), clock)
    for step in range(3):
        gate.admit(1)
        gate.release()
        clock.t += 10
    error = _throttle(gate)
    assert error.limit_kind == "requests"
    # the oldest call leaves the window 60 simulated s after it was admitted: 30 s from now, 3 s real at x10
    assert error.retry_after_s == pytest.approx((WINDOW_S - 30) / clock.speed)
    clock.t += WINDOW_S - 30
    gate.admit(1)  # one slot is free again
    _throttle(gate)


def test_tokens_per_minute_counts_the_tokens_admitted_in_the_window():
    clock = _StoppedClock()
    gate = ModelGate(Quota(1000, 100, 100), clock)
    gate.admit(60)
    clock.t += 20
    gate.admit(30)
    error = _throttle(gate, 20)
    assert error.limit_kind == "tokens" and "tokens" in str(error)
    gate.admit(10)  # exactly fills the quota
    clock.t += WINDOW_S - 20  # the 60-token call has left the window
    gate.admit(60)
    assert gate.usage()["tokens"] == 100


def test_a_call_larger_than_the_whole_quota_is_invalid_rather_than_throttled():
    gate = ModelGate(Quota(1000, 100, 100), _StoppedClock())
    with pytest.raises(ModelApiError) as caught:
        gate.admit(101)
    assert caught.value.code == "ValidationException"


def test_concurrency_is_limited_and_released_and_throttled_calls_charge_nothing():
    gate = ModelGate(Quota(1000, 10**6, 2), _StoppedClock())
    assert gate.admit(5) == 0 and gate.admit(5) == 1  # calls in flight before each
    assert _throttle(gate, 5).limit_kind == "concurrency"
    assert gate.usage() == {"requests": 2, "tokens": 10, "in_flight": 2}
    gate.release()
    assert gate.admit(5) == 1


def test_latency_grows_with_load_and_with_output_length():
    spec = DEFAULT_MODELS[0]

    def plan(in_flight: int, output_tokens: int):
        return plan_latency(spec, 50, output_tokens, in_flight, random.Random(1))  # same jitter every time

    idle, busy, full = plan(0, 100), plan(spec.quota.max_concurrency // 2, 100), plan(spec.quota.max_concurrency, 100)
    assert idle.total_ms < busy.total_ms < full.total_ms
    assert full.total_ms == pytest.approx(idle.total_ms * (1 + LOAD_SLOWDOWN))
    assert plan(0, 10).total_ms < idle.total_ms < plan(0, 1000).total_ms
    assert idle.first_token_ms < idle.total_ms
    assert idle.total_ms == pytest.approx(idle.first_token_ms + 100 * idle.per_token_ms)


def test_speed_must_be_positive():
    with pytest.raises(ValueError):
        SimClock(0)


def test_stats_count_successes_throttles_errors_and_tokens():
    stats = SimulatorStats()
    stats.record("m", "Converse", input_tokens=10, output_tokens=5)
    stats.record("m", "ConverseStream", input_tokens=1, output_tokens=2, cache_read_tokens=3)
    stats.record("m", "Converse", error="ThrottlingException", input_tokens=99)
    stats.record("m", "Converse", error="ValidationException")
    snap = stats.snapshot()["m"]
    assert (snap["requests"], snap["succeeded"], snap["throttled"]) == (4, 2, 1)
    assert snap["errors"] == {"ThrottlingException": 1, "ValidationException": 1}
    assert snap["operations"] == {"Converse": 3, "ConverseStream": 1}
    assert (snap["input_tokens"], snap["output_tokens"], snap["cache_read_tokens"]) == (11, 7, 3)
