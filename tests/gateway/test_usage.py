"""Token estimates before a call and usage after it, read from real simulator answers."""

from __future__ import annotations

import httpx
import orjson
import pytest

from dashcam.gateway.recording import decode_event_stream
from dashcam.gateway.usage import (bedrock_header_usage, bedrock_stream_usage, body_usage, estimate_tokens, sse_usage,
                                   text_length)

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
AUTH = {"authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/bedrock/aws4_request, "
                         "SignedHeaders=host, Signature=" + "0" * 64}


def test_estimates_count_every_string_and_the_output_maximum():
    body = {"system": [{"text": "Be brief."}], "messages": [{"role": "user", "content": [{"text": "Why 429?"}]}],
            "inferenceConfig": {"maxTokens": 300}}
    characters = len("Be brief.") + len("user") + len("Why 429?")
    assert text_length(body) == characters
    assert estimate_tokens(body, model=HAIKU, operation="Converse", default_output=1000) == characters // 3 + 1 + 300
    without_maximum = {"messages": body["messages"]}
    assert estimate_tokens(without_maximum, model="gpt-4o-mini", operation="chat", default_output=700) == \
        len("userWhy 429?") // 3 + 1 + 700
    assert estimate_tokens({"input": "x" * 30}, model="text-embedding-3-small", operation="embeddings",
                           default_output=700) == 11  # embeddings produce nothing


@pytest.mark.parametrize("path, output_field", [
    ({"max_tokens": 50}, None), ({"max_completion_tokens": 50}, None), ({"max_gen_len": 50}, None),
    ({"textGenerationConfig": {"maxTokenCount": 50}}, None), ({"inferenceConfig": {"max_new_tokens": 50}}, None),
])
def test_output_maxima_of_each_provider_are_found(path, output_field):
    assert estimate_tokens(path, model="m", operation="InvokeModel", default_output=9999) == 1 + 50


def test_usage_of_real_answers(simulator):
    converse = httpx.post(f"{simulator.url}/model/{HAIKU}/converse", headers=AUTH,
                          json={"messages": [{"role": "user", "content": [{"text": "hello"}]}]})
    assert body_usage(converse.content) == converse.json()["usage"]["totalTokens"]

    invoke = httpx.post(f"{simulator.url}/model/{HAIKU}/invoke", headers=AUTH, json={
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 80, "messages": [{"role": "user", "content": "hi"}]})
    usage = invoke.json()["usage"]
    assert bedrock_header_usage(invoke.headers) == usage["input_tokens"] + usage["output_tokens"]

    stream = httpx.post(f"{simulator.url}/model/{HAIKU}/converse-stream", headers=AUTH,
                        json={"messages": [{"role": "user", "content": [{"text": "hello"}]}]})
    events = decode_event_stream([stream.content], "ConverseStream").events
    assert bedrock_stream_usage(events) == events[-1]["metadata"]["usage"]["totalTokens"]

    bearer = {"authorization": "Bearer sk-test"}
    chat = httpx.post(f"{simulator.openai_url}/chat/completions", headers=bearer, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True,
        "stream_options": {"include_usage": True}})
    lines = [line[6:] for line in chat.text.splitlines() if line.startswith("data: {")]
    assert sse_usage([chat.content[:100], chat.content[100:]]) == orjson.loads(lines[-1])["usage"]["total_tokens"]
    without_usage = httpx.post(f"{simulator.openai_url}/chat/completions", headers=bearer, json={
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert sse_usage([without_usage.content]) is None  # unknown: the estimate stands
    assert body_usage(b"<html>") is None and bedrock_header_usage({}) is None
