"""Real boto3 and OpenAI clients -> the gateway (real uvicorn) -> the model simulator.

Every operation, streaming and not: the answer through the gateway is the answer the simulator
gives directly (the simulator answers the same request the same way), and each call lands in
the store as a record with its caller, latency, TTFT and tokens.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from botocore.exceptions import ClientError

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
SONNET_PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
GPT = "gpt-4o-mini"
OPENAI_EMBED = "text-embedding-3-small"

# Fields that measure this particular call (time, ids) rather than what the model answered.
_TIMING = {"latencyMs", "invocationLatency", "firstByteLatency", "ResponseMetadata", "id", "created"}


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in _TIMING}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def _converse_args(text: str, model: str = HAIKU) -> dict:
    return {"modelId": model, "messages": [{"role": "user", "content": [{"text": text}]}],
            "inferenceConfig": {"maxTokens": 300}, "requestMetadata": {"tenant": "acme"}}


def _anthropic_body(text: str) -> bytes:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200,
                       "messages": [{"role": "user", "content": text}]}).encode()


def _call_bedrock(client, operation: str, text: str, model: str = HAIKU):
    """One call of ``operation``; returns (answer without timing, input tokens, output tokens)."""
    if operation == "Converse":
        answer = client.converse(**_converse_args(text, model))
        return _without_timing(answer), answer["usage"]["inputTokens"], answer["usage"]["outputTokens"]
    if operation == "ConverseStream":
        events = list(client.converse_stream(**_converse_args(text, model))["stream"])
        usage = events[-1]["metadata"]["usage"]
        return _without_timing(events), usage["inputTokens"], usage["outputTokens"]
    if operation == "InvokeModel":
        answer = client.invoke_model(modelId=model, body=_anthropic_body(text))
        body = json.loads(answer["body"].read())
        return _without_timing(body), body["usage"]["input_tokens"], body["usage"]["output_tokens"]
    chunks = [json.loads(event["chunk"]["bytes"])
              for event in client.invoke_model_with_response_stream(modelId=model, body=_anthropic_body(text))["body"]]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    return _without_timing(chunks), metrics["inputTokenCount"], metrics["outputTokenCount"]


BEDROCK_OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream")


@pytest.mark.parametrize("operation", BEDROCK_OPERATIONS)
def test_bedrock_call_through_the_gateway_is_the_direct_call_and_is_recorded(
        operation, simulator, make_gateway, server, bedrock_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream=simulator.url, openai_upstream=simulator.openai_url)
    text = f"Why did the {operation} deploy fail at 14:02?"
    through, input_tokens, output_tokens = _call_bedrock(bedrock_client(gateway.url), operation, text)
    direct, _, _ = _call_bedrock(bedrock_client(simulator.url), operation, text)
    assert through == direct

    [record] = records(gateway, server)
    assert (record["operation"], record["modelId"], record["source"], record["provider"], record["region"]) == \
        (operation, HAIKU, "gateway", "aws.bedrock", "us-east-1")
    assert record["identity.arn"] == "arn:dashcam:iam::anonymous"  # open mode: no keys
    assert (record["input.inputTokenCount"], record["output.outputTokenCount"]) == (input_tokens, output_tokens)
    assert record["errorCode"] is None and record["throttled"] == 0
    assert record["requestMetadata.gatewayAttempts"] == "1" and record["requestMetadata.attempt"] == "1"
    assert record["latencyMs"] > 0
    if operation.endswith("Stream"):
        assert 0 < record["timeToFirstTokenMs"] <= record["latencyMs"]
    else:
        assert record["timeToFirstTokenMs"] is None
    if operation.startswith("Converse"):
        assert record["requestMetadata.tenant"] == "acme"  # the caller's requestMetadata is kept


def test_embeddings_and_inference_profile_arns_pass_through(simulator, make_gateway, server, bedrock_client,
                                                             records):
    gateway = make_gateway(record_to=server, bedrock_upstream=simulator.url, openai_upstream="none")
    body = json.dumps({"inputText": "refund policy"}).encode()
    through = json.loads(bedrock_client(gateway.url).invoke_model(modelId=TITAN_EMBED, body=body)["body"].read())
    direct = json.loads(bedrock_client(simulator.url).invoke_model(modelId=TITAN_EMBED, body=body)["body"].read())
    assert through == direct
    # An ARN model id carries ':' and '/', percent-encoded in the path; both must reach the upstream intact.
    answer = bedrock_client(gateway.url).converse(**_converse_args("hello", SONNET_PROFILE_ARN))
    assert answer["output"]["message"]["content"]
    rows = records(gateway, server)
    assert [r["modelId"] for r in rows] == [TITAN_EMBED, SONNET_PROFILE_ARN]
    assert rows[0]["output.outputTokenCount"] == 0


def _chat(client, text: str, stream: bool):
    args = {"model": GPT, "messages": [{"role": "user", "content": text}], "max_tokens": 200}
    if not stream:
        answer = client.chat.completions.create(**args)
        return answer.choices[0].message.content, answer.usage.prompt_tokens, answer.usage.completion_tokens
    chunks = list(client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "chat-stream"])
def test_openai_chat_through_the_gateway_is_the_direct_call_and_is_recorded(
        stream, simulator, make_gateway, server, openai_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream="none", openai_upstream=simulator.openai_url,
                           app="support-bot")
    client = openai_client(gateway.openai_url, default_headers={"X-Dashcam-User": "alice"})
    through = _chat(client, "Summarize the incident.", stream)
    assert through == _chat(openai_client(simulator.openai_url), "Summarize the incident.", stream)

    [record] = records(gateway, server)
    assert (record["operation"], record["modelId"], record["provider"], record["source"]) == \
        ("chat", GPT, "openai", "gateway")
    assert (record["input.inputTokenCount"], record["output.outputTokenCount"]) == through[1:]
    assert (record["app"], record["userId"]) == ("support-bot", "alice")
    assert record["latencyMs"] > 0
    if stream:
        assert 0 < record["timeToFirstTokenMs"] <= record["latencyMs"]


def test_openai_embeddings_responses_and_other_paths(simulator, make_gateway, server, openai_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream="none", openai_upstream=simulator.openai_url)
    through, direct = openai_client(gateway.openai_url), openai_client(simulator.openai_url)
    embedded = through.embeddings.create(model=OPENAI_EMBED, input="refund policy")
    assert embedded.data[0].embedding == direct.embeddings.create(model=OPENAI_EMBED, input="refund policy").data[0] \
        .embedding
    answer = through.responses.create(model=GPT, input="Draft a reply.")
    assert answer.output_text == direct.responses.create(model=GPT, input="Draft a reply.").output_text
    events = [e.type for e in through.responses.create(model=GPT, input="Draft a reply.", stream=True)]
    assert events[-1] == "response.completed"
    # Anything else is passed through, not recorded.
    assert [m.id for m in through.models.list()] == [m.id for m in direct.models.list()]

    rows = records(gateway, server)
    assert [r["operation"] for r in rows] == ["embeddings", "responses", "responses"]
    assert rows[0]["input.inputTokenCount"] == embedded.usage.prompt_tokens
    assert rows[1]["output.outputTokenCount"] == answer.usage.output_tokens
    assert rows[2]["timeToFirstTokenMs"] is not None


def test_upstream_errors_reach_the_caller_as_the_provider_sent_them(simulator, make_gateway, server,
                                                                     bedrock_client, openai_client, records):
    gateway = make_gateway(record_to=server, bedrock_upstream=simulator.url, openai_upstream=simulator.openai_url)
    args = _converse_args("please fail #simulate:AccessDeniedException")
    with pytest.raises(ClientError) as through:
        bedrock_client(gateway.url).converse(**args)
    with pytest.raises(ClientError) as direct:
        bedrock_client(simulator.url).converse(**args)
    assert through.value.response["Error"] == direct.value.response["Error"]
    assert through.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    with pytest.raises(openai.BadRequestError) as bad:
        openai_client(gateway.openai_url).chat.completions.create(model=GPT, messages=[], max_tokens=-1)
    assert bad.value.status_code == 400 and bad.value.body["type"] == "invalid_request_error"

    rows = records(gateway, server)
    assert [(r["errorCode"], r["status"]) for r in rows] == [("AccessDeniedException", "403"),
                                                            ("invalid_request_error", "400")]
    assert "access" in rows[0]["errorMessage"].lower()


def test_unknown_paths_get_each_providers_not_found(simulator, make_gateway):
    gateway = make_gateway(bedrock_upstream=simulator.url, openai_upstream="none")
    bedrock = httpx.post(gateway.url + "/model/x/summon", content=b"{}")
    assert (bedrock.status_code, bedrock.headers["x-amzn-errortype"]) == (404, "UnknownOperationException")
    off = httpx.post(gateway.url + "/v1/chat/completions", json={"model": GPT})
    assert off.status_code == 404 and off.json()["error"]["code"] == "unknown_url"


def test_chunks_are_passed_on_as_they_arrive(make_gateway, bedrock_client):
    # A stream is relayed, not collected: the caller holds the first event while the upstream is
    # still sending (the simulator counts a stream in its stats only once it has sent its end).
    # At real speed the answer takes about a second, far longer than a relay takes per event.
    from dashcam.simulate.server import start_simulator

    with start_simulator(seed=3, speed=1) as slow:
        gateway = make_gateway(bedrock_upstream=slow.url, openai_upstream="none")
        args = {**_converse_args("Write a long answer."), "inferenceConfig": {"maxTokens": 150}}
        events = iter(bedrock_client(gateway.url).converse_stream(**args)["stream"])
        first = next(events)
        finished_upstream = slow.stats().get(HAIKU, {}).get("requests", 0)
        rest = list(events)
    assert "messageStart" in first and finished_upstream == 0
    assert "metadata" in rest[-1] and len(rest) > 3
