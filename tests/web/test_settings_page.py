"""The Settings page in a real browser against a real server: an admin creates a key (whose secret
works), revokes it (it stops working), changes a retention, a price and a masking policy; a read
key sees everything read-only; without a key a secured server shows nothing."""

from __future__ import annotations

import httpx
import pytest

from dashcam import pricing
from dashcam.pricing import PriceCatalog

GROUP = "/aws/bedrock/modelinvocations"


@pytest.fixture(autouse=True)
def _restore_prices():
    """A price override changes the catalog ingestion uses in this process: put the shipped one back after."""
    yield
    pricing.use(PriceCatalog.shipped())


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def log_in(page, key) -> None:
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-key", key.bearer)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login", state="hidden")


def whoami(server, bearer: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/whoami", headers={"authorization": f"Bearer {bearer}"})


def test_an_admin_creates_and_revokes_a_key_and_changes_settings(page, secured_server, secured_loaded, screenshots):
    admin = secured_server.keys.create("admin", description="ops")
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations
    open_page(page, f"{secured_server.url}/settings?{secured_loaded.url_range()}")
    log_in(page, admin)
    page.wait_for_selector(f'[data-key="{admin.key_id}"]')
    assert "active (this key)" in page.inner_text(f'[data-key="{admin.key_id}"]')

    page.select_option("#key-role", "read")
    page.fill("#key-description", "grafana")
    page.click("#key-create")
    page.wait_for_selector(".note.secret .secret-value")
    bearer = page.input_value(".note.secret .secret-value")
    me = whoami(secured_server, bearer)
    assert me.status_code == 200 and me.json()["data"]["role"] == "read"
    new_id = me.json()["data"]["keyId"]
    row = page.locator(f'[data-key="{new_id}"]')
    assert "grafana" in row.inner_text() and "read" in row.inner_text()
    page.screenshot(path=screenshots / "settings.png", full_page=True)

    row.locator("text=Revoke").click()
    page.wait_for_selector(f'[data-key="{new_id}"].revoked')
    assert whoami(secured_server, bearer).status_code == 401

    # Retention: a select per log group.
    page.select_option(f'[data-retention="{GROUP}"]', "30")
    page.wait_for_function(f"document.querySelector('[data-group=\"{GROUP}\"]').textContent.includes('saved')")
    groups = httpx.get(f"{secured_server.url}/api/v1/log-groups", headers={"authorization": f"Bearer {admin.bearer}"})
    assert {g["name"]: g["retentionInDays"] for g in groups.json()["data"]} == {GROUP: 30}

    # A price override through the form.
    page.fill("#price-filter", "nova-lite")
    page.locator('[data-price="amazon.nova-lite-v1:0"] >> text=Change').click()
    page.fill("#price-input", "0.5")
    page.fill("#price-output", "2")
    page.click("#price-save")
    page.wait_for_selector('[data-price="amazon.nova-lite-v1:0"][data-source="override"]')
    prices = httpx.get(f"{secured_server.url}/api/v1/prices", headers={"authorization": f"Bearer {admin.bearer}"}).json()
    nova = [p for p in prices["data"]["prices"] if p["model"] == "amazon.nova-lite-v1:0"]
    assert [(p["input"], p["output"], p["source"]) for p in nova] == [(0.5, 2, "override")]

    # A masking policy through the form.
    page.click("#policy-new")
    page.fill("#policy-group", GROUP)
    page.fill("#policy-custom", "ticket=TICKET-\\d{6}")
    page.click("#policy-save")
    page.wait_for_selector(f'[data-policy="{GROUP}"]')
    policies = httpx.get(f"{secured_server.url}/api/v1/protection",
                         headers={"authorization": f"Bearer {admin.bearer}"}).json()["data"]["policies"]
    assert [(p["logGroup"], p["custom"]) for p in policies] == [(GROUP, [{"name": "ticket", "regex": "TICKET-\\d{6}"}])]
    assert "email" in policies[0]["detectors"]


def test_a_read_key_sees_settings_read_only(page, secured_server, secured_loaded, screenshots):
    reader = secured_server.keys.create("read")
    open_page(page, f"{secured_server.url}/settings?{secured_loaded.url_range()}")
    log_in(page, reader)
    page.wait_for_selector(".retention-table tbody tr")
    assert page.get_attribute(".who-text", "data-role") == "read"
    assert "read-only" in page.inner_text(".who-text")
    assert "Only an admin key over every log group" in page.inner_text("#keys")
    assert page.locator("#key-create").count() == 0
    assert page.locator(".prices-table tbody tr").count() == len(PriceCatalog.shipped().prices())
    assert page.locator("#prices button").count() == 0 and page.locator("#price-form").count() == 0
    assert page.locator("[data-retention]").count() == 0
    assert "Never expire" in page.inner_text(f'[data-group="{GROUP}"]')
    assert page.locator("#policy-new").count() == 0
    page.screenshot(path=screenshots / "settings-read-only.png", full_page=True)


def test_a_secured_server_shows_no_settings_without_a_key(page, secured_server):
    secured_server.keys.create("admin")
    open_page(page, f"{secured_server.url}/settings")
    page.wait_for_selector("#login:not([hidden])")
    assert page.locator("#keys table").count() == 0 and page.locator(".prices-table").count() == 0
    assert page.evaluate("fetch('/api/v1/keys').then((r) => r.status)") == 401
    assert page.evaluate("fetch('/api/v1/prices').then((r) => r.status)") == 401
