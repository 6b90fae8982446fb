"""What a captured Bedrock runtime attempt says: bodies, tokens and stop reason per operation.

Pure functions over an :class:`~dashcam.capture.attempt.Attempt` filled by
:mod:`dashcam.capture.botocore_hooks`; they run on the shipper thread. The shapes follow what
Bedrock's own invocation log writes (reference §1.6): Converse and ConverseStream bodies as the
Converse request and response (a stream aggregated into one response), InvokeModel bodies as the
provider-native JSON, and InvokeModelWithResponseStream output as the array of decoded chunks.

``attempt.request`` is the request snapshot: for the Converse pair, the JSON bytes of the call's
parameters without ``modelId`` (None when bodies are off); for InvokeModel, a ``(body,
contentType)`` pair. ``attempt.response`` is, for Converse, the JSON bytes of the response without
``ResponseMetadata`` (or a small dict of usage and stop reason when bodies are off); for
InvokeModel, a ``(body bytes, contentType)`` pair with the HTTP headers in ``attempt.headers``.
``attempt.chunks`` holds the stream events as the application received them.
"""

from __future__ import annotations

from typing import Any

import orjson

from dashcam.capture.attempt import Attempt, Described, dig, first_int

# Response headers with which Bedrock reports InvokeModel token counts.
INPUT_TOKENS_HEADER = "x-amzn-bedrock-input-token-count"
OUTPUT_TOKENS_HEADER = "x-amzn-bedrock-output-token-count"
CACHE_READ_HEADER = "x-amzn-bedrock-cache-read-input-token-count"
CACHE_WRITE_HEADER = "x-amzn-bedrock-cache-write-input-token-count"
_METRICS = "amazon-bedrock-invocationMetrics"


def describe_converse(attempt: Attempt) -> Described:
    """Converse: the request and response as Bedrock logs them, usage and stop reason."""
    facts = Described(input_body=_loads(attempt.request))
    response = _loads(attempt.response)
    if isinstance(response, dict):
        _converse_usage(facts, response.get("usage"))
        facts.stop_reason = response.get("stopReason")
        if "output" in response:
            facts.output_body = response
    return facts


def describe_converse_stream(attempt: Attempt) -> Described:
    """ConverseStream: the events aggregated into one Converse-shaped response, as Bedrock logs it."""
    facts = Described(input_body=_loads(attempt.request))
    if not attempt.chunks:
        return facts
    body = aggregate_converse_stream(attempt.chunks)
    _converse_usage(facts, body.get("usage"))
    facts.stop_reason = body.get("stopReason")
    facts.output_body = body
    return facts


def describe_invoke_model(attempt: Attempt) -> Described:
    """InvokeModel: provider-native bodies; tokens from Bedrock's headers, else from the body."""
    facts = Described()
    if attempt.request is not None:
        body, content_type = attempt.request
        facts.input_body = _loads(body)
        facts.input_content_type = content_type or "application/json"
    if attempt.response is not None:
        body, content_type = attempt.response
        facts.output_body = _loads(body)
        facts.output_content_type = content_type or "application/json"
    headers = attempt.headers or {}
    native = native_usage([facts.output_body] if isinstance(facts.output_body, dict) else [])
    facts.input_tokens = first_int(headers.get(INPUT_TOKENS_HEADER), native[0])
    facts.output_tokens = first_int(headers.get(OUTPUT_TOKENS_HEADER), native[1])
    facts.cache_read = first_int(headers.get(CACHE_READ_HEADER), native[2])
    facts.cache_write = first_int(headers.get(CACHE_WRITE_HEADER), native[3])
    if isinstance(facts.output_body, dict):
        facts.stop_reason = native_stop_reason([facts.output_body])
    return facts


def describe_invoke_model_stream(attempt: Attempt) -> Described:
    """InvokeModelWithResponseStream: the decoded chunks as a JSON array; tokens from the last
    chunk's ``amazon-bedrock-invocationMetrics``, else from the provider's own usage fields."""
    facts = Described()
    if attempt.request is not None:
        body, content_type = attempt.request
        facts.input_body = _loads(body)
        facts.input_content_type = content_type or "application/json"
    if not attempt.chunks:
        return facts
    chunks = [_loads(chunk) for chunk in attempt.chunks]
    facts.output_body = chunks
    dicts = [c for c in chunks if isinstance(c, dict)]
    metrics = next((c[_METRICS] for c in reversed(dicts) if isinstance(c.get(_METRICS), dict)), {})
    native = native_usage(dicts)
    facts.input_tokens = first_int(metrics.get("inputTokenCount"), native[0])
    facts.output_tokens = first_int(metrics.get("outputTokenCount"), native[1])
    facts.cache_read = first_int(metrics.get("cacheReadInputTokenCount"), native[2])
    facts.cache_write = first_int(metrics.get("cacheWriteInputTokenCount"), native[3])
    facts.stop_reason = native_stop_reason(dicts)
    return facts


DESCRIBERS = {
    "Converse": describe_converse,
    "ConverseStream": describe_converse_stream,
    "InvokeModel": describe_invoke_model,
    "InvokeModelWithResponseStream": describe_invoke_model_stream,
}


def aggregate_converse_stream(events: list[Any]) -> dict[str, Any]:
    """ConverseStream events folded into the Converse response they add up to: one assistant
    message (text, tool uses with their JSON input, reasoning), stop reason, usage and metrics."""
    role = "assistant"
    blocks: dict[int, dict[str, Any]] = {}
    tool_inputs: dict[int, list[str]] = {}
    body: dict[str, Any] = {}
    for event in events:
        if not isinstance(event, dict):
            continue
        if "messageStart" in event:
            role = dig(event, "messageStart", "role") or role
        elif "contentBlockStart" in event:
            index = dig(event, "contentBlockStart", "contentBlockIndex") or 0
            tool = dig(event, "contentBlockStart", "start", "toolUse")
            if isinstance(tool, dict):
                blocks[index] = {"toolUse": dict(tool)}
                tool_inputs[index] = []
        elif "contentBlockDelta" in event:
            index = dig(event, "contentBlockDelta", "contentBlockIndex") or 0
            delta = dig(event, "contentBlockDelta", "delta") or {}
            _add_delta(blocks, tool_inputs, index, delta)
        elif "messageStop" in event:
            stop = event["messageStop"] or {}
            body["stopReason"] = stop.get("stopReason")
            if stop.get("additionalModelResponseFields") is not None:
                body["additionalModelResponseFields"] = stop["additionalModelResponseFields"]
        elif "metadata" in event:
            meta = event["metadata"] or {}
            for key in ("usage", "metrics", "trace", "performanceConfig"):
                if meta.get(key) is not None:
                    body[key] = meta[key]
    for index, parts in tool_inputs.items():
        text = "".join(parts)
        try:
            blocks[index]["toolUse"]["input"] = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            blocks[index]["toolUse"]["input"] = text
    content = [blocks[i] for i in sorted(blocks)]
    return {"output": {"message": {"role": role, "content": content}}, **body}


def _add_delta(blocks: dict[int, dict[str, Any]], tool_inputs: dict[int, list[str]], index: int,
               delta: dict[str, Any]) -> None:
    if "text" in delta:
        block = blocks.setdefault(index, {"text": ""})
        block["text"] = block.get("text", "") + str(delta["text"])
    elif "toolUse" in delta:
        tool_inputs.setdefault(index, []).append(str(dig(delta, "toolUse", "input") or ""))
        blocks.setdefault(index, {"toolUse": {}})
    elif "reasoningContent" in delta:
        reasoning = blocks.setdefault(index, {"reasoningContent": {"reasoningText": {"text": ""}}})
        text = dig(delta, "reasoningContent", "text")
        target = dig(reasoning, "reasoningContent", "reasoningText")
        if isinstance(target, dict) and text is not None:
            target["text"] = target.get("text", "") + str(text)


def native_usage(bodies: list[dict[str, Any]]) -> tuple[int | None, int | None, int | None, int | None]:
    """(input, output, cache read, cache write) tokens from provider-native response bodies or
    stream chunks (Anthropic, Amazon Nova and Titan, Meta Llama, Mistral); later chunks win."""
    found: list[int | None] = [None, None, None, None]
    for body in bodies:
        usages = [body.get("usage"), dig(body, "message", "usage"), dig(body, "metadata", "usage")]
        for usage in (u for u in usages if isinstance(u, dict)):
            _keep(found, 0, first_int(usage.get("input_tokens"), usage.get("inputTokens")))
            _keep(found, 1, first_int(usage.get("output_tokens"), usage.get("outputTokens")))
            _keep(found, 2, first_int(usage.get("cache_read_input_tokens"), usage.get("cacheReadInputTokenCount"),
                                      usage.get("cacheReadInputTokens")))
            _keep(found, 3, first_int(usage.get("cache_creation_input_tokens"),
                                      usage.get("cacheWriteInputTokenCount"), usage.get("cacheWriteInputTokens")))
        _keep(found, 0, first_int(body.get("inputTextTokenCount"), body.get("prompt_token_count")))
        _keep(found, 1, first_int(body.get("generation_token_count"), body.get("totalOutputTextTokenCount"),
                                  dig(body, "results", 0, "tokenCount")))
    return found[0], found[1], found[2], found[3]


def native_stop_reason(bodies: list[dict[str, Any]]) -> str | None:
    """The stop reason of provider-native bodies or chunks: the last one any of them gives."""
    reason = None
    for body in bodies:
        for value in (dig(body, "delta", "stop_reason"), body.get("stop_reason"), body.get("stopReason"),
                      dig(body, "messageStop", "stopReason"), body.get("completionReason"),
                      dig(body, "results", 0, "completionReason"), dig(body, "choices", 0, "finish_reason"),
                      dig(body, "outputs", 0, "stop_reason")):
            if value is not None:
                reason = str(value)
                break
    return reason


def _keep(found: list[int | None], index: int, value: int | None) -> None:
    if value is not None:
        found[index] = value


def _converse_usage(facts: Described, usage: Any) -> None:
    if isinstance(usage, dict):
        facts.input_tokens = first_int(usage.get("inputTokens"))
        facts.output_tokens = first_int(usage.get("outputTokens"))
        facts.cache_read = first_int(usage.get("cacheReadInputTokens"))
        facts.cache_write = first_int(usage.get("cacheWriteInputTokens"))


def _loads(value: Any) -> Any:
    """JSON bytes or text decoded; anything else (already decoded, or None) as it is; bytes that
    are not JSON as text, so a record never fails over one odd body."""
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return bytes(value).decode("utf-8", "replace") if not isinstance(value, str) else value
    return value
