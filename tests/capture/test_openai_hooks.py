"""Capture of real OpenAI clients (sync and async) against the simulator, delivered to a real server."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import openai
import pytest

import dashcam.capture
from dashcam.capture.openai_hooks import CapturingTransport

from .conftest import GPT, OPENAI_EMBED, by_model, delivered, simulator_delta

# The simulator's OpenAI operation names, as capture names them (and whether they stream).
OPERATIONS = {"ChatCompletions": ("chat", None), "ChatCompletionsStream": ("chat", True),
              "Embeddings": ("embeddings", None), "Responses": ("responses", None),
              "ResponsesStream": ("responses", True)}


def client_for(simulator, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=simulator.openai_url, api_key="sk-test", **options)


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def run_every_operation(client: openai.OpenAI) -> int:
    """Chat (plain and streamed), embeddings, responses (plain and streamed), and rate limits;
    returns how many calls the application saw fail with RateLimitError."""
    client.chat.completions.create(model=GPT, messages=chat("What is a quota?"))
    for _ in client.chat.completions.create(model=GPT, messages=chat("Stream it."), stream=True,
                                            stream_options={"include_usage": True}):
        pass
    client.embeddings.create(model=OPENAI_EMBED, input=["first text", "second text"])
    client.responses.create(model=GPT, input="Explain retries.")
    with client.responses.stream(model=GPT, input="Stream a response.") as stream:
        for _ in stream:
            pass
    limited = 0
    for call in (lambda: client.chat.completions.create(model=GPT, messages=chat("#simulate:ThrottlingException")),
                 lambda: client.responses.create(model=GPT, input="#simulate:ThrottlingException")):
        with pytest.raises(openai.RateLimitError):
            call()
        limited += 1
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=GPT, messages=chat("#simulate:ValidationException"))
    return limited


def test_every_operation_matches_what_the_simulator_did(simulator, captured_to):
    client = client_for(simulator, max_retries=1)
    before = simulator.stats()
    limited = run_every_operation(client)
    rows = delivered(captured_to)
    did = simulator_delta(before, simulator.stats())

    recorded = by_model(rows)
    assert set(recorded) == set(did)
    for model, sim in did.items():
        mine = recorded[model]
        for key in ("requests", "succeeded", "throttled", "input_tokens", "output_tokens", "cache_read_tokens"):
            assert mine[key] == sim[key], (model, key)
        assert sum(mine["errors"].values()) == sum(sim["errors"].values())
        expected = Counter(OPERATIONS[name] for name in sim["operations"].elements())
        assert Counter((r["operation"], r["input.inputBodyJson.stream"]) for r in rows if r["modelId"] == model) \
            == expected

    # The client retried each rate-limited call once (max_retries=1): two records per call,
    # attempts 1 and 2, both throttled with OpenAI's code and status.
    limited_rows = [r for r in rows if r["throttled"]]
    assert len(limited_rows) == 2 * limited
    assert sorted(r["requestMetadata.attempt"] for r in limited_rows) == ["1", "1", "2", "2"]
    assert {(r["errorCode"], r["status"]) for r in limited_rows} == {("rate_limit_exceeded", "429")}
    (invalid,) = [r for r in rows if r["status"] == "400"]
    assert invalid["errorCode"] and invalid["throttled"] == 0

    for row in rows:
        assert (row["source"], row["provider"], row["app"]) == ("sdk", "openai", "tests")
        assert row["requestId"] and row["latencyMs"] > 0
        if row["input.inputBodyJson.stream"] and row["errorCode"] is None:
            assert 0 < row["timeToFirstTokenMs"] < row["latencyMs"]
        else:
            assert row["timeToFirstTokenMs"] is None
        if row["errorCode"] is None and row["operation"] != "embeddings":
            assert row["stopReason"] in ("stop", "length", "completed", "tool_calls")


def test_records_agree_with_what_the_application_got(simulator, captured_to):
    client = client_for(simulator)
    completion = client.chat.completions.create(model=GPT, messages=chat("Count my tokens."))
    embedding = client.embeddings.create(model=OPENAI_EMBED, input="vector please")
    chunks = list(client.chat.completions.create(model=GPT, messages=chat("Count my tokens."), stream=True,
                                                 stream_options={"include_usage": True}))
    rows = delivered(captured_to)
    assert [r["input.inputTokenCount"] for r in rows] == [
        completion.usage.prompt_tokens, embedding.usage.prompt_tokens, chunks[-1].usage.prompt_tokens]
    assert [r["output.outputTokenCount"] for r in rows] == [
        completion.usage.completion_tokens, 0, chunks[-1].usage.completion_tokens]
    assert rows[0]["stopReason"] == completion.choices[0].finish_reason
    streamed_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed_text == completion.choices[0].message.content  # same prompt, same (seeded) answer

    result = captured_to.dashcam.query("fields @message | sort @timestamp asc", log_groups=["/dashcam/capture"])
    folded = json.loads(result.rows[2]["@message"])["output"]["outputBodyJson"]
    assert folded["choices"][0]["message"]["content"] == streamed_text
    assert folded["usage"]["completion_tokens"] == chunks[-1].usage.completion_tokens


def test_ttft_is_taken_when_the_application_pulls_the_first_chunk(simulator, captured_to):
    import time

    client = client_for(simulator)
    stream = client.chat.completions.create(model=GPT, messages=chat("slow reader"), stream=True)
    time.sleep(0.3)
    for _ in stream:
        pass
    (row,) = delivered(captured_to)
    assert row["timeToFirstTokenMs"] >= 300


def test_a_stream_abandoned_early_still_leaves_its_record(simulator, captured_to):
    client = client_for(simulator)
    stream = client.chat.completions.create(model=GPT, messages=chat("I stop early"), stream=True)
    next(iter(stream))
    stream.close()
    (row,) = delivered(captured_to)
    assert row["timeToFirstTokenMs"] is not None and row["output.outputTokenCount"] is None


def test_async_client(simulator, captured_to):
    async def calls() -> int:
        async with openai.AsyncOpenAI(base_url=simulator.openai_url, api_key="sk-test", max_retries=0) as client:
            await client.chat.completions.create(model=GPT, messages=chat("async hello"))
            stream = await client.chat.completions.create(model=GPT, messages=chat("async stream"), stream=True,
                                                          stream_options={"include_usage": True})
            async for _ in stream:
                pass
            await client.embeddings.create(model=OPENAI_EMBED, input="async vector")
            with pytest.raises(openai.RateLimitError):
                await client.responses.create(model=GPT, input="#simulate:ThrottlingException")
            return 4

    before = simulator.stats()
    made = asyncio.run(calls())
    rows = delivered(captured_to)
    did = simulator_delta(before, simulator.stats())
    assert len(rows) == made == sum(m["requests"] for m in did.values())
    assert [r["operation"] for r in rows] == ["chat", "chat", "embeddings", "responses"]
    assert rows[1]["timeToFirstTokenMs"] is not None and rows[1]["output.outputTokenCount"] == \
        did[GPT]["output_tokens"] - (rows[0]["output.outputTokenCount"])
    assert rows[3]["throttled"] == 1


def test_connection_failures_are_recorded_and_raised_unchanged(capture_session):
    capture_session(url="http://127.0.0.1:9")
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk", max_retries=1, timeout=2)
    with pytest.raises(openai.APIConnectionError) as raised:
        client.chat.completions.create(model=GPT, messages=chat("nobody home"))
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert dashcam.capture.stats().captured == 2  # the first attempt and the client's retry


def test_other_requests_pass_through_uncaptured(simulator, captured_to):
    client = client_for(simulator)
    assert [m.id for m in client.models.list()]
    assert dashcam.capture.flush(10) and dashcam.capture.stats().captured == 0


def test_clients_made_before_and_after_and_unhooking(simulator, secured_server, capture_session):
    key = secured_server.keys.create("ingest")
    early = client_for(simulator)
    capture_session(url=secured_server.url, key=key.bearer)  # existing clients are found
    late = client_for(simulator)
    early.embeddings.create(model=OPENAI_EMBED, input="early")
    late.embeddings.create(model=OPENAI_EMBED, input="late")
    late.with_options(timeout=30).embeddings.create(model=OPENAI_EMBED, input="copy of late")
    assert dashcam.capture.flush(10) and dashcam.capture.stats().sent == 3
    dashcam.capture.uninstrument(timeout=5)
    late.embeddings.create(model=OPENAI_EMBED, input="after")
    assert dashcam.capture.stats().captured == 3
    assert not any(isinstance(c._client._transport, CapturingTransport) for c in (early, late))


def test_clients_with_a_transport_of_their_own(simulator, captured_to):
    # httpx.MockTransport is both a sync and an async transport: capture must wrap it as the kind
    # its client uses. Here it relays every request to the simulator.
    upstream = httpx.Client(base_url=simulator.url)

    def relay(request: httpx.Request) -> httpx.Response:
        answer = upstream.post(request.url.path, content=request.content, headers={"authorization": "Bearer x"})
        headers = {k: v for k, v in answer.headers.items() if k not in ("content-length", "transfer-encoding")}
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    sync_client = openai.OpenAI(base_url="http://relayed/v1", api_key="sk", max_retries=0,
                                http_client=httpx.Client(transport=httpx.MockTransport(relay)))
    sync_client.embeddings.create(model=OPENAI_EMBED, input="relayed")

    async def async_call() -> None:
        async with openai.AsyncOpenAI(base_url="http://relayed/v1", api_key="sk", max_retries=0,
                                      http_client=httpx.AsyncClient(transport=httpx.MockTransport(relay))) as client:
            await client.embeddings.create(model=OPENAI_EMBED, input="relayed async")

    asyncio.run(async_call())
    upstream.close()
    rows = delivered(captured_to)
    assert [(r["operation"], r["modelId"]) for r in rows] == [("embeddings", OPENAI_EMBED)] * 2
    assert all(r["input.inputTokenCount"] > 0 for r in rows)


def test_instrument_without_openai_unhooks_it(simulator, secured_server, capture_session):
    key = secured_server.keys.create("ingest")
    capture_session(url=secured_server.url, key=key.bearer)
    client = client_for(simulator)
    assert isinstance(client._client._transport, CapturingTransport)
    capture_session(url=secured_server.url, key=key.bearer, openai=False)
    assert not isinstance(client._client._transport, CapturingTransport)
    client.embeddings.create(model=OPENAI_EMBED, input="not captured")
    assert not isinstance(client_for(simulator)._client._transport, CapturingTransport)
    assert dashcam.capture.stats().captured == 0
