"""The OpenAI-compatible API under ``/v1``, as the ``openai`` client calls it.

``POST /v1/chat/completions`` (``stream: true`` gives SSE ``data:`` chunks ending ``data: [DONE]``;
``stream_options.include_usage`` adds the usage chunk), ``POST /v1/embeddings`` (float or base64
vectors), ``POST /v1/responses`` (streaming as typed SSE events), ``GET /v1/models``.

Every served model is reachable here (OpenAI's own and the Bedrock ones, as Bedrock's
OpenAI-compatible endpoint allows). Quotas are the same per-model quotas as on the Bedrock API;
beyond them the answer is 429 with OpenAI's error body (type ``requests`` or ``tokens``, code
``rate_limit_exceeded``) and ``retry-after`` / ``retry-after-ms`` headers in real time.
"""

from __future__ import annotations

import base64
import math
import struct
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from dashcam.simulate.engine import STREAM_FAULT, STREAM_FAULT_MESSAGE, Call, Simulator
from dashcam.simulate.models import ModelApiError, ModelSpec, Prompt, ToolSpec, count_tokens, embed

__all__ = ["openai_routes"]

DEFAULT_MAX_TOKENS = 4096
_JSON = "application/json"
_SSE = "text/event-stream"
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
_ORG = "org-dashcam-simulator"


class _Invalid(ModelApiError):
    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__("invalid_request_error", status, message)
        self.param = param
        self.error_code = code


def _error_response(error: ModelApiError, spec: ModelSpec | None, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    if isinstance(error, _Invalid):
        body = {"message": error.message, "type": "invalid_request_error", "param": error.param,
                "code": error.error_code}
    elif error.code == "ThrottlingException":
        kind = "tokens" if error.limit_kind == "tokens" else "requests"
        wait = error.retry_after_s or 1.0
        quota = spec.quota if spec else None
        limit = (quota.tokens_per_minute if kind == "tokens" else quota.requests_per_minute) if quota else 0
        unit = "tokens per min (TPM)" if kind == "tokens" else "requests per min (RPM)"
        if error.limit_kind == "concurrency":
            unit = f"concurrent requests: Limit {quota.max_concurrency if quota else 0}"
            message = f"Rate limit reached for {spec.model_id if spec else 'model'} in organization {_ORG} on {unit}."
        else:
            message = (f"Rate limit reached for {spec.model_id if spec else 'model'} in organization {_ORG} on "
                       f"{unit}: Limit {limit}. Please try again in {wait * 1000:.0f}ms.")
        body = {"message": message, "type": kind, "param": None, "code": "rate_limit_exceeded"}
        headers.update({"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, round(wait * 1000)))})
    else:
        body = {"message": error.message, "type": "server_error" if error.status >= 500 else "invalid_request_error",
                "param": None, "code": _snake(error.code)}
    return Response(orjson.dumps({"error": body}), status_code=error.status, media_type=_JSON, headers=headers)


def _snake(code: str) -> str:
    out = "".join("_" + ch.lower() if ch.isupper() else ch for ch in code.removesuffix("Exception"))
    return out.lstrip("_")


def _text_of(content: Any) -> str:
    """The text of a message's content: a string or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    raise _Invalid(f"Invalid content: expected a string or an array of parts, got {type(content).__name__}.",
                   "messages")


def _max_tokens(spec: ModelSpec, value: Any, param: str) -> int:
    if value is None:
        return min(DEFAULT_MAX_TOKENS, spec.max_output_tokens)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(f"Invalid '{param}': expected an integer >= 1, got {value!r}.", param)
    if value > spec.max_output_tokens:
        raise _Invalid(f"{param} is too large: {value}. This model supports at most {spec.max_output_tokens} "
                       "completion tokens, whereas you provided {value}.".replace("{value}", str(value)), param)
    return value


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
        raise _Invalid(f"Invalid 'temperature': {value!r} is not between 0 and 2.", "temperature")
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def _tools(tools: Any, choice: Any, *, nested: bool) -> tuple[tuple[ToolSpec, ...], bool]:
    """Function tools (``nested``: chat's {"function": {...}} form) and whether a call is required."""
    specs = []
    for tool in tools or []:
        function = tool.get("function", {}) if nested else tool
        if tool.get("type") == "function" and function.get("name"):
            specs.append(ToolSpec(function["name"], function.get("parameters") or {}))
    if choice == "none":
        return (), False
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if nested else choice.get("name")
        return tuple(t for t in specs if t.name == name) or tuple(specs), True
    return tuple(specs), choice == "required"


def _chat_prompt(spec: ModelSpec, body: dict) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    system, turns = [], []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise _Invalid(f"Invalid value for 'messages[{i}].role': {role!r}.", f"messages[{i}].role")
        text = _text_of(message.get("content"))
        if role in ("system", "developer"):
            system.append(text)
            continue
        for call in message.get("tool_calls") or []:
            text += " " + str((call.get("function") or {}).get("arguments", ""))
        turns.append((role, text))
    if body.get("n", 1) != 1:
        raise _Invalid("This simulator supports only n=1.", "n")
    tools, force = _tools(body.get("tools"), body.get("tool_choice"), nested=True)
    max_tokens = _max_tokens(spec, body.get("max_completion_tokens", body.get("max_tokens")),
                             "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens")
    return Prompt(tuple(system), tuple(turns), max_tokens, _stop(body.get("stop")),
                  _temperature(body.get("temperature")), tools, force)


def _responses_prompt(spec: ModelSpec, body: dict) -> Prompt:
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise _Invalid("Missing required parameter: 'input'.", "input")
    system = [str(body["instructions"])] if body.get("instructions") else []
    turns = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role", "user")
            text = _text_of(item.get("content"))
            if role in ("system", "developer"):
                system.append(text)
            else:
                turns.append((role, text))
        elif kind == "function_call_output":
            turns.append(("tool", str(item.get("output", ""))))
        elif kind == "function_call":
            turns.append(("assistant", str(item.get("arguments", ""))))
    tools, force = _tools(body.get("tools"), body.get("tool_choice"), nested=False)
    return Prompt(tuple(system), tuple(turns), _max_tokens(spec, body.get("max_output_tokens"), "max_output_tokens"),
                  (), _temperature(body.get("temperature")), tools, force)


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


# ------------------------------------------------------------------------------ chat completions


def _chat_usage(call: Call) -> dict:
    c = call.completion
    return {"prompt_tokens": c.input_tokens + c.cache_read_tokens, "completion_tokens": c.output_tokens,
            "total_tokens": c.input_tokens + c.cache_read_tokens + c.output_tokens,
            "prompt_tokens_details": {"cached_tokens": c.cache_read_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _chat_tool_calls(call: Call) -> list[dict]:
    tool = call.completion.tool_call
    return [{"id": "call_" + tool.call_id[8:], "type": "function",
             "function": {"name": tool.name, "arguments": orjson.dumps(tool.arguments).decode()}}]


def _chat_body(call: Call, created: int) -> dict:
    c = call.completion
    message: dict = {"role": "assistant", "content": c.text if c.text or not c.tool_call else None,
                     "refusal": None, "annotations": []}
    if c.tool_call:
        message["tool_calls"] = _chat_tool_calls(call)
    return {"id": "chatcmpl-" + call.request_id.removeprefix("req_")[:29], "object": "chat.completion",
            "created": created, "model": call.spec.native_name or call.spec.model_id,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _FINISH[c.stop_reason]}],
            "usage": _chat_usage(call), "service_tier": "default", "system_fingerprint": "fp_dashcamsim"}


def _chat_chunks(call: Call, created: int, include_usage: bool) -> list[tuple[float, bytes]]:
    c, lat = call.completion, call.latency
    base = {"id": "chatcmpl-" + call.request_id.removeprefix("req_")[:29], "object": "chat.completion.chunk",
            "created": created, "model": call.spec.native_name or call.spec.model_id,
            "service_tier": "default", "system_fingerprint": "fp_dashcamsim"}
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return _sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    out = [(lat.first_token_ms, chunk({"role": "assistant", "content": "", "refusal": None}))]
    out += [(at, chunk({"content": piece})) for at, piece in call.text_timeline()] if c.text else []
    if c.tool_call:
        first = _chat_tool_calls(call)[0]
        out.append((lat.total_ms, chunk({"tool_calls": [{"index": 0, "id": first["id"], "type": "function",
                                                          "function": {"name": first["function"]["name"],
                                                                       "arguments": ""}}]})))
        out.append((lat.total_ms, chunk({"tool_calls": [{"index": 0, "function": {
            "arguments": first["function"]["arguments"]}}]})))
    out.append((lat.total_ms, chunk({}, _FINISH[c.stop_reason])))
    if include_usage:
        out.append((lat.total_ms, _sse({**base, "choices": [], "usage": _chat_usage(call)})))
    out.append((lat.total_ms, b"data: [DONE]\n\n"))
    return out


# ------------------------------------------------------------------------------ responses


def _response_output(call: Call, status: str) -> list[dict]:
    c = call.completion
    output: list[dict] = []
    if c.text or not c.tool_call:
        output.append({"type": "message", "id": "msg_" + call.request_id.removeprefix("req_"), "status": status,
                       "role": "assistant", "content": [{"type": "output_text", "text": c.text, "annotations": [],
                                                         "logprobs": []}] if status != "in_progress" else []})
    if c.tool_call and status != "in_progress":
        output.append({"type": "function_call", "id": "fc_" + c.tool_call.call_id[8:], "status": "completed",
                       "call_id": "call_" + c.tool_call.call_id[8:], "name": c.tool_call.name,
                       "arguments": orjson.dumps(c.tool_call.arguments).decode()})
    return output


def _response_body(call: Call, body: dict, created: int, *, final: bool) -> dict:
    c = call.completion
    incomplete = c.stop_reason == "max_tokens"
    status = ("incomplete" if incomplete else "completed") if final else "in_progress"
    return {
        "id": "resp_" + call.request_id.removeprefix("req_"), "object": "response", "created_at": created,
        "status": status, "background": False, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if final and incomplete else None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": call.spec.native_name or call.spec.model_id,
        "output": _response_output(call, status) if final else [],
        "parallel_tool_calls": True, "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
        "service_tier": "default", "store": True, "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": {"input_tokens": c.input_tokens + c.cache_read_tokens,
                  "input_tokens_details": {"cached_tokens": c.cache_read_tokens, "cache_write_tokens": 0},
                  "output_tokens": c.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": c.input_tokens + c.cache_read_tokens + c.output_tokens} if final else None,
        "user": None, "metadata": {}}


def _response_events(call: Call, body: dict, created: int) -> list[tuple[float, bytes]]:
    lat, c = call.latency, call.completion
    sequence = iter(range(1_000_000))
    out: list[tuple[float, bytes]] = []

    def emit(at: float, kind: str, **fields: Any) -> None:
        out.append((at, _sse({"type": kind, "sequence_number": next(sequence), **fields}, event=kind)))

    start = _response_body(call, body, created, final=False)
    emit(0.0, "response.created", response=start)
    emit(0.0, "response.in_progress", response=start)
    final = _response_body(call, body, created, final=True)
    for index, item in enumerate(final["output"]):
        if item["type"] == "message":
            item_id = item["id"]
            emit(lat.first_token_ms, "response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "content": []})
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            emit(lat.first_token_ms, "response.content_part.added", item_id=item_id, output_index=index,
                 content_index=0, part=part)
            for at, piece in call.text_timeline() if c.text else []:
                emit(at, "response.output_text.delta", item_id=item_id, output_index=index, content_index=0,
                     delta=piece, logprobs=[])
            emit(lat.total_ms, "response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                 text=c.text, logprobs=[])
            emit(lat.total_ms, "response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                 part={**part, "text": c.text})
        else:
            emit(lat.total_ms, "response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "arguments": ""})
            emit(lat.total_ms, "response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                 delta=item["arguments"])
            emit(lat.total_ms, "response.function_call_arguments.done", item_id=item["id"], output_index=index,
                 arguments=item["arguments"], name=item["name"])
        emit(lat.total_ms, "response.output_item.done", output_index=index, item=item)
    emit(lat.total_ms, "response.incomplete" if final["status"] == "incomplete" else "response.completed",
         response=final)
    return out


# ------------------------------------------------------------------------------ routes


def openai_routes(simulator: Simulator) -> list[Route]:
    """The ``/v1`` routes, bound to ``simulator``."""

    def rate_headers(spec: ModelSpec) -> dict:
        usage = simulator.gates[spec.model_id].usage()
        q = spec.quota
        reset = f"{simulator.clock.real_seconds(60.0):.3f}s"
        return {"x-ratelimit-limit-requests": str(q.requests_per_minute),
                "x-ratelimit-remaining-requests": str(max(0, q.requests_per_minute - usage["requests"])),
                "x-ratelimit-limit-tokens": str(q.tokens_per_minute),
                "x-ratelimit-remaining-tokens": str(max(0, q.tokens_per_minute - usage["tokens"])),
                "x-ratelimit-reset-requests": reset, "x-ratelimit-reset-tokens": reset}

    async def prepare(request: Request, *, embedding: bool) -> tuple[dict, ModelSpec]:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise _Invalid("You didn't provide an API key. You need to provide your API key in an Authorization "
                           "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", status=401)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _Invalid("We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise _Invalid("The request body must be a JSON object.")
        model = body.get("model")
        spec = simulator.catalog.resolve_openai(model) if isinstance(model, str) else None
        if spec is None:
            raise _Invalid(f"The model `{model}` does not exist or you do not have access to it.", "model", 404,
                           "model_not_found")
        if spec.embedding != embedding:
            raise _Invalid(f"The model `{model}` does not support this endpoint.", "model", 400, "model_not_supported")
        return body, spec

    async def generate(request: Request, operation: str, parse, render, render_stream) -> Response:
        request_id = "req_" + simulator.request_id().replace("-", "")
        spec = None
        try:
            body, spec = await prepare(request, embedding=False)
            prompt = parse(spec, body)
        except ModelApiError as exc:
            return _error_response(simulator.reject(spec, operation, exc), spec, request_id)
        stream = bool(body.get("stream"))
        label = operation + ("Stream" if stream else "")
        try:
            call = simulator.begin(spec, label, prompt, request_id=request_id)
        except ModelApiError as exc:
            response = _error_response(exc, spec, request_id)
            response.headers.update(rate_headers(spec))
            return response
        created = int(time.time())
        headers = {"x-request-id": request_id, "openai-processing-ms": str(round(call.latency.total_ms)),
                   **rate_headers(spec)}
        if stream:
            if call.latency.first_token_ms > spec.timeout_ms:
                await call.wait(spec.timeout_ms)
                call.finish(error="ModelTimeoutException")
                return _error_response(ModelApiError("ModelTimeoutException", 408, "Request timed out."), spec,
                                       request_id)
            timed, error = render_stream(call, body, created), None
            if call.stream_fault:  # half the events, then an error event, as OpenAI ends a failed stream
                timed = timed[: len(timed) // 2]
                timed.append((timed[-1][0] if timed else 0.0, _sse({"error": {
                    "message": STREAM_FAULT_MESSAGE, "type": "server_error", "param": None, "code": None}})))
                error = STREAM_FAULT
            return StreamingResponse(call.paced(timed, error), media_type=_SSE, headers=headers)
        try:
            await call.wait_until_done()
        except ModelApiError as exc:
            call.finish(error=exc.code)
            return _error_response(exc, spec, request_id)
        except BaseException:
            call.finish(error="ClientDisconnected")
            raise
        call.finish()
        return Response(orjson.dumps(render(call, body, created)), media_type=_JSON, headers=headers)

    async def chat_completions(request: Request) -> Response:
        return await generate(
            request, "ChatCompletions", _chat_prompt, lambda call, body, created: _chat_body(call, created),
            lambda call, body, created: _chat_chunks(call, created,
                                                     bool((body.get("stream_options") or {}).get("include_usage"))))

    async def responses(request: Request) -> Response:
        return await generate(request, "Responses", _responses_prompt,
                              lambda call, body, created: _response_body(call, body, created, final=True),
                              _response_events)

    async def embeddings(request: Request) -> Response:
        request_id = "req_" + simulator.request_id().replace("-", "")
        spec = None
        try:
            body, spec = await prepare(request, embedding=True)
            texts, tokens = _embedding_inputs(body.get("input"))
            dims = body.get("dimensions")
            if dims is not None and (not isinstance(dims, int) or not 1 <= dims <= spec.embedding_dimensions):
                raise _Invalid(f"Invalid 'dimensions': {dims!r}.", "dimensions")
            encoding = body.get("encoding_format", "float")
            if encoding not in ("float", "base64"):
                raise _Invalid(f"Invalid 'encoding_format': {encoding!r}.", "encoding_format")
        except ModelApiError as exc:
            return _error_response(simulator.reject(spec, "Embeddings", exc), spec, request_id)
        try:
            call = simulator.begin(spec, "Embeddings", None, input_tokens=tokens, content=orjson.dumps(texts),
                                   request_id=request_id)
        except ModelApiError as exc:
            return _error_response(exc, spec, request_id)
        try:
            await call.wait_until_done()
        except ModelApiError as exc:
            call.finish(error=exc.code)
            return _error_response(exc, spec, request_id)
        call.finish()
        data = []
        for index, text in enumerate(texts):
            vector = embed(spec, text, simulator.seed, dims)
            value: Any = vector
            if encoding == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": value})
        answer = {"object": "list", "data": data, "model": spec.native_name or spec.model_id,
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return Response(orjson.dumps(answer), media_type=_JSON, headers={"x-request-id": request_id,
                                                                          **rate_headers(spec)})

    async def list_models(request: Request) -> Response:
        data = [{"id": model_id, "object": "model", "created": 1_700_000_000,
                 "owned_by": "openai" if spec.api == "openai" else model_id.removeprefix("us.").split(".")[0]}
                for model_id, spec in simulator.catalog.models.items()]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type=_JSON)

    return [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
    ]


def _embedding_inputs(value: Any) -> tuple[list[str], int]:
    """Texts to embed and their token count; token-id arrays count one token per id."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _Invalid("Invalid 'input': expected a non-empty string or array.", "input")
    if all(isinstance(v, int) for v in value):
        value = [value]
    texts, tokens = [], 0
    for item in value:
        if isinstance(item, str):
            if not item:
                raise _Invalid("Invalid 'input': empty string.", "input")
            texts.append(item)
            tokens += count_tokens(item)
        elif isinstance(item, list) and all(isinstance(v, int) for v in item):
            texts.append(" ".join(map(str, item)))
            tokens += len(item)
        else:
            raise _Invalid("Invalid 'input': expected strings or arrays of token ids.", "input")
    return texts, tokens
