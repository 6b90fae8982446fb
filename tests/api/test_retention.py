"""Retention on the native API over real HTTP: admins set and remove a log group's retention
(names with slashes included), bad values are refused, and every change is audited."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from dashcam.audit import AuditLog

GROUP = "/aws/bedrock/modelinvocations"


def _auth(key) -> dict:
    return {"authorization": f"Bearer {key.bearer}"}


def _retention(server, headers=None) -> dict:
    groups = httpx.get(f"{server.url}/api/v1/log-groups", headers=headers).json()["data"]
    return {g["name"]: g["retentionInDays"] for g in groups}


@pytest.fixture
def with_group(server):
    server.dashcam.store.create_log_group(GROUP)
    return server


@pytest.mark.parametrize("path", [GROUP, quote(GROUP, safe="")])
def test_set_and_remove_retention(with_group, path):
    url = f"{with_group.url}/api/v1/log-groups/{path}/retention"
    answer = httpx.put(url, json={"days": 30})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"name": GROUP, "retentionInDays": 30}
    assert _retention(with_group) == {GROUP: 30}
    assert httpx.put(url, json={"days": None}).status_code == 200
    assert _retention(with_group) == {GROUP: None}
    changes = AuditLog(with_group.dashcam.data_dir).entries(action="retention.")
    assert [(e.action, e.target, e.details["days"]) for e in changes] == [("retention.put", GROUP, 30),
                                                                          ("retention.delete", GROUP, None)]


@pytest.mark.parametrize("body", [{"days": 31}, {"days": "30"}, {"days": True}, {}])
def test_a_retention_cloudwatch_does_not_offer_is_refused(with_group, body):
    answer = httpx.put(f"{with_group.url}/api/v1/log-groups/{GROUP}/retention", json=body)
    assert answer.status_code == 400
    assert _retention(with_group) == {GROUP: None}


def test_a_missing_group_is_404(with_group):
    assert httpx.put(f"{with_group.url}/api/v1/log-groups/nope/retention", json={"days": 7}).status_code == 404


def test_admin_on_the_group_is_needed(secured_server):
    secured_server.dashcam.store.create_log_group(GROUP)
    url = f"{secured_server.url}/api/v1/log-groups/{GROUP}/retention"
    for key in (secured_server.keys.create("read"), secured_server.keys.create("admin", log_groups="/other/*")):
        assert httpx.put(url, headers=_auth(key), json={"days": 7}).status_code == 403
    assert httpx.put(url, json={"days": 7}).status_code == 401
    admin = secured_server.keys.create("admin", log_groups="/aws/bedrock/*")
    assert httpx.put(url, headers=_auth(admin), json={"days": 7}).status_code == 200
    assert _retention(secured_server, _auth(admin)) == {GROUP: 7}
