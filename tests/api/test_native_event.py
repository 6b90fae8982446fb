"""The native API features the dashboard uses: ``pointers`` on started queries, ``GET /api/v1/event``, ``wait``."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "bedrock-invocation-logs.jsonl"


def ingest(server, group: str = "app") -> list[dict]:
    records = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]
    response = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": group}, json=records)
    assert response.status_code == 200, response.text
    return records


def finished(server, body: dict, headers: dict | None = None) -> dict:
    started = httpx.post(f"{server.url}/api/v1/queries", json=body, headers=headers)
    assert started.status_code == 202, started.text
    query_id = started.json()["data"]["queryId"]
    deadline = time.monotonic() + 10
    while True:
        job = httpx.get(f"{server.url}/api/v1/queries/{query_id}", headers=headers).json()["data"]
        if job["status"] not in ("Scheduled", "Running") or time.monotonic() > deadline:
            return job


def test_pointers_end_event_rows_and_open_each_event(server):
    records = ingest(server)
    job = finished(server, {"query": "fields requestId, modelId", "pointers": True})
    assert job["status"] == "Complete"
    assert job["columns"] == ["requestId", "modelId", "@ptr"]
    by_id = {r["requestId"]: r for r in records}
    for row in job["rows"]:
        event = httpx.get(f"{server.url}/api/v1/event", params={"ptr": row["@ptr"]}).json()["data"]
        assert event["record"] == by_id[row["requestId"]]
        assert orjson.loads(event["message"]) == by_id[row["requestId"]]
        assert event["logGroup"] == "app" and event["ptr"] == row["@ptr"]
        assert event["timestamp"].replace(" ", "T").startswith(by_id[row["requestId"]]["timestamp"][:19])
        assert set(event["derived"]) >= {"latencyMs", "timeToFirstTokenMs", "costUsd", "throttled", "stopReason"}
        throttled = by_id[row["requestId"]].get("errorCode") == "ThrottlingException"
        assert event["derived"]["throttled"] == int(throttled)


def test_without_pointers_or_with_stats_there_is_no_ptr_column(server):
    ingest(server)
    assert finished(server, {"query": "fields requestId"})["columns"] == ["requestId"]
    job = finished(server, {"query": "stats count(*) as n by modelId", "pointers": True})
    assert job["columns"] == ["modelId", "n"]


def test_a_bad_or_unknown_pointer_is_a_clear_error(server):
    ingest(server)
    bad = httpx.get(f"{server.url}/api/v1/event", params={"ptr": "no-pointer-here"})
    assert bad.status_code == 400 and "pointer" in bad.json()["error"]["message"]
    missing = httpx.get(f"{server.url}/api/v1/event", params={"ptr": "app:12345"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFoundError"
    assert httpx.get(f"{server.url}/api/v1/event").status_code == 400


def test_an_event_is_read_only_by_keys_that_may_read_its_group(secured_server):
    admin = secured_server.keys.create("admin")
    headers = {"authorization": f"Bearer {admin.bearer}"}
    records = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]
    assert httpx.post(f"{secured_server.url}/api/v1/records", params={"logGroup": "secret"}, json=records,
                      headers=headers).status_code == 200
    ptr = finished(secured_server, {"query": "fields requestId | limit 1", "pointers": True}, headers)["rows"][0]["@ptr"]
    assert httpx.get(f"{secured_server.url}/api/v1/event", params={"ptr": ptr}).status_code == 401
    other = secured_server.keys.create("read", log_groups="public*")
    refused = httpx.get(f"{secured_server.url}/api/v1/event", params={"ptr": ptr},
                        headers={"authorization": f"Bearer {other.bearer}"})
    assert refused.status_code == 403
    reader = secured_server.keys.create("read", log_groups="secret")
    allowed = httpx.get(f"{secured_server.url}/api/v1/event", params={"ptr": ptr},
                        headers={"authorization": f"Bearer {reader.bearer}"})
    assert allowed.status_code == 200 and allowed.json()["data"]["logGroup"] == "secret"


def test_waiting_for_a_query_answers_once_it_is_finished(server):
    ingest(server)
    started = httpx.post(f"{server.url}/api/v1/queries", json={"query": "stats count(*) as n"}).json()["data"]
    job = httpx.get(f"{server.url}/api/v1/queries/{started['queryId']}", params={"wait": 10}).json()["data"]
    assert job["status"] == "Complete" and job["rows"] == [{"n": 6}]
    too_long = httpx.get(f"{server.url}/api/v1/queries/{started['queryId']}", params={"wait": 600})
    assert too_long.status_code == 400
