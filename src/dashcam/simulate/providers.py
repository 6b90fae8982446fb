"""Provider-native request and response bodies for the Bedrock runtime API.

Converse / ConverseStream use Bedrock's own shapes; InvokeModel / InvokeModelWithResponseStream
carry each provider's body: Anthropic's Messages API (``anthropic``), Amazon Nova's messages-v1
(``nova``), Meta Llama's prompt/generation (``llama``) and Titan Text Embeddings v2
(``titan-embed``). Parsers turn a body into a provider-neutral ``Prompt`` (or raise the
ValidationException Bedrock would); renderers turn a finished ``Call`` into the answer body, or
into the timed list of stream events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from dashcam.simulate.engine import Call
from dashcam.simulate.models import ModelSpec, Prompt, ToolSpec, count_tokens, embed, validation

__all__ = ["EmbeddingRequest", "StreamEvent", "parse_converse", "converse_body", "converse_stream_events",
           "parse_invoke", "invoke_body", "invoke_stream_chunks", "invocation_metrics", "padding"]

DEFAULT_MAX_TOKENS = 4096  # when a Converse request names none
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"
UNSUPPORTED_MODEL = ("This action doesn't support the model that you provided. "
                     "Try again with a supported text or chat model.")


def _malformed(detail: str) -> Exception:
    return validation(f"Malformed input request: {detail}, please reformat your input and try again.")


@dataclass(frozen=True)
class EmbeddingRequest:
    """An embedding call's input."""

    text: str
    dimensions: int
    normalize: bool
    types: tuple[str, ...] = ("float",)

    @property
    def input_tokens(self) -> int:
        """Tokens of the text to embed."""
        return count_tokens(self.text)


@dataclass(frozen=True)
class StreamEvent:
    """One stream message, sent ``at_ms`` simulated milliseconds after the call started."""

    at_ms: float
    event_type: str  # chunk | messageStart | contentBlockDelta | ...
    payload: dict


def padding(index: int) -> str:
    """Bedrock pads stream payloads with a ``p`` field of varying length (hides sizes)."""
    return _PADDING[: 1 + (index * 7) % len(_PADDING)]


def _max_tokens(spec: ModelSpec, value: Any, name: str, default: int | None) -> int:
    if value is None:
        if default is None:
            raise _malformed(f"#: required key [{name}] not found")
        return min(default, spec.max_output_tokens)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _malformed(f"#/{name}: expected a positive integer, got {value!r}")
    if value > spec.max_output_tokens:
        raise validation(f"The maximum tokens you requested exceeds the model limit of {spec.max_output_tokens}. "
                         f"Try again with a maximum tokens value that is lower than {spec.max_output_tokens}.")
    return value


def _temperature(value: Any, high: float = 1.0) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise _malformed(f"#/temperature: {value!r} is not between 0 and {high:g}")
    return float(value)


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise _malformed("#: expected type: JSONObject")
    return body


# ------------------------------------------------------------------------------ Converse


def _converse_blocks(blocks: Any, role: str, where: str) -> list[tuple[str, str, bool]]:
    """(role, text, is cache point) for each content block of a Converse message."""
    if not isinstance(blocks, list) or not blocks:
        raise validation(f"The content field in the {where} is empty. Add a ContentBlock object to the content "
                         "field and try again.")
    out = []
    for block in blocks:
        if not isinstance(block, dict) or len(block) != 1:
            raise validation(f"A content block in the {where} must set exactly one member.")
        (kind, value), = block.items()
        if kind == "text":
            out.append((role, str(value), False))
        elif kind == "cachePoint":
            out.append((role, "", True))
        elif kind == "toolUse":
            out.append(("assistant", orjson.dumps(value.get("input", {})).decode(), False))
        elif kind == "toolResult":
            parts = value.get("content") or []
            text = " ".join(p["text"] if "text" in p else orjson.dumps(p.get("json", p)).decode() for p in parts)
            out.append(("tool", text, False))
        elif kind == "guardContent":
            out.append((role, str((value.get("text") or {}).get("text", "")), False))
        elif kind == "reasoningContent":
            out.append((role, str((value.get("reasoningText") or {}).get("text", "")), False))
        # images, documents, video: no text to count in this simulator
    return out


def _prompt_from_parts(parts: list[tuple[str, str, bool]], system_count: int, max_tokens: int,
                       stop: tuple[str, ...], temperature: float | None, tools: tuple[ToolSpec, ...],
                       force_tool: bool) -> Prompt:
    """Split parts into system texts and messages; the text before the last cache point is the cached prefix."""
    last_cache = max((i for i, p in enumerate(parts) if p[2]), default=-1)
    prefix = " ".join(p[1] for p in parts[:last_cache] if not p[2]) if last_cache >= 0 else ""
    system = tuple(p[1] for p in parts[:system_count] if not p[2])
    messages = tuple((p[0], p[1]) for p in parts[system_count:] if not p[2])
    return Prompt(system, messages, max_tokens, stop, temperature, tools, force_tool, prefix)


def _check_turns(roles: list[str]) -> None:
    if not roles:
        raise validation("A conversation must start with a user message. Try again with a conversation that "
                         "starts with a user message.")
    if roles[0] != "user":
        raise validation("A conversation must start with a user message. Try again with a conversation that "
                         "starts with a user message.")
    for before, after in zip(roles, roles[1:]):
        if before == after:
            raise validation("A conversation must alternate between user and assistant roles. Make sure the "
                             "conversation alternates between user and assistant roles and try again.")


def parse_converse(spec: ModelSpec, body: Any) -> Prompt:
    """A Converse / ConverseStream request body as a ``Prompt``."""
    body = _object(body)
    if spec.embedding:
        raise validation(UNSUPPORTED_MODEL)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise validation("1 validation error detected: Value null at 'messages' failed to satisfy constraint: "
                         "Member must not be null")
    roles = []
    parts: list[tuple[str, str, bool]] = []
    for block in body.get("system") or []:
        if "text" in block:
            parts.append(("system", str(block["text"]), False))
        elif "cachePoint" in block:
            parts.append(("system", "", True))
    system_count = len(parts)
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise validation(f"The role of message {i} must be user or assistant.")
        roles.append(role)
        parts.extend(_converse_blocks(message.get("content"), role, f"message at index {i}"))
    _check_turns(roles)
    config = body.get("inferenceConfig") or {}
    max_tokens = _max_tokens(spec, config.get("maxTokens"), "maxTokens", DEFAULT_MAX_TOKENS)
    stop = tuple(config.get("stopSequences") or ())
    tools, force = (), False
    tool_config = body.get("toolConfig")
    if tool_config:
        tools = tuple(ToolSpec(t["toolSpec"]["name"], (t["toolSpec"].get("inputSchema") or {}).get("json") or {})
                      for t in tool_config.get("tools") or [] if "toolSpec" in t)
        if not tools:
            raise validation("The toolConfig field must be defined with at least one tool.")
        choice = tool_config.get("toolChoice") or {}
        force = "any" in choice or "tool" in choice
        if "tool" in choice:
            tools = tuple(t for t in tools if t.name == choice["tool"].get("name")) or tools
    return _prompt_from_parts(parts, system_count, max_tokens, stop, _temperature(config.get("temperature")),
                              tools, force)


def _usage(call: Call) -> dict:
    c = call.completion
    usage = {"inputTokens": c.input_tokens, "outputTokens": c.output_tokens, "totalTokens": c.total_tokens}
    if c.cache_read_tokens or c.cache_write_tokens:
        usage.update(cacheReadInputTokens=c.cache_read_tokens, cacheWriteInputTokens=c.cache_write_tokens)
    return usage


def converse_body(call: Call) -> dict:
    """The Converse response: output.message, stopReason, usage, metrics.latencyMs."""
    c = call.completion
    content: list[dict] = [{"text": c.text}] if c.text else []
    if c.tool_call:
        content.append({"toolUse": {"toolUseId": c.tool_call.call_id, "name": c.tool_call.name,
                                    "input": c.tool_call.arguments}})
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": c.stop_reason,
            "usage": _usage(call), "metrics": {"latencyMs": round(call.latency.total_ms)}}


def converse_stream_events(call: Call) -> list[StreamEvent]:
    """ConverseStream's events: messageStart, content blocks, messageStop, then metadata (usage + metrics)."""
    c, lat = call.completion, call.latency
    events = [StreamEvent(lat.first_token_ms, "messageStart", {"role": "assistant"})]
    index = 0
    if c.text:
        events += [StreamEvent(at, "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
                   for at, piece in call.text_timeline()]
        events.append(StreamEvent(lat.total_ms, "contentBlockStop", {"contentBlockIndex": 0}))
        index = 1
    if c.tool_call:
        tool = c.tool_call
        events += [
            StreamEvent(lat.total_ms, "contentBlockStart", {"contentBlockIndex": index, "start": {
                "toolUse": {"toolUseId": tool.call_id, "name": tool.name}}}),
            StreamEvent(lat.total_ms, "contentBlockDelta", {"contentBlockIndex": index, "delta": {
                "toolUse": {"input": orjson.dumps(tool.arguments).decode()}}}),
            StreamEvent(lat.total_ms, "contentBlockStop", {"contentBlockIndex": index})]
    events.append(StreamEvent(lat.total_ms, "messageStop", {"stopReason": c.stop_reason}))
    events.append(StreamEvent(lat.total_ms, "metadata", {"usage": _usage(call),
                                                         "metrics": {"latencyMs": round(lat.total_ms)}}))
    for i, event in enumerate(events):
        event.payload["p"] = padding(i)
    return events


# ------------------------------------------------------------------------------ InvokeModel


def _anthropic_parts(body: dict) -> tuple[list[tuple[str, str, bool]], int, list[str]]:
    parts: list[tuple[str, str, bool]] = []
    system = body.get("system")
    if isinstance(system, str):
        parts.append(("system", system, False))
    elif isinstance(system, list):
        for block in system:
            parts.append(("system", str(block.get("text", "")), False))
            if block.get("cache_control"):
                parts.append(("system", "", True))
    system_count = len(parts)
    roles = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _malformed("#: required key [messages] not found")
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise _malformed(f"#/messages/{i}/role: {role!r} is not a valid enum value")
        roles.append(role)
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for block in blocks:
            kind = block.get("type")
            if kind == "text":
                parts.append((role, str(block.get("text", "")), False))
            elif kind == "tool_use":
                parts.append(("assistant", orjson.dumps(block.get("input", {})).decode(), False))
            elif kind == "tool_result":
                inner = block.get("content")
                text = inner if isinstance(inner, str) else " ".join(
                    str(p.get("text", "")) for p in inner or [] if isinstance(p, dict))
                parts.append(("tool", text, False))
            if block.get("cache_control"):
                parts.append((role, "", True))
    return parts, system_count, roles


def _nova_parts(body: dict) -> tuple[list[tuple[str, str, bool]], int, list[str]]:
    parts: list[tuple[str, str, bool]] = []
    for block in body.get("system") or []:
        parts.append(("system", str(block.get("text", "")), False) if "text" in block else ("system", "", True))
    system_count = len(parts)
    roles = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _malformed("#: required key [messages] not found")
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise _malformed(f"#/messages/{i}/role: {role!r} is not a valid enum value")
        roles.append(role)
        parts.extend(_converse_blocks(message.get("content"), role, f"message at index {i}"))
    return parts, system_count, roles


def parse_invoke(spec: ModelSpec, raw: bytes) -> Prompt | EmbeddingRequest:
    """An InvokeModel body in the model's native format as a ``Prompt`` (or an ``EmbeddingRequest``)."""
    try:
        body = _object(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise _malformed("#: expected type: JSONObject, found: invalid JSON") from None
    if spec.family == "titan-embed":
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            raise _malformed("#: required key [inputText] not found")
        dims = body.get("dimensions", spec.embedding_dimensions)
        if dims not in (256, 512, 1024):
            raise _malformed(f"#/dimensions: {dims} is not a valid enum value")
        return EmbeddingRequest(text, dims, bool(body.get("normalize", True)),
                                tuple(body.get("embeddingTypes") or ("float",)))
    if spec.family == "llama":
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise _malformed("#: required key [prompt] not found")
        max_tokens = _max_tokens(spec, body.get("max_gen_len"), "max_gen_len", 512)
        return Prompt((), (("user", prompt),), max_tokens, (), _temperature(body.get("temperature")))
    if spec.family == "anthropic":
        if "anthropic_version" not in body:
            raise _malformed("#: required key [anthropic_version] not found")
        max_tokens = _max_tokens(spec, body.get("max_tokens"), "max_tokens", None)
        parts, system_count, roles = _anthropic_parts(body)
        _check_turns(roles)
        tools = tuple(ToolSpec(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or [])
        choice = (body.get("tool_choice") or {}).get("type")
        return _prompt_from_parts(parts, system_count, max_tokens, tuple(body.get("stop_sequences") or ()),
                                  _temperature(body.get("temperature")), tools, choice in ("any", "tool"))
    if spec.family == "nova":
        config = body.get("inferenceConfig") or {}
        max_tokens = _max_tokens(spec, config.get("max_new_tokens", config.get("maxTokens")), "max_new_tokens",
                                 DEFAULT_MAX_TOKENS)
        parts, system_count, roles = _nova_parts(body)
        _check_turns(roles)
        stop = tuple(config.get("stopSequences") or config.get("stop_sequences") or ())
        return _prompt_from_parts(parts, system_count, max_tokens, stop, _temperature(config.get("temperature")),
                                  (), False)
    raise validation(UNSUPPORTED_MODEL)


def invocation_metrics(call: Call) -> dict:
    """``amazon-bedrock-invocationMetrics``, as the last stream chunk carries it."""
    c = call.completion
    return {"inputTokenCount": call.input_tokens, "outputTokenCount": c.output_tokens if c else 0,
            "invocationLatency": round(call.latency.total_ms), "firstByteLatency": round(call.latency.first_token_ms)}


_ANTHROPIC_STOP = {"end_turn": "end_turn", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence",
                   "tool_use": "tool_use"}
_LLAMA_STOP = {"max_tokens": "length"}


def _anthropic_usage(call: Call, output_tokens: int) -> dict:
    c = call.completion
    return {"input_tokens": c.input_tokens, "cache_creation_input_tokens": c.cache_write_tokens,
            "cache_read_input_tokens": c.cache_read_tokens, "output_tokens": output_tokens}


def _message_id(call: Call) -> str:
    return "msg_bdrk_01" + call.request_id.replace("-", "")[:22]


def invoke_body(call: Call, request: Prompt | EmbeddingRequest, seed: int) -> dict:
    """The InvokeModel response body in the model's native format."""
    spec = call.spec
    if isinstance(request, EmbeddingRequest):
        vector = embed(spec, request.text, seed, request.dimensions, request.normalize)
        answer: dict = {"embedding": vector, "inputTextTokenCount": request.input_tokens}
        answer["embeddingsByType"] = {t: vector if t == "float" else [1 if v > 0 else 0 for v in vector]
                                      for t in request.types}
        return answer
    c = call.completion
    if spec.family == "anthropic":
        content: list[dict] = [{"type": "text", "text": c.text}] if c.text else []
        if c.tool_call:
            content.append({"type": "tool_use", "id": "toolu_bdrk_" + c.tool_call.call_id[8:],
                            "name": c.tool_call.name, "input": c.tool_call.arguments})
        return {"id": _message_id(call), "type": "message", "role": "assistant", "model": spec.native_name,
                "content": content, "stop_reason": _ANTHROPIC_STOP[c.stop_reason], "stop_sequence": c.stop_sequence,
                "usage": _anthropic_usage(call, c.output_tokens)}
    if spec.family == "nova":
        return {"output": {"message": {"role": "assistant", "content": [{"text": c.text}]}},
                "stopReason": c.stop_reason,
                "usage": {"inputTokens": c.input_tokens, "outputTokens": c.output_tokens,
                          "totalTokens": c.total_tokens, "cacheReadInputTokenCount": c.cache_read_tokens,
                          "cacheWriteInputTokenCount": c.cache_write_tokens}}
    return {"generation": c.text, "prompt_token_count": c.input_tokens, "generation_token_count": c.output_tokens,
            "stop_reason": _LLAMA_STOP.get(c.stop_reason, "stop")}


def invoke_stream_chunks(call: Call) -> list[StreamEvent]:
    """InvokeModelWithResponseStream's chunks (decoded JSON) in the model's native stream format;
    the last one carries ``amazon-bedrock-invocationMetrics``."""
    spec, c, lat = call.spec, call.completion, call.latency
    first, end = lat.first_token_ms, lat.total_ms
    timeline = call.text_timeline()
    chunks: list[tuple[float, dict]]
    if spec.family == "anthropic":
        chunks = [(first, {"type": "message_start", "message": {
            "id": _message_id(call), "type": "message", "role": "assistant", "model": spec.native_name,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": _anthropic_usage(call, 1)}})]
        index = 0
        if c.text:
            chunks.append((first, {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}}))
            chunks += [(at, {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})
                       for at, p in timeline]
            chunks.append((end, {"type": "content_block_stop", "index": 0}))
            index = 1
        if c.tool_call:
            chunks += [(end, {"type": "content_block_start", "index": index, "content_block": {
                            "type": "tool_use", "id": "toolu_bdrk_" + c.tool_call.call_id[8:],
                            "name": c.tool_call.name, "input": {}}}),
                       (end, {"type": "content_block_delta", "index": index, "delta": {
                           "type": "input_json_delta", "partial_json": orjson.dumps(c.tool_call.arguments).decode()}}),
                       (end, {"type": "content_block_stop", "index": index})]
        chunks.append((end, {"type": "message_delta", "delta": {"stop_reason": _ANTHROPIC_STOP[c.stop_reason],
                                                                "stop_sequence": c.stop_sequence},
                             "usage": {"output_tokens": c.output_tokens}}))
        chunks.append((end, {"type": "message_stop"}))
    elif spec.family == "nova":
        chunks = [(first, {"messageStart": {"role": "assistant"}})]
        chunks += [(at, {"contentBlockDelta": {"delta": {"text": p}, "contentBlockIndex": 0}}) for at, p in timeline]
        chunks += [(end, {"contentBlockStop": {"contentBlockIndex": 0}}),
                   (end, {"messageStop": {"stopReason": c.stop_reason}}),
                   (end, {"metadata": {"usage": {"inputTokens": c.input_tokens, "outputTokens": c.output_tokens},
                                       "metrics": {}, "trace": {}}})]
    else:  # llama: generation_token_count is the running total; the last chunk has the stop reason
        chunks, done = [], 0
        for i, ((at, piece), size) in enumerate(zip(timeline, c.piece_tokens)):
            done += size
            chunks.append((at, {"generation": piece, "prompt_token_count": c.input_tokens if i == 0 else None,
                                "generation_token_count": done, "stop_reason": None}))
        chunks.append((end, {"generation": "", "prompt_token_count": None, "generation_token_count": done,
                             "stop_reason": _LLAMA_STOP.get(c.stop_reason, "stop")}))
    chunks[-1][1]["amazon-bedrock-invocationMetrics"] = invocation_metrics(call)
    return [StreamEvent(at, "chunk", payload) for at, payload in chunks]
