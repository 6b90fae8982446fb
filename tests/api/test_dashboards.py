"""The dashboards routes of the native API, over real HTTP: storage, widget data, and who may do what."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest

from dashcam.dashboards.repository import example_body
from dashcam.simulate.sample_logs import SampleSpec, generate_records

GROUP = "/aws/bedrock/modelinvocations"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
START_MS = int(START.timestamp() * 1000)
END_MS = START_MS + 2 * 3_600_000
RANGE = {"start": "2026-03-02T09:00:00Z", "end": "2026-03-02T11:00:00Z"}
COUNTS = json.dumps({"widgets": [
    {"type": "metric", "properties": {"metrics": [["AWS/Bedrock", "Invocations"], [".", "InvocationThrottles"]],
                                      "stat": "Sum", "period": 600, "view": "timeSeries"}},
    {"type": "log", "properties": {"query": f"SOURCE '{GROUP}' | stats count(*) as requests by modelId",
                                   "view": "table"}},
    {"type": "explorer", "properties": {}},
]})


@pytest.fixture
def loaded(server):
    records = list(generate_records(SampleSpec(records=1500, hours=2, start=START)))
    server.dashcam.store.write_records(GROUP, "s", records, source="api")
    return server


def test_put_get_list_delete(server):
    url = f"{server.url}/api/v1/dashboards"
    put = httpx.put(f"{url}/counts", content=COUNTS)
    assert put.status_code == 200, put.text
    assert put.json()["data"]["widgets"] == 3
    assert [m["dataPath"] for m in put.json()["data"]["messages"]] == ["/widgets/2/type"]
    got = httpx.get(f"{url}/counts").json()["data"]
    assert got["bodyText"] == COUNTS and got["body"] == json.loads(COUNTS)
    assert [(w["type"], w["view"], w["drawn"]) for w in got["widgets"]] == [
        ("metric", "timeSeries", True), ("log", "table", True), ("explorer", None, False)]
    assert got["size"] == len(COUNTS) and got["arn"].endswith(":dashboard/counts")
    httpx.put(f"{url}/other", content=example_body("bedrock-overview"))
    assert [d["name"] for d in httpx.get(url).json()["data"]] == ["counts", "other"]
    assert [d["name"] for d in httpx.get(url, params={"prefix": "oth"}).json()["data"]] == ["other"]
    assert httpx.delete(f"{url}/counts").status_code == 200
    assert httpx.get(f"{url}/counts").status_code == 404
    assert httpx.delete(f"{url}/counts").status_code == 404


def test_a_bad_body_is_a_400_listing_every_problem(server):
    bad = json.dumps({"widgets": [{"type": "metric", "width": 0, "properties": {"metrics": [["AWS/Bedrock"]]}}]})
    response = httpx.put(f"{server.url}/api/v1/dashboards/bad", content=bad)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidDashboardBody"
    assert {m["dataPath"] for m in error["messages"]} == {"/widgets/0/width"}
    assert httpx.put(f"{server.url}/api/v1/dashboards/has%20space", content=COUNTS).status_code == 400
    assert httpx.get(f"{server.url}/api/v1/dashboards").json()["data"] == []


def test_widget_data_of_a_stored_dashboard(loaded):
    url = f"{loaded.url}/api/v1/dashboards/counts"
    httpx.put(url, content=COUNTS)
    metric = httpx.post(f"{url}/widgets/0/data", params=RANGE).json()["data"]
    assert metric["status"] == "ok" and (metric["start"], metric["end"]) == (START_MS, END_MS)
    direct = httpx.post(f"{loaded.url}/api/v1/metrics", json={"start": RANGE["start"], "end": RANGE["end"], "queries": [
        {"id": "m1", "metricStat": {"metricName": "Invocations", "period": 600, "stat": "Sum"}},
        {"id": "m2", "metricStat": {"metricName": "InvocationThrottles", "period": 600, "stat": "Sum"}}]}).json()
    assert [(s["id"], s["timestamps"], s["values"]) for s in metric["series"]] == [
        (r["id"], r["timestamps"], r["values"]) for r in direct["data"]["results"]]
    log = httpx.post(f"{url}/widgets/1/data", params=RANGE).json()["data"]
    assert sum(row["requests"] for row in log["rows"]) == 1500
    assert httpx.post(f"{url}/widgets/2/data", params=RANGE).json()["data"]["status"] == "unsupported"
    assert httpx.post(f"{url}/widgets/9/data", params=RANGE).status_code == 404
    everything = httpx.get(f"{url}/data", params=RANGE).json()["data"]
    assert [w["status"] for w in everything["widgets"]] == ["ok", "ok", "unsupported"]
    assert everything["widgets"][0]["series"] == metric["series"]


def test_an_edited_widget_and_an_unsaved_one_can_be_previewed(loaded):
    httpx.put(f"{loaded.url}/api/v1/dashboards/counts", content=COUNTS)
    edited = {"type": "metric", "properties": {"metrics": [["AWS/Bedrock", "Invocations"]], "stat": "Sum",
                                               "view": "singleValue", "setPeriodToTimeRange": True}}
    answer = httpx.post(f"{loaded.url}/api/v1/dashboards/counts/widgets/0/data",
                        json={"widget": edited, **RANGE}).json()["data"]
    total = httpx.post(f"{loaded.url}/api/v1/query", json={
        "query": "filter not ispresent(errorCode) | stats count(*) as n", **RANGE}).json()["data"]["rows"][0]["n"]
    assert answer["values"][0]["value"] == total
    preview = httpx.post(f"{loaded.url}/api/v1/widgets/data", json={"widget": edited, **RANGE}).json()["data"]
    assert preview["values"] == answer["values"]
    broken = httpx.post(f"{loaded.url}/api/v1/widgets/data", json={"widget": {"type": "metric", "properties": {}}})
    assert broken.status_code == 400 and "metrics" in broken.json()["error"]["message"]


def test_roles_and_log_group_limits(secured_server):
    server = secured_server
    records = list(generate_records(SampleSpec(records=600, hours=2, start=START)))
    server.dashcam.store.write_records(GROUP, "s", records[:400], source="api")
    server.dashcam.store.write_records("/team/b", "s", records[400:], source="api")
    admin = server.keys.create("admin")
    reader = server.keys.create("read", log_groups="/team/*")
    as_admin = {"authorization": f"Bearer {admin.bearer}"}
    as_reader = {"authorization": f"Bearer {reader.bearer}"}
    url = f"{server.url}/api/v1/dashboards/counts"
    assert httpx.put(url, content=COUNTS).status_code == 401
    assert httpx.put(url, content=COUNTS, headers=as_reader).status_code == 403
    assert httpx.put(url, content=COUNTS, headers=as_admin).status_code == 200
    assert httpx.delete(url, headers=as_reader).status_code == 403
    assert httpx.get(url, headers=as_reader).status_code == 200
    # The reader's metrics come from /team/b only; its SOURCE group is not readable to it.
    metric = httpx.post(f"{url}/widgets/0/data", params=RANGE, headers=as_reader).json()["data"]
    succeeded = sum(1 for r in records[400:] if not r.get("errorCode"))
    assert sum(metric["series"][0]["values"]) == succeeded
    log = httpx.post(f"{url}/widgets/1/data", params=RANGE, headers=as_reader).json()["data"]
    assert log["status"] == "error" and "may not read" in log["messages"][0]
    admin_log = httpx.post(f"{url}/widgets/1/data", params=RANGE, headers=as_admin).json()["data"]
    assert sum(row["requests"] for row in admin_log["rows"]) == 400
