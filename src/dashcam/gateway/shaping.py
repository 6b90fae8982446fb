"""Rate shaping per model: token buckets just under the upstream's quotas, a bounded wait, retries.

Each limited model has up to three gates, all taken before a request goes upstream:

* a request bucket and a token bucket. A bucket of limit ``L`` per window ``W`` (a minute for real
  providers) holds at most ``burst * L`` and refills at ``(1 - burst) * L / W``, so in *any* span of
  ``W`` seconds at most ``burst * L + (1 - burst) * L = L`` goes through — what a sliding-window
  quota like Bedrock's needs, where a plain bucket of ``L`` could let ``2L`` through. That holds
  exactly while each request fits in the bucket; one larger than ``burst * L`` (tokens) can push a
  window over by what it is larger. (The request bucket holds at least one request; see
  :class:`TokenBucket`.)
  A request takes its share at once and may drive a bucket below zero; it then waits until the
  bucket would be back at zero. That is first come, first served without a queue object: each
  waiter's wait is fixed when it arrives. Tokens are estimated before the call and corrected
  from the usage the upstream reports after it (:meth:`Permit.settle`).
* a limit on calls in flight.

A request whose wait would exceed ``max_wait``, or that finds ``max_queue`` requests already
waiting, is refused at once with the time after which a retry would be admitted; the gateway
answers it as the provider answers a throttle (429 with ``Retry-After``).

Everything here runs on the event loop's thread, so plain counters suffice.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dashcam.gateway.config import ModelLimit

Clock = Callable[[], float]

REFUSED_RATE = "rate"          # the buckets would make it wait too long
REFUSED_QUEUE = "queue"        # too many requests are waiting already
REFUSED_CONCURRENCY = "concurrency"  # no call slot freed up within the wait allowed

RETRY_BASE_S = 0.05
RETRY_CAP_S = 2.0


class TokenBucket:
    """A bucket that never lets more than ``limit`` through in any ``window`` seconds.

    ``whole`` buckets count requests, which come in ones: such a bucket holds at least one, so a
    low limit (2 per minute) still lets a request through at once after a quiet spell. With whole
    units, what goes through in a window is at most ``floor(capacity + rate * window)``, and the
    refill rate keeps that at ``limit`` (for a limit of 1, one request every two windows).

    ``level`` may go negative: that is what requests already admitted but still waiting owe.
    """

    def __init__(self, limit: int, window: float, burst: float, clock: Clock, *, whole: bool = False) -> None:
        self.limit = limit
        if whole:
            self.capacity = max(1.0, limit * burst)
            self.rate = max(limit - self.capacity, 0.5) / window  # per second
        else:
            self.capacity = limit * burst
            self.rate = limit * (1.0 - burst) / window
        self.level = self.capacity
        self._clock = clock
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._at) * self.rate)
        self._at = now

    def take(self, amount: float) -> float:
        """Take ``amount`` now; return the seconds to wait until it is covered (0 if it is)."""
        self._refill()
        self.level -= amount
        return -self.level / self.rate if self.level < 0 else 0.0

    def give_back(self, amount: float) -> None:
        """Return ``amount`` (a refused request's share, or an over-estimate), up to capacity."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


@dataclass(frozen=True)
class Refusal:
    """A request the shaper turned away: why, and in how many seconds a retry would be admitted."""

    reason: str
    retry_after: float


class Permit:
    """Leave to call the upstream. :meth:`settle` it exactly once, when the call has ended."""

    __slots__ = ("shaper", "estimate", "waited", "_settled")

    def __init__(self, shaper: "ModelShaper | None", estimate: int, waited: float) -> None:
        self.shaper = shaper
        self.estimate = estimate
        self.waited = waited  # seconds spent waiting for the limits
        self._settled = False

    def settle(self, used_tokens: int | None) -> None:
        """The call is over: correct the token bucket to the tokens it used (None: unknown, keep
        the estimate) and free its call slot."""
        if self._settled or self.shaper is None:
            return
        self._settled = True
        self.shaper.release(self.estimate, used_tokens)


UNSHAPED = Permit(None, 0, 0.0)  # for models without limits: nothing to settle


class ModelShaper:
    """One model's buckets, call slots and waiting requests."""

    def __init__(self, model: str, limit: ModelLimit, *, window: float, burst: float, max_wait: float,
                 max_queue: int, clock: Clock = time.monotonic) -> None:
        self.model = model
        self.limit = limit
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.requests = TokenBucket(limit.rpm, window, burst, clock, whole=True) if limit.rpm else None
        self.tokens = TokenBucket(limit.tpm, window, burst, clock) if limit.tpm else None
        self.slots = asyncio.Semaphore(limit.concurrency) if limit.concurrency else None
        self.waiting = 0      # requests waiting now (buckets or slots)
        self.in_flight = 0    # calls holding a permit
        self.queued = 0       # requests that had to wait, ever
        self.waited_s = 0.0   # seconds they waited, in total
        self.refused = 0      # requests refused, ever

    def reserve(self, tokens: int) -> float | Refusal:
        """Take a request's share of both buckets; the wait until it may go, or a Refusal (with
        nothing taken) when that wait is too long or too many are waiting already."""
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.take(1)
        if self.tokens is not None and tokens:
            wait = max(wait, self.tokens.take(tokens))
        refused = None
        if wait > self.max_wait:
            refused = Refusal(REFUSED_RATE, wait)
        elif wait > 0 and self.waiting >= self.max_queue:
            refused = Refusal(REFUSED_QUEUE, wait)
        if refused is not None:
            self._give_back(1, tokens)
            self.refused += 1
            return refused
        return wait

    async def acquire(self, tokens: int) -> Permit | Refusal:
        """Wait (at most ``max_wait``) until the request fits all of the model's limits."""
        wait = self.reserve(tokens)
        if isinstance(wait, Refusal):
            return wait
        waited = 0.0
        if wait > 0 or (self.slots is not None and self.slots.locked()):
            self.waiting += 1
            self.queued += 1
            started = time.monotonic()
            try:
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.slots is not None:
                    left = self.max_wait - (time.monotonic() - started)
                    if not await self._take_slot(left):
                        self._give_back(1, tokens)
                        self.refused += 1
                        return Refusal(REFUSED_CONCURRENCY, max(self.max_wait, 1.0))
            except BaseException:  # the caller went away while waiting: its share was never used
                self._give_back(1, tokens)
                raise
            finally:
                self.waiting -= 1
                waited = time.monotonic() - started
                self.waited_s += waited
        elif self.slots is not None:
            await self.slots.acquire()  # not locked: returns at once
        self.in_flight += 1
        return Permit(self, tokens, waited)

    async def _take_slot(self, timeout: float) -> bool:
        if not self.slots.locked():
            await self.slots.acquire()  # returns at once
            return True
        if timeout <= 0:
            return False
        try:
            await asyncio.wait_for(self.slots.acquire(), max(timeout, 0.0))
        except TimeoutError:
            return False
        return True

    def release(self, estimate: int, used_tokens: int | None) -> None:
        """A permitted call ended: correct the token estimate, free the slot."""
        self.in_flight -= 1
        if self.tokens is not None and used_tokens is not None and used_tokens != estimate:
            difference = estimate - used_tokens
            if difference > 0:
                self.tokens.give_back(difference)
            else:
                self.tokens.take(-difference)
        if self.slots is not None:
            self.slots.release()

    def _give_back(self, requests: int, tokens: int) -> None:
        if self.requests is not None:
            self.requests.give_back(requests)
        if self.tokens is not None and tokens:
            self.tokens.give_back(tokens)


class Shaper:
    """The shapers of every limited model; models without a limit pass straight through."""

    def __init__(self, limits: Mapping[str, ModelLimit], *, window: float = 60.0, burst: float = 0.1,
                 max_wait: float = 5.0, max_queue: int = 1000, clock: Clock = time.monotonic) -> None:
        self.models = {model: ModelShaper(model, limit, window=window, burst=burst, max_wait=max_wait,
                                          max_queue=max_queue, clock=clock)
                       for model, limit in limits.items() if limit.active}

    def shaper_for(self, model: str | None) -> ModelShaper | None:
        """The model's shaper, or None when it has no limits."""
        return self.models.get(model) if model is not None else None

    def needs_tokens(self, model: str | None) -> bool:
        """True when the model's tokens are limited (so the request's tokens must be estimated)."""
        shaper = self.shaper_for(model)
        return shaper is not None and shaper.tokens is not None


def retry_delay(attempt: int, hint: float | None, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` after a throttle: the upstream's own hint
    (``Retry-After``) plus up to 10% jitter, else exponential backoff with equal jitter (half the
    step fixed, half random), so retries neither stampede nor starve."""
    draw = (rng or random).random()
    if hint is not None and hint >= 0:
        return hint * (1.0 + 0.1 * draw)
    step = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(attempt - 1, 0))
    return step / 2 + step / 2 * draw


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds (HTTP allows no fractions), at least 1."""
    return str(max(1, math.ceil(seconds)))
