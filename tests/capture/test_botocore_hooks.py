"""Capture of real boto3 bedrock-runtime clients against the simulator, delivered to a real server."""

from __future__ import annotations

import gc
import json

import boto3
import botocore.eventstream
import botocore.exceptions
import pytest
from botocore.config import Config

import dashcam
import dashcam.capture
from dashcam.capture.attempt import Attempt
from dashcam.errors import ConfigError

from .conftest import HAIKU, LLAMA, NOVA, TITAN_EMBED, by_model, delivered, simulator_delta


def bedrock(simulator, max_attempts: int = 3):
    """A real boto3 client pointed at the simulator."""
    return boto3.client(
        "bedrock-runtime", endpoint_url=simulator.url, region_name="us-west-2",
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"text": text}]}]


def anthropic_body(text: str, **extra) -> str:
    return json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 200,
                       "messages": [{"role": "user", "content": text}], **extra})


def run_every_operation(client) -> dict[str, int]:
    """Every operation, streaming and not, success and failure; returns what the application saw."""
    seen = {"throttled": 0, "validation": 0, "ok": 0}
    client.converse(modelId=HAIKU, messages=user("How do I rotate keys?"), inferenceConfig={"maxTokens": 300})
    client.converse(modelId=NOVA, messages=user("Summarize the incident."))
    for _ in client.converse_stream(modelId=HAIKU, messages=user("Tell me about retries."))["stream"]:
        pass
    for _ in client.converse_stream(modelId=NOVA, messages=user("Stream a poem."))["stream"]:
        pass
    client.invoke_model(modelId=HAIKU, body=anthropic_body("What is a p99?"))["body"].read()
    client.invoke_model(modelId=LLAMA, body=json.dumps({"prompt": "Explain TTFT.", "max_gen_len": 128}))["body"].read()
    client.invoke_model(modelId=TITAN_EMBED, body=json.dumps({"inputText": "embed me"}))["body"].read()
    for _ in client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body("stream it"))["body"]:
        pass
    for _ in client.invoke_model_with_response_stream(
            modelId=LLAMA, body=json.dumps({"prompt": "stream llama", "max_gen_len": 64}))["body"]:
        pass
    seen["ok"] = 9
    for call in (
        lambda: client.converse(modelId=HAIKU, messages=user("please #simulate:ThrottlingException")),
        lambda: client.invoke_model(modelId=NOVA, body=json.dumps(
            {"messages": [{"role": "user", "content": [{"text": "#simulate:ThrottlingException"}]}]})),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "ThrottlingException"
        seen["throttled"] += 1
    for call in (
        lambda: client.converse(modelId=NOVA, messages=user("#simulate:ValidationException")),
        lambda: client.invoke_model(modelId=HAIKU, body=b"this is not json"),
        lambda: client.converse_stream(modelId=HAIKU, messages=user("#simulate:ValidationException")),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        seen["validation"] += 1
    return seen


def test_every_operation_matches_what_the_simulator_did(simulator, captured_to):
    client = bedrock(simulator)
    before = simulator.stats()
    seen = run_every_operation(client)
    rows = delivered(captured_to)
    did = simulator_delta(before, simulator.stats())

    recorded = by_model(rows)
    assert set(recorded) == set(did)
    for model, sim in did.items():
        mine = recorded[model]
        for key in ("requests", "succeeded", "throttled", "input_tokens", "output_tokens",
                    "cache_read_tokens", "cache_write_tokens"):
            assert mine[key] == sim[key], (model, key)
        assert dict(mine["errors"]) == dict(sim["errors"]), model
        assert sorted(r["operation"] for r in rows if r["modelId"] == model) == sorted(sim["operations"].elements())

    # Each throttled call was retried by botocore (3 attempts): one record per attempt, numbered,
    # sharing the call's invocation id.
    throttled = [r for r in rows if r["errorCode"] == "ThrottlingException"]
    assert len(throttled) == 3 * seen["throttled"]
    calls = {}
    for row in throttled:
        calls.setdefault(row["requestMetadata.invocationId"], []).append(int(row["requestMetadata.attempt"]))
    assert sorted(sorted(v) for v in calls.values()) == [[1, 2, 3]] * seen["throttled"]
    assert all(r["throttled"] == 1 and r["status"] == "429" for r in throttled)
    validation = [r for r in rows if r["errorCode"] == "ValidationException"]
    assert len(validation) == seen["validation"] and all(r["requestMetadata.attempt"] == "1" for r in validation)

    for row in rows:
        assert (row["source"], row["provider"], row["app"], row["region"]) == ("sdk", "aws.bedrock", "tests", "us-west-2")
        assert row["requestId"] and row["latencyMs"] > 0
        streamed = row["operation"] in ("ConverseStream", "InvokeModelWithResponseStream")
        if streamed and row["errorCode"] is None:
            assert 0 < row["timeToFirstTokenMs"] < row["latencyMs"]
            assert row["stopReason"]
        else:
            assert row["timeToFirstTokenMs"] is None
        if row["errorCode"] is None and row["modelId"] != TITAN_EMBED:
            assert row["stopReason"] and row["output.outputTokenCount"] > 0


def test_request_ids_are_the_ones_the_application_got(simulator, captured_to):
    client = bedrock(simulator)
    answers = [client.converse(modelId=NOVA, messages=user(f"question {i}")) for i in range(3)]
    rows = delivered(captured_to)
    assert [r["requestId"] for r in rows] == [a["ResponseMetadata"]["RequestId"] for a in answers]
    assert [r["output.outputTokenCount"] for r in rows] == [a["usage"]["outputTokens"] for a in answers]


def test_ttft_is_taken_when_the_application_pulls_the_first_event(simulator, captured_to):
    import time

    client = bedrock(simulator)
    response = client.converse_stream(modelId=HAIKU, messages=user("slow reader"))
    time.sleep(0.3)  # the application does other work before it reads the stream
    for _ in response["stream"]:
        pass
    (row,) = delivered(captured_to)
    assert row["timeToFirstTokenMs"] >= 300


def test_a_stream_closed_early_or_never_read_still_leaves_its_record(simulator, captured_to):
    client = bedrock(simulator)
    stream = client.converse_stream(modelId=HAIKU, messages=user("I will stop listening"))["stream"]
    for count, _ in enumerate(stream, 1):
        if count == 2:
            break
    stream.close()
    unread = client.invoke_model_with_response_stream(modelId=HAIKU, body=anthropic_body("never read"))
    del unread
    gc.collect()
    rows = delivered(captured_to)
    assert [r["operation"] for r in rows] == ["ConverseStream", "InvokeModelWithResponseStream"]
    assert rows[0]["timeToFirstTokenMs"] is not None and rows[0]["output.outputTokenCount"] is None
    assert rows[1]["timeToFirstTokenMs"] is None


def without_ids(raw: bytes) -> dict:
    """A JSON answer without the parts that differ per request (its message id)."""
    decoded = json.loads(raw)
    decoded.pop("id", None)
    if isinstance(decoded.get("message"), dict):
        decoded["message"].pop("id", None)
    return decoded


def test_the_application_gets_the_same_answers_with_capture_on(simulator, capture_session):
    client = bedrock(simulator)
    body = anthropic_body("same answer please")
    plain_invoke = client.invoke_model(modelId=HAIKU, body=body)["body"].read()
    plain_events = list(client.converse_stream(modelId=NOVA, messages=user("same stream"))["stream"])
    plain_chunks = [without_ids(e["chunk"]["bytes"]) for e in
                    client.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"]]
    capture_session(url="http://127.0.0.1:9")  # nowhere: delivery fails, the application must not notice
    captured = bedrock(simulator)
    response = captured.invoke_model(modelId=HAIKU, body=body)
    assert without_ids(response["body"].read()) == without_ids(plain_invoke)
    assert list(captured.converse_stream(modelId=NOVA, messages=user("same stream"))["stream"]) == plain_events
    stream = captured.invoke_model_with_response_stream(modelId=HAIKU, body=body)["body"]
    assert isinstance(stream, botocore.eventstream.EventStream)
    assert [without_ids(e["chunk"]["bytes"]) for e in stream] == plain_chunks
    assert dashcam.capture.stats().captured == 3


def test_body_modes(simulator, secured_server, capture_session):
    key = secured_server.keys.create("ingest")
    client = bedrock(simulator)
    config = {"maxTokens": 123, "temperature": 0.5}
    for mode in ("on", "metadata", "off"):
        capture_session(url=secured_server.url, key=key.bearer, body=mode, log_group=f"/modes/{mode}")
        client.converse(modelId=NOVA, messages=user("secret text"), inferenceConfig=config)
        client.invoke_model(modelId=HAIKU, body=anthropic_body("secret text"))["body"].read()
        dashcam.capture.flush(10)
    bodies = {}
    for mode in ("on", "metadata", "off"):
        result = secured_server.dashcam.query("fields @message | sort @timestamp asc", log_groups=[f"/modes/{mode}"])
        bodies[mode] = [json.loads(row["@message"]) for row in result.rows]
    on, metadata, off = bodies["on"], bodies["metadata"], bodies["off"]
    assert "secret text" in json.dumps(on)
    assert on[0]["input"]["inputBodyJson"]["inferenceConfig"] == config
    assert on[1]["output"]["outputBodyJson"]["usage"]["output_tokens"] == on[1]["output"]["outputTokenCount"]
    assert "secret text" not in json.dumps(metadata)
    assert metadata[0]["input"]["inputBodyJson"] == {"inferenceConfig": config}
    assert metadata[0]["output"]["outputBodyJson"]["stopReason"] == metadata[0]["stopReason"]
    assert "content" not in json.dumps(metadata[1]["output"]["outputBodyJson"])
    for record in off:
        assert "inputBodyJson" not in record["input"] and "outputBodyJson" not in record["output"]
        assert record["input"]["inputTokenCount"] > 0 and record["output"]["outputTokenCount"] > 0
        assert record["stopReason"]
    # The counts do not depend on the mode.
    counts = {mode: [(r["input"]["inputTokenCount"], r["output"]["outputTokenCount"]) for r in records]
              for mode, records in bodies.items()}
    assert len(counts["on"]) == 2 and counts["on"] == counts["metadata"] == counts["off"]


def test_prompt_cache_tokens_are_recorded(simulator, captured_to):
    client = bedrock(simulator)
    long_prefix = "You are a careful assistant. " * 40
    messages = [{"role": "user", "content": [{"text": long_prefix}, {"cachePoint": {"type": "default"}},
                                             {"text": "Question?"}]}]
    before = simulator.stats()
    first = client.converse(modelId=HAIKU, messages=messages)
    second = client.converse(modelId=HAIKU, messages=messages)
    rows = delivered(captured_to)
    did = simulator_delta(before, simulator.stats())[HAIKU]
    assert sum(r["input.cacheWriteInputTokenCount"] or 0 for r in rows) == did["cache_write_tokens"]
    assert sum(r["input.cacheReadInputTokenCount"] or 0 for r in rows) == did["cache_read_tokens"]
    assert rows[1]["input.cacheReadInputTokenCount"] == second["usage"].get("cacheReadInputTokens")
    assert first["usage"].get("cacheWriteInputTokens") == rows[0]["input.cacheWriteInputTokenCount"]


def test_labels_and_request_metadata(simulator, captured_to):
    client = bedrock(simulator)
    with dashcam.capture.labels(user="alice", session="s-1"):
        client.converse(modelId=NOVA, messages=user("hi"), requestMetadata={"tenant": "acme"})
    client.converse(modelId=NOVA, messages=user("hi again"))
    rows = delivered(captured_to, "display userId, sessionId, requestMetadata.tenant, app")
    assert rows == [{"userId": "alice", "sessionId": "s-1", "requestMetadata.tenant": "acme", "app": "tests"},
                    {"userId": None, "sessionId": None, "requestMetadata.tenant": None, "app": "tests"}]


def test_clients_made_before_and_after_instrument_and_one_captured_client(simulator, secured_server,
                                                                           capture_session):
    key = secured_server.keys.create("ingest")
    early = bedrock(simulator)
    capture_session(url=secured_server.url, key=key.bearer, existing_clients=False)
    late = bedrock(simulator)
    early.converse(modelId=NOVA, messages=user("early, not captured"))
    late.converse(modelId=NOVA, messages=user("late, captured"))
    assert dashcam.capture.stats().captured == 1
    dashcam.capture.instrument(url=secured_server.url, key=key.bearer, flush_interval=0.05)  # finds `early` now
    early.converse(modelId=NOVA, messages=user("early, captured now"))
    assert dashcam.capture.stats().captured == 1  # a new session counts afresh

    dashcam.capture.uninstrument(timeout=5)
    early.converse(modelId=NOVA, messages=user("after uninstrument"))
    late.converse(modelId=NOVA, messages=user("after uninstrument"))
    assert dashcam.capture.stats().captured == 1

    single = dashcam.capture(bedrock(simulator), url=secured_server.url, key=key.bearer, flush_interval=0.05)
    other = bedrock(simulator)
    single.converse(modelId=NOVA, messages=user("captured alone"))
    other.converse(modelId=NOVA, messages=user("not captured"))
    assert dashcam.capture.flush(10)
    assert dashcam.capture.stats().captured == 1 and dashcam.capture.stats().sent == 1
    with pytest.raises(ConfigError, match="bedrock-runtime"):
        dashcam.capture(boto3.client("s3", region_name="us-east-1"))
    with pytest.raises(ConfigError, match="cannot capture"):
        dashcam.capture(object())


def test_a_failure_inside_capture_never_reaches_the_application(simulator, capture_session, monkeypatch):
    capture_session(url="http://127.0.0.1:9")
    client = bedrock(simulator)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in capture")

    monkeypatch.setattr(Attempt, "__init__", broken)
    answer = client.converse(modelId=NOVA, messages=user("still works"))
    assert answer["stopReason"]
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        client.converse(modelId=NOVA, messages=user("#simulate:ThrottlingException"))
    assert dashcam.capture.stats().errors >= 2


def test_connection_failures_are_recorded_and_raised_unchanged(capture_session):
    capture_session(url="http://127.0.0.1:9")
    client = boto3.client("bedrock-runtime", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                          aws_access_key_id="a", aws_secret_access_key="b",
                          config=Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1))
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.converse(modelId=NOVA, messages=user("nobody home"))
    assert dashcam.capture.stats().captured == 2  # both attempts

