"""Tokens a call will use (estimated from the request) and did use (read from the response).

Both feed the token buckets (:mod:`dashcam.gateway.shaping`), so both run on the hot path and stay
cheap: the estimate walks the request JSON once; the usage is read from Bedrock's token-count
headers, the response body's ``usage``, or the last events of a stream.

The estimate is deliberately high — a word's worth of text is about four characters, so one token
per three characters of every string in the request, plus the output maximum the request sets (or
``default_output_tokens``) — because an estimate that is too low lets a burst through that the
upstream then throttles, while one that is too high only costs until the call's usage corrects it.
"""

from __future__ import annotations

from typing import Any

import orjson

from dashcam.capture.attempt import dig, first_int
from dashcam.capture.openai_records import EMBEDDINGS

CHARS_PER_TOKEN = 3

# Where requests set their output maximum: Converse, Anthropic, OpenAI chat and Responses, Meta
# Llama, Amazon Titan, Amazon Nova (messages-v1), Mistral.
_OUTPUT_LIMITS: tuple[tuple[str, ...], ...] = (
    ("inferenceConfig", "maxTokens"), ("max_tokens",), ("max_completion_tokens",), ("max_output_tokens",),
    ("max_gen_len",), ("textGenerationConfig", "maxTokenCount"), ("inferenceConfig", "max_new_tokens"),
)
_BEDROCK_HEADERS = ("x-amzn-bedrock-input-token-count", "x-amzn-bedrock-output-token-count",
                    "x-amzn-bedrock-cache-read-input-token-count", "x-amzn-bedrock-cache-write-input-token-count")


def text_length(value: Any) -> int:
    """Characters in every string of a decoded JSON value (keys excluded)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(text_length(v) for v in value.values())
    if isinstance(value, list):
        return sum(text_length(v) for v in value)
    return 0


def estimate_tokens(body: Any, *, model: str, operation: str, default_output: int) -> int:
    """Input plus output tokens a request is expected to use (see the module docstring)."""
    tokens = text_length(body) // CHARS_PER_TOKEN + 1
    if operation == EMBEDDINGS or "embed" in model.lower():
        return tokens  # an embedding produces no tokens
    for path in _OUTPUT_LIMITS:
        limit = first_int(dig(body, *path))
        if limit is not None and limit > 0:
            return tokens + limit
    return tokens + default_output


def bedrock_header_usage(headers: Any) -> int | None:
    """Tokens from InvokeModel's ``X-Amzn-Bedrock-*-Token-Count`` headers, or None."""
    counts = [first_int(headers.get(name)) for name in _BEDROCK_HEADERS]
    return None if counts[0] is None and counts[1] is None else sum(c or 0 for c in counts)


def usage_total(usage: Any) -> int | None:
    """Total tokens of a ``usage`` object: Converse's, OpenAI's (chat, Responses, embeddings),
    Anthropic's, or None when it says nothing."""
    if not isinstance(usage, dict):
        return None
    total = first_int(usage.get("totalTokens"), usage.get("total_tokens"))
    if total is not None:
        return total
    parts = [first_int(usage.get(key)) for key in (
        "inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens",
        "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    return None if all(p is None for p in parts) else sum(p or 0 for p in parts)


def body_usage(body: bytes) -> int | None:
    """Tokens from a JSON response body's ``usage`` (or Bedrock's invocation metrics)."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    return usage_total(decoded.get("usage")) or metrics_usage(decoded)


def metrics_usage(event: Any) -> int | None:
    """Tokens in a stream chunk's ``amazon-bedrock-invocationMetrics``."""
    metrics = dig(event, "amazon-bedrock-invocationMetrics")
    if not isinstance(metrics, dict):
        return None
    counts = [first_int(metrics.get(key)) for key in ("inputTokenCount", "outputTokenCount",
                                                      "cacheReadInputTokenCount", "cacheWriteInputTokenCount")]
    return None if all(c is None for c in counts) else sum(c or 0 for c in counts)


def bedrock_stream_usage(events: list[Any]) -> int | None:
    """Tokens of a decoded Bedrock stream: ConverseStream's ``metadata.usage``, or the last chunk's
    invocation metrics (InvokeModelWithResponseStream chunks are the decoded ``bytes``)."""
    for event in reversed(events):
        if isinstance(event, dict) and "metadata" in event:
            return usage_total(dig(event, "metadata", "usage"))
        if isinstance(event, (bytes, bytearray)):
            total = body_usage(bytes(event))
            if total is not None:
                return total
    return None


def sse_usage(chunks: list[bytes]) -> int | None:
    """Tokens of an OpenAI server-sent-event stream: the ``usage`` of the last event that has one
    (chat with ``stream_options.include_usage``, or a Responses stream's final ``response``); None
    when no event says (the estimate then stands: too high is safe, too low is not)."""
    tail = b"".join(chunks[-4:])
    at = tail.rfind(b'"usage"')
    if at >= 0:
        start = tail.rfind(b"data:", 0, at)
        end = tail.find(b"\n", at)
        if start >= 0:
            line = tail[start + 5:end if end >= 0 else len(tail)]
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                usage = event.get("usage") or dig(event, "response", "usage")
                return usage_total(usage)
    return None
