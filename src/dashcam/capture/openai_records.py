"""What a captured OpenAI API attempt says: bodies, tokens, stop reason and errors.

Pure functions over an :class:`~dashcam.capture.attempt.Attempt` filled by
:mod:`dashcam.capture.openai_hooks` (``attempt.request`` is the ``httpx.Request`` as sent,
``attempt.chunks`` the response body's byte chunks as the application read them). They run on the
shipper thread and read the wire JSON, so they work for any OpenAI-compatible server.

Records name the operation as OpenTelemetry's GenAI conventions do (``chat``, ``embeddings``),
and ``responses`` for the Responses API, as dashcam's OTLP source does for non-Bedrock providers.
A streamed answer is logged as the one response it adds up to (as Bedrock logs ConverseStream):
Chat Completions chunks folded into a ``chat.completion``, a Responses stream as its final
``response`` object. Errors carry OpenAI's ``error.code`` (``rate_limit_exceeded``), else its
``error.type``, else the HTTP status; every record also has ``status``, so a 429 is counted as
throttling whatever its code.
"""

from __future__ import annotations

from typing import Any

import orjson

from dashcam.capture.attempt import Attempt, Described, dig, first_int

CHAT = "chat"
EMBEDDINGS = "embeddings"
RESPONSES = "responses"

# Request paths (after the client's base URL) by the operation they perform.
OPERATION_BY_PATH_END = (
    ("/chat/completions", CHAT),
    ("/embeddings", EMBEDDINGS),
    ("/responses", RESPONSES),
)


def operation_of(method: str, path: str) -> str | None:
    """The captured operation a request performs, or None for any other request."""
    if method != "POST":
        return None
    for end, operation in OPERATION_BY_PATH_END:
        if path.endswith(end):
            return operation
    return None


def describe_openai(attempt: Attempt) -> Described:
    """Bodies, usage, stop reason and error of a Chat Completions, Embeddings or Responses attempt."""
    request = attempt.request
    body = _json(getattr(request, "content", None))
    facts = Described(input_body=body if isinstance(body, dict) else None)
    if isinstance(body, dict):
        facts.model_id = _text(body.get("model"))
    headers = attempt.headers or {}
    facts.request_id = headers.get("x-request-id")
    if attempt.chunks is None:
        return facts
    raw = b"".join(attempt.chunks)
    content_type = headers.get("content-type", "")
    status = attempt.status or 0
    if status >= 400:
        _error(facts, _json(raw), status)
        return facts
    if "text/event-stream" in content_type:
        events = parse_sse(raw)
        output = fold_responses_stream(events, facts) if attempt.operation == RESPONSES \
            else fold_chat_stream(events, facts)
    else:
        output = _json(raw)
        facts.output_content_type = content_type.split(";")[0].strip() or "application/json"
    if not isinstance(output, dict):
        return facts
    facts.output_body = output
    _usage(facts, output.get("usage"), attempt.operation)
    facts.stop_reason = _stop_reason(output, attempt.operation)
    facts.request_id = facts.request_id or _text(output.get("id"))
    answered_by = _text(output.get("model"))
    if answered_by and answered_by != facts.model_id:
        facts.extra = {"responseModelId": answered_by}
    return facts


def parse_sse(raw: bytes) -> list[Any]:
    """The JSON ``data`` of each server-sent event (``[DONE]`` and non-JSON data skipped)."""
    events: list[Any] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
        if not data:
            continue
        payload = b"\n".join(data)
        if payload.strip() == b"[DONE]":
            continue
        decoded = _json(payload)
        if decoded is not None:
            events.append(decoded)
    return events


def fold_chat_stream(chunks: list[Any], facts: Described) -> dict[str, Any] | None:
    """Chat Completions chunks folded into the ``chat.completion`` they add up to; an error event
    in the stream becomes the attempt's error."""
    choices: dict[int, dict[str, Any]] = {}
    result: dict[str, Any] = {}
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if isinstance(chunk.get("error"), dict):
            _error(facts, chunk, None)
            continue
        for key in ("id", "model", "created", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None:
                result[key] = chunk[key]
        if chunk.get("usage"):
            result["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                _add_choice_delta(choices, choice)
    if not result and not choices:
        return None
    result["object"] = "chat.completion"
    result["choices"] = [_finish_choice(choices[i]) for i in sorted(choices)]
    return result


def fold_responses_stream(events: list[Any], facts: Described) -> dict[str, Any] | None:
    """A Responses API stream as its last full ``response`` object (``response.completed``, or
    the latest one seen when the stream stopped early); ``error`` events become the error."""
    response = None
    for event in events:
        if not isinstance(event, dict):
            continue
        if event.get("type") == "error" or (event.get("type") is None and isinstance(event.get("error"), dict)):
            _error(facts, {"error": event.get("error") if isinstance(event.get("error"), dict) else event}, None)
        if isinstance(event.get("response"), dict):
            response = event["response"]
    if isinstance(response, dict) and isinstance(response.get("error"), dict):
        _error(facts, {"error": response["error"]}, None)
    return response


def _add_choice_delta(choices: dict[int, dict[str, Any]], choice: dict[str, Any]) -> None:
    index = choice.get("index") or 0
    state = choices.setdefault(index, {"index": index, "role": None, "content": [], "tools": {},
                                       "finish_reason": None, "refusal": []})
    delta = choice.get("delta") or {}
    if delta.get("role"):
        state["role"] = delta["role"]
    if delta.get("content"):
        state["content"].append(str(delta["content"]))
    if delta.get("refusal"):
        state["refusal"].append(str(delta["refusal"]))
    for call in delta.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        slot = state["tools"].setdefault(call.get("index") or 0, {"id": None, "type": "function",
                                                                  "function": {"name": "", "arguments": ""}})
        if call.get("id"):
            slot["id"] = call["id"]
        function = call.get("function") or {}
        slot["function"]["name"] += function.get("name") or ""
        slot["function"]["arguments"] += function.get("arguments") or ""
    if choice.get("finish_reason"):
        state["finish_reason"] = choice["finish_reason"]


def _finish_choice(state: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": state["role"] or "assistant",
                               "content": "".join(state["content"]) if state["content"] else None}
    if state["refusal"]:
        message["refusal"] = "".join(state["refusal"])
    if state["tools"]:
        message["tool_calls"] = [state["tools"][i] for i in sorted(state["tools"])]
    return {"index": state["index"], "message": message, "finish_reason": state["finish_reason"]}


def _usage(facts: Described, usage: Any, operation: str) -> None:
    if not isinstance(usage, dict):
        return
    facts.input_tokens = first_int(usage.get("prompt_tokens"), usage.get("input_tokens"))
    facts.output_tokens = first_int(usage.get("completion_tokens"), usage.get("output_tokens"))
    if facts.output_tokens is None and operation == EMBEDDINGS and facts.input_tokens is not None:
        facts.output_tokens = 0  # an embedding produces no tokens
    facts.cache_read = first_int(dig(usage, "prompt_tokens_details", "cached_tokens"),
                                 dig(usage, "input_tokens_details", "cached_tokens"))


def _stop_reason(output: dict[str, Any], operation: str) -> str | None:
    if operation == CHAT:
        return _text(dig(output, "choices", 0, "finish_reason"))
    if operation == RESPONSES:
        # "completed", or why it stopped short ("max_output_tokens", "content_filter").
        return _text(dig(output, "incomplete_details", "reason") or output.get("status"))
    return None


def _error(facts: Described, body: Any, status: int | None) -> None:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        facts.error_code = _text(error.get("code") or error.get("type")) or (str(status) if status else "error")
        facts.error_message = _text(error.get("message"))
    elif status is not None:
        facts.error_code = str(status)
        facts.error_message = _text(body) if isinstance(body, str) else None


def _json(raw: Any) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
