"""One policy applied to one message: JSON walked value by value, text masked as text, the
original kept only when the policy says so, and counts of what was found."""

from __future__ import annotations

from collections import Counter

import orjson

from dashcam.protect.bodies import BodySwitches
from dashcam.protect.masking import Masker, MaskStats
from dashcam.protect.policy import CustomPattern, Policy

EVERY = ("email", "phone", "credit-card", "aws-access-key", "aws-secret-key", "ip-address", "bearer-token")


def masker(**kwargs) -> Masker:
    return Masker(Policy("/g", **{"detectors": EVERY, **kwargs}))


def record(**extra) -> dict:
    return {"timestamp": "2026-03-02T14:05:11Z", "operation": "Converse", "modelId": "m",
            "input": {"inputBodyJson": {"messages": [{"role": "user", "content": [
                {"text": "I am dana@example.com, card 4111 1111 1111 1111"}]}]}, "inputTokenCount": 12},
            "output": {"outputBodyJson": {"metrics": {"latencyMs": 321}}, "outputTokenCount": 4}, **extra}


def test_every_string_value_is_masked_and_the_json_stays_json():
    rec = record(requestMetadata={"userId": "erin@example.com", "ip": "203.0.113.9"},
                 credentials={"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
                 cardAsNumber=5555555555554444, tokens=1234567890123)
    out = masker().protect(orjson.dumps(rec).decode(), source="api", provider="aws.bedrock")
    stored = orjson.loads(out.message)
    assert stored["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"] == "I am ****, card ****"
    assert stored["requestMetadata"] == {"userId": "****", "ip": "****"}
    assert stored["credentials"]["aws_secret_access_key"] == "****"  # found through its key
    assert stored["cardAsNumber"] == "****" and stored["tokens"] == 1234567890123  # Luhn-valid only
    assert stored["input"]["inputTokenCount"] == 12 and stored["output"]["outputBodyJson"]["metrics"]["latencyMs"] == 321
    assert out.masked == Counter({"email": 2, "credit-card": 2, "ip-address": 1, "aws-secret-key": 1})
    assert out.original is None  # the policy does not keep originals


def test_an_event_with_nothing_to_mask_keeps_its_exact_bytes():
    text = '{"timestamp": "2026-03-02T14:05:11Z",  "operation":"Converse", "note": "nothing here"}'
    out = masker(keep_original=True).protect(text, source="api", provider="aws.bedrock")
    assert out.message == text and not out.changed and out.original is None


def test_the_original_is_kept_only_when_something_was_masked_and_the_policy_keeps_it():
    text = orjson.dumps(record()).decode()
    out = masker(keep_original=True).protect(text, source="api", provider="aws.bedrock")
    assert out.original == text and out.changed
    assert out.ts_ms == 1772460311000  # the record's timestamp, for retention of the original


def test_plain_text_and_broken_json_are_masked_as_text():
    m = masker(keep_original=True)
    out = m.protect("GET /x from 198.51.100.4 by frank@example.com", source="cwlogs", provider="")
    assert out.message == "GET /x from **** by ****" and out.original.endswith("frank@example.com")
    broken = m.protect('{"user": "gina@example.com", ', source="cwlogs", provider="")
    assert broken.message == '{"user": "****", '


def test_custom_patterns_run_first_and_the_mask_text_is_the_policys():
    m = masker(detectors=("phone",), custom=(CustomPattern("Order", r"ORD-\d{10}"),), mask="[redacted]")
    counts: Counter = Counter()
    assert m.mask_text("order ORD-4155552671 for (415) 555-2671", counts) == "order [redacted] for [redacted]"
    assert counts == Counter({"Order": 1, "phone": 1})


def _nested(depth: int, leaf: str) -> str:
    return '{"timestamp": 1, ' + '"d": {' * depth + f'"leaf": "{leaf}"' + "}" * depth + "}"


def test_deeply_nested_records_are_walked_without_recursion():
    out = masker().protect(_nested(900, "harry@example.com"), source="api", provider="x")
    assert out.masked == Counter({"email": 1}) and "harry" not in out.message
    assert orjson.loads(out.message.encode())["d"]["d"]["d"]  # still the record, 900 levels deep


def test_a_record_too_deep_to_write_back_keeps_nothing():
    out = masker().protect(_nested(1000, "ivy@example.com"), source="api", provider="x")
    assert out.message == "****" and out.original is None


def test_a_body_switch_only_policy_drops_without_masking():
    m = Masker(Policy("/g", bodies=BodySwitches(text=False)))
    out = m.protect(orjson.dumps(record()).decode(), source="api", provider="aws.bedrock")
    stored = orjson.loads(out.message)
    assert "inputBodyJson" not in stored["input"] and stored["latencyMs"] == 321
    assert out.dropped == Counter({"text": 2}) and not out.masked and out.original is None


def test_stats_add_up_per_log_group():
    stats, m = MaskStats(), masker()
    for group in ("/a", "/a", "/b"):
        stats.add(group, m.protect("ip 10.1.2.3 mail ian@example.com", source="x", provider="y"))
    stats.add("/b", m.protect("nothing", source="x", provider="y"))
    assert stats.masked_counts() == {("/a", "ip-address"): 2, ("/a", "email"): 2, ("/b", "ip-address"): 1,
                                     ("/b", "email"): 1}
    assert stats.changed_events() == {"/a": 2, "/b": 1}
