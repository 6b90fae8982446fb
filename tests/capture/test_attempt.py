"""Building the Bedrock-shaped record of an attempt: envelope, timings, labels, body modes."""

from __future__ import annotations

import base64
import copy
import time
from datetime import datetime, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from dashcam.capture.attempt import CONTENT_KEYS, Attempt, Described, build_record, json_default, strip_content
from dashcam.capture.settings import resolve
from dashcam.records import normalize

PROFILE = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"


def attempt_with(facts: Described, **fields) -> Attempt:
    attempt = Attempt("aws.bedrock", "ConverseStream", lambda a: facts, 1772445600.25, 100.0, {"app": "a"})
    attempt.ended = 100.5
    for name, value in fields.items():
        setattr(attempt, name, value)
    return attempt


def test_envelope_timings_and_metadata():
    facts = Described(input_body={"messages": []}, output_body={"stopReason": "end_turn"}, input_tokens=10,
                      output_tokens=20, cache_read=4, stop_reason="end_turn", request_metadata={"tenant": "t1"})
    attempt = attempt_with(facts, model_id=PROFILE, region="us-east-1", request_id="rid", status=200,
                           number=2, invocation_id="inv-1", first_chunk=100.125)
    record = build_record(attempt, resolve(identity_arn="arn:aws:iam::123456789012:user/app"))
    moment = datetime.fromtimestamp(attempt.started_at, timezone.utc)
    assert record["timestamp"] == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert (record["schemaType"], record["schemaVersion"], record["accountId"]) == \
        ("ModelInvocationLog", "1.0", "123456789012")
    assert record["identity"] == {"arn": "arn:aws:iam::123456789012:user/app"}
    assert record["latencyMs"] == (attempt.ended - attempt.started) * 1000
    assert record["timeToFirstTokenMs"] == (attempt.first_chunk - attempt.started) * 1000
    assert record["requestMetadata"] == {"app": "a", "tenant": "t1", "attempt": "2", "invocationId": "inv-1"}
    assert record["input"] == {"inputContentType": "application/json", "inputBodyJson": {"messages": []},
                               "inputTokenCount": 10, "cacheReadInputTokenCount": 4}
    assert record["output"]["outputTokenCount"] == 20 and record["status"] == "200"
    assert (record["provider"], record["source"], record["stopReason"]) == ("aws.bedrock", "sdk", "end_turn")


def test_normalize_keeps_what_capture_measured_and_derives_the_rest():
    facts = Described(output_body={"metrics": {"latencyMs": 999}, "stopReason": "max_tokens"},
                      stop_reason="max_tokens", output_tokens=5)
    record = build_record(attempt_with(facts, model_id="amazon.nova-lite-v1:0"), resolve())
    captured = copy.deepcopy(record)
    normalized = normalize(record, source="api")
    for key in ("latencyMs", "timeToFirstTokenMs", "stopReason", "source", "provider"):
        assert normalized[key] == captured.get(key)
    assert normalized["throttled"] == 0 and normalized["app"] == "a"

    throttled = build_record(attempt_with(Described(), error_code="rate_limit_exceeded", status=429,
                                          error_message="x" * 2000), resolve())
    assert "output" not in throttled and len(throttled["errorMessage"]) == 512
    assert normalize(throttled, source="api")["throttled"] == 1


def test_an_error_with_a_partial_stream_keeps_its_output():
    facts = Described(output_body={"output": {"message": {"content": [{"text": "par"}]}}})
    record = build_record(attempt_with(facts, error_code="ModelStreamErrorException"), resolve())
    assert record["errorCode"] == "ModelStreamErrorException" and record["output"]["outputBodyJson"]


def test_body_modes_shape_both_bodies():
    facts = Described(input_body={"messages": [{"content": [{"text": "secret"}]}], "inferenceConfig": {"maxTokens": 5}},
                      output_body={"output": {"message": {"content": [{"text": "secret"}]}}, "usage": {"x": 1}},
                      input_tokens=1, output_tokens=2)
    on, metadata, off = (build_record(attempt_with(facts), resolve(body=mode)) for mode in ("on", "metadata", "off"))
    assert on["input"]["inputBodyJson"] == facts.input_body
    assert metadata["input"]["inputBodyJson"] == {"inferenceConfig": {"maxTokens": 5}}
    assert metadata["output"]["outputBodyJson"] == {"output": {}, "usage": {"x": 1}}
    assert "inputBodyJson" not in off["input"] and "outputBodyJson" not in off["output"]
    assert {r["input"]["inputTokenCount"] for r in (on, metadata, off)} == {1}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(sorted(CONTENT_KEYS)[:6] + ["usage", "stopReason", "role", "model"]), inner, max_size=4),
    max_leaves=20,
)


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value)) if value else set()
    return set()


@given(json_values)
def test_strip_content_removes_exactly_the_content_members(value):
    stripped = strip_content(value)
    assert not (_keys(stripped) & CONTENT_KEYS)
    assert _keys(stripped) <= _keys(value)
    if not (_keys(value) & CONTENT_KEYS):
        assert stripped == value


def test_request_snapshots_serialize_what_json_cannot_hold():
    image = bytes(range(256))
    snapshot = orjson.loads(orjson.dumps({"bytes": image, "when": datetime(2026, 3, 2, tzinfo=timezone.utc),
                                          "tags": ("a", "b")}, default=json_default))
    assert base64.b64decode(snapshot["bytes"]) == image
    assert snapshot["when"].startswith("2026-03-02") and snapshot["tags"] == ["a", "b"]


def test_a_record_without_an_end_has_zero_latency_not_a_crash():
    attempt = Attempt("openai", "chat", lambda a: Described(), time.time(), 5.0, {})
    assert build_record(attempt, resolve())["latencyMs"] == 0
