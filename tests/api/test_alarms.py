"""dashcam's own alarm routes (dashcam.api.alarms) over real HTTP."""

from __future__ import annotations

import httpx

THROTTLES = {"MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock", "Statistic": "Sum", "Period": 60,
             "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"}


def test_put_get_list_state_history_delete(server):
    http = httpx.Client(base_url=server.url)
    created = http.put("/api/v1/alarms/throttles", json=THROTTLES)
    assert created.status_code == 200
    body = created.json()["data"]
    assert (body["name"], body["kind"], body["state"]["value"]) == ("throttles", "static", "INSUFFICIENT_DATA")
    assert body["definition"]["Threshold"] == 1 and body["definition"]["AlarmName"] == "throttles"
    http.put("/api/v1/alarms/other", json={**THROTTLES, "AlarmName": "other"})
    assert [a["name"] for a in http.get("/api/v1/alarms").json()["data"]] == ["other", "throttles"]
    assert [a["name"] for a in http.get("/api/v1/alarms", params={"prefix": "thr"}).json()["data"]] == ["throttles"]

    moved = http.post("/api/v1/alarms/throttles/state", json={"state": "ALARM", "reason": "drill",
                                                              "reasonData": {"by": "test"}})
    assert moved.json()["data"]["state"] | {"updatedMs": 0, "transitionedMs": 0} == {
        "value": "ALARM", "reason": "drill", "reasonData": {"by": "test"}, "updatedMs": 0, "transitionedMs": 0,
        "lastEvaluatedMs": None, "lastValue": None}
    assert http.get("/api/v1/alarms", params={"state": "ALARM"}).json()["data"][0]["name"] == "throttles"
    history = http.get("/api/v1/alarms/throttles/history").json()["data"]
    assert [h["type"] for h in history] == ["StateUpdate", "ConfigurationUpdate"]
    assert history[0]["data"]["newState"]["stateReason"] == "drill"
    only = http.get("/api/v1/alarms/throttles/history", params={"type": "ConfigurationUpdate"}).json()["data"]
    assert [h["summary"] for h in only] == ['Alarm "throttles" created']

    assert http.delete("/api/v1/alarms/throttles").json() == {"data": {"deleted": "throttles"}}
    assert http.get("/api/v1/alarms/throttles").status_code == 404
    assert len(http.get("/api/v1/alarms/throttles/history").json()["data"]) == 3


def test_mistakes_are_400s_and_404s_that_say_why(server):
    http = httpx.Client(base_url=server.url)
    wrong = http.put("/api/v1/alarms/a", json={**THROTTLES, "DatapointsToAlarm": 2})
    assert wrong.status_code == 400 and "DatapointsToAlarm (2)" in wrong.json()["error"]["message"]
    mismatch = http.put("/api/v1/alarms/a", json={**THROTTLES, "AlarmName": "b"})
    assert mismatch.status_code == 400 and "'b'" in mismatch.json()["error"]["message"]
    assert http.delete("/api/v1/alarms/none").status_code == 404
    assert http.post("/api/v1/alarms/none/state", json={"state": "OK"}).status_code == 404
    http.put("/api/v1/alarms/a", json=THROTTLES)
    bad_state = http.post("/api/v1/alarms/a/state", json={"state": "RED"})
    assert bad_state.status_code == 400 and "RED" in bad_state.json()["error"]["message"]
    assert http.get("/api/v1/alarms/a/history", params={"type": "Nope"}).status_code == 400


def test_readers_read_and_admins_change(secured_server):
    keys = secured_server.keys
    reader, admin = keys.create("read"), keys.create("admin")
    as_reader = httpx.Client(base_url=secured_server.url, headers={"Authorization": f"Bearer {reader.bearer}"})
    as_admin = httpx.Client(base_url=secured_server.url, headers={"Authorization": f"Bearer {admin.bearer}"})
    assert as_reader.put("/api/v1/alarms/a", json=THROTTLES).status_code == 403
    assert as_admin.put("/api/v1/alarms/a", json=THROTTLES).status_code == 200
    assert [a["name"] for a in as_reader.get("/api/v1/alarms").json()["data"]] == ["a"]
    assert as_reader.post("/api/v1/alarms/a/state", json={"state": "OK"}).status_code == 403
    assert as_reader.delete("/api/v1/alarms/a").status_code == 403
    assert httpx.get(f"{secured_server.url}/api/v1/alarms").status_code == 401
    limited = keys.create("admin", log_groups="/team/a/*")
    as_limited = httpx.Client(base_url=secured_server.url, headers={"Authorization": f"Bearer {limited.bearer}"})
    refused = as_limited.get("/api/v1/alarms")
    assert refused.status_code == 403 and "/team/a/*" in refused.json()["error"]["message"]
