"""The OpenAI-compatible API, driven by the real ``openai`` client over HTTP."""

from __future__ import annotations

import base64
import math
import struct

import httpx
import openai
import pytest

SYSTEM = "You are a helpful assistant."
QUESTION = "Explain exponential backoff in two sentences."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


@pytest.fixture
def client(simulator):
    """The real OpenAI client on the simulator, without retries."""
    return openai.OpenAI(base_url=simulator.openai_url, api_key="x", max_retries=0)


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4.1", "us.anthropic.claude-3-5-haiku-20241022-v1:0"])
def test_chat_completion_usage_follows_the_text(client, tokens_by_rule, model):
    answer = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=300)
    [choice] = answer.choices
    text = choice.message.content
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert answer.usage.completion_tokens == tokens_by_rule(text) > 0
    assert answer.usage.prompt_tokens == tokens_by_rule(SYSTEM) + tokens_by_rule(QUESTION)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")


def test_max_tokens_gives_finish_reason_length(client, tokens_by_rule):
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=5)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 5 == tokens_by_rule(answer.choices[0].message.content)


def test_streamed_chat_is_the_same_answer_with_usage_last(client):
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(c.usage is None for c in chunks[:-1])
    without_usage = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert all(c.usage is None and c.choices for c in without_usage)


def test_required_tool_choice_returns_a_tool_call(client):
    tools = [{"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}}}]
    messages = [{"role": "user", "content": "Where is ORD-66002?"}]
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools, tool_choice="required")
    [call] = answer.choices[0].message.tool_calls
    assert answer.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_order" and call.function.arguments == '{"orderId":"ORD-66002"}'
    streamed = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools,
                                                   tool_choice="required", stream=True))
    arguments = "".join(tc.function.arguments or "" for c in streamed for tc in c.choices[0].delta.tool_calls or [])
    assert arguments == call.function.arguments


@pytest.mark.parametrize("encoding", ["float", "base64", None])  # None: the client's default (base64)
def test_embeddings(client, tokens_by_rule, encoding):
    texts = ["Webhooks are retried for up to 72 hours.", "Audit logs are kept for 400 days."]
    extra = {"encoding_format": encoding} if encoding else {}
    answer = client.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=64, **extra)
    assert [d.index for d in answer.data] == [0, 1]
    vectors = [item.embedding for item in answer.data]
    if encoding == "base64":  # asked for explicitly, the client hands back the little-endian float32 bytes
        raw = [base64.b64decode(v) for v in vectors]
        vectors = [list(struct.unpack(f"<{len(r) // 4}f", r)) for r in raw]
    for vector in vectors:
        assert len(vector) == 64
        assert math.fsum(v * v for v in vector) == pytest.approx(1.0, abs=1e-4)
    assert answer.usage.prompt_tokens == sum(tokens_by_rule(t) for t in texts) == answer.usage.total_tokens
    again = client.embeddings.create(model="text-embedding-3-small", input=texts[0], dimensions=64,
                                     encoding_format="float")
    assert again.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)


def test_responses(client, tokens_by_rule):
    answer = client.responses.create(model="gpt-4.1", instructions=SYSTEM, input=QUESTION, max_output_tokens=400)
    assert answer.status in ("completed", "incomplete")
    assert answer.usage.output_tokens == tokens_by_rule(answer.output_text) > 0
    assert answer.usage.input_tokens == tokens_by_rule(SYSTEM) + tokens_by_rule(QUESTION)
    short = client.responses.create(model="gpt-4.1", input=QUESTION, max_output_tokens=16)
    assert short.status == "incomplete" and short.incomplete_details.reason == "max_output_tokens"


def test_streamed_responses_end_with_the_completed_response(client):
    whole = client.responses.create(model="gpt-4.1", instructions=SYSTEM, input=QUESTION)
    events = list(client.responses.create(model="gpt-4.1", instructions=SYSTEM, input=QUESTION, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == whole.output_text == events[-1].response.output_text
    assert events[-1].response.usage == whole.usage
    with client.responses.stream(model="gpt-4.1", instructions=SYSTEM, input=QUESTION) as stream:
        assert stream.get_final_response().output_text == whole.output_text


def test_models_lists_every_served_model(client, simulator):
    assert {m.id for m in client.models.list()} == set(simulator.simulator.catalog.models)


def test_rate_limit_error_under_quota(start_sim, quick_model):
    model = quick_model("test-chat-rpm", "openai", rpm=2)
    sim = start_sim(speed=6, models=[model])
    client = openai.OpenAI(base_url=sim.openai_url, api_key="x", max_retries=0)
    for i in range(2):
        client.chat.completions.create(model=model.model_id, messages=[{"role": "user", "content": f"q{i}"}])
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=model.model_id, messages=[{"role": "user", "content": "q3"}])
    error = caught.value
    assert error.code == "rate_limit_exceeded" and error.type == "requests"
    assert float(error.response.headers["retry-after"]) > 0 and int(error.response.headers["retry-after-ms"]) > 0
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=model.model_id, input="q4")
    assert sim.stats()[model.model_id]["throttled"] == 2


def test_token_rate_limit_error(start_sim, quick_model):
    model = quick_model("test-chat-tpm", "openai", tpm=400)
    client = openai.OpenAI(base_url=start_sim(speed=6, models=[model]).openai_url, api_key="x", max_retries=0)
    messages = [{"role": "user", "content": QUESTION}]
    per_call = client.chat.completions.create(model=model.model_id, messages=messages, max_tokens=50).usage.total_tokens
    for _ in range(400 // per_call - 1):
        client.chat.completions.create(model=model.model_id, messages=messages, max_tokens=50)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=model.model_id, messages=messages, max_tokens=50)
    assert caught.value.type == "tokens"


def test_errors(client, simulator):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-imaginary", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=10**7)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="gpt-4o-mini", input="chat models do not embed")
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[
            {"role": "user", "content": "#simulate:ServiceUnavailableException"}])
    unauthenticated = httpx.post(f"{simulator.openai_url}/chat/completions",
                                 json={"model": "gpt-4o-mini", "messages": MESSAGES})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["type"] == "invalid_request_error"


def test_the_same_seed_gives_the_same_answers(start_sim):
    def answers(seed: int) -> list:
        client = openai.OpenAI(base_url=start_sim(seed=seed).openai_url, api_key="x", max_retries=0)
        return [client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content,
                client.responses.create(model="gpt-4.1", input=QUESTION).output_text,
                client.embeddings.create(model="text-embedding-3-small", input="x").data[0].embedding]

    first = answers(3)
    assert answers(3) == first
    assert answers(4) != first


def test_a_stream_can_fail_half_way(client):
    messages = [{"role": "user", "content": "Go on #simulate:ModelStreamErrorException"}]
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True):
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"
