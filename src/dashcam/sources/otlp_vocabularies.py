"""The GenAI vocabularies of OpenTelemetry, read into one canonical shape.

:mod:`dashcam.sources.otlp` decodes OTLP and builds records; this module knows what each
instrumentation calls things (``../shared/reference/otel-genai.md`` §2.6):

* OTel GenAI semantic conventions ≥ 1.37 (``gen_ai.provider.name``, ``gen_ai.input.messages``,
  ...) and ≤ 1.36 (``gen_ai.system``, ``gen_ai.usage.prompt_tokens``, content in span events
  ``gen_ai.content.prompt`` / ``gen_ai.user.message`` / ``gen_ai.choice`` or in log records);
* OpenLLMetry before 0.56 (flattened ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*``,
  ``llm.request.type``, ``llm.usage.total_tokens``, ``traceloop.association.properties.*``);
* OpenInference (``openinference.span.kind``, ``llm.model_name``, ``llm.token_count.*``,
  ``llm.input_messages.{i}.message.*``, ``input.value`` / ``output.value``);
* OpenLIT (``gen_ai.usage.cost``, ``gen_ai.server.time_to_first_token``, ...).

Every function takes the span's attributes as a plain dict (OTLP AnyValues already decoded) and
answers with the first source present, in the order of the mapping table. Those that try several
attributes take the candidates from ``keys`` (:mod:`dashcam.sources.otlp_keys`): every one by
default, only those the span has when the caller passes :func:`~dashcam.sources.otlp_keys.keys_of`
its attributes — the same answer, without looking up what is not there.

Message content comes out in the shape of Bedrock's Converse API, whatever the provider, so a
query written for Bedrock logs (``input.inputBodyJson.messages.0.content.0.text``) reads OTLP
records too: a message is ``{"role", "content": [block, ...]}`` and a block is ``{"text"}``,
``{"toolUse": {"toolUseId", "name", "input"}}``, ``{"toolResult": {"toolUseId", "content"}}``,
``{"reasoningContent": {"reasoningText": {"text"}}}``, or — for part types Converse has no
block for (blobs, files, URIs, unknown) — ``{<type>: {...the part's other fields}}``.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any
from urllib.parse import urlsplit

import orjson

from dashcam.sources.otlp_keys import ALL_KEYS, ASSOCIATION, AttributeKeys

# --------------------------------------------------------------------------- detection

# OpenInference span kinds that are model calls (the others are chains, tools, retrievers, ...).
_OPENINFERENCE_CALL_KINDS = {"LLM": "chat", "EMBEDDING": "embeddings"}
_OPENINFERENCE_OTHER_KINDS = {
    "TOOL": "execute_tool", "AGENT": "invoke_agent", "RETRIEVER": "retrieval", "CHAIN": "invoke_workflow",
    "RERANKER": "rerank", "GUARDRAIL": "guardrail", "EVALUATOR": "evaluate", "PROMPT": "prompt",
    "UNKNOWN": "unknown",
}
_TRACELOOP_KINDS = {"workflow": "invoke_workflow", "task": "task", "agent": "invoke_agent", "tool": "execute_tool"}
_LLM_REQUEST_TYPES = {"completion": "text_completion", "embedding": "embeddings", "chat": "chat", "rerank": "rerank"}

# GenAI operations that are not a model call of their own: their children are. Recording them
# would count one user request several times and add up tokens twice.
STRUCTURAL_OPERATIONS = frozenset({
    "execute_tool", "invoke_agent", "create_agent", "invoke_workflow", "retrieval", "task", "workflow",
    "agent", "tool", "guardrail", "evaluate", "prompt", "unknown", "plan",
})

# Operations that produce completions (so a gen_ai.choice may still be on its way).
COMPLETION_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})


def is_genai(attrs: dict[str, Any]) -> bool:
    """Rule 5 of §2.6: the span carries any GenAI vocabulary's marker attribute."""
    return (
        "gen_ai.operation.name" in attrs
        or "gen_ai.system" in attrs
        or "gen_ai.provider.name" in attrs
        or "llm.request.type" in attrs
        or "traceloop.span.kind" in attrs
        or "openinference.span.kind" in attrs
    )


def operation_name(attrs: dict[str, Any]) -> str | None:
    """The GenAI operation (``chat``, ``embeddings``, ...) in OTel's words; None when unknown."""
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op:
        return op
    legacy = attrs.get("llm.request.type")
    if isinstance(legacy, str) and legacy:
        return _LLM_REQUEST_TYPES.get(legacy.lower(), legacy.lower())
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        upper = kind.upper()
        return _OPENINFERENCE_CALL_KINDS.get(upper) or _OPENINFERENCE_OTHER_KINDS.get(upper, kind.lower())
    tl_kind = attrs.get("traceloop.span.kind")
    if isinstance(tl_kind, str) and tl_kind:
        return _TRACELOOP_KINDS.get(tl_kind.lower(), tl_kind.lower())
    if request_model(attrs):
        return "chat"  # a model and a provider but no operation: the common case is chat
    return None


# --------------------------------------------------------------------------- provider

# Old, capitalised or vendor-specific names -> the v1.37+ enum (§2.6 "provider" row).
_PROVIDER_ALIASES = {
    "az.ai.inference": "azure.ai.inference", "az.ai.openai": "azure.ai.openai", "azure": "azure.ai.openai",
    "xai": "x_ai", "vertex_ai": "gcp.vertex_ai", "vertexai": "gcp.vertex_ai", "gemini": "gcp.gemini",
    "google": "gcp.gen_ai", "aws": "aws.bedrock", "bedrock": "aws.bedrock", "amazon bedrock": "aws.bedrock",
    "mistralai": "mistral_ai", "mistral": "mistral_ai", "watsonx": "ibm.watsonx.ai", "ibm.watson.ai": "ibm.watsonx.ai",
    "cohere": "cohere", "anthropic": "anthropic", "openai": "openai",
}
# server.address suffix -> provider, for spans that name no provider at all.
_PROVIDER_HOSTS = (
    ("api.openai.com", "openai"), ("openai.azure.com", "azure.ai.openai"), ("api.anthropic.com", "anthropic"),
    ("amazonaws.com", "aws.bedrock"), ("googleapis.com", "gcp.gen_ai"), ("api.mistral.ai", "mistral_ai"),
    ("api.groq.com", "groq"), ("api.cohere.com", "cohere"), ("api.deepseek.com", "deepseek"),
)


def normalize_provider(value: Any) -> str | None:
    """A provider name in the v1.37+ enum's spelling (lower case, old aliases mapped)."""
    if not isinstance(value, str) or not value.strip():
        return None
    lowered = value.strip()[:512].lower()  # a short name: a long one is kept no longer than a service's
    return _PROVIDER_ALIASES.get(lowered, lowered)


def provider(attrs: dict[str, Any], span_name: str = "", keys: AttributeKeys = ALL_KEYS) -> str:
    """Who served the call: the v1.37+ attribute, then the older ones, then the server's host."""
    for key in keys.provider:
        found = normalize_provider(attrs.get(key))
        if found:
            return found
    host = server_address(attrs)
    if host:
        for suffix, name in _PROVIDER_HOSTS:
            if host.endswith(suffix):
                return name
    if attrs.get("rpc.service") in ("Bedrock Runtime", "BedrockRuntime"):
        return "aws.bedrock"
    # OpenLLMetry names spans "<vendor>.<operation>" (openai.chat, anthropic.chat).
    head, dot, _ = span_name.partition(".")
    if dot and head and head.isalpha() and head.lower() not in ("bedrock", "llm"):
        return normalize_provider(head) or "unknown"
    if span_name.lower().startswith("bedrock."):
        return "aws.bedrock"
    return "unknown"


def server_address(attrs: dict[str, Any]) -> str | None:
    """The model server's host: ``server.address``, or the host of OpenLLMetry's API base URL."""
    host = attrs.get("server.address")
    if isinstance(host, str) and host:
        return host
    base = attrs.get("gen_ai.openai.api_base")
    if isinstance(base, str) and base:
        try:
            return urlsplit(base).hostname
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------- models, usage, config


def request_model(attrs: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> str | None:
    """The model the caller asked for."""
    return _first_str(attrs, *keys.request_model)


def response_model(attrs: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> str | None:
    """The model that answered, when the span says so."""
    return _first_str(attrs, *keys.response_model)


def usage(attrs: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> dict[str, int | None]:
    """Token counts as reported (``input``, ``output``, ``cache_read``, ``cache_write``,
    ``reasoning``, ``total``), None when negative or no 64-bit number; total is input + output
    when no vocabulary reports it."""
    found: dict[str, int | None] = {}
    for name, candidates in keys.usage:
        found[name] = None
        for key in candidates:
            value = attrs.get(key)
            if value is not None:
                count = value if type(value) is int else _as_int(value)
                found[name] = count if count is not None and count >= 0 else None  # no negative counts
                break
    if found["total"] is None and found["input"] is not None and found["output"] is not None:
        total = found["input"] + found["output"]
        found["total"] = total if total <= _INT64_MAX else None
    return found


def reported_cost(attrs: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> float | None:
    """The cost the instrumentation computed itself (OpenLIT, OpenInference), in USD."""
    for key in keys.cost:
        value = _as_float(attrs.get(key))
        if value is not None:
            return value
    return None


def invocation_parameters(attrs: dict[str, Any]) -> dict[str, Any]:
    """OpenInference's ``llm.invocation_parameters`` (a JSON string), decoded; {} otherwise."""
    raw = attrs.get("llm.invocation_parameters")
    if raw is None:
        return {}
    decoded = parse_json(raw) if isinstance(raw, str) else raw
    return decoded if isinstance(decoded, dict) else {}


def inference_config(attrs: dict[str, Any], params: dict[str, Any] | None = None,
                     keys: AttributeKeys = ALL_KEYS) -> dict[str, Any]:
    """Sampling settings under Converse's ``inferenceConfig`` names (plus a few it lacks);
    ``params`` is :func:`invocation_parameters` when the caller has it already."""
    params = invocation_parameters(attrs) if params is None else params
    config: dict[str, Any] = {}
    # Plain loops, not generators: this runs for every span at ingest.
    for name, candidates, param_keys, kind in keys.config:
        value = None
        for key in candidates:
            value = attrs.get(key)
            if value is not None:
                break
        if value is None and params:
            for key in param_keys:
                value = params.get(key)
                if value is not None:
                    break
        if value is not None:
            value = _setting(value, kind)
            if value is not None:
                config[name] = value
    return config


def _setting(value: Any, kind: type) -> Any:
    # Typed as Converse types it; text or bytes that are no number, NaN and numbers past 64 bits
    # are dropped rather than stored as a setting nobody sent.
    if kind is list:
        value = _maybe_json(value)
        return [_text(v) for v in value] if isinstance(value, (list, tuple)) else [_text(value)]
    if kind is int:
        return _as_int(value)
    return value if type(value) is int else _as_float(value)


def is_streaming(attrs: dict[str, Any], params: dict[str, Any] | None = None,
                 keys: AttributeKeys = ALL_KEYS) -> bool:
    """True when the call streamed its answer (by any vocabulary's flag, or a TTFT being set)."""
    for key in keys.stream:
        value = attrs.get(key)
        if value is not None:
            return value is True or str(value).lower() == "true"
    stream = (invocation_parameters(attrs) if params is None else params).get("stream")
    if stream is not None:
        return stream is True
    method = attrs.get("rpc.method")
    if isinstance(method, str) and method.endswith("Stream"):
        return True
    return ttft_seconds(attrs, keys) is not None


def ttft_seconds(attrs: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> float | None:
    """Time to the first output chunk, in seconds, from the attributes that carry it."""
    for key in keys.ttft:
        value = _as_float(attrs.get(key))
        if value is not None:
            return value if 0 <= value and math.isfinite(value * 1000) else None  # in ms, it must fit
    return None


def finish_reasons(attrs: dict[str, Any]) -> list[str]:
    """Finish reasons, one per choice, as the provider said them."""
    value = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None]
    if isinstance(value, str) and value:
        decoded = parse_json(value) if value.startswith("[") else None
        return [_text(v) for v in decoded] if isinstance(decoded, list) else [value]
    reasons = []
    i = 0
    while f"gen_ai.completion.{i}.finish_reason" in attrs:  # OpenLLMetry legacy
        reasons.append(str(attrs[f"gen_ai.completion.{i}.finish_reason"]))
        i += 1
    if reasons:
        return reasons
    single = attrs.get("llm.finish_reason")
    return [str(single)] if single else []


# --------------------------------------------------------------------------- correlation

def session_id(attrs: dict[str, Any], resource: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> str | None:
    """The conversation / session id."""
    return _first_str(attrs, *keys.session) or _first_str(resource, "session.id", "gen_ai.conversation.id")


def user_id(attrs: dict[str, Any], resource: dict[str, Any], keys: AttributeKeys = ALL_KEYS) -> str | None:
    """The end user on whose behalf the call was made."""
    return _first_str(attrs, *keys.user) or _first_str(resource, "user.id", "enduser.id")


def request_metadata(attrs: dict[str, Any], resource: dict[str, Any],
                     keys: AttributeKeys = ALL_KEYS) -> dict[str, str]:
    """Bedrock's ``requestMetadata`` (a string map): who, which conversation, which agent, where.

    Traceloop association properties and OpenInference ``metadata`` are metadata the application
    chose to attach, which is exactly what ``requestMetadata`` is for, so they are copied in.
    """
    meta: dict[str, str] = {}
    for key in keys.association(attrs):
        meta[key[len(ASSOCIATION):]] = _text(attrs[key])
    extra = attrs.get("metadata")
    extra = parse_json(extra) if isinstance(extra, str) else extra
    if isinstance(extra, dict):
        for key, value in extra.items():
            if value is not None:
                meta.setdefault(str(key), _text(value))
    fields = (
        ("sessionId", session_id(attrs, resource, keys)),
        ("userId", user_id(attrs, resource, keys)),
        ("agentName", _first_str(attrs, *keys.agent)),
        ("workflowName", _first_str(attrs, *keys.workflow)),
        ("serverAddress", server_address(attrs)),
        ("environment", _first_str(resource, "deployment.environment.name", "deployment.environment")
         or _first_str(attrs, *keys.environment)),
        ("guardrailId", _first_str(attrs, *keys.guardrail)),
        ("knowledgeBaseId", _first_str(attrs, *keys.knowledge_base)),
    )
    for key, value in fields:
        if value is not None:
            meta[key] = value
    return meta


# --------------------------------------------------------------------------- content


def parse_json(value: Any) -> Any:
    """``value`` decoded when it is JSON text, else None."""
    if not isinstance(value, (str, bytes)) or not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def blocks(content: Any, _depth: int = 0) -> list[dict[str, Any]]:
    """Converse content blocks for any vocabulary's message content (text, parts, Bedrock blocks)."""
    if content is None:
        return []
    if isinstance(content, str):
        if content.startswith("[") and content.endswith("]"):
            decoded = parse_json(content)  # OpenLLMetry serialises multi-part content as JSON
            if isinstance(decoded, list) and all(isinstance(p, dict) and "type" in p for p in decoded):
                return blocks(decoded)
        return [{"text": content}]
    if isinstance(content, (list, tuple)):
        if _depth > _MAX_DEPTH:  # lists in lists past any real message's: the rest is one block
            return [{"text": _text(content)}]
        out: list[dict[str, Any]] = []
        for item in content:
            out.extend(blocks(item, _depth + 1))
        return out
    if isinstance(content, dict):
        return [_part_block(content)]
    return [{"text": _text(content)}]


_BEDROCK_BLOCK_KEYS = {"text", "toolUse", "toolResult", "image", "document", "video", "reasoningContent", "json",
                       "guardContent", "cachePoint", "citationsContent"}


def _part_block(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind is None:
        if len(part) == 1 and next(iter(part)) in _BEDROCK_BLOCK_KEYS:
            return part  # already a Bedrock block (botocore events carry Converse content)
        if "content" in part and isinstance(part["content"], str):
            return {"text": part["content"]}
        return {"json": part}
    if kind == "text":
        text = part.get("content", part.get("text"))
        return {"text": text if isinstance(text, str) else _text(text)}
    if kind in ("tool_call", "function_call"):
        return {"toolUse": _drop_none({"toolUseId": part.get("id"), "name": part.get("name"),
                                       "input": _maybe_json(part.get("arguments"))})}
    if kind == "tool_call_response":
        response = part.get("response", part.get("result"))
        inner = {"text": response} if isinstance(response, str) else {"json": response}
        return {"toolResult": _drop_none({"toolUseId": part.get("id"), "content": [inner]})}
    if kind in ("reasoning", "thinking"):
        return {"reasoningContent": {"reasoningText": {"text": _text(part.get("content", part.get("text")))}}}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return {"image": {"source": {"url": url}}}
    return {str(kind): {k: v for k, v in part.items() if k != "type"}}


def otel_message(message: Any) -> dict[str, Any] | None:
    """A v1.37+ message (``{"role", "parts", "finish_reason"?}``) as a Converse-shaped message."""
    if not isinstance(message, dict):
        return None
    if "parts" not in message:
        return openai_message(message)
    out: dict[str, Any] = {"role": message.get("role") or "user", "content": blocks(message.get("parts"))}
    if message.get("name"):
        out["name"] = message["name"]
    if message.get("finish_reason") is not None:
        out["finishReason"] = message["finish_reason"]
    return out


def openai_message(message: Any) -> dict[str, Any] | None:
    """An OpenAI-style chat message (``role``, ``content``, ``tool_calls``, ``tool_call_id``) as
    a Converse-shaped message; also the gen_ai.* log-event bodies, which follow it."""
    if not isinstance(message, dict):
        return None
    role = message.get("role") or "user"
    content = blocks(message.get("content"))
    for call in _as_list(message.get("tool_calls")):
        if isinstance(call, dict):
            function = call.get("function") if isinstance(call.get("function"), dict) else {}
            content.append({"toolUse": _drop_none({
                "toolUseId": call.get("id"), "name": function.get("name", call.get("name")),
                "input": _maybe_json(function.get("arguments", call.get("arguments")))})})
    function_call = message.get("function_call")
    if isinstance(function_call, dict):
        content.append({"toolUse": _drop_none({"name": function_call.get("name"),
                                               "input": _maybe_json(function_call.get("arguments"))})})
    tool_id = message.get("tool_call_id", message.get("id") if role == "tool" else None)
    if role == "tool" and tool_id is not None:
        content = [{"toolResult": {"toolUseId": tool_id, "content": content}}]
    out: dict[str, Any] = {"role": role, "content": content}
    if message.get("finish_reason") is not None:
        out["finishReason"] = message["finish_reason"]
    return out


def message_list(value: Any, convert=otel_message) -> list[dict[str, Any]]:
    """A list of messages from a JSON string or structured value; each converted by ``convert``."""
    decoded = parse_json(value) if isinstance(value, str) else value
    if isinstance(decoded, dict):
        decoded = [decoded]
    if not isinstance(decoded, (list, tuple)):
        return [] if value is None else [{"role": "user", "content": blocks(value)}]
    return [m for m in (convert(item) for item in decoded) if m is not None]


def unflatten(attrs: dict[str, Any], prefix: str) -> list[Any]:
    """Regroup flattened, indexed attributes (``prefix.{i}.a.b``) into a list of nested dicts.

    Numeric path segments become list positions, so
    ``llm.input_messages.0.message.contents.1.message_content.text`` lands in
    ``[{"message": {"contents": [..., {"message_content": {"text": ...}}]}}]``.
    """
    root: dict[Any, Any] = {}
    dotted = prefix + "."
    for key, value in attrs.items():
        if not key.startswith(dotted):
            continue
        parts = key[len(dotted):].split(".")
        if not parts[0].isdecimal():  # not isdigit(): int() refuses digits such as "²"
            continue
        # Positions past 9 digits (int() refuses 4,300) and paths longer than any vocabulary's
        # (regrouped by recursion) are no real message's: the attribute is dropped.
        if len(parts) > _MAX_PATH_SEGMENTS or any(len(p) > 9 and p.isdecimal() for p in parts):
            continue
        node = root
        for segment in parts[:-1]:
            segment_key: Any = int(segment) if segment.isdecimal() else segment
            node = node.setdefault(segment_key, {})
            if not isinstance(node, dict):
                break
        else:
            last = parts[-1]
            node[int(last) if last.isdecimal() else last] = value
    return _listify(root) if root else []


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, int) for k in node):
        return [_listify(node[k]) for k in sorted(node)]
    return {str(k): _listify(v) for k, v in node.items()}


def _flat_messages(attrs: dict[str, Any], prefix: str, fields: tuple[str, str],
                   keys: AttributeKeys = ALL_KEYS) -> list[dict[str, Any]] | None:
    """Indexed messages when every key under ``prefix`` is ``prefix.{i}`` and one of ``fields``
    (role, content) with a value: the common case, read without regrouping (positions with
    neither field give an empty message); None when there is more to them."""
    dotted = prefix + "."
    layout = keys.flat_layout(attrs, dotted, fields)
    if layout is None:
        return None
    count, last = layout
    out = []
    role_key, content_key = fields
    found = 0
    for i in range(last + 1):
        role = attrs.get(f"{dotted}{i}{role_key}")
        content = attrs.get(f"{dotted}{i}{content_key}")
        found += (role is not None) + (content is not None)
        out.append({"role": role, "content": content})
    return out if found == count else None  # a field without a value: regroup instead


def openllmetry_messages(attrs: dict[str, Any], prefix: str, keys: AttributeKeys = ALL_KEYS) -> list[dict[str, Any]]:
    """OpenLLMetry ≤ 0.55's ``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*`` as messages."""
    out = []
    flat = _flat_messages(attrs, prefix, (".role", ".content"), keys)
    for item in unflatten(attrs, prefix) if flat is None else flat:
        if isinstance(item, dict):
            if prefix == "gen_ai.completion":
                item.setdefault("role", "assistant")
            message = openai_message(item)
            if message is not None:
                if item.get("refusal"):
                    message["content"].append({"text": _text(item["refusal"])})
                out.append(message)
    return out


def openinference_messages(attrs: dict[str, Any], prefix: str,
                           keys: AttributeKeys = ALL_KEYS) -> list[dict[str, Any]]:
    """OpenInference's ``llm.input_messages.{i}.message.*`` (or output) as messages."""
    flat = _flat_messages(attrs, prefix, (".message.role", ".message.content"), keys)
    if flat is not None:
        # openai_message of a bare {role, content}, without its lookups of keys these never have.
        return [{"role": item["role"] or "user", "content": blocks(item["content"])} for item in flat]
    out = []
    for item in unflatten(attrs, prefix):
        message = item.get("message") if isinstance(item, dict) else None
        if not isinstance(message, dict):
            continue
        parts = []
        for entry in _as_list(message.get("contents")):
            mc = entry.get("message_content") if isinstance(entry, dict) else None
            if isinstance(mc, dict):
                if mc.get("type") == "image":
                    image = mc.get("image", {})
                    url = image.get("image", {}).get("url") if isinstance(image, dict) else None
                    parts.append({"type": "image_url", "image_url": {"url": url}})
                else:
                    parts.append({"type": "text", "text": mc.get("text")})
        calls = []
        for entry in _as_list(message.get("tool_calls")):
            call = entry.get("tool_call") if isinstance(entry, dict) else None
            if isinstance(call, dict):
                calls.append({"id": call.get("id"), "function": call.get("function") or {}})
        converted = openai_message({
            "role": message.get("role"),
            "content": parts if parts else message.get("content"),
            "tool_calls": calls,
            "tool_call_id": message.get("tool_call_id"),
        })
        if converted is not None:
            out.append(converted)
    return out


def openinference_value(value: Any, *, output: bool) -> list[dict[str, Any]]:
    """Messages from OpenInference's raw ``input.value`` / ``output.value`` (request or response
    JSON of OpenAI or Bedrock, or plain text)."""
    if value is None:
        return []
    decoded = parse_json(value) if isinstance(value, str) else value
    if isinstance(decoded, dict):
        if not output and isinstance(decoded.get("messages"), list):
            return message_list(decoded["messages"], openai_message)
        if output and isinstance(decoded.get("choices"), list):
            out = []
            for choice in decoded["choices"]:
                if isinstance(choice, dict):
                    message = openai_message({**(choice.get("message") or {"content": choice.get("text")}),
                                              "role": (choice.get("message") or {}).get("role") or "assistant"})
                    if message is not None:
                        if choice.get("finish_reason") is not None:
                            message["finishReason"] = choice["finish_reason"]
                        out.append(message)
            return out
        converse = decoded.get("output", {}).get("message") if isinstance(decoded.get("output"), dict) else None
        if output and isinstance(converse, dict):
            message = openai_message(converse)
            if message and decoded.get("stopReason"):
                message["finishReason"] = decoded["stopReason"]
            return [message] if message else []
    role = "assistant" if output else "user"
    return [{"role": role, "content": blocks(value if isinstance(value, str) else _text(decoded))}]


def tool_definitions(attrs: dict[str, Any]) -> list[Any]:
    """Tool definitions offered to the model, from whichever vocabulary lists them."""
    value = attrs.get("gen_ai.tool.definitions")
    if value is not None:
        decoded = parse_json(value) if isinstance(value, str) else value
        return list(decoded) if isinstance(decoded, (list, tuple)) else [decoded]
    for prefix in ("llm.request.functions", "gen_ai.tool.definitions"):
        if f"{prefix}.0.name" in attrs:
            found = unflatten(attrs, prefix)
            return [{k: _maybe_json(v) for k, v in f.items()} if isinstance(f, dict) else f for f in found]
    if "llm.tools.0.tool.json_schema" not in attrs:
        return []
    tools = unflatten(attrs, "llm.tools")
    return [_maybe_json(t.get("tool", {}).get("json_schema")) for t in tools if isinstance(t, dict)]


# --------------------------------------------------------------------------- small helpers


def _first_str(attrs: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value if isinstance(value, str) else _text(value)
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:  # nested past orjson's limit, or an integer past 64 bits
        return orjson.dumps(json_safe(value)).decode()


_MAX_DEPTH = 128  # orjson writes at most 255 levels; Python recurses at most 1,000
_MAX_PATH_SEGMENTS = 32
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1
_TOO_DEEP = f"(nested deeper than {_MAX_DEPTH} levels: not kept)"


def bytes_text(raw: bytes) -> str:
    """An OTLP ``bytesValue`` as text: what it spells when it is UTF-8, else base64 (as OTLP/JSON
    writes bytes), so a value sent as bytes where text or a number was meant still reads."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode()


def json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` as orjson can always write it: nesting past 128 levels becomes a note saying so,
    bytes become text, integers past 64 bits their digits, anything else not JSON its ``str``."""
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _UINT64_MAX else str(value)
    if isinstance(value, (dict, list, tuple)) and _depth >= _MAX_DEPTH:
        return _TOO_DEEP
    if isinstance(value, dict):
        return {str(k): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth + 1) for v in value]
    return bytes_text(value) if isinstance(value, bytes) else str(value)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        decoded = parse_json(value)
        return value if decoded is None else decoded
    return value


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [] if value is None else [value]


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if not isinstance(value, int):
        try:
            value = int(float(value))
        except (TypeError, ValueError, OverflowError):  # OverflowError: infinite
            return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None  # the store's integers are 64-bit


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


_THROTTLE_WORDS = re.compile(r"throttl|ratelimit|rate_limit|rate limit|toomanyrequests|too many requests|\b429\b", re.I)


def looks_throttled(*values: Any) -> bool:
    """True when an error code, status or message says "slow down" (HTTP 429 from any provider)."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            if value == 429:
                return True
            continue
        if _THROTTLE_WORDS.search(str(value)):
            return True
    return False
