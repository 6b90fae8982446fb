"""Data protection in the dashboard, in a real browser against a real server: an admin unmasks an
event on the Invocation page (the server audits it) and a read key never gets the original; the
Settings page shows what was masked per log group and the audit log, newest first, with an
action taken on the page."""

from __future__ import annotations

import json
import time

import httpx
import orjson

from dashcam.audit import AuditLog

GROUP = "/app/chat"
SECRET_MAIL = "kim.private@example.com"
CARD = "4111 1111 1111 1111"


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def log_in(page, key) -> None:
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-key", key.bearer)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login", state="hidden")


def auth(key) -> dict:
    return {"authorization": f"Bearer {key.bearer}"}


def record(n: int, text: str) -> dict:
    """A Converse invocation whose user message is ``text``."""
    return {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "requestId": f"req-{n}",
            "operation": "Converse", "modelId": "amazon.nova-lite-v1:0",
            "input": {"inputTokenCount": 12, "inputBodyJson": {"messages": [
                {"role": "user", "content": [{"text": text}]}]}},
            "output": {"outputTokenCount": 3, "outputBodyJson": {"output": {"message": {
                "role": "assistant", "content": [{"text": "Noted."}]}}, "stopReason": "end_turn"}}}


def protect_and_ingest(server, admin, records: list[dict], **policy) -> str:
    """Set ``policy`` on GROUP, ingest ``records`` there, and return the first one's @ptr."""
    put = httpx.put(f"{server.url}/api/v1/protection", params={"logGroup": GROUP}, headers=auth(admin),
                    content=orjson.dumps(policy))
    assert put.status_code == 200, put.text
    written = httpx.post(f"{server.url}/api/v1/records", params={"logGroup": GROUP}, headers=auth(admin), json=records)
    assert written.json()["data"]["written"] == len(records)
    rows = httpx.post(f"{server.url}/api/v1/query", headers=auth(admin),
                      json={"query": "fields @ptr, requestId", "pointers": True}).json()["data"]["rows"]
    return next(r["@ptr"] for r in rows if r["requestId"] == records[0]["requestId"])


def test_an_admin_unmasks_an_invocation_and_sees_the_original(page, secured_server, screenshots):
    admin = secured_server.keys.create("admin", description="ops")
    sent = record(1, f"Please email {SECRET_MAIL} the receipt for card {CARD}.")
    ptr = protect_and_ingest(secured_server, admin, [sent], detectors=["email", "credit-card"], keepOriginal=True)
    open_page(page, f"{secured_server.url}/invocation?ptr={ptr}")
    log_in(page, admin)
    page.wait_for_selector('[data-protection="unmaskable"] #unmask')
    masked = page.inner_text(".turn-user .text")
    assert masked == "Please email **** the receipt for card ****."
    assert SECRET_MAIL not in page.inner_text("main") and CARD not in page.inner_text("main")
    assert AuditLog(secured_server.dashcam.data_dir).entries(action="unmask") == []  # nothing is fetched unasked

    page.focus("#unmask")
    page.keyboard.press("Enter")  # the control works from the keyboard
    page.wait_for_selector(".conversation-card.unmasked")
    assert page.evaluate("document.activeElement.id") == "unmask"  # focus stays on the control
    assert page.inner_text(".turn-user .text") == sent["input"]["inputBodyJson"]["messages"][0]["content"][0]["text"]
    assert "Unmasked original" in page.inner_text(".unmasked-banner")
    assert "unmasked" in page.inner_text(".conversation-card h2")
    page.screenshot(path=screenshots / "invocation-unmasked.png", full_page=True)
    page.click("text=Show raw JSON")
    raw = json.loads(page.inner_text("pre.raw"))
    assert raw["input"]["inputBodyJson"] == sent["input"]["inputBodyJson"] and raw["requestId"] == sent["requestId"]

    unmasks = AuditLog(secured_server.dashcam.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome, e.target, e.details["found"]) for e in unmasks] == [(admin.key_id, "ok", GROUP, 1)]

    page.click("text=Show conversation")
    page.click("#unmask")  # now "Show masked": back to what the store holds, without asking the server
    page.wait_for_selector(".conversation-card:not(.unmasked)")
    assert page.inner_text(".turn-user .text") == masked
    assert SECRET_MAIL not in page.inner_text("main")
    assert len(AuditLog(secured_server.dashcam.data_dir).entries(action="unmask")) == 1


def test_a_read_key_does_not_get_the_original(page, secured_server, screenshots):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    ptr = protect_and_ingest(secured_server, admin, [record(1, f"write to {SECRET_MAIL}")],
                             detectors=["email"], keepOriginal=True)
    open_page(page, f"{secured_server.url}/invocation?ptr={ptr}")
    log_in(page, reader)
    page.wait_for_selector('[data-protection="read-only"] #unmask[disabled]')
    assert "needs an admin key" in page.inner_text("#unmask-reason")
    assert page.get_attribute("#unmask", "aria-describedby") == "unmask-reason"
    assert page.inner_text(".turn-user .text") == "write to ****"
    page.screenshot(path=screenshots / "invocation-read-only.png", full_page=True)
    assert not [u for u in page.requests_seen if "/api/v1/unmask" in u]

    # Asking the API directly with the page's key is refused, and audited as refused.
    answer = page.evaluate("""(ptr) => fetch('/api/v1/unmask', {method: 'POST',
        headers: {'Content-Type': 'application/json', Authorization: `Bearer ${sessionStorage.getItem('dashcam.key')}`},
        body: JSON.stringify({ptrs: [ptr]})}).then(async (r) => ({status: r.status, text: await r.text()}))""", ptr)
    assert answer["status"] == 403 and SECRET_MAIL not in answer["text"]
    assert SECRET_MAIL not in page.content()
    unmasks = AuditLog(secured_server.dashcam.data_dir).entries(action="unmask")
    assert [(e.actor, e.outcome) for e in unmasks] == [(reader.key_id, "denied")]


def test_a_group_that_keeps_no_originals_offers_no_unmask(page, server):
    # An open server: everyone acts as an admin, yet without a kept original there is nothing to unmask.
    put = httpx.put(f"{server.url}/api/v1/protection", params={"logGroup": "/app/*"},
                    content=orjson.dumps({"detectors": ["email"]}))
    assert put.status_code == 200
    httpx.post(f"{server.url}/api/v1/records", params={"logGroup": GROUP}, json=[record(1, f"to {SECRET_MAIL}")])
    query = {"query": "fields @ptr", "pointers": True}
    rows = httpx.post(f"{server.url}/api/v1/query", json=query).json()["data"]["rows"]
    open_page(page, f"{server.url}/invocation?ptr={rows[0]['@ptr']}")
    page.wait_for_selector('[data-protection="no-originals"]')
    note = page.inner_text(".protection-note")
    assert "/app/*" in note and "cannot be recovered" in note
    assert page.locator("#unmask").count() == 0


def test_settings_show_mask_counts_and_the_audit_log(page, secured_server, screenshots):
    admin = secured_server.keys.create("admin", description="ops")
    reader = secured_server.keys.create("read", description="grafana")
    texts = [f"mail {SECRET_MAIL} and ann{n}@example.org" if n % 2 else f"card {CARD}" for n in range(5)]
    protect_and_ingest(secured_server, admin, [record(n, t) for n, t in enumerate(texts)],
                       detectors=["email", "credit-card"], keepOriginal=True)
    # A refused unmask, so the log holds a denied entry too.
    httpx.post(f"{secured_server.url}/api/v1/unmask", headers=auth(reader), json={"ptrs": [f"{GROUP}:1"]})

    open_page(page, f"{secured_server.url}/settings")
    log_in(page, admin)
    page.wait_for_selector(".audit-table tbody tr")
    # Counts: two addresses in each odd record, a card number in each even one.
    emails = sum(2 for n in range(5) if n % 2)
    cards = sum(1 for n in range(5) if n % 2 == 0)
    page.wait_for_selector(f'[data-mask-counts="{GROUP}"] td')  # its own request: may answer after the log
    row = page.locator(f'[data-mask-counts="{GROUP}"] td')
    assert row.all_inner_texts() == [GROUP, str(emails + cards), f"credit-card {cards}, email {emails}", "–"]

    # An admin action on the page shows up at the top of the log.
    page.select_option(f'[data-retention="{GROUP}"]', "30")
    page.wait_for_selector('.audit-table tbody tr:first-child[data-action="retention.put"]')
    first = page.locator(".audit-table tbody tr").first.locator("td").all_inner_texts()
    assert first[1:5] == [f"{admin.key_id} (you)", "retention.put", GROUP, "ok"]
    assert "days: 30" in first[5]

    entries = AuditLog(secured_server.dashcam.data_dir).entries()
    shown = [int(seq) for seq in page.eval_on_selector_all(".audit-table tbody tr",
                                                            "rows => rows.map((r) => r.dataset.audit)")]
    assert shown == [e.seq for e in reversed(entries)]  # every entry, newest first
    denied = page.locator('.audit-table tr[data-action="unmask"]')
    assert denied.locator(".badge").inner_text() == "denied" and reader.key_id in denied.inner_text()

    # The filter asks the server for one kind of action.
    page.select_option("#audit-action", "key.")
    page.wait_for_function("[...document.querySelectorAll('.audit-table tbody tr')]"
                           ".every((r) => r.dataset.action.startsWith('key.'))")
    assert page.locator(".audit-table tbody tr").count() == sum(1 for e in entries if e.action.startswith("key."))
    page.select_option("#audit-action", "")
    page.wait_for_selector('.audit-table tr[data-action="retention.put"]')
    page.locator("#masking").screenshot(path=screenshots / "settings-masking.png")
    page.locator("#audit").screenshot(path=screenshots / "settings-audit.png")


def test_a_reader_sees_mask_counts_but_not_the_audit_log(page, secured_server):
    admin, reader = secured_server.keys.create("admin"), secured_server.keys.create("read")
    protect_and_ingest(secured_server, admin, [record(1, f"to {SECRET_MAIL}")], detectors=["email"])
    open_page(page, f"{secured_server.url}/settings")
    log_in(page, reader)
    page.wait_for_selector(f'[data-mask-counts="{GROUP}"]')
    assert "Only an admin key over every log group sees the audit log" in page.inner_text("#audit")
    assert page.locator(".audit-table").count() == 0
    assert not [u for u in page.requests_seen if "/api/v1/audit" in u]
