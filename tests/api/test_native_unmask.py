"""``unmask()`` through the native query endpoints (``/api/v1/query`` and start/poll
``/api/v1/queries``): admins get the kept originals, others a 403 naming unmask and the role it
needs, and each query that unmasks is audited with its log groups and counts."""

from __future__ import annotations

import time

import httpx
import orjson

from dashcam.audit import AuditLog

MAIL = "kim.private@example.com"
TEXT = "fields requestId, unmask(@message) as original, @message | sort requestId asc"


def _auth(key) -> dict:
    return {"authorization": f"Bearer {key.bearer}"}


NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _record(request_id: str, mail: str) -> dict:
    return {"timestamp": NOW, "operation": "Converse",
            "modelId": "m", "requestId": request_id, "input": {"inputTokenCount": 3, "inputBodyJson": {
                "messages": [{"role": "user", "content": [{"text": f"reply to {mail}"}]}]}}}


def _setup(server):
    admin, reader = server.keys.create("admin"), server.keys.create("read")
    for group, keep in (("/app", True), ("/team/a", True)):
        answer = httpx.put(f"{server.url}/api/v1/protection", params={"logGroup": group}, headers=_auth(admin),
                           content=orjson.dumps({"detectors": ["email"], "keepOriginal": keep}))
        assert answer.status_code == 200
    for group, request_id in (("/app", "r1"), ("/team/a", "r2")):
        written = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": group}, headers=_auth(admin),
                             json=[_record(request_id, MAIL)])
        assert written.json()["data"]["written"] == 1
    return admin, reader


def test_the_query_endpoint_unmasks_for_admins_and_refuses_readers(secured_server):
    admin, reader = _setup(secured_server)
    answer = httpx.post(f"{secured_server.url}/api/v1/query", headers=_auth(admin), json={"query": TEXT})
    assert answer.status_code == 200
    rows = answer.json()["data"]["rows"]
    assert [orjson.loads(r["original"]) for r in rows] == [_record("r1", MAIL), _record("r2", MAIL)]
    assert all(MAIL in r["original"] and MAIL not in r["@message"] for r in rows)
    assert answer.json()["data"]["columns"] == ["requestId", "original", "@message"]

    denied = httpx.post(f"{secured_server.url}/api/v1/query", headers=_auth(reader), json={"query": TEXT})
    assert denied.status_code == 403
    assert "unmask needs the admin role" in denied.json()["error"]["message"] and MAIL not in denied.text
    plain = httpx.post(f"{secured_server.url}/api/v1/query", headers=_auth(reader), json={"query": "fields @message"})
    assert plain.status_code == 200 and MAIL not in plain.text

    entries = AuditLog(secured_server.dashcam.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome, e.target) for e in entries] == [(admin.key_id, "ok", "/app,/team/a"),
                                                                 (reader.key_id, "denied", "")]
    assert (entries[0].details["events"], entries[0].details["found"]) == (2, 2)


def test_an_admin_of_one_group_unmasks_there_only(secured_server):
    _setup(secured_server)
    team = secured_server.keys.create("admin", log_groups="/team/*")
    rows = httpx.post(f"{secured_server.url}/api/v1/query", headers=_auth(team),
                      json={"query": TEXT}).json()["data"]["rows"]
    assert [r["requestId"] for r in rows] == ["r2"] and MAIL in rows[0]["original"]
    refused = httpx.post(f"{secured_server.url}/api/v1/query", headers=_auth(team),
                         json={"query": TEXT, "logGroups": ["/app"]})
    assert refused.status_code == 403  # it may not even read /app


def _poll(server, key, query_id: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/queries/{query_id}", params={"wait": 10}, headers=_auth(key))


def test_started_queries_unmask_when_they_finish_and_only_admins_read_them(secured_server):
    admin, reader = _setup(secured_server)
    started = httpx.post(f"{secured_server.url}/api/v1/queries", headers=_auth(admin),
                         json={"query": TEXT, "pointers": True})
    assert started.status_code == 202
    query_id = started.json()["data"]["queryId"]
    done = _poll(secured_server, admin, query_id).json()["data"]
    assert done["status"] == "Complete" and done["columns"] == ["requestId", "original", "@message", "@ptr"]
    assert all(MAIL in r["original"] and MAIL not in r["@message"] for r in done["rows"])

    assert _poll(secured_server, reader, query_id).status_code == 403  # the rows hold originals
    refused = httpx.post(f"{secured_server.url}/api/v1/queries", headers=_auth(reader), json={"query": TEXT})
    assert refused.status_code == 403 and "unmask" in refused.json()["error"]["message"]
    entries = AuditLog(secured_server.dashcam.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome) for e in entries] == [(admin.key_id, "ok"), (reader.key_id, "denied")]
