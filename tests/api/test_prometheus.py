"""``GET /metrics`` over real HTTP: exposition a Prometheus parser reads, content negotiation, keys."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import orjson
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"


def _records() -> list[dict]:
    return [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_count_what_was_ingested(server):
    records = _records()
    assert httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "/app/a"}, json=records).status_code == 200
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = _families(response.text)

    per_model = Counter(r["modelId"] for r in records)
    got = Counter()
    for sample in families["dashcam_invocations"].samples:
        got[sample.labels["model"]] += sample.value
    assert got == per_model
    throttled = Counter(r["modelId"] for r in records if r.get("errorCode") == "ThrottlingException")
    assert {s.labels["model"]: s.value for s in families["dashcam_invocation_throttles"].samples
            if s.value} == dict(throttled) and throttled
    inputs = Counter()
    for r in records:
        inputs[r["modelId"]] += r.get("input", {}).get("inputTokenCount") or 0
    assert {s.labels["model"]: s.value for s in families["dashcam_tokens"].samples
            if s.labels["type"] == "input"} == dict(inputs)
    assert families["dashcam_log_group_events"].samples[0].value == len(records)
    # The server's own figures come along: the process, and write backpressure.
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert families["dashcam_write_requests_refused"].samples[0].value == 0
    assert families["dashcam_write_requests_in_flight"].type == "gauge"


def test_openmetrics_is_served_when_asked_for(server):
    httpx.post(f"{server.url}/api/v1/records", json=_records())
    response = httpx.get(f"{server.url}/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(response.text)}
    assert families["dashcam_invocation_latency_seconds"].type == "histogram"
    assert families["dashcam_invocation_latency_seconds"].unit == "seconds"
    assert sum(s.value for s in families["dashcam_invocations"].samples if s.name.endswith("_total")) == 6


def test_metrics_need_a_read_key_once_keys_exist(secured_server):
    url = f"{secured_server.url}/metrics"
    admin = secured_server.keys.create("admin")
    for group in ("/team-a/app", "/team-b/app"):
        written = httpx.post(f"{secured_server.url}/api/v1/records", params={"logGroup": group}, json=_records(),
                             headers={"authorization": f"Bearer {admin.bearer}"})
        assert written.status_code == 200
    refused = httpx.get(url)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "AuthError"
    ingester = secured_server.keys.create("ingest")
    assert httpx.get(url, headers={"authorization": f"Bearer {ingester.bearer}"}).status_code == 403

    reader = secured_server.keys.create("read")
    everything = httpx.get(url, headers={"authorization": f"Bearer {reader.bearer}"})
    assert everything.status_code == 200
    groups = {s.labels["log_group"] for s in _families(everything.text)["dashcam_log_group_events"].samples}
    assert groups == {"/team-a/app", "/team-b/app"}

    team_a = secured_server.keys.create("read", log_groups="/team-a/*")
    scoped = _families(httpx.get(url, headers={"authorization": f"Bearer {team_a.bearer}"}).text)
    assert {s.labels["log_group"] for s in scoped["dashcam_log_group_events"].samples} == {"/team-a/app"}
    assert sum(s.value for s in scoped["dashcam_invocations"].samples) == len(_records())


def _protection_families(text: str) -> dict:
    """{family: {label tuple: value}} for the data-protection counters (their ``_total`` samples)."""
    families = _families(text)
    label_names = {"dashcam_protection_masked_findings": ("log_group", "detector"),
                   "dashcam_protection_dropped_body_items": ("log_group", "modality"),
                   "dashcam_protection_changed_events": ("log_group",)}
    return {name: {tuple(s.labels[label] for label in labels): s.value
                   for s in families[name].samples if s.name.endswith("_total")}
            for name, labels in label_names.items()}


def _record_with(text: str, n: int) -> dict:
    return {"timestamp": 1_772_000_000_000 + n, "requestId": f"r-{n}", "operation": "Converse", "modelId": "m",
            "input": {"inputTokenCount": 5,
                      "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": text}]}]}}}


def _body_keys(record: dict) -> int:
    """Bodies the text switch drops: ``inputBody*``/``outputBody*`` members, offloaded S3 paths excepted."""
    return sum(1 for section, prefix in (("input", "inputBody"), ("output", "outputBody"))
               for key in record.get(section, {}) if key.startswith(prefix) and not key.endswith("S3Path"))


def test_what_data_protection_masked_and_dropped_is_counted(server):
    policy = {"/masked": {"detectors": ["email", "credit-card"]}, "/no-text": {"bodies": {"text": False}}}
    for group, body in policy.items():
        assert httpx.put(f"{server.url}/api/v1/protection", params={"logGroup": group},
                         content=orjson.dumps(body)).status_code == 200
    # Record n carries n % 4 addresses and, every third record, a card number: the answer is counted here.
    masked_records = []
    for n in range(12):
        words = [f"mail u{n}.{i}@example.com" for i in range(n % 4)]
        words += ["card 4111 1111 1111 1111"] if n % 3 == 0 else []
        masked_records.append(_record_with(" and ".join(words) or "nothing to hide", n))
    plain = _records()
    for group, records in (("/masked", masked_records), ("/no-text", plain), ("/open", plain)):
        written = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": group}, json=records)
        assert written.status_code == 200 and written.json()["data"]["written"] == len(records)

    counts = _protection_families(httpx.get(f"{server.url}/metrics").text)
    emails = sum(n % 4 for n in range(12))
    cards = sum(1 for n in range(12) if n % 3 == 0)
    assert counts["dashcam_protection_masked_findings"] == {("/masked", "credit-card"): cards,
                                                            ("/masked", "email"): emails}
    assert counts["dashcam_protection_dropped_body_items"] == {("/no-text", "text"): sum(map(_body_keys, plain))}
    assert counts["dashcam_protection_changed_events"] == {
        ("/masked",): sum(1 for n in range(12) if n % 4 or n % 3 == 0),
        ("/no-text",): sum(1 for r in plain if _body_keys(r))}

    # A re-delivery is counted again (the counts are of events received), as the docs say.
    httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "/masked"}, json=masked_records[:2])
    again = _protection_families(httpx.get(f"{server.url}/metrics").text)
    assert again["dashcam_protection_masked_findings"][("/masked", "email")] == emails + sum(n % 4 for n in range(2))


def test_a_reader_limited_to_some_groups_sees_only_their_protection_counts(secured_server):
    admin = secured_server.keys.create("admin")
    auth = {"authorization": f"Bearer {admin.bearer}"}
    for group in ("/team-a/app", "/team-b/app"):
        httpx.put(f"{secured_server.url}/api/v1/protection", params={"logGroup": group}, headers=auth,
                  content=orjson.dumps({"detectors": ["email"]}))
        httpx.post(f"{secured_server.url}/api/v1/records", params={"logGroup": group}, headers=auth,
                   json=[_record_with("write to kim@example.com", 1)])
    team = secured_server.keys.create("read", log_groups="/team-a/*")
    seen = _protection_families(httpx.get(f"{secured_server.url}/metrics",
                                          headers={"authorization": f"Bearer {team.bearer}"}).text)
    assert seen["dashcam_protection_masked_findings"] == {("/team-a/app", "email"): 1}
    assert seen["dashcam_protection_changed_events"] == {("/team-a/app",): 1}
    everything = _protection_families(httpx.get(f"{secured_server.url}/metrics", headers=auth).text)
    assert set(everything["dashcam_protection_changed_events"]) == {("/team-a/app",), ("/team-b/app",)}
