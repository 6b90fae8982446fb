"""The simulated models: catalog, quotas and speed, token counting, and deterministic answers.

Everything a simulated model says is a pure function of (seed, model id, request content): the
same request under the same seed gets the same text, token counts and stop reason, whatever else
the simulator is doing. Only latency depends on load (see ``quotas.py``).

Tokenization rule (documented in docs/simulator.md, and what every token count here follows):
a token is a run of one to four letters, digits or underscores (longer words are cut every four
characters), or one character that is neither a word character nor whitespace. Whitespace is
free. So ``"Hello, world!"`` is ``Hell o , worl d !`` = 6 tokens. Input tokens are the tokens of
every text the request sends (system prompts, message texts, tool results; tool definitions'
JSON); output tokens are the tokens of the answer's text plus the JSON of any tool-call input.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import struct
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

__all__ = ["TOKEN_PATTERN", "Quota", "ModelSpec", "Prompt", "ToolCall", "Completion", "DEFAULT_MODELS",
           "Catalog", "ModelApiError", "count_tokens", "complete", "embed", "request_rng"]

TOKEN_PATTERN = re.compile(r"\w{1,4}|[^\w\s]")


def count_tokens(text: str) -> int:
    """Tokens in ``text`` under the simulator's rule (see the module docstring)."""
    return len(TOKEN_PATTERN.findall(text))


class ModelApiError(Exception):
    """An error the simulator answers with on the wire (e.g. ``ValidationException``, HTTP 400).

    This is not a dashcam failure — it is the simulated provider's reply to a client, so it is kept
    out of dashcam's exception tree. The API modules render it in each protocol's error format.
    """

    def __init__(self, code: str, status: int, message: str, *, retry_after_s: float | None = None,
                 limit_kind: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s  # real seconds until a retry could succeed (throttles)
        self.limit_kind = limit_kind  # "requests" | "tokens" | "concurrency" for throttles


def validation(message: str) -> ModelApiError:
    """A Bedrock ``ValidationException`` (HTTP 400)."""
    return ModelApiError("ValidationException", 400, message)


@dataclass(frozen=True)
class Quota:
    """Per-model limits, per minute of simulated time, and how many calls may run at once."""

    requests_per_minute: int
    tokens_per_minute: int
    max_concurrency: int


@dataclass(frozen=True)
class ModelSpec:
    """One model the simulator serves, and how it behaves.

    ``family`` decides the provider-native InvokeModel body: ``anthropic`` (Messages API),
    ``nova`` (messages-v1), ``llama`` (prompt/generation), ``titan-embed`` (Titan Text
    Embeddings v2), ``openai`` (chat models only reachable on the OpenAI endpoint) and
    ``openai-embed``.
    """

    model_id: str
    family: str
    quota: Quota
    first_token_ms: float  # time to first token for a short prompt on an idle model
    ms_per_output_token: float  # decode speed on an idle model
    typical_output_tokens: int  # median answer length when max tokens does not cut it
    max_output_tokens: int = 8192
    native_name: str = ""  # the "model" field of Anthropic and OpenAI answers
    embedding_dimensions: int = 0  # default vector size of embedding models
    on_demand: bool = True  # False: only callable through an inference profile (Bedrock's rule)
    timeout_ms: float = 60_000  # an invocation that would take longer fails with ModelTimeoutException
    error_rate: float = 0.0  # share of calls that fail with ServiceUnavailableException
    ms_per_input_token: float = 0.02  # prompt processing adds to the time to first token

    @property
    def embedding(self) -> bool:
        """True for embedding models (no chat, no streaming)."""
        return self.family in ("titan-embed", "openai-embed")

    @property
    def api(self) -> str:
        """``openai`` for models served only on the OpenAI endpoint, else ``bedrock``."""
        return "openai" if self.family.startswith("openai") else "bedrock"

    def with_quota(self, requests_per_minute: int | None = None, tokens_per_minute: int | None = None,
                   max_concurrency: int | None = None) -> "ModelSpec":
        """A copy with some quota values changed (tests and the demo tune limits this way)."""
        q = self.quota
        return replace(self, quota=Quota(requests_per_minute or q.requests_per_minute,
                                         tokens_per_minute or q.tokens_per_minute,
                                         max_concurrency or q.max_concurrency))


_HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
_SONNET = "anthropic.claude-sonnet-4-20250514-v1:0"

# Quotas are in the range of Bedrock's and OpenAI's defaults for a new account, scaled so that
# a demo with 10 to 100 virtual users crosses them; speeds match the sample logs' models.
DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(_HAIKU, "anthropic", Quota(400, 400_000, 40), 320, 7.5, 160, native_name="claude-3-5-haiku-20241022"),
    ModelSpec("us." + _HAIKU, "anthropic", Quota(800, 800_000, 80), 340, 7.5, 160,
              native_name="claude-3-5-haiku-20241022"),
    ModelSpec(_SONNET, "anthropic", Quota(200, 200_000, 20), 650, 17.0, 260, native_name="claude-sonnet-4-20250514",
              on_demand=False, max_output_tokens=64_000),
    ModelSpec("us." + _SONNET, "anthropic", Quota(200, 200_000, 20), 650, 17.0, 260,
              native_name="claude-sonnet-4-20250514", max_output_tokens=64_000),
    ModelSpec("amazon.nova-lite-v1:0", "nova", Quota(1000, 1_000_000, 100), 230, 4.2, 180, max_output_tokens=10_000),
    ModelSpec("amazon.nova-pro-v1:0", "nova", Quota(250, 500_000, 40), 380, 9.0, 200, max_output_tokens=10_000),
    ModelSpec("meta.llama3-1-70b-instruct-v1:0", "llama", Quota(400, 300_000, 40), 420, 13.5, 200,
              max_output_tokens=2048),
    ModelSpec("amazon.titan-embed-text-v2:0", "titan-embed", Quota(2000, 300_000, 100), 45, 0.0, 0,
              embedding_dimensions=1024),
    ModelSpec("gpt-4o-mini", "openai", Quota(500, 200_000, 50), 300, 6.0, 180, native_name="gpt-4o-mini-2024-07-18",
              max_output_tokens=16_384),
    ModelSpec("gpt-4.1", "openai", Quota(500, 300_000, 50), 550, 14.0, 240, native_name="gpt-4.1-2025-04-14",
              max_output_tokens=32_768),
    ModelSpec("text-embedding-3-small", "openai-embed", Quota(3000, 1_000_000, 100), 40, 0.0, 0,
              embedding_dimensions=1536),
)

_ARN = re.compile(r"^arn:aws[a-z-]*:bedrock:[a-z0-9-]+:(\d{12})?:"
                  r"(foundation-model|inference-profile|application-inference-profile|provisioned-model|"
                  r"custom-model|imported-model|prompt)/(.+)$")
_PLAIN_ID = re.compile(r"^[a-zA-Z0-9._:-]{1,256}$")


class Catalog:
    """The models one simulator serves, looked up by id or ARN."""

    def __init__(self, models: tuple[ModelSpec, ...] | list[ModelSpec] | None = None) -> None:
        self.models: dict[str, ModelSpec] = {}
        for spec in models if models is not None else DEFAULT_MODELS:
            if spec.model_id in self.models:
                raise ValueError(f"model {spec.model_id} is listed twice")
            self.models[spec.model_id] = spec

    def resolve_bedrock(self, model_id: str) -> ModelSpec:
        """The model a Bedrock runtime call names (id, inference-profile id or ARN), or the error
        Bedrock answers: ValidationException for a malformed or unknown id or a model that needs
        an inference profile, ResourceNotFoundException for a well-formed ARN that names nothing."""
        arn = _ARN.match(model_id)
        if model_id.startswith("arn:") and not arn:
            raise validation("The provided model identifier is invalid.")
        name = arn.group(3) if arn else model_id
        spec = self.models.get(name)
        if spec is None or spec.api != "bedrock" or (arn and arn.group(2) not in ("foundation-model",
                                                                                  "inference-profile")):
            if arn or _PLAIN_ID.match(model_id) and "." in model_id:
                raise ModelApiError("ResourceNotFoundException", 404,
                                    "Could not resolve the foundation model from the provided model identifier.")
            raise validation("The provided model identifier is invalid.")
        if not spec.on_demand and not (arn and arn.group(2) == "inference-profile"):
            raise validation(f"Invocation of model ID {spec.model_id} with on-demand throughput isn't supported. "
                             "Retry your request with the ID or ARN of an inference profile that contains this model.")
        return spec

    def resolve_openai(self, model: str) -> ModelSpec | None:
        """The model an OpenAI-compatible call names (any served model), or None."""
        return self.models.get(model)


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class ToolSpec:
    """A tool the caller offers: its name and JSON schema."""

    name: str
    schema: dict


@dataclass(frozen=True)
class Prompt:
    """A chat request in provider-neutral form: what generation and token counting need."""

    system: tuple[str, ...]
    messages: tuple[tuple[str, str], ...]  # (role, text): roles user | assistant | tool
    max_tokens: int
    stop_sequences: tuple[str, ...] = ()
    temperature: float | None = None
    tools: tuple[ToolSpec, ...] = ()
    force_tool: bool = False  # the caller requires a tool call (tool choice any / a named tool)
    cached_prefix: str = ""  # text before a cache point: billed as cache read/write, not input

    def input_tokens(self) -> int:
        """Tokens billed as input: everything sent, minus a cached prefix."""
        total = sum(count_tokens(t) for t in self.system) + sum(count_tokens(t) for _, t in self.messages)
        total += sum(count_tokens(orjson.dumps(t.schema).decode()) + count_tokens(t.name) for t in self.tools)
        return total - self.cache_tokens()

    def cache_tokens(self) -> int:
        """Tokens of the cached prefix (0 when the request sets no cache point)."""
        return count_tokens(self.cached_prefix)

    def fingerprint(self) -> bytes:
        """Bytes identifying the request's content: the seed of its answer. Limits (max tokens, stop
        sequences) are left out: they cut the same answer rather than change it."""
        return orjson.dumps([self.system, self.messages, self.temperature,
                             [(t.name, t.schema) for t in self.tools], self.force_tool])


def request_rng(seed: int, model_id: str, content: bytes) -> random.Random:
    """The random generator for one request: the same (seed, model, content) gives the same draws."""
    digest = hashlib.blake2b(content, digest_size=16, person=b"dashcam-sim", key=f"{seed}|{model_id}".encode()[:64])
    return random.Random(int.from_bytes(digest.digest(), "big"))


# ------------------------------------------------------------------------------ answers


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model makes: id, tool name, input object."""

    call_id: str
    name: str
    arguments: dict


@dataclass(frozen=True)
class Completion:
    """One answer: text, why it stopped, token counts and the deltas a stream sends."""

    text: str
    stop_reason: str  # end_turn | max_tokens | stop_sequence | tool_use
    input_tokens: int
    output_tokens: int
    pieces: tuple[str, ...]  # streamed text deltas; "".join(pieces) == text
    piece_tokens: tuple[int, ...]  # tokens in each delta
    stop_sequence: str | None = None
    tool_call: ToolCall | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    rng_state: Any = field(default=None, repr=False, compare=False)  # continues the request's draws

    @property
    def total_tokens(self) -> int:
        """Input + cache + output tokens."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens


_SENTENCES = (
    "Thanks for the details, that helps narrow it down.",
    "The most likely cause is a configuration change that went out with the last deploy.",
    "Check the service's error rate and latency for the same time window first.",
    "If the errors started at 14:02 UTC, compare that with the change log for the payments API.",
    "Retries with exponential backoff and jitter usually absorb short bursts of HTTP 429 responses.",
    "A request that keeps failing after five retries should be logged with its request id.",
    "You can export the report as CSV from Settings > Exports, or call /v2/exports directly.",
    "Refunds go back to the original payment method within 5 to 10 business days.",
    "Here is a short summary of the main points.",
    "First, the connection pool was reduced from 200 to 20, which caused the timeouts.",
    "Second, the rollback at 14:31 UTC restored normal error rates within four minutes.",
    "Third, no payments were lost, although 3.1% of checkouts had to be retried.",
    "The query groups orders by day and counts them for the last seven days.",
    "SELECT date_trunc('day', created_at) AS day, count(*) FROM orders GROUP BY 1 ORDER BY 1;",
    "Make sure the index on created_at exists, otherwise the scan gets slow on large tables.",
    "Swallowing every exception hides failures; catch the specific errors and count them.",
    "Keep the timeout at 30 seconds and let the caller retry instead of blocking a worker.",
    "In short: the plan is sound, but the rollout needs an alarm on pool saturation.",
    "Let me know if you'd like me to draft the follow-up e-mail to the customer.",
    "Revenue grew 18% year over year to $42.7M, led by the Business plan.",
    "Self-serve churn rose from 2.1% to 2.6% after the January price change.",
    "The mobile release moves to April 14 so the offline-sync bug can be fixed.",
    "Audit logs are kept for 400 days on Business and Enterprise plans.",
    "Webhook signatures use the secret rotated on March 1st; copy the new one from Settings.",
    "That should resolve it; if not, reply with the request id and the time it failed.",
)
_SENTENCE_TOKENS = tuple(count_tokens(s) for s in _SENTENCES)


def _cut_at_tokens(text: str, tokens: int) -> str:
    """``text`` up to the end of its ``tokens``-th token."""
    if tokens <= 0:
        return ""
    for i, match in enumerate(TOKEN_PATTERN.finditer(text), start=1):
        if i == tokens:
            return text[: match.end()]
    return text


def _pieces(text: str, rng: random.Random) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Cut ``text`` into stream deltas of 1 to 6 tokens each (whitespace rides with the next token);
    returns the deltas and their token counts."""
    ends = [m.end() for m in TOKEN_PATTERN.finditer(text)]
    pieces, sizes, start, i = [], [], 0, 0
    draw = rng.random
    while i < len(ends):
        size = min(len(ends) - i, 1 + int(draw() * 6))
        i += size
        end = ends[i - 1] if i < len(ends) else len(text)
        pieces.append(text[start:end])
        sizes.append(size)
        start = end
    return (tuple(pieces), tuple(sizes)) if pieces else (("",), (0,))


def _tool_arguments(schema: dict, prompt_text: str, rng: random.Random) -> dict:
    """Arguments that satisfy the tool's JSON schema's required properties, picked from the prompt."""
    properties = schema.get("properties") or {}
    required = schema.get("required") or list(properties)[:1]
    words = re.findall(r"[A-Z]{2,}-\d+|\w{4,}", prompt_text) or ["value"]
    arguments: dict[str, Any] = {}
    for name in required:
        kind = (properties.get(name) or {}).get("type", "string")
        if kind in ("integer", "number"):
            arguments[name] = rng.randint(1, 100)
        elif kind == "boolean":
            arguments[name] = rng.random() < 0.5
        else:
            ids = [w for w in words if "-" in w]
            arguments[name] = ids[0] if ids else rng.choice(words)
    return arguments


def complete(spec: ModelSpec, prompt: Prompt, seed: int, *, cache_hit: bool = False) -> Completion:
    """The model's deterministic answer to ``prompt`` under ``seed``.

    The answer's natural length is drawn around the model's typical length; ``max_tokens`` cuts
    it (stop reason ``max_tokens``), a stop sequence in it ends it early (``stop_sequence``).
    With tools offered, the model calls one when forced to, or on about half of the turns that do
    not already answer a tool result.
    """
    rng = request_rng(seed, spec.model_id, prompt.fingerprint())
    input_tokens = prompt.input_tokens()
    cache = prompt.cache_tokens()
    cache_fields = {"cache_read_tokens": cache, "cache_write_tokens": 0} if cache_hit else \
        {"cache_read_tokens": 0, "cache_write_tokens": cache}
    last_role = prompt.messages[-1][0] if prompt.messages else "user"
    if prompt.tools and (prompt.force_tool or (last_role != "tool" and rng.random() < 0.5)):
        tool = prompt.tools[rng.randrange(len(prompt.tools))]
        arguments = _tool_arguments(tool.schema, prompt.messages[-1][1] if prompt.messages else "", rng)
        call = ToolCall(f"tooluse_{rng.getrandbits(96):024x}", tool.name, arguments)
        text = "" if prompt.force_tool else "Let me look that up."
        output = count_tokens(text) + count_tokens(orjson.dumps(arguments).decode())
        pieces, sizes = _pieces(text, rng) if text else ((), ())
        return Completion(text, "tool_use", input_tokens, output, pieces, sizes, tool_call=call,
                          rng_state=rng.getstate(), **cache_fields)
    target = max(3, round(rng.lognormvariate(math.log(max(spec.typical_output_tokens, 4)), 0.55)))
    chosen, tokens = [], 0
    while tokens < target:
        i = rng.randrange(len(_SENTENCES))
        chosen.append(_SENTENCES[i])
        tokens += _SENTENCE_TOKENS[i]
    text, stop_reason, stop_sequence = " ".join(chosen), "end_turn", None
    hits = [(text.find(s), s) for s in prompt.stop_sequences if s and s in text]
    if hits:
        position, stop_sequence = min(hits)
        text, stop_reason = text[:position].rstrip(), "stop_sequence"
    if count_tokens(text) > prompt.max_tokens:
        text, stop_reason, stop_sequence = _cut_at_tokens(text, prompt.max_tokens), "max_tokens", None
    pieces, sizes = _pieces(text, rng)
    return Completion(text, stop_reason, input_tokens, sum(sizes), pieces, sizes, stop_sequence,
                      rng_state=rng.getstate(), **cache_fields)


def embed(spec: ModelSpec, text: str, seed: int, dimensions: int | None = None, normalize: bool = True) -> list[float]:
    """A deterministic embedding of ``text``: unit length when ``normalize``."""
    size = dimensions or spec.embedding_dimensions
    digest = hashlib.blake2b(text.encode(), digest_size=8, key=f"{seed}|{spec.model_id}".encode()[:64]).digest()
    rng = random.Random(struct.unpack(">Q", digest)[0])
    vector = [rng.gauss(0.0, 1.0) for _ in range(size)]
    if normalize:
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vector = [v / norm for v in vector]
    return [round(v, 7) for v in vector]
