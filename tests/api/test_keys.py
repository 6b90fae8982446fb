"""Keys on the native API over real HTTP: who is calling, and admins issuing and revoking keys;
everyone else is refused, and both the changes and the refusals land in the audit log."""

from __future__ import annotations

import httpx

from dashcam.audit import AuditLog


def _auth(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def test_an_admin_issues_a_key_that_works_and_revokes_it(secured_server):
    admin = secured_server.keys.create("admin", description="ops")
    url = f"{secured_server.url}/api/v1/keys"
    issued = httpx.post(url, headers=_auth(admin.bearer), json={"role": "read", "logGroups": "/app/*", "description": "grafana"})
    assert issued.status_code == 201, issued.text
    key = issued.json()["data"]
    assert key["bearer"] == f"dk_{key['id']}.{key['secret']}"
    assert (key["awsAccessKeyId"], key["awsSecretAccessKey"]) == (key["id"], key["secret"])
    assert (key["role"], key["logGroups"], key["description"], key["revokedMs"]) == ("read", "/app/*", "grafana", None)

    me = httpx.get(f"{secured_server.url}/api/v1/whoami", headers=_auth(key["bearer"])).json()["data"]
    assert me == {"keyId": key["id"], "role": "read", "logGroups": "/app/*", "secured": True}

    listed = httpx.get(url, headers=_auth(admin.bearer)).json()["data"]
    assert [k["id"] for k in listed] == [admin.key_id, key["id"]]
    assert all("secret" not in k and "bearer" not in k for k in listed)
    assert key["secret"] not in httpx.get(url, headers=_auth(admin.bearer)).text

    revoked = httpx.delete(f"{url}/{key['id']}", headers=_auth(admin.bearer))
    assert revoked.status_code == 200 and revoked.json()["data"]["revokedMs"] is not None
    assert httpx.get(f"{secured_server.url}/api/v1/whoami", headers=_auth(key["bearer"])).status_code == 401
    assert httpx.delete(f"{url}/DKNOSUCHKEY", headers=_auth(admin.bearer)).status_code == 404

    entries = AuditLog(secured_server.dashcam.data_dir).entries(action="key.")
    # The first key was issued by the fixture's key ring (the local user), the rest by the admin's key.
    assert [(e.action, e.target, e.actor, e.outcome) for e in entries][1:] == [
        ("key.create", key["id"], admin.key_id, "ok"),
        ("key.revoke", key["id"], admin.key_id, "ok"),
        ("key.revoke", "DKNOSUCHKEY", admin.key_id, "failed"),
    ]


def test_readers_ingesters_and_limited_admins_may_not_manage_keys(secured_server):
    url = f"{secured_server.url}/api/v1/keys"
    full = secured_server.keys.create("admin")
    for role, groups in (("read", "*"), ("ingest", "*"), ("admin", "/team-a/*")):
        caller = secured_server.keys.create(role, log_groups=groups)
        assert httpx.get(url, headers=_auth(caller.bearer)).status_code == 403, role
        assert httpx.post(url, headers=_auth(caller.bearer), json={"role": "admin"}).status_code == 403, role
        assert httpx.delete(f"{url}/{full.key_id}", headers=_auth(caller.bearer)).status_code == 403, role
        me = httpx.get(f"{secured_server.url}/api/v1/whoami", headers=_auth(caller.bearer)).json()["data"]
        assert (me["role"], me["logGroups"]) == (role, groups)
    assert httpx.get(url).status_code == 401
    assert httpx.get(f"{secured_server.url}/api/v1/whoami").status_code == 401
    denied = AuditLog(secured_server.dashcam.data_dir).entries(action="key.")
    assert sum(e.outcome == "denied" for e in denied) == 6  # two changes refused per caller; listing is not audited
    assert secured_server.keys.list()[0].revoked_ms is None


def test_a_role_that_does_not_exist_is_refused(secured_server):
    admin = secured_server.keys.create("admin")
    answer = httpx.post(f"{secured_server.url}/api/v1/keys", headers=_auth(admin.bearer), json={"role": "owner"})
    assert answer.status_code == 400 and "owner" in answer.json()["error"]["message"]


def test_an_open_server_says_so_and_its_first_key_secures_it(server):
    me = httpx.get(f"{server.url}/api/v1/whoami").json()["data"]
    assert me == {"keyId": "anonymous", "role": "admin", "logGroups": "*", "secured": False}
    issued = httpx.post(f"{server.url}/api/v1/keys", json={"role": "admin"})
    assert issued.status_code == 201
    assert [k.key_id for k in server.keys.list()] == [issued.json()["data"]["id"]]
