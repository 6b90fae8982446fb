"""The Bedrock runtime API, driven by the real boto3 ``bedrock-runtime`` client over HTTP."""

from __future__ import annotations

import json

import httpx
import pytest
from botocore.exceptions import ClientError

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET_PROFILE_ARN = ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                      "us.anthropic.claude-sonnet-4-20250514-v1:0")
NOVA = "amazon.nova-lite-v1:0"
LLAMA = "meta.llama3-1-70b-instruct-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
CHAT_MODELS = [HAIKU, SONNET_PROFILE_ARN, NOVA, LLAMA]

SYSTEM = "You are Acme Cloud's support assistant. Be concise."
QUESTION = "My February invoice shows two charges of $49. Can you refund the duplicate?"


def _converse_args(model_id: str, text: str = QUESTION, max_tokens: int = 300, **extra) -> dict:
    return {"modelId": model_id, "system": [{"text": SYSTEM}],
            "messages": [{"role": "user", "content": [{"text": text}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": 0.2}, **extra}


def _error(call, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as caught:
        result = call(*args, **kwargs)
        for _ in result.get("stream") or result.get("body") or []:  # streams fail on their first event
            pass
    return caught.value


def _code_and_status(error: ClientError) -> tuple[str, int]:
    return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]


# ------------------------------------------------------------------------------ Converse


@pytest.mark.parametrize("model_id", CHAT_MODELS)
def test_converse_answers_with_usage_that_follows_the_text(bedrock, tokens_by_rule, model_id):
    answer = bedrock.converse(**_converse_args(model_id))
    message = answer["output"]["message"]
    assert message["role"] == "assistant"
    text = message["content"][0]["text"]
    usage = answer["usage"]
    assert usage["outputTokens"] == tokens_by_rule(text) > 0
    assert usage["inputTokens"] == tokens_by_rule(SYSTEM) + tokens_by_rule(QUESTION)
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert answer["stopReason"] in ("end_turn", "max_tokens")
    assert answer["metrics"]["latencyMs"] > 0
    assert answer["ResponseMetadata"]["RequestId"] == answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_max_tokens_stops_the_answer(bedrock, tokens_by_rule):
    answer = bedrock.converse(**_converse_args(HAIKU, max_tokens=7))
    assert answer["stopReason"] == "max_tokens"
    assert answer["usage"]["outputTokens"] == 7 == tokens_by_rule(answer["output"]["message"]["content"][0]["text"])


@pytest.mark.parametrize("model_id", CHAT_MODELS)
def test_converse_stream_sends_the_same_answer_in_events_with_metadata_last(bedrock, tokens_by_rule, model_id):
    whole = bedrock.converse(**_converse_args(model_id))
    events = list(bedrock.converse_stream(**_converse_args(model_id))["stream"])
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and events[0]["messageStart"]["role"] == "assistant"
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert set(kinds[1:-3]) == {"contentBlockDelta"}
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == whole["output"]["message"]["content"][0]["text"]
    metadata = events[-1]["metadata"]
    assert metadata["usage"] == whole["usage"]
    assert metadata["usage"]["outputTokens"] == tokens_by_rule(text)
    assert metadata["metrics"]["latencyMs"] > 0
    assert events[-2]["messageStop"]["stopReason"] == whole["stopReason"]


def test_forced_tool_use_returns_a_tool_use_block(bedrock):
    tools = {"tools": [{"toolSpec": {"name": "get_order_status", "description": "Order status.", "inputSchema": {
        "json": {"type": "object", "properties": {"orderId": {"type": "string"}}, "required": ["orderId"]}}}}],
        "toolChoice": {"any": {}}}
    answer = bedrock.converse(**_converse_args(HAIKU, "Where is ORD-77120?", toolConfig=tools))
    assert answer["stopReason"] == "tool_use"
    [block] = [b for b in answer["output"]["message"]["content"] if "toolUse" in b]
    assert block["toolUse"]["name"] == "get_order_status"
    assert block["toolUse"]["input"] == {"orderId": "ORD-77120"}
    events = list(bedrock.converse_stream(**_converse_args(HAIKU, "Where is ORD-77120?", toolConfig=tools))["stream"])
    starts = [e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e]
    deltas = "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events
                     if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"])
    assert starts[0]["name"] == "get_order_status" and json.loads(deltas) == {"orderId": "ORD-77120"}


def test_a_cache_point_writes_the_prefix_once_then_reads_it(bedrock, tokens_by_rule):
    args = _converse_args(HAIKU)
    args["system"] = [{"text": SYSTEM}, {"cachePoint": {"type": "default"}}]
    first, second = bedrock.converse(**args)["usage"], bedrock.converse(**args)["usage"]
    assert (first["cacheWriteInputTokens"], first["cacheReadInputTokens"]) == (tokens_by_rule(SYSTEM), 0)
    assert (second["cacheWriteInputTokens"], second["cacheReadInputTokens"]) == (0, tokens_by_rule(SYSTEM))
    assert first["inputTokens"] == second["inputTokens"] == tokens_by_rule(QUESTION)
    assert second["totalTokens"] == second["inputTokens"] + second["outputTokens"] + second["cacheReadInputTokens"]


# ------------------------------------------------------------------------------ InvokeModel


def _native_body(model_id: str, max_tokens: int = 200) -> dict:
    if model_id.startswith("anthropic") or "anthropic" in model_id:
        return {"anthropic_version": "bedrock-2023-05-31", "max_tokens": max_tokens, "system": SYSTEM,
                "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]}
    if model_id.startswith("amazon.nova"):
        return {"schemaVersion": "messages-v1", "system": [{"text": SYSTEM}],
                "messages": [{"role": "user", "content": [{"text": QUESTION}]}],
                "inferenceConfig": {"max_new_tokens": max_tokens}}
    return {"prompt": SYSTEM + "\n" + QUESTION, "max_gen_len": max_tokens}


def _native_text_and_usage(model_id: str, body: dict) -> tuple[str, int, int]:
    if "anthropic" in model_id:
        return body["content"][0]["text"], body["usage"]["input_tokens"], body["usage"]["output_tokens"]
    if model_id.startswith("amazon.nova"):
        return (body["output"]["message"]["content"][0]["text"], body["usage"]["inputTokens"],
                body["usage"]["outputTokens"])
    return body["generation"], body["prompt_token_count"], body["generation_token_count"]


@pytest.mark.parametrize("model_id", [HAIKU, NOVA, LLAMA])
def test_invoke_model_answers_in_the_providers_native_body(bedrock, tokens_by_rule, model_id):
    response = bedrock.invoke_model(modelId=model_id, body=json.dumps(_native_body(model_id)),
                                    contentType="application/json", accept="application/json")
    assert response["contentType"] == "application/json"
    body = json.loads(response["body"].read())
    text, input_tokens, output_tokens = _native_text_and_usage(model_id, body)
    assert output_tokens == tokens_by_rule(text) > 0
    assert input_tokens == tokens_by_rule(SYSTEM) + tokens_by_rule(QUESTION)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert int(headers["x-amzn-bedrock-input-token-count"]) == input_tokens
    assert int(headers["x-amzn-bedrock-output-token-count"]) == output_tokens
    assert int(headers["x-amzn-bedrock-invocation-latency"]) > 0
    if "anthropic" in model_id:
        assert body["type"] == "message" and body["model"] == "claude-3-5-haiku-20241022"
        assert body["stop_reason"] in ("end_turn", "max_tokens")


def test_titan_embeddings(bedrock, tokens_by_rule):
    text = "Refunds are issued to the original payment method."
    body = json.loads(bedrock.invoke_model(modelId=TITAN, body=json.dumps(
        {"inputText": text, "dimensions": 512, "normalize": True}))["body"].read())
    assert len(body["embedding"]) == 512 == len(body["embeddingsByType"]["float"])
    assert sum(v * v for v in body["embedding"]) == pytest.approx(1.0, abs=1e-4)
    assert body["inputTextTokenCount"] == tokens_by_rule(text)


def _chunks(response) -> list[dict]:
    return [json.loads(event["chunk"]["bytes"]) for event in response["body"]]


def _streamed_text(model_id: str, chunks: list[dict]) -> str:
    if "anthropic" in model_id:
        return "".join(c["delta"]["text"] for c in chunks if c["type"] == "content_block_delta")
    if model_id.startswith("amazon.nova"):
        return "".join(c["contentBlockDelta"]["delta"]["text"] for c in chunks if "contentBlockDelta" in c)
    return "".join(c["generation"] for c in chunks)


@pytest.mark.parametrize("model_id", [HAIKU, NOVA, LLAMA])
def test_invoke_stream_puts_invocation_metrics_in_the_last_chunk(bedrock, tokens_by_rule, model_id):
    body = json.dumps(_native_body(model_id))
    whole = json.loads(bedrock.invoke_model(modelId=model_id, body=body)["body"].read())
    response = bedrock.invoke_model_with_response_stream(modelId=model_id, body=body)
    assert response["contentType"] == "application/json"
    chunks = _chunks(response)
    metrics = [c.get("amazon-bedrock-invocationMetrics") for c in chunks]
    assert all(m is None for m in metrics[:-1]) and metrics[-1] is not None
    text = _streamed_text(model_id, chunks)
    assert text == _native_text_and_usage(model_id, whole)[0]
    assert metrics[-1]["outputTokenCount"] == tokens_by_rule(text)
    assert metrics[-1]["inputTokenCount"] == tokens_by_rule(SYSTEM) + tokens_by_rule(QUESTION)
    assert 0 < metrics[-1]["firstByteLatency"] < metrics[-1]["invocationLatency"]
    if "anthropic" in model_id:
        assert [chunks[0]["type"], chunks[-2]["type"], chunks[-1]["type"]] == [
            "message_start", "message_delta", "message_stop"]
        assert chunks[-2]["usage"]["output_tokens"] == metrics[-1]["outputTokenCount"]


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("model_id, kwargs, code, status", [
    ("no such model!", {}, "ValidationException", 400),
    ("anthropic.claude-imaginary-v9:0", {}, "ResourceNotFoundException", 404),
    ("anthropic.claude-sonnet-4-20250514-v1:0", {}, "ValidationException", 400),  # needs an inference profile
    (HAIKU, {"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, "ValidationException", 400),
    (HAIKU, {"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]},
     "ValidationException", 400),
    (HAIKU, {"inferenceConfig": {"maxTokens": 1_000_000}}, "ValidationException", 400),
    (TITAN, {}, "ValidationException", 400),  # an embedding model cannot converse
])
def test_converse_validation_errors(bedrock, model_id, kwargs, code, status):
    args = {**_converse_args(model_id), **kwargs}
    for call in (bedrock.converse, bedrock.converse_stream):
        error = _error(call, **args)
        assert _code_and_status(error) == (code, status)
        assert error.response["Error"]["Message"]


@pytest.mark.parametrize("model_id, body", [
    (HAIKU, {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),  # no anthropic_version
    (HAIKU, {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "hi"}]}),
    (NOVA, {"inferenceConfig": {}}),
    (LLAMA, {"max_gen_len": 10}),
    (TITAN, {"dimensions": 256}),
    (TITAN, {"inputText": "hi", "dimensions": 300}),
])
def test_invoke_validation_errors(bedrock, model_id, body):
    error = _error(bedrock.invoke_model, modelId=model_id, body=json.dumps(body))
    assert _code_and_status(error) == ("ValidationException", 400)
    assert "Malformed input request" in error.response["Error"]["Message"]
    assert _code_and_status(_error(bedrock.invoke_model, modelId=HAIKU, body=b"not json")) == (
        "ValidationException", 400)


def test_embedding_models_do_not_stream(bedrock):
    error = _error(bedrock.invoke_model_with_response_stream, modelId=TITAN, body=json.dumps({"inputText": "hi"}))
    assert _code_and_status(error) == ("ValidationException", 400)


@pytest.mark.parametrize("code, status", [("ServiceUnavailableException", 503), ("ModelTimeoutException", 408),
                                          ("InternalServerException", 500), ("ThrottlingException", 429),
                                          ("ModelErrorException", 424), ("AccessDeniedException", 403)])
def test_errors_on_demand(bedrock, code, status):
    args = _converse_args(HAIKU, f"Please fail #simulate:{code}")
    assert _code_and_status(_error(bedrock.converse, **args)) == (code, status)
    assert _code_and_status(_error(bedrock.converse_stream, **args)) == (code, status)


def test_a_call_slower_than_the_model_timeout_fails_with_model_timeout(start_sim, bedrock_client, quick_model):
    slow = quick_model("test.slow-v1:0", first_token_ms=5_000, timeout_ms=1_000)
    client = bedrock_client(start_sim(models=[slow]).url)
    for call in (client.converse, client.converse_stream):
        assert _code_and_status(_error(call, **_converse_args(slow.model_id))) == ("ModelTimeoutException", 408)


def test_an_error_rate_fails_calls_at_random_but_reproducibly(start_sim, bedrock_client, quick_model):
    flaky = quick_model("test.flaky-v1:0", error_rate=0.5)

    def outcomes(seed: int) -> list[str]:
        client = bedrock_client(start_sim(seed=seed, models=[flaky]).url)
        out = []
        for i in range(20):
            try:
                client.converse(**_converse_args(flaky.model_id, f"question {i}"))
                out.append("ok")
            except ClientError as error:
                out.append(_code_and_status(error)[0])
        return out

    first = outcomes(5)
    assert set(first) == {"ok", "ServiceUnavailableException"}
    assert outcomes(5) == first


def test_requests_need_an_authorization_header(simulator):
    response = httpx.post(f"{simulator.url}/model/{HAIKU}/converse",
                          json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")
    assert response.headers["x-amzn-RequestId"]
    assert response.json() == {"message": "Missing Authentication Token"}
    signed_anyhow = httpx.post(f"{simulator.url}/model/{HAIKU}/converse", headers={"Authorization": "Bearer x"},
                               json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    assert signed_anyhow.status_code == 200  # any credential is accepted


# ------------------------------------------------------------------------------ quotas


def test_requests_beyond_the_rpm_quota_are_throttled(start_sim, bedrock_client, quick_model):
    # speed 6: the one-minute window lasts 10 real seconds, far longer than these calls take
    model = quick_model("test.rpm-v1:0", rpm=3)
    sim = start_sim(speed=6, models=[model])
    client = bedrock_client(sim.url)
    for i in range(3):
        client.converse(**_converse_args(model.model_id, f"q{i}"))
    for call in (client.converse, client.converse_stream):
        error = _error(call, **_converse_args(model.model_id, "one too many"))
        assert _code_and_status(error) == ("ThrottlingException", 429)
        assert "Too many requests" in error.response["Error"]["Message"]
    error = _error(client.invoke_model, modelId=model.model_id, body=json.dumps(_native_body("amazon.nova")))
    assert _code_and_status(error) == ("ThrottlingException", 429)
    stats = sim.stats()[model.model_id]
    assert (stats["succeeded"], stats["throttled"]) == (3, 3)


def test_tokens_beyond_the_tpm_quota_are_throttled(start_sim, bedrock_client, quick_model):
    model = quick_model("test.tpm-v1:0", tpm=1_000)
    client = bedrock_client(start_sim(speed=6, models=[model]).url)
    args = _converse_args(model.model_id, max_tokens=60)
    per_call = client.converse(**args)["usage"]["totalTokens"]  # the same request always costs the same
    fits = 1_000 // per_call
    for _ in range(fits - 1):
        client.converse(**args)
    error = _error(client.converse, **args)
    assert _code_and_status(error) == ("ThrottlingException", 429)
    assert "Too many tokens" in error.response["Error"]["Message"]


def test_calls_beyond_the_concurrency_limit_are_throttled(start_sim, bedrock_client, quick_model):
    model = quick_model("test.busy-v1:0", concurrency=2, first_token_ms=60_000, timeout_ms=120_000)
    client = bedrock_client(start_sim(speed=100, models=[model]).url)
    # a stream holds its slot from the response headers until its last event
    open_streams = [client.converse_stream(**_converse_args(model.model_id, f"s{i}")) for i in range(2)]
    error = _error(client.converse, **_converse_args(model.model_id, "third"))
    assert _code_and_status(error) == ("ThrottlingException", 429)
    for stream in open_streams:
        stream["stream"].close()


# ------------------------------------------------------------------------------ determinism and time


def _session(url: str, bedrock_client) -> list:
    client = bedrock_client(url)
    out = [client.converse(**_converse_args(HAIKU, f"question {i}"))["output"] for i in range(3)]
    out.append(_chunks(client.invoke_model_with_response_stream(modelId=NOVA,
                                                                 body=json.dumps(_native_body(NOVA))))[:-1])
    out.append(json.loads(client.invoke_model(modelId=TITAN, body=json.dumps({"inputText": "x"}))["body"].read()))
    return out


def test_the_same_seed_and_requests_give_the_same_answers(start_sim, bedrock_client):
    first = _session(start_sim(seed=11).url, bedrock_client)
    assert _session(start_sim(seed=11).url, bedrock_client) == first
    assert _session(start_sim(seed=12).url, bedrock_client) != first


def test_reported_latency_is_uncompressed_whatever_the_speed(start_sim, bedrock_client):
    latencies = set()
    for speed in (100, 1000):
        client = bedrock_client(start_sim(seed=1, speed=speed).url)
        latencies.add(client.converse(**_converse_args(HAIKU))["metrics"]["latencyMs"])
    assert len(latencies) == 1
    assert latencies.pop() > 320  # at least Haiku's idle time to first token: simulated, not real, ms


def test_stats_match_what_the_client_saw(start_sim, bedrock_client, quick_model):
    model = quick_model("test.count-v1:0", rpm=4)
    sim = start_sim(speed=6, models=[model])
    client = bedrock_client(sim.url)
    input_tokens = output_tokens = throttled = 0
    for i in range(6):
        try:
            usage = client.converse(**_converse_args(model.model_id, f"q{i}"))["usage"]
            input_tokens += usage["inputTokens"]
            output_tokens += usage["outputTokens"]
        except ClientError:
            throttled += 1
    stats = sim.stats()[model.model_id]
    assert (stats["requests"], stats["succeeded"], stats["throttled"]) == (6, 4, throttled) == (6, 4, 2)
    assert (stats["input_tokens"], stats["output_tokens"]) == (input_tokens, output_tokens)


def test_a_stream_can_fail_half_way_with_an_in_stream_error(simulator, bedrock):
    from botocore.exceptions import EventStreamError

    args = _converse_args(HAIKU, "Tell me more #simulate:ModelStreamErrorException")
    received = []
    with pytest.raises(EventStreamError) as caught:
        for event in bedrock.converse_stream(**args)["stream"]:
            received.append(event)
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert received and "messageStart" in received[0]  # content came before the failure
    with pytest.raises(EventStreamError):
        for _ in bedrock.invoke_model_with_response_stream(modelId=NOVA, body=json.dumps(
                {"messages": [{"role": "user", "content": [{"text": "#simulate:ModelStreamErrorException"}]}]}))["body"]:
            pass
    assert _code_and_status(_error(bedrock.converse, **args)) == ("ModelErrorException", 424)
    assert simulator.stats()[HAIKU]["errors"] == {"ModelStreamErrorException": 1, "ModelErrorException": 1}
