"""Data protection on the native API, with keys: admins set policies and unmask; readers and
ingesters may not; every attempt lands in the audit log under the caller's key."""

from __future__ import annotations

import time

import httpx
import orjson

from dashcam.audit import AuditLog

SECRET_MAIL = "kim.private@example.com"


def _auth(key) -> dict:
    return {"authorization": f"Bearer {key.bearer}"}


def _record() -> dict:
    return {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "operation": "Converse",
            "modelId": "m", "input": {"inputTokenCount": 3, "inputBodyJson": {"messages": [
                {"role": "user", "content": [{"text": f"reply to {SECRET_MAIL}"}]}]}}}


def _set_policy(server, key, group: str, **policy) -> httpx.Response:
    return httpx.put(f"{server.url}/api/v1/protection", params={"logGroup": group}, headers=_auth(key),
                     content=orjson.dumps(policy))


def test_an_admin_unmasks_and_a_reader_is_refused(secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    ingester = secured_server.keys.create("ingest")
    assert _set_policy(secured_server, reader, "/app", detectors=["email"]).status_code == 403
    assert _set_policy(secured_server, admin, "/app", detectors=["email"], keepOriginal=True).status_code == 200
    written = httpx.post(f"{secured_server.url}/api/v1/records", params={"logGroup": "/app"}, headers=_auth(ingester),
                         json=[_record()])
    assert written.json()["data"]["written"] == 1
    rows = httpx.post(f"{secured_server.url}/api/v1/query", headers=_auth(reader),
                      json={"query": "fields @ptr, @message"}).json()["data"]["rows"]
    assert SECRET_MAIL not in rows[0]["@message"] and "reply to ****" in rows[0]["@message"]
    ptr = rows[0]["@ptr"]

    denied = httpx.post(f"{secured_server.url}/api/v1/unmask", headers=_auth(reader), json={"ptrs": [ptr]})
    assert denied.status_code == 403 and SECRET_MAIL not in denied.text
    assert httpx.post(f"{secured_server.url}/api/v1/unmask", headers=_auth(ingester),
                      json={"ptrs": [ptr]}).status_code == 403
    assert httpx.post(f"{secured_server.url}/api/v1/unmask", json={"ptrs": [ptr]}).status_code == 401
    unmasked = httpx.post(f"{secured_server.url}/api/v1/unmask", headers=_auth(admin), json={"ptrs": [ptr, "/app:1"]})
    assert unmasked.status_code == 200
    first, missing = unmasked.json()["data"]
    assert first["found"] and SECRET_MAIL in first["message"] and orjson.loads(first["message"])["modelId"] == "m"
    assert missing == {"ptr": "/app:1", "logGroup": "/app", "found": False, "message": None}

    unmasks = AuditLog(secured_server.dashcam.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome) for e in unmasks] == [(reader.key_id, "denied"), (ingester.key_id, "denied"),
                                                       (admin.key_id, "ok")]
    assert unmasks[-1].details["found"] == 1
    puts = AuditLog(secured_server.dashcam.data_dir).entries(action="protection.put")
    assert [(e.actor, e.target) for e in puts] == [(admin.key_id, "/app")]


def test_an_admin_limited_to_some_groups_unmasks_only_there(secured_server):
    admin = secured_server.keys.create("admin")
    team = secured_server.keys.create("admin", log_groups="/team/*")
    for group in ("/team/a", "/other"):
        assert _set_policy(secured_server, admin, group, detectors=["email"], keepOriginal=True).status_code == 200
        httpx.post(f"{secured_server.url}/api/v1/records", params={"logGroup": group}, headers=_auth(admin),
                   json=[_record()])
    assert _set_policy(secured_server, team, "*", detectors=["email"]).status_code == 403
    ptrs = {r["@log"]: r["@ptr"] for r in httpx.post(
        f"{secured_server.url}/api/v1/query", headers=_auth(admin),
        json={"query": "fields @log, @ptr"}).json()["data"]["rows"]}
    assert httpx.post(f"{secured_server.url}/api/v1/unmask", headers=_auth(team),
                      json={"ptrs": [ptrs["/team/a"]]}).json()["data"][0]["found"]
    assert httpx.post(f"{secured_server.url}/api/v1/unmask", headers=_auth(team),
                      json={"ptrs": [ptrs["/team/a"], ptrs["/other"]]}).status_code == 403
    assert httpx.get(f"{secured_server.url}/api/v1/audit", headers=_auth(team)).status_code == 403


def test_policies_are_listed_with_counts_and_removed(secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    assert _set_policy(secured_server, admin, "/app", detectors=["email", "PhoneNumber-GB"]).status_code == 200
    bad = _set_policy(secured_server, admin, "/app", detectors=["ssn"])
    assert bad.status_code == 400 and "ssn" in bad.json()["error"]["message"]
    httpx.post(f"{secured_server.url}/api/v1/records", params={"logGroup": "/app"}, headers=_auth(admin),
               json=[_record(), _record() | {"note": "x@example.org"}])
    listed = httpx.get(f"{secured_server.url}/api/v1/protection", headers=_auth(reader)).json()["data"]
    assert [(p["logGroup"], p["detectors"], p["phoneRegion"]) for p in listed["policies"]] == [
        ("/app", ["email", "phone"], "GB")]
    assert {"name": "email", "identifier": "EmailAddress"}.items() <= listed["detectors"][3].items()
    assert listed["counts"] == [{"logGroup": "/app", "kind": "masked", "name": "email", "count": 3}]
    assert httpx.delete(f"{secured_server.url}/api/v1/protection", params={"logGroup": "/app"},
                        headers=_auth(reader)).status_code == 403
    assert httpx.delete(f"{secured_server.url}/api/v1/protection", params={"logGroup": "/app"},
                        headers=_auth(admin)).status_code == 200
    assert httpx.delete(f"{secured_server.url}/api/v1/protection", params={"logGroup": "/app"},
                        headers=_auth(admin)).status_code == 404


def test_the_audit_log_is_queryable_by_admins_only(secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    _set_policy(secured_server, admin, "/app", detectors=["email"])
    assert httpx.get(f"{secured_server.url}/api/v1/audit", headers=_auth(reader)).status_code == 403
    entries = httpx.get(f"{secured_server.url}/api/v1/audit", headers=_auth(admin)).json()["data"]
    assert [e["action"] for e in entries] == ["key.create", "key.create", "protection.put"]
    keys_only = httpx.get(f"{secured_server.url}/api/v1/audit", params={"action": "key.", "limit": 1},
                          headers=_auth(admin)).json()["data"]
    assert [(e["action"], e["target"]) for e in keys_only] == [("key.create", reader.key_id)]
    later = httpx.get(f"{secured_server.url}/api/v1/audit", params={"start": str(entries[-1]["time_ms"] // 1000 + 1)},
                      headers=_auth(admin)).json()["data"]
    assert later == []
