"""Quotas, latency and the simulator's clock.

The simulator runs on a scaled clock: with ``speed`` 20, one real second is twenty simulated
seconds, so a 2 s answer takes 100 ms of real time and a one-minute quota window lasts 3 real
seconds. Everything the simulator reports (latencyMs, invocationLatency, firstByteLatency) is in
simulated, i.e. uncompressed, milliseconds.

Per model: sliding one-minute windows of admitted requests and of their tokens (input + cache
+ output, charged when the call is admitted: the simulator knows the answer up front), and a
limit on calls in flight. A call beyond any of them is throttled and charges nothing. Latency
grows with the share of the concurrency limit in use and with the answer's length.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from dashcam.simulate.models import ModelApiError, ModelSpec, Quota

__all__ = ["SimClock", "ModelGate", "Latency", "plan_latency", "SimulatorStats", "WINDOW_S", "LOAD_SLOWDOWN"]

WINDOW_S = 60.0  # quota window, simulated seconds
LOAD_SLOWDOWN = 1.5  # at full concurrency a call takes 1 + LOAD_SLOWDOWN times as long as on an idle model


class SimClock:
    """Simulated time: real monotonic time times ``speed`` since the simulator started."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.speed = float(speed)
        self._start = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since start."""
        return (time.monotonic() - self._start) * self.speed

    def real_seconds(self, simulated_seconds: float) -> float:
        """How long ``simulated_seconds`` last in real time."""
        return max(0.0, simulated_seconds) / self.speed

    async def sleep(self, simulated_ms: float) -> None:
        """Wait ``simulated_ms`` simulated milliseconds."""
        if simulated_ms > 0:
            await asyncio.sleep(simulated_ms / 1000.0 / self.speed)


class ModelGate:
    """One model's quota accounting: RPM and TPM sliding windows and the concurrency limit.

    Used only from the event loop's thread, so it needs no lock.
    """

    def __init__(self, quota: Quota, clock: SimClock) -> None:
        self.quota = quota
        self.clock = clock
        self.in_flight = 0
        self._admitted: deque[tuple[float, int]] = deque()  # (simulated time, tokens)
        self._window_tokens = 0

    def _expire(self, now: float) -> None:
        while self._admitted and self._admitted[0][0] <= now - WINDOW_S:
            self._window_tokens -= self._admitted.popleft()[1]

    def admit(self, tokens: int) -> int:
        """Take a slot for a call of ``tokens`` tokens and return the calls in flight before it,
        or raise ThrottlingException naming the limit that was hit."""
        now = self.clock.now()
        self._expire(now)
        q = self.quota
        if self.in_flight >= q.max_concurrency:
            raise self._throttle("concurrency", "Too many requests, please wait before trying again.",
                                 0.05 * WINDOW_S)
        if len(self._admitted) >= q.requests_per_minute:
            raise self._throttle("requests", "Too many requests, please wait before trying again.",
                                 self._admitted[0][0] + WINDOW_S - now)
        if self._window_tokens + tokens > q.tokens_per_minute:
            if tokens > q.tokens_per_minute:
                raise ModelApiError("ValidationException", 400,
                                    f"Input and output tokens ({tokens}) exceed the model's tokens per minute "
                                    f"quota ({q.tokens_per_minute}).")
            raise self._throttle("tokens", "Too many tokens, please wait before trying again.",
                                 self._seconds_until_tokens_free(tokens, now))
        self._admitted.append((now, tokens))
        self._window_tokens += tokens
        before = self.in_flight
        self.in_flight += 1
        return before

    def release(self) -> None:
        """Give back the call's concurrency slot (its quota charge stays in the window)."""
        self.in_flight -= 1

    def _seconds_until_tokens_free(self, tokens: int, now: float) -> float:
        freed = self.quota.tokens_per_minute - self._window_tokens
        for admitted_at, charged in self._admitted:
            freed += charged
            if freed >= tokens:
                return admitted_at + WINDOW_S - now
        return WINDOW_S

    def _throttle(self, kind: str, message: str, simulated_wait_s: float) -> ModelApiError:
        return ModelApiError("ThrottlingException", 429, message, limit_kind=kind,
                             retry_after_s=self.clock.real_seconds(max(simulated_wait_s, 0.001)))

    def usage(self) -> dict:
        """Requests and tokens in the current window, and calls in flight."""
        self._expire(self.clock.now())
        return {"requests": len(self._admitted), "tokens": self._window_tokens, "in_flight": self.in_flight}


@dataclass(frozen=True)
class Latency:
    """A call's planned timing, in simulated milliseconds."""

    first_token_ms: float
    total_ms: float
    per_token_ms: float  # decode time per output token under the current load


def plan_latency(spec: ModelSpec, input_tokens: int, output_tokens: int, in_flight_before: int,
                 rng: random.Random) -> Latency:
    """Time to first token and total time of a call that starts with ``in_flight_before`` calls
    already running on the model: idle speed times ``1 + LOAD_SLOWDOWN * load**2``, where load is
    the share of the concurrency limit in use, with ±15% (lognormal) jitter from the request."""
    load = min(1.0, in_flight_before / max(spec.quota.max_concurrency, 1))
    slowdown = (1.0 + LOAD_SLOWDOWN * load * load) * rng.lognormvariate(0.0, 0.15)
    first = (spec.first_token_ms + input_tokens * spec.ms_per_input_token) * slowdown
    per_token = spec.ms_per_output_token * slowdown
    return Latency(first, first + output_tokens * per_token, per_token)


class SimulatorStats:
    """What the simulator did, per model: requests, successes, throttles, errors, tokens.

    Written from the event loop, read from any thread (tests compare it with what capture recorded).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, dict] = defaultdict(self._empty)

    @staticmethod
    def _empty() -> dict:
        return {"requests": 0, "succeeded": 0, "throttled": 0, "errors": Counter(), "operations": Counter(),
                "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0}

    def record(self, model: str, operation: str, *, error: str | None = None, input_tokens: int = 0,
               output_tokens: int = 0, cache_read_tokens: int = 0, cache_write_tokens: int = 0) -> None:
        """Count one finished call (``error`` is the error code it failed with, if any)."""
        with self._lock:
            entry = self._models[model]
            entry["requests"] += 1
            entry["operations"][operation] += 1
            if error is None:
                entry["succeeded"] += 1
                entry["input_tokens"] += input_tokens
                entry["output_tokens"] += output_tokens
                entry["cache_read_tokens"] += cache_read_tokens
                entry["cache_write_tokens"] += cache_write_tokens
            else:
                entry["errors"][error] += 1
                if error == "ThrottlingException":
                    entry["throttled"] += 1

    def snapshot(self) -> dict:
        """A plain-dict copy: {model id: {requests, succeeded, throttled, errors{code: n},
        operations{name: n}, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens}}."""
        with self._lock:
            return {model: {k: dict(v) if isinstance(v, Counter) else v for k, v in entry.items()}
                    for model, entry in self._models.items()}
