"""Tests for the deterministic Bedrock invocation-log generator (dashcam.simulate.sample_logs)."""

from __future__ import annotations

import gzip
import re
import statistics
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from dashcam.simulate.sample_logs import (
    SampleSpec,
    SampleSummary,
    burst_window,
    generate_lines,
    generate_records,
    write_bedrock_layout,
)

ACCT = "123456789012"
SONNET_ARN = f"arn:aws:bedrock:us-east-1:{ACCT}:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0"
MODELS = {
    SONNET_ARN,
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-1-70b-instruct-v1:0",
    "amazon.titan-embed-text-v2:0",
}
OPERATIONS = {"Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream"}
ERRORS = {"ThrottlingException", "ValidationException", "ModelTimeoutException", "InternalServerException",
          "ServiceUnavailableException", "AccessDeniedException"}
CONVERSE_STOPS = {"end_turn", "max_tokens", "tool_use", "stop_sequence", "guardrail_intervened"}
TOP_KEYS = {"schemaType", "schemaVersion", "timestamp", "accountId", "identity", "region", "requestId",
            "operation", "modelId", "input"}
OPTIONAL_TOP = {"errorCode", "output", "inferenceRegion", "requestMetadata"}
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ARN_RE = re.compile(rf"^arn:aws:(sts::{ACCT}:assumed-role/[\w-]+/[\w-]+|iam::{ACCT}:user/[\w-]+)$")
KEY_RE = re.compile(rf"^AWSLogs/{ACCT}/BedrockModelInvocationLogs/us-east-1/(\d{{4}})/(\d\d)/(\d\d)/(\d\d)/"
                    r"(\d{8}T\d{6}Z)_[0-9a-f]{8}\.json\.gz$")
S3_RE = re.compile(rf"^s3://[a-z0-9.-]+/AWSLogs/{ACCT}/BedrockModelInvocationLogs/us-east-1/"
                   r"(\d{4}/\d\d/\d\d/\d\d)/data/([0-9a-f-]{36})_(input|output)\.json\.gz$")


def ts(rec: dict) -> datetime:
    return datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def default_records() -> list[dict]:
    return list(generate_records(SampleSpec()))


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ shape


def check_converse(rec: dict) -> None:
    req = rec["input"].get("inputBodyJson")
    if req is not None:
        assert "modelId" not in req
        assert req["messages"][0]["role"] == "user" and req["messages"][0]["content"][0]["text"]
        assert isinstance(req["inferenceConfig"]["maxTokens"], int)
        assert all("text" in b or "cachePoint" in b for b in req.get("system", []))
    out = rec["output"].get("outputBodyJson")
    if out is None:
        return
    assert set(out) == {"output", "stopReason", "metrics", "usage"}
    msg = out["output"]["message"]
    assert msg["role"] == "assistant" and msg["content"]
    assert out["stopReason"] in CONVERSE_STOPS
    assert isinstance(out["metrics"]["latencyMs"], int) and out["metrics"]["latencyMs"] > 0
    u = out["usage"]
    assert u["inputTokens"] == rec["input"]["inputTokenCount"]
    assert u["outputTokens"] == rec["output"]["outputTokenCount"]
    cache = u.get("cacheReadInputTokens", 0) + u.get("cacheWriteInputTokens", 0)
    assert u["totalTokens"] == u["inputTokens"] + u["outputTokens"] + cache
    assert ("cacheReadInputTokens" in u) == ("anthropic" in rec["modelId"])
    if out["stopReason"] == "tool_use":
        tool = next(b["toolUse"] for b in msg["content"] if "toolUse" in b)
        assert tool["name"] == "get_order_status" and tool["input"]["orderId"].startswith("ORD-")
        assert tool["toolUseId"].startswith("tooluse_")
        if req is not None:
            assert req["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_order_status"
    else:
        assert all("text" in b for b in msg["content"])


def check_anthropic_request(req: dict | None) -> None:
    if req is not None:
        assert req["anthropic_version"] == "bedrock-2023-05-31"
        assert isinstance(req["max_tokens"], int)
        assert req["messages"][0]["content"][0]["type"] == "text"


def check_anthropic_usage(usage: dict, rec: dict) -> None:
    assert set(usage) == {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}
    assert usage["input_tokens"] == rec["input"]["inputTokenCount"]
    assert usage["cache_read_input_tokens"] == rec["input"]["cacheReadInputTokenCount"]
    assert usage["cache_creation_input_tokens"] == rec["input"]["cacheWriteInputTokenCount"]


def check_invoke(rec: dict) -> None:
    req, out = rec["input"].get("inputBodyJson"), rec["output"].get("outputBodyJson")
    model = rec["modelId"]
    if "anthropic" in model:
        check_anthropic_request(req)
        if out is not None:
            assert set(out) == {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"}
            assert out["id"].startswith("msg_bdrk_") and out["type"] == "message" and out["role"] == "assistant"
            assert out["content"][0]["type"] == "text" and out["content"][0]["text"]
            assert out["stop_reason"] in {"end_turn", "max_tokens", "stop_sequence"}
            assert (out["stop_sequence"] is not None) == (out["stop_reason"] == "stop_sequence")
            check_anthropic_usage(out["usage"], rec)
            assert out["usage"]["output_tokens"] == rec["output"]["outputTokenCount"]
    elif model.startswith("meta.llama"):
        if req is not None:
            assert {"prompt", "max_gen_len", "temperature"} <= set(req)
        if out is not None:
            assert set(out) == {"generation", "prompt_token_count", "generation_token_count", "stop_reason"}
            assert out["prompt_token_count"] == rec["input"]["inputTokenCount"]
            assert out["generation_token_count"] == rec["output"]["outputTokenCount"]
            assert out["stop_reason"] in {"stop", "length"}
    else:
        assert model == "amazon.titan-embed-text-v2:0"
        assert set(req) == {"inputText", "dimensions", "normalize"}
        assert set(out) == {"embedding", "inputTextTokenCount"}
        assert 8 <= len(out["embedding"]) <= 16 and all(isinstance(x, float) for x in out["embedding"])
        assert out["inputTextTokenCount"] == rec["input"]["inputTokenCount"]
        assert "outputTokenCount" not in rec["output"]


def check_stream(rec: dict) -> None:
    assert "anthropic" in rec["modelId"]
    check_anthropic_request(rec["input"].get("inputBodyJson"))
    chunks = rec["output"].get("outputBodyJson")
    if chunks is None:
        return
    assert isinstance(chunks, list)
    types = [c["type"] for c in chunks]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(types[2:-3]) == {"content_block_delta"}
    assert "".join(c["delta"]["text"] for c in chunks[2:-3]).strip()
    check_anthropic_usage(chunks[0]["message"]["usage"], {**rec})
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert set(metrics) == {"inputTokenCount", "outputTokenCount", "invocationLatency", "firstByteLatency"}
    assert metrics["inputTokenCount"] == rec["input"]["inputTokenCount"]
    assert metrics["outputTokenCount"] == rec["output"]["outputTokenCount"] == chunks[-2]["usage"]["output_tokens"]
    assert 0 < metrics["firstByteLatency"] <= metrics["invocationLatency"]
    assert all("amazon-bedrock-invocationMetrics" not in c for c in chunks[:-1])


def check_record(rec: dict) -> None:
    assert TOP_KEYS <= set(rec) <= TOP_KEYS | OPTIONAL_TOP, set(rec)
    assert rec["schemaType"] == "ModelInvocationLog" and rec["schemaVersion"] == "1.0"
    assert TS_RE.match(rec["timestamp"])
    assert rec["accountId"] == ACCT and rec["region"] == "us-east-1"
    assert set(rec["identity"]) == {"arn"} and ARN_RE.match(rec["identity"]["arn"])
    assert UUID_RE.match(rec["requestId"])
    assert rec["operation"] in OPERATIONS and rec["modelId"] in MODELS
    inp = rec["input"]
    assert inp["inputContentType"] == "application/json"
    converse = rec["operation"] in ("Converse", "ConverseStream")
    if converse and "user/" not in rec["identity"]["arn"]:
        md = rec["requestMetadata"]
        assert set(md) == {"app", "team", "userId", "sessionId"} and all(isinstance(v, str) for v in md.values())
    else:
        assert "requestMetadata" not in rec  # a Converse-only request parameter
    if "errorCode" in rec:
        assert rec["errorCode"] in ERRORS
        assert "output" not in rec and "inferenceRegion" not in rec
        assert set(inp) == {"inputContentType", "inputBodyJson"}
        return
    assert isinstance(inp["inputTokenCount"], int) and inp["inputTokenCount"] > 0
    assert ("inputBodyJson" in inp) != ("inputBodyS3Path" in inp)
    titan = rec["modelId"].startswith("amazon.titan")
    assert ("cacheReadInputTokenCount" in inp) == (not titan)
    if "anthropic" not in rec["modelId"]:
        assert inp.get("cacheReadInputTokenCount", 0) == inp.get("cacheWriteInputTokenCount", 0) == 0
    out = rec["output"]
    assert out["outputContentType"] == "application/json"
    assert ("outputBodyJson" in out) != ("outputBodyS3Path" in out)
    if not titan:
        assert isinstance(out["outputTokenCount"], int) and out["outputTokenCount"] > 0
    if rec["modelId"] == SONNET_ARN:
        assert rec["inferenceRegion"] in {"us-east-1", "us-east-2", "us-west-2"}
    else:
        assert "inferenceRegion" not in rec
    if converse:
        check_converse(rec)
    elif rec["operation"] == "InvokeModel":
        check_invoke(rec)
    else:
        check_stream(rec)


def test_every_record_has_the_bedrock_shape(default_records):
    assert len(default_records) == 20_000
    for rec in default_records:
        check_record(rec)


def test_validator_rejects_broken_records(default_records):
    # The shape checks above must be able to fail: break a few records in typical ways.
    stream = next(r for r in default_records if r["operation"] == "InvokeModelWithResponseStream" and "output" in r)
    broken = orjson.loads(orjson.dumps(stream))
    del broken["output"]["outputBodyJson"][-1]["amazon-bedrock-invocationMetrics"]
    with pytest.raises((AssertionError, KeyError)):
        check_record(broken)
    error = next(r for r in default_records if "errorCode" in r)
    with pytest.raises(AssertionError):
        check_record({**error, "output": {"outputContentType": "application/json"}})
    converse = next(r for r in default_records if r["operation"] == "Converse" and "output" in r)
    with pytest.raises(AssertionError):
        check_record({**converse, "timestamp": "2026-03-02T14:05:11.123Z"})


def test_all_operations_models_errors_and_stop_reasons_appear(default_records):
    few = default_records[:3000]
    assert {r["operation"] for r in few} == OPERATIONS
    assert {r["modelId"] for r in few} == MODELS
    assert {(r["modelId"], r["operation"]) for r in few} >= {
        (SONNET_ARN, op) for op in OPERATIONS} | {("meta.llama3-1-70b-instruct-v1:0", "InvokeModel"),
                                                  ("amazon.titan-embed-text-v2:0", "InvokeModel")}
    assert {r["errorCode"] for r in default_records if "errorCode" in r} == ERRORS
    stops = Counter(r["output"]["outputBodyJson"]["stopReason"] for r in default_records
                    if r["operation"].startswith("Converse") and "outputBodyJson" in r.get("output", {}))
    assert set(stops) == CONVERSE_STOPS
    assert stops.most_common(1)[0][0] == "end_turn" and stops["end_turn"] > 0.6 * sum(stops.values())
    # the Sonnet inference profile is the busiest model
    by_model = Counter(r["modelId"] for r in default_records)
    assert by_model.most_common(1)[0][0] == SONNET_ARN
    assert {r["inferenceRegion"] for r in default_records if "inferenceRegion" in r} == {
        "us-east-1", "us-east-2", "us-west-2"}


def test_callers_and_request_metadata(default_records):
    arns = {r["identity"]["arn"] for r in default_records}
    assert sum(":assumed-role/" in a for a in arns) >= 5 and sum(":user/" in a for a in arns) == 2
    apps = {r["requestMetadata"]["app"] for r in default_records if "requestMetadata" in r}
    assert 3 <= len(apps) <= 5
    assert all(r["operation"].startswith("Converse") for r in default_records if "requestMetadata" in r)
    assert any(r["operation"] == "Converse" and "requestMetadata" in r for r in default_records)


def test_prompt_caching_on_a_share_of_claude_calls(default_records):
    claude = [r for r in default_records if "anthropic" in r["modelId"] and "errorCode" not in r]
    reads = sum(r["input"]["cacheReadInputTokenCount"] > 0 for r in claude)
    writes = sum(r["input"]["cacheWriteInputTokenCount"] > 0 for r in claude)
    assert 0.15 < reads / len(claude) < 0.8 and 0 < writes < reads


def test_request_ids_unique(default_records):
    ids = [r["requestId"] for r in default_records]
    assert len(set(ids)) == len(ids)


def test_timestamps_sorted_and_within_span(default_records):
    spec = SampleSpec()
    times = [ts(r) for r in default_records]
    assert times == sorted(times)
    assert spec.start <= times[0] and times[-1] <= spec.start + timedelta(hours=spec.hours)
    assert times[-1] - times[0] > timedelta(hours=5.5)  # spread over the span, not bunched up
    odd = SampleSpec(records=4000, seed=3, start=datetime(2026, 1, 31, 23, 17, 31, 500000, timezone.utc), hours=2.5)
    pairs = list(generate_lines(odd))
    stamps = [t for t, _ in pairs]
    assert stamps == sorted(stamps) and len(stamps) == 4000
    assert odd.start <= stamps[0] and stamps[-1] <= odd.start + timedelta(hours=2.5)
    assert all(orjson.loads(line)["timestamp"] == t.strftime("%Y-%m-%dT%H:%M:%SZ") for t, line in pairs[::97])


def test_burst_triples_volume_throttles_sonnet_and_slows_calls(default_records):
    b0, b1 = burst_window(SampleSpec())
    core0, core1 = b0 + (b1 - b0) * 0.2, b1 - (b1 - b0) * 0.2  # the plateau, past the ramps
    inside = [r for r in default_records if b0 <= ts(r) < b1]
    core = [r for r in default_records if core0 <= ts(r) < core1]
    outside = [r for r in default_records if not b0 <= ts(r) < b1]
    core_rate = len(core) / (core1 - core0).total_seconds()
    out_rate = len(outside) / (timedelta(hours=6) - (b1 - b0)).total_seconds()
    assert 2.3 < core_rate / out_rate < 4.0

    def throttled(rs, model=None):
        return [r for r in rs if r.get("errorCode") == "ThrottlingException" and model in (None, r["modelId"])]

    all_throttles = throttled(default_records)
    assert len(throttled(inside)) > 0.7 * len(all_throttles)
    sonnet_in = [r for r in core if r["modelId"] == SONNET_ARN]
    sonnet_out = [r for r in outside if r["modelId"] == SONNET_ARN]
    assert len(throttled(sonnet_in, SONNET_ARN)) / len(sonnet_in) > 0.3
    assert 0 < len(throttled(sonnet_out, SONNET_ARN)) / len(sonnet_out) < 0.05
    assert {r["modelId"] for r in throttled(inside)} > {SONNET_ARN}  # other models are throttled too

    def latency(rs):
        return statistics.median(r["output"]["outputBodyJson"]["metrics"]["latencyMs"] for r in rs
                                 if r["operation"] == "Converse" and r["modelId"] == SONNET_ARN
                                 and "outputBodyJson" in r.get("output", {}))

    assert latency(core) > 1.4 * latency(outside)


def test_latency_tracks_output_tokens_with_a_tail(default_records):
    pts = [(r["output"]["outputTokenCount"], r["output"]["outputBodyJson"]["metrics"]["latencyMs"])
           for r in default_records if r["operation"] == "Converse" and r["modelId"] == SONNET_ARN
           and "outputBodyJson" in r.get("output", {})]
    assert statistics.correlation([float(a) for a, _ in pts], [float(b) for _, b in pts]) > 0.5
    lat = sorted(b for _, b in pts)
    assert lat[int(len(lat) * 0.99)] > 2.5 * lat[len(lat) // 2]  # heavy tail
    haiku = [r["output"]["outputBodyJson"]["metrics"]["latencyMs"] for r in default_records
             if r["operation"] == "Converse" and r["modelId"].startswith("anthropic.claude-3-5-haiku")
             and "outputBodyJson" in r.get("output", {})]
    assert statistics.median(haiku) < statistics.median(lat)  # each model has its own profile


def test_offloaded_bodies_at_scale():
    spec = SampleSpec(records=60_000, seed=11, hours=3)
    offloaded = []
    for rec in generate_records(spec):
        if "inputBodyS3Path" in rec.get("input", {}) or "outputBodyS3Path" in rec.get("output", {}):
            offloaded.append(rec)
    assert 40 <= len(offloaded) <= 250  # about 0.2% of successful calls
    assert any("outputBodyS3Path" in r["output"] for r in offloaded)
    for rec in offloaded:
        check_record(rec)
        for side, key in (("input", "inputBodyS3Path"), ("output", "outputBodyS3Path")):
            if key in rec[side]:
                m = S3_RE.match(rec[side][key])
                assert m, rec[side][key]
                assert m.group(1) == ts(rec).strftime("%Y/%m/%d/%H")
                assert m.group(2) == rec["requestId"] and m.group(3) == side
                assert ("inputBodyJson" if side == "input" else "outputBodyJson") not in rec[side]
        assert rec["input"]["inputTokenCount"] > 20_000  # only large bodies are offloaded
        assert rec["output"]["outputTokenCount"] > 0


def test_determinism_same_seed_same_bytes(tmp_path):
    spec = SampleSpec(records=3000, hours=2)
    a = write_bedrock_layout(spec, tmp_path / "a")
    b = write_bedrock_layout(spec, tmp_path / "b")
    fa, fb = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    assert fa == fb and len(fa) == a.files == b.files
    assert list(generate_lines(spec)) == list(generate_lines(SampleSpec(records=3000, hours=2)))


def test_different_seed_different_output(tmp_path):
    a = [line for _, line in generate_lines(SampleSpec(records=500, seed=1))]
    b = [line for _, line in generate_lines(SampleSpec(records=500, seed=2))]
    assert a != b
    assert not {orjson.loads(x)["requestId"] for x in a} & {orjson.loads(x)["requestId"] for x in b}
    write_bedrock_layout(SampleSpec(records=500, seed=1), tmp_path / "a")
    write_bedrock_layout(SampleSpec(records=500, seed=2), tmp_path / "b")
    assert files_under(tmp_path / "a") != files_under(tmp_path / "b")


def test_generate_records_matches_lines():
    spec = SampleSpec(records=700, seed=5)
    assert list(generate_records(spec)) == [orjson.loads(line) for _, line in generate_lines(spec)]


def test_files_land_in_s3_layout_and_counts_add_up(tmp_path):
    spec = SampleSpec(records=110_000, seed=9, hours=1.5)
    calls: list[int] = []
    summary = write_bedrock_layout(spec, tmp_path, progress=calls.append)
    assert isinstance(summary, SampleSummary) and summary.root == tmp_path
    assert summary.records == spec.records == sum(calls)
    assert all(0 < n <= 10_000 for n in calls) and len(calls) < 40  # batched, not per record
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == summary.files
    assert summary.bytes_written == sum(p.stat().st_size for p in files)
    per_hour = Counter()
    total = 0
    previous_last = None
    for path in files:
        key = path.relative_to(tmp_path).as_posix()
        m = KEY_RE.match(key)
        assert m, key
        raw = gzip.decompress(path.read_bytes())
        assert raw.endswith(b"\n")
        lines = raw.split(b"\n")[:-1]
        assert 0 < len(lines) <= 50_000
        recs = [orjson.loads(line) for line in lines]  # one JSON object per line
        hour = "/".join(m.groups()[:4])
        assert {r["timestamp"][:13] for r in recs} == {"{}-{}-{}T{}".format(*m.groups()[:4])}
        name_time = datetime.strptime(m.group(5), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        assert name_time <= ts(recs[0])
        if previous_last is not None:
            assert previous_last <= ts(recs[0])  # objects sorted by name are in time order
        previous_last = ts(recs[-1])
        per_hour[hour] += 1
        total += len(recs)
    assert total == spec.records
    assert max(per_hour.values()) >= 2  # a busy hour is split into several objects


def test_small_and_empty_specs(tmp_path):
    assert list(generate_records(SampleSpec(records=0))) == []
    empty = write_bedrock_layout(SampleSpec(records=0), tmp_path / "empty")
    assert (empty.files, empty.records, empty.bytes_written) == (0, 0, 0)
    one = list(generate_records(SampleSpec(records=1, hours=0.01)))
    assert len(one) == 1
    check_record(one[0])
    few = write_bedrock_layout(SampleSpec(records=37, hours=6), tmp_path / "few")
    assert few.records == 37 and 5 <= few.files <= 6  # spread over the span, one object per hour


def test_spec_defaults():
    spec = SampleSpec()
    assert (spec.records, spec.seed, spec.hours, spec.account_id, spec.region) == (
        20_000, 7, 6.0, ACCT, "us-east-1")
    assert spec.start == datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
