"""``GET /api/v1/advice`` over real HTTP: the same advice the library gives, behind the read role."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import httpx

from dashcam.advise import THROTTLING, advise


def _planted() -> list[dict]:
    """The planted scenarios of tests/test_advise.py (one source of truth for the patterns)."""
    path = Path(__file__).resolve().parents[1] / "test_advise.py"
    spec = importlib.util.spec_from_file_location("advise_scenarios", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.planted_records()


def test_advice_is_served_as_json(server):
    records = _planted()
    written = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": "/app/a"}, json=records)
    assert written.status_code == 200 and written.json()["data"]["written"] == len(records)
    response = httpx.get(f"{server.url}/api/v1/advice", timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()["data"]
    expected = advise(server.dashcam.store).to_dict()
    assert [(r["kind"], r["title"]) for r in body["recommendations"]] == [
        (r["kind"], r["title"]) for r in expected["recommendations"]]
    assert body["recommendations"] == expected["recommendations"]

    before_bursts = httpx.get(f"{server.url}/api/v1/advice",
                              params={"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:59:00Z"}).json()["data"]
    assert THROTTLING not in {r["kind"] for r in before_bursts["recommendations"]}
    backwards = httpx.get(f"{server.url}/api/v1/advice", params={"start": "2026-03-03", "end": "2026-03-02"})
    assert backwards.status_code == 400 and "start is after end" in backwards.json()["error"]["message"]


def test_advice_needs_a_read_key_and_keeps_to_its_groups(secured_server):
    url = f"{secured_server.url}/api/v1/advice"
    admin = secured_server.keys.create("admin")
    httpx.post(f"{secured_server.url}/api/v1/records", params={"logGroup": "/team-a/app"}, json=_planted(),
               headers={"authorization": f"Bearer {admin.bearer}"})
    assert httpx.get(url).status_code == 401
    team_b = secured_server.keys.create("read", log_groups="/team-b/*")
    assert httpx.get(url, headers={"authorization": f"Bearer {team_b.bearer}"}).status_code == 403
    team_a = secured_server.keys.create("read", log_groups="/team-a/*")
    answer = httpx.get(url, headers={"authorization": f"Bearer {team_a.bearer}"}, timeout=60)
    assert answer.status_code == 200 and answer.json()["data"]["recommendations"]
    asked_elsewhere = httpx.get(url, params={"logGroup": "/team-b/app"},
                                headers={"authorization": f"Bearer {team_a.bearer}"})
    assert asked_elsewhere.status_code == 403
