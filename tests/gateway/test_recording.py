"""Reading Bedrock event streams back for records, and the recorder's hand-off to capture's shipper."""

from __future__ import annotations

import base64

import httpx
import orjson

from dashcam.capture.shipper import Delivery
from dashcam.gateway.recording import (MALFORMED_STREAM, GatewayAttempt, Recorder, caller_arn, decode_event_stream,
                                       describe_bedrock, recorder_settings)
from dashcam.simulate.eventstream import event_message, exception_message

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
AUTH = {"authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/bedrock/aws4_request, "
                         "SignedHeaders=host, Signature=" + "0" * 64}


def test_streams_decode_to_what_botocore_hands_an_application(simulator, bedrock_client):
    body = {"messages": [{"role": "user", "content": [{"text": "hello"}]}]}
    raw = httpx.post(f"{simulator.url}/model/{HAIKU}/converse-stream", headers=AUTH, json=body).content
    # Split at awkward places: messages straddle chunks, as they do on the wire.
    chunks = [raw[i:i + 37] for i in range(0, len(raw), 37)]
    decoded = decode_event_stream(chunks, "ConverseStream")
    via_boto = list(bedrock_client(simulator.url).converse_stream(modelId=HAIKU, **body)["stream"])
    assert decoded.error_code is None
    assert [list(e) for e in decoded.events] == [list(e) for e in via_boto]
    # Same payloads, less the padding Bedrock adds (``p``), which botocore's parser drops.
    delta = {k: v for k, v in decoded.events[1]["contentBlockDelta"].items() if k != "p"}
    assert delta == via_boto[1]["contentBlockDelta"]

    invoke = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 40, "messages": [{"role": "user", "content": "hi"}]}
    raw = httpx.post(f"{simulator.url}/model/{HAIKU}/invoke-with-response-stream", headers=AUTH, json=invoke).content
    chunks = decode_event_stream([raw], "InvokeModelWithResponseStream").events
    assert all(isinstance(c, bytes) for c in chunks)
    assert orjson.loads(chunks[-1])["amazon-bedrock-invocationMetrics"]["outputTokenCount"] >= 1


def test_in_stream_exceptions_and_garbage_end_the_stream_with_an_error():
    start = event_message("messageStart", b'{"role":"assistant"}')
    throttled = exception_message("throttlingException", b'{"message":"slow down"}')
    decoded = decode_event_stream([start + throttled], "ConverseStream")
    assert decoded.events == [{"messageStart": {"role": "assistant"}}]
    assert (decoded.error_code, decoded.error_message) == ("ThrottlingException", "slow down")
    broken = decode_event_stream([start, b"\x00\x00\x00\x10garbage-garbage"], "ConverseStream")
    assert broken.error_code == MALFORMED_STREAM and broken.events == [{"messageStart": {"role": "assistant"}}]


def test_a_bedrock_attempt_becomes_a_record_with_caller_and_requests_metadata():
    attempt = GatewayAttempt("aws.bedrock", "InvokeModelWithResponseStream", describe_bedrock, 1.7e9, 10.0,
                             {"gatewayWaitMs": "12.5"}, caller=caller_arn("DKEXAMPLE"))
    attempt.request = (b'{"max_tokens": 5, "messages": []}', "application/json")
    chunk = base64.b64encode(orjson.dumps({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 3, "outputTokenCount": 4}})).decode()
    attempt.raw_stream = [event_message("chunk", orjson.dumps({"bytes": chunk}))]
    facts = describe_bedrock(attempt)
    assert (facts.input_tokens, facts.output_tokens) == (3, 4)
    assert facts.extra["identity"] == {"arn": "arn:dashcam:iam::key/DKEXAMPLE"}
    assert caller_arn(None) == "arn:dashcam:iam::anonymous"


class _Keeping:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def send(self, records, *args, **kwargs) -> Delivery:
        self.records += records
        return Delivery(len(records), 0)

    def close(self) -> None:
        pass


def test_the_recorder_marks_records_as_the_gateways_and_counts_attempts(tmp_path):
    kept = _Keeping()
    settings = recorder_settings(url=None, key=None, data_dir=str(tmp_path), store=None, body="on",
                                 log_group="/dashcam/gateway", queue_size=10, flush_interval=0.01)
    recorder = Recorder(settings, sender=kept)
    attempts = []
    for number in (1, 2):
        attempt = GatewayAttempt("aws.bedrock", "Converse", describe_bedrock, 1.7e9, 10.0, {}, caller="arn:x")
        attempt.number = number
        attempt.request = b'{"messages": [], "requestMetadata": {"gatewayWaitMs": "spoofed", "tenant": "a"}}'
        attempt.response = b'{"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "end_turn"}'
        attempt.labels["gatewayWaitMs"] = "1.000"
        attempts.append(attempt)
    recorder.submit(attempts)
    assert recorder.flush(5)
    recorder.close(1)
    assert [r["source"] for r in kept.records] == ["gateway", "gateway"]
    assert [r["requestMetadata"]["gatewayAttempts"] for r in kept.records] == ["2", "2"]
    assert kept.records[0]["requestMetadata"]["tenant"] == "a"
    assert kept.records[0]["requestMetadata"]["gatewayWaitMs"] == "1.000"  # the caller cannot spoof it
    assert kept.records[0]["identity"] == {"arn": "arn:x"}
    assert recorder.stats().sent == 2
