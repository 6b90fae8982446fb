"""The record shape: derived fields, typed hot values, timestamps and event ids."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashcam.errors import InputError
from dashcam.records import HOT_FIELD_BY_PATH, RECORD_FIELDS, hot_values, normalize, stable_event_id, timestamp_ms

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "bedrock-invocation-logs.jsonl"  # the shared samples


def _samples() -> list[dict]:
    return [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines() if line.strip()]


def _hot(record: dict) -> dict:
    return dict(zip((f.path for f in RECORD_FIELDS), hot_values(record)))


def test_converse_latency_comes_from_output_metrics():
    converse = normalize(_samples()[0], source="bedrock-log")
    assert converse["latencyMs"] == 1843
    assert converse["timeToFirstTokenMs"] is None
    assert converse["stopReason"] == "end_turn"
    assert converse["throttled"] == 0
    assert converse["provider"] == "aws.bedrock" and converse["source"] == "bedrock-log"
    assert converse["app"] == "release-bot"  # from requestMetadata.app


def test_throttling_exception_is_throttled_and_other_errors_are_not():
    records = [normalize(r, source="bedrock-log") for r in _samples()]
    by_code = {r.get("errorCode"): r["throttled"] for r in records}
    assert by_code["ThrottlingException"] == 1
    assert by_code["ValidationException"] == 0
    assert by_code[None] == 0


def test_http_429_status_from_any_provider_is_throttled():
    assert normalize({"status": 429}, source="api")["throttled"] == 1
    assert normalize({"errorCode": "RateLimitError"}, source="api")["throttled"] == 1


def test_stream_metrics_come_from_the_last_chunk():
    body = [
        {"type": "message_start"},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": 5, "outputTokenCount": 7, "invocationLatency": 912, "firstByteLatency": 210}},
    ]
    record = normalize({"operation": "InvokeModelWithResponseStream", "output": {"outputBodyJson": body}},
                       source="bedrock-log")
    assert (record["latencyMs"], record["timeToFirstTokenMs"], record["stopReason"]) == (912, 210, "max_tokens")


def test_provider_native_stop_reasons():
    def stop(body):
        return normalize({"output": {"outputBodyJson": body}}, source="x")["stopReason"]

    assert stop({"stop_reason": "end_turn"}) == "end_turn"  # Anthropic / Llama
    assert stop({"results": [{"completionReason": "LENGTH"}]}) == "LENGTH"  # Titan
    assert stop({"choices": [{"finish_reason": "stop"}]}) == "stop"  # OpenAI
    assert stop({"embedding": [0.1]}) is None


def test_fields_the_record_has_are_never_overwritten():
    record = copy.deepcopy(_samples()[0])
    record.update(latencyMs=5, provider="openai", throttled=1, app="mine")
    normalize(record, source="sdk")
    assert (record["latencyMs"], record["provider"], record["throttled"], record["app"]) == (5, "openai", 1, "mine")
    assert record["source"] == "sdk"


def test_hot_values_are_typed_and_null_when_missing():
    hot = [_hot(normalize(r, source="bedrock-log")) for r in _samples()]
    assert hot[0]["input.inputTokenCount"] == 31 and hot[0]["output.outputTokenCount"] == 38
    assert hot[0]["identity.arn"].endswith("i-0abc12345def67890")
    assert hot[0]["inferenceRegion"] == "us-west-2"
    assert hot[2]["output.outputTokenCount"] is None  # the throttled call has no output
    assert hot[4]["output.outputTokenCount"] is None  # embeddings report no output tokens
    # Priced from the shipped catalog: Sonnet 4 via the us. profile at $3/$15 per 1M tokens,
    # Haiku 3.5 at $0.80/$4; the throttled and the failed calls cost nothing.
    assert hot[0]["costUsd"] == pytest.approx((31 * 3.00 + 38 * 15.00) / 1e6)
    assert hot[1]["costUsd"] == pytest.approx((42 * 0.80 + 4 * 4.00) / 1e6)
    assert hot[2]["costUsd"] == 0 and hot[5]["costUsd"] == 0


def test_hot_values_coerce_like_the_json_says():
    hot = _hot({"modelId": {"nested": True}, "input": {"inputTokenCount": "31.9"}, "latencyMs": "12.5",
                "output": {"outputTokenCount": True}, "errorCode": 404})
    assert hot["modelId"] == '{"nested":true}'
    assert hot["input.inputTokenCount"] == 31
    assert hot["latencyMs"] == 12.5
    assert hot["output.outputTokenCount"] is None  # a boolean is not a count
    assert hot["errorCode"] == "404"


def test_every_hot_path_maps_to_one_column():
    columns = [f.column for f in HOT_FIELD_BY_PATH.values()]
    assert len(columns) == len(set(columns))
    assert HOT_FIELD_BY_PATH["input.inputTokenCount"].column == "input_tokens"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T14:05:11Z", 1772460311000),
        ("2026-03-02T15:05:11+01:00", 1772460311000),
        ("2026-03-02T14:05:11.250Z", 1772460311250),
        ("2026-03-02T14:05:11", 1772460311000),
        (1772460311, 1772460311000),
        (1772460311250, 1772460311250),
        ("1772460311", 1772460311000),
    ],
)
def test_timestamps(value, expected):
    assert timestamp_ms(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "", True, None, {"t": 1}])
def test_bad_timestamps_are_input_errors(value):
    with pytest.raises(InputError):
        timestamp_ms(value)


@settings(max_examples=300, deadline=None)
@given(st.tuples(st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
                 st.integers(0, 61)),
       st.one_of(st.just(""), st.integers(0, 999).map(lambda ms: f".{ms:03d}"), st.sampled_from([".5", ".123456"])))
def test_utc_timestamps_read_as_a_general_date_parser_reads_them(fields, fraction):
    # The common ...Z form has a fast path; impossible dates (month 13, second 61) must still fail.
    value = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*fields) + fraction + "Z"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        with pytest.raises(InputError, match="RFC 3339"):
            timestamp_ms(value)
    else:
        assert timestamp_ms(value) == (parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def test_pricing_at_a_given_time_is_pricing_at_the_records_own_timestamp():
    for record in _samples():
        own, given_ms = normalize(copy.deepcopy(record), source="bedrock-log"), copy.deepcopy(record)
        if record.get("timestamp") is not None:
            normalize(given_ms, source="bedrock-log", at_ms=timestamp_ms(record["timestamp"]))
            assert given_ms["costUsd"] == own["costUsd"]


def test_event_ids_are_stable_per_group_and_message():
    message = b'{"requestId": "a"}'
    assert stable_event_id("g", message) == stable_event_id("g", message)
    assert stable_event_id("g", message) != stable_event_id("h", message)
    assert stable_event_id("g", message) != stable_event_id("g", b'{"requestId": "b"}')
    assert -(2**63) <= stable_event_id("g", message) < 2**63


def test_normalize_refuses_a_non_object():
    with pytest.raises(InputError, match="JSON object"):
        normalize([1, 2], source="api")  # type: ignore[arg-type]
