"""What captured OpenAI attempts say, read from the JSON and server-sent events on the wire."""

from __future__ import annotations

import json

import httpx
import pytest

from dashcam.capture.attempt import Attempt, Described
from dashcam.capture.openai_records import (
    describe_openai,
    fold_chat_stream,
    fold_responses_stream,
    operation_of,
    parse_sse,
)

TEXT = "Rate limits are per minute, per model."


def sse(events: list, *, done: bool = True, crlf: bool = False) -> bytes:
    raw = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (b"data: [DONE]\n\n" if done else b"")
    return raw.replace(b"\n", b"\r\n") if crlf else raw


def chat_chunks(text: str, *, usage: dict | None) -> list[dict]:
    pieces = [text[i:i + 6] for i in range(0, len(text), 6)]
    chunks = [{"id": "c1", "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    chunks += [{"id": "c1", "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    chunks += [{"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "function": {"name": "look", "arguments": '{"q": '}}]}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": '"x"}'}}]}, "finish_reason": "tool_calls"}]}]
    if usage:
        chunks.append({"id": "c1", "choices": [], "usage": usage})
    return chunks


def made(operation: str, request: dict, status: int, body: bytes, content_type: str) -> Attempt:
    attempt = Attempt("openai", operation, describe_openai, 0.0, 0.0, {})
    attempt.request = httpx.Request("POST", f"http://h/v1/{operation}", json=request)
    attempt.status = status
    attempt.headers = httpx.Headers({"content-type": content_type, "x-request-id": "req_1"})
    attempt.chunks = [body[i:i + 50] for i in range(0, len(body), 50)]
    return attempt


@pytest.mark.parametrize("crlf", [False, True])
def test_server_sent_events(crlf):
    events = [{"n": 1}, {"n": 2, "text": "two\nlines"}]
    raw = sse(events, crlf=crlf) + b": a comment\n\nevent: ping\ndata: not json\n\n"
    assert parse_sse(raw) == events


def test_chat_stream_folds_into_one_completion():
    usage = {"prompt_tokens": 9, "completion_tokens": 17, "total_tokens": 26,
             "prompt_tokens_details": {"cached_tokens": 4}}
    attempt = made("chat", {"model": "gpt-4o-mini", "stream": True}, 200, sse(chat_chunks(TEXT, usage=usage)),
                   "text/event-stream; charset=utf-8")
    facts = describe_openai(attempt)
    choice = facts.output_body["choices"][0]
    assert choice["message"]["content"] == TEXT
    assert choice["message"]["tool_calls"] == [{"id": "call_1", "type": "function",
                                                "function": {"name": "look", "arguments": '{"q": "x"}'}}]
    assert (facts.input_tokens, facts.output_tokens, facts.cache_read, facts.stop_reason) == (9, 17, 4, "tool_calls")
    assert (facts.model_id, facts.request_id, facts.extra) == (
        "gpt-4o-mini", "req_1", {"responseModelId": "gpt-4o-mini-2024-07-18"})


def test_a_chat_stream_without_usage_has_unknown_tokens():
    facts = Described()
    folded = fold_chat_stream(chat_chunks(TEXT, usage=None), facts)
    assert "usage" not in folded and folded["choices"][0]["finish_reason"] == "tool_calls"


def test_an_error_inside_a_stream_is_the_attempts_error():
    facts = Described()
    fold_chat_stream([{"choices": [{"index": 0, "delta": {"content": "par"}}]},
                      {"error": {"message": "overloaded", "type": "server_error", "code": None}}], facts)
    assert (facts.error_code, facts.error_message) == ("server_error", "overloaded")


def test_responses_stream_is_its_final_response():
    final = {"id": "resp_1", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
             "usage": {"input_tokens": 5, "output_tokens": 50, "input_tokens_details": {"cached_tokens": 0}}}
    events = [{"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
              {"type": "response.output_text.delta", "delta": "x"},
              {"type": "response.incomplete", "response": final}]
    attempt = made("responses", {"model": "gpt-4.1", "stream": True}, 200, sse(events, done=False),
                   "text/event-stream")
    facts = describe_openai(attempt)
    assert facts.output_body == final
    assert (facts.input_tokens, facts.output_tokens, facts.stop_reason) == (5, 50, "max_output_tokens")
    failed = Described()
    fold_responses_stream([{"type": "error", "code": "server_error", "message": "boom"}], failed)
    assert failed.error_code == "server_error"


@pytest.mark.parametrize("status, body, code", [
    (429, {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}, "rate_limit_exceeded"),
    (400, {"error": {"message": "bad", "type": "invalid_request_error", "code": None}}, "invalid_request_error"),
    (502, "Bad Gateway", "502"),
])
def test_errors(status, body, code):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    facts = describe_openai(made("chat", {"model": "gpt-4.1"}, status, raw, "application/json"))
    assert facts.error_code == code and facts.output_body is None and facts.model_id == "gpt-4.1"


def test_embeddings_produce_no_output_tokens():
    body = {"object": "list", "data": [{"embedding": [0.0, 1.0]}], "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 6, "total_tokens": 6}}
    facts = describe_openai(made("embeddings", {"model": "text-embedding-3-small", "input": "x"}, 200,
                                 json.dumps(body).encode(), "application/json"))
    assert (facts.input_tokens, facts.output_tokens, facts.stop_reason) == (6, 0, None)


def test_which_requests_are_model_calls():
    assert operation_of("POST", "/v1/chat/completions") == "chat"
    assert operation_of("POST", "/openai/deployments/d/chat/completions") == "chat"
    assert operation_of("POST", "/v1/embeddings") == "embeddings"
    assert operation_of("POST", "/v1/responses") == "responses"
    assert operation_of("GET", "/v1/responses") is None
    assert operation_of("POST", "/v1/responses/resp_1/cancel") is None
    assert operation_of("POST", "/v1/files") is None
