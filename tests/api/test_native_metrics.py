"""The native metrics API: ``POST /api/v1/metrics`` and ``GET /api/v1/metrics/list`` over real HTTP."""

from __future__ import annotations

import httpx
import pytest

GROUP = "/aws/bedrock/modelinvocations"
T0 = 1_772_442_000_000  # 2026-03-02T09:00:00Z


def record(ts_ms: int, model: str, *, error: str | None = None, latency: float = 100.0) -> dict:
    body = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts_ms, "operation": "Converse",
            "modelId": model, "requestId": f"{model}-{ts_ms}", "latencyMs": latency, "requestMetadata": {"team": "t1"}}
    return {**body, "errorCode": error} if error else body


@pytest.fixture
def loaded(server):
    records = [record(T0 + i * 20_000, "model-a", latency=100.0 + i) for i in range(6)]  # two minutes of calls
    records += [record(T0 + 1_000, "model-b"), record(T0 + 2_000, "model-b", error="ThrottlingException")]
    server.dashcam.store.write_records(GROUP, "s", records, source="api")
    return server


def test_metric_queries_in_the_contracts_shape(loaded):
    body = {"start": T0, "end": T0 + 3_600_000, "queries": [
        {"id": "m1", "metricStat": {"metricName": "Invocations", "period": 60, "stat": "Sum",
                                    "dimensions": {"ModelId": "model-a"}}},
        {"id": "m2", "metric_stat": {"metric_name": "InvocationLatency", "period": 60, "stat": "Maximum",
                                     "dimensions": [["ModelId", "model-a"]]}, "label": "slowest"},
        {"id": "all", "metricStat": {"metricName": "Invocations", "period": 3600}, "returnData": False},
        {"id": "e1", "expression": "all * 10"},
    ]}
    response = httpx.post(f"{loaded.url}/api/v1/metrics", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["data"]["results"]
    assert [(r["id"], r["label"]) for r in results] == [("m1", "Invocations"), ("m2", "slowest"), ("e1", "e1")]
    assert results[0]["timestamps"] == [T0, T0 + 60_000] and results[0]["values"] == [3, 3]
    assert results[1]["values"] == [102, 105]
    assert results[2]["values"] == [70]  # 7 successful calls (the throttle is no invocation) x 10


def test_bad_metric_requests_are_400_with_the_reason(loaded):
    bad = {"start": T0, "end": T0 + 60_000, "queries": [{"id": "m1", "metricStat": {"metricName": "Invocations",
                                                                                      "period": 90}}]}
    response = httpx.post(f"{loaded.url}/api/v1/metrics", json=bad)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InputError" and "period 90" in response.json()["error"]["message"]
    assert httpx.post(f"{loaded.url}/api/v1/metrics", json={"queries": []}).status_code == 400


def test_list_metrics_with_dimension_filters(loaded):
    url = f"{loaded.url}/api/v1/metrics/list"
    listed = httpx.get(url, params={"metricName": "InvocationThrottles"}).json()["data"]
    assert [m["dimensions"] for m in listed if m["dimensions"] and m["dimensions"][0]["name"] == "ModelId"] == [
        [{"name": "ModelId", "value": "model-b"}]]
    teams = httpx.get(url, params={"metricName": "Invocations", "dimension": "team"}).json()["data"]
    assert teams == [{"namespace": "AWS/Bedrock", "metricName": "Invocations", "unit": "Count",
                      "dimensions": [{"name": "team", "value": "t1"}]}]
