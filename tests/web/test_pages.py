"""The dashboard in a real browser (Debian's Chromium under Playwright) against a real server.

Each test opens pages the way a person would, checks what they show against answers computed
independently from the generated records, and saves a screenshot (see ``screenshots`` in
conftest.py).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from dashcam.records import THROTTLING_CODES

BROWSER_ZONE = ZoneInfo("America/New_York")  # the page fixture's time zone


def model_counts(data) -> Counter:
    return Counter(record["modelId"] for record in data.generated)


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def charts_drawn(page, key: str) -> int:
    """How many data traces the chart ``key`` drew."""
    return page.locator(f'[data-chart="{key}"] .cartesianlayer .trace').count()


def assert_stayed_local(page, server) -> None:
    """Every request went to the dashcam server (no CDN, no internet)."""
    outside = [u for u in page.requests_seen if not u.startswith((server.url, "data:", "blob:"))]
    assert not outside, f"the page reached beyond its server: {outside[:5]}"


def test_overview_shows_headlines_core_questions_and_charts(page, server, loaded, screenshots):
    open_page(page, f"{server.url}/?{loaded.url_range()}")
    page.wait_for_selector('[data-tile="requests"] .tile-value')
    assert page.inner_text('[data-tile="requests"] .tile-value') == f"{loaded.records:,}"
    throttled = sum(1 for r in loaded.generated if r.get("errorCode") in THROTTLING_CODES)
    assert page.inner_text('[data-tile="throttleRate"] .tile-value') == f"{throttled / loaded.records * 100:.2f}%"
    # The previous period is empty: the change says so rather than inventing a number.
    assert page.inner_text('[data-tile="requests"] .tile-change') == "no previous data"
    assert page.inner_text(".model-filter summary") == f"Models: all {len(model_counts(loaded))}"

    questions = page.locator("[data-question]")
    assert questions.count() == 4
    for key in ("throttles", "slowest", "tokens", "traffic"):
        card = page.locator(f'[data-question="{key}"]')
        assert card.locator(".answer").inner_text().strip()
        assert card.locator("a.more-link").get_attribute("href").startswith("/query?")
    busiest = Counter(r["timestamp"][:16] for r in loaded.generated).most_common(1)[0][1]
    assert f"Busiest minute: {busiest:,} requests" in page.inner_text('[data-question="traffic"] .answer')

    for key in ("requests", "errorRate", "throttleRate", "inputTokens", "outputTokens", "cost"):
        assert charts_drawn(page, key) == len(model_counts(loaded)), key
    # A model is drawn on a latency chart when some of its calls report the measure.
    for keys, fields in ((("p50", "p90", "p99"), ("latencyMs", "invocationLatency")), (("ttft50",), ("firstByteLatency",))):
        reporting = {r["modelId"] for r in loaded.generated
                     if any(f in json.dumps(r.get("output", {}).get("outputBodyJson")) for f in fields)}
        for key in keys:
            assert charts_drawn(page, key) == len(reporting), key
    # Times on the axis are the browser's (New York), not UTC.
    first_tick = loaded.start.astimezone(BROWSER_ZONE)
    assert page.locator('[data-chart="requests"] .xtick').count() > 2
    assert page.inner_text("main .page-note").startswith("6 h from " + first_tick.strftime("%Y-%m-%d %H:%M"))
    page.screenshot(path=screenshots / "overview.png", full_page=True)
    assert_stayed_local(page, server)


def test_the_model_filter_narrows_every_number(page, server, loaded):
    counts = model_counts(loaded)
    model, expected = counts.most_common()[-1]
    open_page(page, f"{server.url}/?{loaded.url_range()}&model={quote(model, safe='')}")
    page.wait_for_selector('[data-tile="requests"] .tile-value')
    assert page.inner_text('[data-tile="requests"] .tile-value') == f"{expected:,}"
    assert charts_drawn(page, "requests") == 1
    assert page.inner_text(".model-filter summary") == f"Models: 1 of {len(counts)}"
    # Back to all models through the filter itself.
    page.click(".model-filter summary")
    page.click("text=All models")
    page.wait_for_function(f"document.querySelector('[data-tile=requests] .tile-value').textContent === '{loaded.records:,}'")
    assert "model=" not in page.url


def test_pick_a_time_range_relative_and_absolute(page, server, loaded, screenshots):
    open_page(page, f"{server.url}/")
    assert page.inner_text("#range-label") == "Last 6 hours"
    page.click("#range-button")
    assert page.is_visible("#range-popover")
    assert "America/New_York" in page.inner_text("#range-tz")
    page.screenshot(path=screenshots / "range-picker.png")
    page.click('#range-presets [data-range="1h"]')
    assert page.inner_text("#range-label") == "Last 1 hour"
    assert parse_qs(urlsplit(page.url).query)["range"] == ["1h"]

    # An absolute range, typed in the browser's own time zone, lands in the URL in UTC.
    local_start = loaded.start.astimezone(BROWSER_ZONE).replace(tzinfo=None)
    local_end = loaded.end.astimezone(BROWSER_ZONE).replace(tzinfo=None)
    page.click("#range-button")
    page.fill("#range-from", local_start.strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("#range-to", local_end.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#range-apply")
    query = parse_qs(urlsplit(page.url).query)
    assert query["start"] == [f"{loaded.start:%Y-%m-%dT%H:%M:%SZ}"]
    assert query["end"] == [f"{loaded.end:%Y-%m-%dT%H:%M:%SZ}"]
    end_text = f"{local_end:%H:%M}" if local_start.date() == local_end.date() else f"{local_end:%Y-%m-%d %H:%M}"
    assert page.inner_text("#range-label") == f"{local_start:%Y-%m-%d %H:%M} → {end_text}"
    page.wait_for_function(f"document.querySelector('[data-tile=requests] .tile-value')?.textContent === '{loaded.records:,}'")

    # The keyboard alone: open the picker, close it with Escape, focus back on its button.
    page.focus("#range-button")
    page.keyboard.press("Enter")
    assert page.is_visible("#range-popover")
    page.keyboard.press("Escape")
    assert not page.is_visible("#range-popover")
    assert page.evaluate("document.activeElement.id") == "range-button"

    # A range with nothing in it says so.
    page.click("#range-button")
    page.fill("#range-from", "2001-01-01T00:00:00")
    page.fill("#range-to", "2001-01-02T00:00:00")
    page.click("#range-apply")
    page.wait_for_selector("text=No invocations in this range.")


def test_models_page_compares_every_model(page, server, loaded, screenshots):
    open_page(page, f"{server.url}/models?{loaded.url_range()}")
    page.wait_for_selector(".models-table tbody tr")
    counts = model_counts(loaded)
    rows = page.locator(".models-table tbody tr")
    assert rows.count() == len(counts)
    shown = {}
    for i in range(rows.count()):
        full_id = rows.nth(i).locator("th").get_attribute("title")
        shown[full_id] = int(rows.nth(i).locator("td").first.inner_text().replace(",", ""))
    assert shown == dict(counts)
    headers = page.locator(".models-table thead th").all_inner_texts()
    for name in ("Error rate", "Throttle rate", "p50", "p90", "p99", "$ / request", "$ / 1K output tokens"):
        assert any(name.replace(" ", "") in h.replace("\n", "").replace(" ", "") for h in headers), name
    for key in ("latency", "rates", "cost-per-1k"):
        assert charts_drawn(page, key) >= 1
    # Sorting by a column orders the rows by it.
    page.click('.models-table thead button:text-is("Requests")')
    first = rows.first.locator("td").first.inner_text()
    assert int(first.replace(",", "")) == min(counts.values())
    page.screenshot(path=screenshots / "models.png", full_page=True)


def test_models_page_shows_quota_headroom_when_quotas_are_set(page, server, loaded):
    counts = model_counts(loaded)
    model = counts.most_common(1)[0][0]
    # All attempts count against the RPM quota; the busiest minute sets the headroom.
    peak = Counter(r["timestamp"][:16] for r in loaded.generated if r["modelId"] == model).most_common(1)[0][1]
    rpm = 200  # 100 x (1 - peak / 200) is a whole or half percent: no rounding to disagree about
    # Quotas name models as Service Quotas does, without an inference-profile ARN's prefix.
    (server.dashcam.data_dir / "quotas.json").write_text(json.dumps([{"model": model.split("/")[-1], "rpm": rpm}]))
    open_page(page, f"{server.url}/models?{loaded.url_range()}")
    page.wait_for_selector('.models-table td[data-column="headroom"]')
    cells = {page.locator(".models-table tbody tr").nth(i).locator("th").get_attribute("title"):
             page.locator(".models-table tbody tr").nth(i).locator('td[data-column="headroom"]').inner_text()
             for i in range(len(counts))}
    assert cells[model] == f"{100 * (1 - peak / rpm):.1f}%"
    assert {m: v for m, v in cells.items() if m != model} == {m: "no quota" for m in counts if m != model}
    assert "QuotaHeadroomPct" in page.inner_text("main .page-note")


def test_models_page_has_no_headroom_column_without_quotas(page, server, loaded):
    open_page(page, f"{server.url}/models?{loaded.url_range()}")
    page.wait_for_selector(".models-table tbody tr")
    assert page.locator('.models-table td[data-column="headroom"]').count() == 0
    assert "No model has a quota set" in page.inner_text("main .page-note")


def test_run_a_query_see_table_and_chart_export_and_share(page, server, loaded, screenshots):
    open_page(page, f"{server.url}/query?{loaded.url_range()}")
    page.fill("textarea.source", "stats count(*) as requests by bin(1h) as hour, modelId")
    page.press("textarea.source", "Control+Enter")
    page.wait_for_selector(".query-results tbody tr")
    expected = Counter((r["timestamp"][:13], r["modelId"]) for r in loaded.generated)
    assert page.locator(".query-results tbody tr").count() == len(expected)
    assert page.is_visible('[data-chart="query"]')
    assert charts_drawn(page, "query") == len(model_counts(loaded))
    assert "q=stats" in page.url
    page.screenshot(path=screenshots / "query.png", full_page=True)

    with page.expect_download() as download:
        page.click("text=Export CSV")
    table = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    got = {(row["hour"][:13].replace(" ", "T"), row["modelId"]): int(row["requests"]) for row in table}
    assert got == dict(expected)
    with page.expect_download() as download:
        page.click("text=Export JSON")
    rows = json.loads(download.value.path().read_text())
    assert sum(row["requests"] for row in rows) == loaded.records

    # The URL alone brings the same view back: query, range, results.
    shared = page.url
    other = page.context.new_page()
    other.goto(shared)
    other.wait_for_selector(".query-results tbody tr")
    assert other.input_value("textarea.source") == "stats count(*) as requests by bin(1h) as hour, modelId"
    assert other.locator(".query-results tbody tr").count() == len(expected)
    other.close()
    assert_stayed_local(page, server)


def test_a_malformed_query_is_marked_at_its_line_and_column(page, server, loaded, screenshots):
    open_page(page, f"{server.url}/query?{loaded.url_range()}")
    page.fill("textarea.source", "fields @timestamp\n| filter latencyMs ==== 3")
    page.click("text=Run query")
    page.wait_for_selector(".query-error:not([hidden])")
    answer = httpx.post(f"{server.url}/api/v1/query", json={"query": "fields @timestamp\n| filter latencyMs ==== 3"})
    error = answer.json()["error"]
    assert page.inner_text(".query-error").startswith(f"Line {error['line']}, column {error['column']}")
    assert page.inner_text(".gutter .error-line") == str(error["line"])
    marked = page.inner_text("mark.error-at")
    line = "fields @timestamp\n| filter latencyMs ==== 3".split("\n")[error["line"] - 1]
    assert line[error["column"] - 1:].startswith(marked)
    page.screenshot(path=screenshots / "query-error.png")
    # Clicking the position puts the caret there.
    page.click(".query-error button")
    caret = page.evaluate("document.querySelector('textarea.source').selectionStart")
    assert caret == len("fields @timestamp\n") + error["column"] - 1


def test_saved_queries_and_history(page, server, loaded):
    open_page(page, f"{server.url}/query?{loaded.url_range()}")
    page.click('[data-saved="tokens"]')
    page.wait_for_selector(".query-results tbody tr")
    assert page.locator(".query-results tbody tr").count() == len(model_counts(loaded))
    assert "sum(output.outputTokenCount)" in page.input_value("textarea.source")
    # Highlighting: commands, functions and the pipe get their own colours.
    assert page.locator(".highlight .tok-command").first.inner_text() == "stats"
    assert page.locator(".highlight .tok-function").count() >= 3
    page.reload()
    page.wait_for_selector(".history-list .history-item")
    assert "sum(output.outputTokenCount)" in page.get_attribute(".history-list .history-item", "title")


def test_open_an_invocation_from_a_result(page, server, loaded, screenshots):
    text = ('fields @timestamp, requestId, modelId, latencyMs\n| filter operation = "Converse" and ispresent(latencyMs)'
            '\n| sort @timestamp desc\n| limit 5')
    open_page(page, f"{server.url}/query?{loaded.url_range()}&q={quote(text)}")
    page.wait_for_selector("td.open a")
    request_id = page.locator(".query-results tbody tr").first.locator("td").nth(2).inner_text()
    page.click("td.open a >> nth=0")
    page.wait_for_selector(".conversation .turn")
    assert "/invocation?" in page.url
    record = next(r for r in loaded.generated if r["requestId"] == request_id)
    facts = dict(zip(page.locator(".facts dt").all_inner_texts(), page.locator(".facts dd").all_inner_texts()))
    assert facts["Request id"] == request_id
    body = record["input"]["inputBodyJson"]
    assert page.inner_text(".turn-system .text") == body["system"][0]["text"]
    assert page.inner_text(".turn-user .text") == body["messages"][-1]["content"][0]["text"]
    reply = record["output"]["outputBodyJson"]["output"]["message"]["content"][0]["text"]
    assert page.locator(".turn-response .text").first.inner_text() == reply
    latency = record["output"]["outputBodyJson"]["metrics"]["latencyMs"]
    assert page.locator(".tile", has_text="Latency").locator(".tile-value").inner_text() == _duration(latency)
    page.screenshot(path=screenshots / "invocation.png", full_page=True)
    # The raw record is one click away.
    page.click("text=Show raw JSON")
    assert json.loads(page.inner_text("pre.raw"))["requestId"] == request_id
    assert not page.is_visible(".conversation")


def test_a_tool_call_is_rendered_with_its_input(page, server, loaded):
    record = next(r for r in loaded.generated if r["operation"] == "Converse"
                  and r.get("output", {}).get("outputBodyJson", {}).get("stopReason") == "tool_use")
    text = f'fields @timestamp, requestId | filter requestId = "{record["requestId"]}"'
    open_page(page, f"{server.url}/query?{loaded.url_range()}&q={quote(text)}")
    page.click("td.open a >> nth=0")
    page.wait_for_selector(".tool-call")
    call = next(c["toolUse"] for c in record["output"]["outputBodyJson"]["output"]["message"]["content"] if "toolUse" in c)
    assert page.inner_text(".tool-call .tool-head code") == call["name"]
    assert json.loads(page.inner_text(".tool-call pre")) == call["input"]


def test_auto_refresh_reloads_the_data(page, server, loaded):
    page.clock.install()
    open_page(page, f"{server.url}/models?{loaded.url_range()}")
    page.wait_for_selector(".models-table tbody tr")
    page.select_option("#refresh-select", "10")
    assert parse_qs(urlsplit(page.url).query)["refresh"] == ["10"]
    before = sum("/api/v1/query" in u for u in page.requests_seen)
    page.clock.run_for(10_500)
    page.wait_for_load_state("networkidle")
    assert sum("/api/v1/query" in u for u in page.requests_seen) > before


def test_a_server_with_keys_asks_for_one(page, secured_server, secured_loaded, screenshots):
    key = secured_server.keys.create("read")
    open_page(page, f"{secured_server.url}/?{secured_loaded.url_range()}")
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("fetch('/api/v1/saved-queries').then(r => r.status)") == 401
    assert not page.locator('[data-tile="requests"] .tile-value').count()
    page.screenshot(path=screenshots / "login.png")

    page.fill("#login-key", "dk_not-a-real-key")
    page.click("#login-form button[type=submit]")
    page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
    assert page.is_visible("#login")

    page.fill("#login-key", key.bearer)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login", state="hidden")
    page.wait_for_selector('[data-tile="requests"] .tile-value')
    assert page.inner_text('[data-tile="requests"] .tile-value') == f"{secured_loaded.records:,}"

    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")


def test_narrow_screens_do_not_scroll_sideways(browser, server, loaded, screenshots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="America/New_York")
    phone = context.new_page()
    try:
        for name, path in (("overview", "/"), ("models", "/models"), ("query", "/query"), ("alarms", "/alarms"),
                           ("dashboards", "/dashboards"), ("dashboard", "/dashboard?new=1"), ("settings", "/settings")):
            phone.goto(f"{server.url}{path}{'&' if '?' in path else '?'}{loaded.url_range()}")
            phone.wait_for_load_state("networkidle")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{name} is {width}px wide on a 390px screen"
            phone.screenshot(path=screenshots / f"{name}-narrow.png", full_page=name == "overview")
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", "/models", "/query", "/invocation", "/alarms", "/alarm", "/dashboards", "/dashboard",
                                  "/dashboard?new=1", "/settings"])
def test_every_page_loads_without_errors_when_there_is_no_data(page, server, path):
    open_page(page, f"{server.url}{path}")
    assert page.locator("main").inner_text().strip()
    assert not page.errors_seen


def test_times_are_shown_in_the_browser_time_zone(page, server, loaded):
    open_page(page, f"{server.url}/query?{loaded.url_range()}&q={quote('fields @timestamp | sort @timestamp asc | limit 1')}")
    page.wait_for_selector(".query-results tbody tr")
    first = min(datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")) for r in loaded.generated)
    cell = page.locator(".query-results tbody tr").first.locator("td").nth(1)
    assert cell.inner_text() == first.astimezone(BROWSER_ZONE).strftime("%Y-%m-%d %H:%M:%S")
    assert cell.get_attribute("title") == first.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000 UTC")
    assert re.fullmatch(r".*\(UTC-0[45]:00\)\.", page.evaluate("document.getElementById('range-tz').textContent"))


def _duration(ms: float) -> str:
    """How the dashboard writes a duration (format.js fmtMs): whole ms below a second, else seconds
    with 2, 1 or 0 decimals by size and no trailing zeros."""
    if abs(ms) < 1000:
        return f"{round(ms)} ms"
    seconds = ms / 1000
    digits = 0 if abs(seconds) >= 100 else 1 if abs(seconds) >= 10 else 2
    text = f"{seconds:,.{digits}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " s"
