"""Body logging switches: with a switch off the bodies (or their images or vectors) are gone, and
every metric — token counts, latency, time to first token, stop reason, cost, throttling — is
what the full record gives."""

from __future__ import annotations

import copy

import orjson
import pytest

from dashcam.protect.bodies import BodySwitches, drop_bodies
from dashcam.protect.policy import Policy
from dashcam.records import RECORD_FIELDS, normalize
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, generate_records


def converse_with_image() -> dict:
    return {
        "timestamp": "2026-03-02T10:00:00Z", "operation": "Converse", "modelId": "amazon.nova-lite-v1:0",
        "input": {"inputTokenCount": 900, "inputBodyJson": {"messages": [{"role": "user", "content": [
            {"text": "what is in this picture?"},
            {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgoAAAANSUhEUg=="}}}]}]}},
        "output": {"outputTokenCount": 20, "outputBodyJson": {
            "output": {"message": {"role": "assistant", "content": [{"text": "a cat"}]}},
            "stopReason": "end_turn", "metrics": {"latencyMs": 812}}},
    }


def anthropic_stream() -> dict:
    return {
        "timestamp": "2026-03-02T10:00:01Z", "operation": "InvokeModelWithResponseStream",
        "modelId": "anthropic.claude-3-5-haiku-20241022-v1:0",
        "input": {"inputTokenCount": 30, "inputBodyJson": {"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "text", "text": "describe"}]}]}},
        "output": {"outputTokenCount": 7, "outputBodyJson": [
            {"type": "content_block_delta", "delta": {"text": "hi"}},
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}},
            {"amazon-bedrock-invocationMetrics": {"invocationLatency": 950, "firstByteLatency": 210}}]},
    }


def embedding() -> dict:
    return {
        "timestamp": "2026-03-02T10:00:02Z", "operation": "InvokeModel", "modelId": "amazon.titan-embed-text-v2:0",
        "input": {"inputTokenCount": 5, "inputBodyJson": {"inputText": "hello"}},
        "output": {"outputBodyJson": {"embedding": [0.1, 0.2, 0.3], "inputTextTokenCount": 5}},
    }


DERIVED = ("latencyMs", "timeToFirstTokenMs", "stopReason", "costUsd", "throttled")


@pytest.mark.parametrize("make", [converse_with_image, anthropic_stream, embedding])
def test_text_off_drops_both_bodies_and_keeps_what_metrics_need(make):
    full = normalize(copy.deepcopy(make()), source="api", provider="aws.bedrock")
    rec = make()
    dropped = drop_bodies(rec, BodySwitches(text=False), source="api", provider="aws.bedrock")
    assert dropped["text"] == 2
    assert "inputBodyJson" not in rec["input"] and "outputBodyJson" not in rec["output"]
    assert rec["input"].get("inputTokenCount") == full["input"].get("inputTokenCount")
    after = normalize(copy.deepcopy(rec), source="api", provider="aws.bedrock")
    assert {k: after[k] for k in DERIVED} == {k: full[k] for k in DERIVED}


def test_image_off_removes_image_payloads_and_keeps_the_text():
    rec = converse_with_image()
    assert drop_bodies(rec, BodySwitches(image=False), source="api", provider="aws.bedrock")["image"] == 1
    content = rec["input"]["inputBodyJson"]["messages"][0]["content"]
    assert content == [{"text": "what is in this picture?"}, {}]
    rec = anthropic_stream()
    drop_bodies(rec, BodySwitches(image=False), source="api", provider="aws.bedrock")
    assert rec["input"]["inputBodyJson"]["messages"][0]["content"][0] == {"type": "image"}
    assert rec["output"]["outputBodyJson"][0]["delta"]["text"] == "hi"


def test_embedding_off_removes_vectors_only():
    rec = embedding()
    assert drop_bodies(rec, BodySwitches(embedding=False), source="api", provider="aws.bedrock")["embedding"] == 1
    assert rec["output"]["outputBodyJson"] == {"inputTextTokenCount": 5}
    assert rec["input"]["inputBodyJson"] == {"inputText": "hello"}


def test_with_every_switch_on_nothing_changes():
    rec = anthropic_stream()
    assert not drop_bodies(rec, BodySwitches(), source="api", provider="aws.bedrock")
    assert rec == anthropic_stream()


def test_in_the_store_bodies_are_gone_and_every_metric_column_matches_an_unprotected_group(tmp_path):
    """Generated Bedrock records imported twice: into a group whose policy drops all bodies, and
    into one without a policy. Every typed column must agree; no body may remain."""
    records = list(generate_records(SampleSpec(records=400, seed=3)))
    path = tmp_path / "logs.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    with Dashcam.open(tmp_path / "data") as dashcam:
        dashcam.protection.policies.put(Policy("/nobody", bodies=BodySwitches(text=False, image=False,
                                                                               embedding=False)))
        assert dashcam.import_logs([path], log_group="/nobody").written == 400
        assert dashcam.import_logs([path], log_group="/full").written == 400
        columns = ", ".join(f.column for f in RECORD_FIELDS)

        def metric_rows(group: str) -> list:
            return sorted(dashcam.store.execute(
                f"SELECT {columns}, ts FROM events WHERE log_group = '{group}' ORDER BY ALL"), key=repr)

        assert metric_rows("/nobody") == metric_rows("/full")

        def with_bodies(group: str) -> int:  # LIKE: the same SQL on DuckDB and ClickHouse
            return dashcam.store.execute(
                f"SELECT count(*) FROM events WHERE log_group = '{group}' AND (message LIKE '%\"inputBodyJson\"%'"
                " OR message LIKE '%\"outputBodyJson\"%')")[0][0]

        assert with_bodies("/nobody") == 0
        assert with_bodies("/full") == sum("inputBodyJson" in r.get("input", {}) or "outputBodyJson" in r.get("output", {})
                                           for r in records) > 0
        question = "stats sum(input.inputTokenCount) as i, avg(latencyMs) as l, pct(timeToFirstTokenMs, 90) as t," \
                   " sum(throttled) as th, count(*) as n by modelId | sort modelId"
        assert dashcam.query(question, log_groups=["/nobody"]).rows == dashcam.query(question, log_groups=["/full"]).rows
        dropped = dashcam.protection.stats.dropped_counts()
        assert dropped[("/nobody", "text")] == sum(
            ("inputBodyJson" in r.get("input", {})) + ("outputBodyJson" in r.get("output", {})) for r in records)
