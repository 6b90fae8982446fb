"""The simulator's core, shared by the Bedrock and OpenAI-compatible APIs.

A call goes: resolve the model (API module) -> parse the body into a ``Prompt`` (API module) ->
``Simulator.begin`` (answer, injected faults, quota admission, latency plan) -> the API module
waits on the returned ``Call`` and renders its answer -> ``Call.finish`` counts it in the stats
and frees its concurrency slot.

Faults can be asked for in the request: a last user message containing ``#simulate:<Code>``
(e.g. ``#simulate:ServiceUnavailableException``) fails with that error, so tests and demos can
produce every error Bedrock sends; ``#simulate:ModelStreamErrorException`` makes a stream fail
half-way with an in-stream error event. Models with an ``error_rate`` also fail at random with
ServiceUnavailableException, drawn from a generator seeded once per simulator.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from dashcam.simulate.models import Catalog, Completion, ModelApiError, ModelSpec, Prompt, complete, request_rng
from dashcam.simulate.quotas import Latency, ModelGate, SimClock, SimulatorStats, plan_latency

__all__ = ["Simulator", "Call", "FAULTS", "STREAM_FAULT", "STREAM_FAULT_MESSAGE", "PROMPT_CACHE_TTL_S"]

COALESCE_REAL_S = 0.002  # stream events due closer together than this (real time) share a write
PROMPT_CACHE_TTL_S = 300.0  # Bedrock's prompt cache keeps a prefix five minutes after its last use
_DIRECTIVE = re.compile(r"#simulate:([A-Za-z]+)")

STREAM_FAULT = "ModelStreamErrorException"  # fails a stream half-way, after some content was sent
STREAM_FAULT_MESSAGE = "The model stream was interrupted by an internal error. Try your request again."

# Errors that can be asked for, with Bedrock's status codes and messages.
FAULTS: dict[str, tuple[int, str]] = {
    "ThrottlingException": (429, "Too many requests, please wait before trying again."),
    "ServiceUnavailableException": (503, "Bedrock is unable to process your request."),
    "ModelTimeoutException": (408, "Model has timed out in processing the request. Try your request again."),
    "InternalServerException": (500, "The server encountered an internal error while processing the request."),
    "ModelErrorException": (424, "The system encountered an unexpected error during processing. "
                                 "Try your request again."),
    "ModelNotReadyException": (429, "Model is not ready to serve inference requests. Try again later."),
    "AccessDeniedException": (403, "You don't have access to the model with the specified model ID."),
    "ValidationException": (400, "Malformed input request, please reformat your input and try again."),
}


@dataclass
class Call:
    """One admitted call: its answer, its timing plan, and the bookkeeping to do when it ends."""

    simulator: "Simulator"
    spec: ModelSpec
    operation: str
    request_id: str
    completion: Completion | None  # None for embeddings
    input_tokens: int
    latency: Latency
    stream_fault: bool = False  # asked for a ModelStreamErrorException in the middle of the stream
    _finished: bool = field(default=False, repr=False)

    @property
    def timed_out(self) -> bool:
        """True when the model would take longer than its timeout (the call then fails)."""
        return self.latency.total_ms > self.spec.timeout_ms

    async def wait(self, simulated_ms: float) -> None:
        """Sleep ``simulated_ms`` on the simulator's clock."""
        await self.simulator.clock.sleep(simulated_ms)

    async def wait_until_done(self) -> None:
        """Sleep until the answer would be complete; raise ModelTimeoutException if it never would."""
        if self.timed_out:
            await self.wait(self.spec.timeout_ms)
            code = "ModelTimeoutException"
            raise ModelApiError(code, FAULTS[code][0], FAULTS[code][1])
        await self.wait(self.latency.total_ms)

    def text_timeline(self) -> list[tuple[float, str]]:
        """(send time in simulated ms, text delta) for each streamed piece: a piece goes out when
        its last token is decoded."""
        lat, out, done = self.latency, [], 0
        for piece, size in zip(self.completion.pieces, self.completion.piece_tokens):
            done += size
            out.append((lat.first_token_ms + max(done - 1, 0) * lat.per_token_ms, piece))
        return out

    async def paced(self, timed: list[tuple[float, bytes]], error: str | None = None) -> AsyncIterator[bytes]:
        """Yield each (send time in simulated ms, bytes) at its time; the call is counted (as failed
        with ``error``, if given) when the stream ends or the client drops it."""
        # Events due within COALESCE_REAL_S of each other go out in one write: at high speed-ups
        # most gaps are microseconds, and a write per event would cost more than the event.
        clock = self.simulator.clock
        sent_at, pending = 0.0, []
        try:
            for at_ms, data in timed:
                if pending and clock.real_seconds((at_ms - sent_at) / 1000.0) >= COALESCE_REAL_S:
                    yield b"".join(pending)
                    pending = []
                if at_ms > sent_at and clock.real_seconds((at_ms - sent_at) / 1000.0) >= COALESCE_REAL_S:
                    await self.wait(at_ms - sent_at)
                    sent_at = at_ms
                pending.append(data)
            if pending:
                last = timed[-1][0]
                await self.wait(last - sent_at)
                # counted before the last bytes go out, so a client that has read the whole stream
                # always finds its call in the stats
                self.finish(error)
                yield b"".join(pending)
        finally:
            self.finish(error)

    def finish(self, error: str | None = None) -> None:
        """Count the call in the stats and free its slot; only the first call does anything."""
        if self._finished:
            return
        self._finished = True
        self.simulator.gates[self.spec.model_id].release()
        c = self.completion
        self.simulator.stats.record(
            self.spec.model_id, self.operation, error=error, input_tokens=self.input_tokens,
            output_tokens=c.output_tokens if c else 0, cache_read_tokens=c.cache_read_tokens if c else 0,
            cache_write_tokens=c.cache_write_tokens if c else 0)


class Simulator:
    """Models, clock, quotas and stats of one running simulator."""

    def __init__(self, *, seed: int = 0, speed: float = 1.0, models: list[ModelSpec] | tuple | None = None) -> None:
        self.seed = seed
        self.catalog = Catalog(models)
        self.clock = SimClock(speed)
        self.gates = {model_id: ModelGate(spec.quota, self.clock) for model_id, spec in self.catalog.models.items()}
        self.stats = SimulatorStats()
        self._sequence = random.Random(f"dashcam-simulator|{seed}")  # ids and random faults, in arrival order
        self._sequence_lock = threading.Lock()
        self._prompt_cache: dict[tuple[str, str], float] = {}  # (model, prefix) -> simulated time of last use

    def request_id(self) -> str:
        """A request id (UUID form) from the seeded sequence."""
        with self._sequence_lock:
            return str(uuid.UUID(int=self._sequence.getrandbits(128), version=4))

    def reject(self, spec: ModelSpec | None, operation: str, error: ModelApiError) -> ModelApiError:
        """Count a call that failed before admission (bad body, unknown model) and return the error."""
        if spec is not None:
            self.stats.record(spec.model_id, operation, error=error.code)
        return error

    def _cache_hit(self, spec: ModelSpec, prompt: Prompt) -> bool:
        if not prompt.cached_prefix:
            return False
        now = self.clock.now()
        key = (spec.model_id, prompt.cached_prefix)
        last = self._prompt_cache.get(key)
        self._prompt_cache[key] = now
        if len(self._prompt_cache) > 10_000:  # forget expired prefixes now and then
            self._prompt_cache = {k: t for k, t in self._prompt_cache.items() if now - t < PROMPT_CACHE_TTL_S}
        return last is not None and now - last < PROMPT_CACHE_TTL_S

    def begin(self, spec: ModelSpec, operation: str, prompt: Prompt | None, *, input_tokens: int = 0,
              content: bytes = b"", request_id: str | None = None) -> Call:
        """Answer, fault check, quota admission and timing for one call; raises ModelApiError
        (already counted in the stats) when the call fails before it starts.

        ``prompt`` is None for embeddings; then ``input_tokens`` and ``content`` (the text) are used.
        """
        request_id = request_id or self.request_id()
        try:
            completion = None
            if prompt is not None:
                stream_fault = self._check_directive(prompt, streaming=operation.endswith("Stream"))
                completion = complete(spec, prompt, self.seed, cache_hit=self._cache_hit(spec, prompt))
                input_tokens = completion.input_tokens
                charge = completion.total_tokens
                rng = random.Random()
                rng.setstate(completion.rng_state)
            else:
                charge = input_tokens
                rng = request_rng(self.seed, spec.model_id, content)
            if spec.error_rate:
                with self._sequence_lock:
                    failed = self._sequence.random() < spec.error_rate
                if failed:
                    code = "ServiceUnavailableException"
                    raise ModelApiError(code, *FAULTS[code])
            in_flight_before = self.gates[spec.model_id].admit(charge)
        except ModelApiError as exc:
            self.stats.record(spec.model_id, operation, error=exc.code)
            raise
        output_tokens = completion.output_tokens if completion else 0
        latency = plan_latency(spec, input_tokens, output_tokens, in_flight_before, rng)
        return Call(self, spec, operation, request_id, completion, input_tokens, latency,
                    stream_fault=prompt is not None and stream_fault)

    @staticmethod
    def _check_directive(prompt: Prompt, *, streaming: bool) -> bool:
        """Raise the error a ``#simulate:<Code>`` directive asks for; True when it asks for a
        failure in the middle of a stream (a non-streaming call gets ModelErrorException instead)."""
        user_texts = [text for role, text in prompt.messages if role == "user"]
        found = _DIRECTIVE.search(user_texts[-1]) if user_texts else None
        code = found.group(1) if found else None
        if code == STREAM_FAULT:
            if streaming:
                return True
            code = "ModelErrorException"
        if code in FAULTS:
            status, message = FAULTS[code]
            raise ModelApiError(code, status, message, retry_after_s=1.0 if status == 429 else None,
                                limit_kind="requests" if code == "ThrottlingException" else None)
        return False

    def usage(self) -> dict:
        """Each model's quota window usage right now (requests, tokens, in flight)."""
        return {model_id: gate.usage() for model_id, gate in self.gates.items()}
