"""Prices on the native API over real HTTP: the catalog in use, admins' overrides in prices.json
(new records are priced with them at once; stored ones when repriced), and who may change them."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from dashcam import pricing
from dashcam.audit import AuditLog
from dashcam.pricing import OVERRIDES_FILE, PriceCatalog

MODEL = "amazon.nova-lite-v1:0"


@pytest.fixture(autouse=True)
def _restore_prices():
    """Overrides change the catalog ingestion uses in this process: put the shipped one back after."""
    yield
    pricing.use(PriceCatalog.shipped())


def _auth(key) -> dict:
    return {"authorization": f"Bearer {key.bearer}"}


def _record(model: str, input_tokens: int, output_tokens: int) -> dict:
    return {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "operation": "Converse", "modelId": model,
            "requestId": f"r-{input_tokens}-{output_tokens}",
            "input": {"inputTokenCount": input_tokens}, "output": {"outputTokenCount": output_tokens}}


def _costs(server) -> dict:
    rows = httpx.post(f"{server.url}/api/v1/query", json={"query": "fields requestId, costUsd"}).json()["data"]["rows"]
    return {row["requestId"]: row["costUsd"] for row in rows}


def test_the_catalog_in_use_is_listed(server):
    answer = httpx.get(f"{server.url}/api/v1/prices").json()["data"]
    shipped = PriceCatalog.shipped()
    assert answer["version"] == shipped.version
    assert len(answer["prices"]) == len(shipped.prices())
    nova = next(p for p in answer["prices"] if p["model"] == MODEL)
    price = shipped.lookup(MODEL, 0)
    assert (nova["input"], nova["output"], nova["source"], nova["effective"]) == (price.input, price.output, "catalog", None)


def test_an_override_prices_new_records_and_repricing_the_stored_ones(server):
    shipped = PriceCatalog.shipped().lookup(MODEL, 0)
    httpx.post(f"{server.url}/api/v1/records", json=[_record(MODEL, 1000, 500)])
    assert _costs(server)["r-1000-500"] == pytest.approx((1000 * shipped.input + 500 * shipped.output) / 1e6)

    put = httpx.put(f"{server.url}/api/v1/prices/{MODEL}", json={"input": 10, "output": 20, "cacheRead": 1})
    assert put.status_code == 200, put.text
    listed = [p for p in httpx.get(f"{server.url}/api/v1/prices").json()["data"]["prices"] if p["model"] == MODEL]
    assert [(p["input"], p["output"], p["cacheRead"], p["source"]) for p in listed] == [(10, 20, 1, "override")]
    saved = orjson.loads((server.dashcam.data_dir / OVERRIDES_FILE).read_bytes())
    assert saved == [{"model": MODEL, "input": 10.0, "output": 20.0, "cacheRead": 1.0}]

    httpx.post(f"{server.url}/api/v1/records", json=[_record(MODEL, 2000, 100)])
    costs = _costs(server)
    assert costs["r-2000-100"] == pytest.approx((2000 * 10 + 100 * 20) / 1e6)
    assert costs["r-1000-500"] == pytest.approx((1000 * shipped.input + 500 * shipped.output) / 1e6)  # stored: unchanged

    repriced = httpx.post(f"{server.url}/api/v1/prices/reprice", json={})
    assert repriced.status_code == 200 and repriced.json()["data"]["repriced"] == 2
    assert _costs(server)["r-1000-500"] == pytest.approx((1000 * 10 + 500 * 20) / 1e6)

    # Removing the override brings the catalog's price back for new records.
    assert httpx.delete(f"{server.url}/api/v1/prices/{MODEL}").json()["data"] == {"model": MODEL, "removed": 1}
    assert httpx.delete(f"{server.url}/api/v1/prices/{MODEL}").status_code == 404
    httpx.post(f"{server.url}/api/v1/records", json=[_record(MODEL, 3000, 0)])
    assert _costs(server)["r-3000-0"] == pytest.approx(3000 * shipped.input / 1e6)
    actions = [e.action for e in AuditLog(server.dashcam.data_dir).entries() if e.action.startswith(("price.", "events."))]
    assert actions == ["price.put", "events.reprice", "price.delete"]


def test_overrides_keep_the_file_shape_and_replace_the_same_date(server):
    path = server.dashcam.data_dir / OVERRIDES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({"models": [{"model": "my-model", "input": 1, "output": 2}]}))
    for output in (5, 6):
        httpx.put(f"{server.url}/api/v1/prices/my-model", json={"input": 3, "output": output, "effective": "2026-01-01"})
    saved = orjson.loads(path.read_bytes())
    assert saved == {"models": [{"model": "my-model", "input": 1, "output": 2},
                                {"model": "my-model", "input": 3.0, "output": 6.0, "effective": "2026-01-01"}]}
    listed = [p for p in httpx.get(f"{server.url}/api/v1/prices").json()["data"]["prices"] if p["model"] == "my-model"]
    assert [(p["effective"], p["output"]) for p in listed] == [(None, 2), ("2026-01-01", 6)]
    one = httpx.delete(f"{server.url}/api/v1/prices/my-model", params={"effective": "2026-01-01"})
    assert one.json()["data"]["removed"] == 1
    assert orjson.loads(path.read_bytes()) == {"models": [{"model": "my-model", "input": 1, "output": 2}]}


@pytest.mark.parametrize("body", [{"input": -1, "output": 1}, {"input": 1}, {"input": 1, "output": 1, "effective": "soon"}])
def test_a_malformed_price_is_refused(server, body):
    answer = httpx.put(f"{server.url}/api/v1/prices/{MODEL}", json=body)
    assert answer.status_code == 400
    assert not (server.dashcam.data_dir / OVERRIDES_FILE).exists()


def test_only_admins_over_every_group_change_prices(secured_server):
    reader = secured_server.keys.create("read")
    limited = secured_server.keys.create("admin", log_groups="/team/*")
    admin = secured_server.keys.create("admin")
    assert httpx.get(f"{secured_server.url}/api/v1/prices", headers=_auth(reader)).status_code == 200
    for key in (reader, limited):
        assert httpx.put(f"{secured_server.url}/api/v1/prices/{MODEL}", headers=_auth(key),
                         json={"input": 1, "output": 1}).status_code == 403
        assert httpx.post(f"{secured_server.url}/api/v1/prices/reprice", headers=_auth(key), json={}).status_code == 403
    assert httpx.put(f"{secured_server.url}/api/v1/prices/{MODEL}", headers=_auth(admin),
                     json={"input": 1, "output": 1}).status_code == 200
    entries = AuditLog(secured_server.dashcam.data_dir).entries(action="price.put")
    assert [(e.actor, e.outcome) for e in entries] == [(reader.key_id, "denied"), (limited.key_id, "denied"),
                                                       (admin.key_id, "ok")]
