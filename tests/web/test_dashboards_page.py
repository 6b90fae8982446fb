"""The Dashboards pages in a real browser against a real server: a dashboard composed on the page
(metric chart, Logs Insights table, single number, Markdown) is saved and drawn again after a
reload; a body in the shape CloudWatch exports renders as it is, widgets never overlapping; the
body's JSON is edited directly, and mistakes are named by their place in the body; the link is shared.

Expected numbers come from the generated records, not from dashcam.
"""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx

from dashcam.records import THROTTLING_CODES

GROUP = "/aws/bedrock/modelinvocations"


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def compact(n: float) -> str:
    """What format.js's fmtCompact shows for n (n >= 1000 here)."""
    for size, suffix in ((1e6, "M"), (1e3, "K")):
        if n >= size:
            value = n / size
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{float(f'{value:.{digits}f}'):g}{suffix}"
    return f"{n:g}"


def successes(data) -> list[dict]:
    return [r for r in data.generated if r.get("errorCode") is None]


def add_widget(page, kind: str) -> None:
    page.click(".add-widget summary")
    page.click(f'[data-kind="{kind}"]')
    page.wait_for_selector(".widget-form")


def widget(page, index: int):
    return page.locator(f'[data-widget="{index}"]')


def assert_no_overlap(page) -> None:
    boxes = [page.locator("[data-widget]").nth(i).bounding_box() for i in range(page.locator("[data-widget]").count())]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["width"] <= b["x"] + 1 or b["x"] + b["width"] <= a["x"] + 1
                     or a["y"] + a["height"] <= b["y"] + 1 or b["y"] + b["height"] <= a["y"] + 1)
            assert apart, f"widgets overlap: {a} {b}"


def test_compose_a_dashboard_save_it_and_see_it_after_a_reload(page, server, loaded, screenshots):
    open_page(page, f"{server.url}/dashboards?{loaded.url_range()}")
    page.click("text=New dashboard")
    page.wait_for_selector("#dashboard-name")
    page.fill("#dashboard-name", "team-view")

    add_widget(page, "metric")  # a chart of Invocations by model (the form's defaults)
    assert page.input_value("#wf-metric") == "Invocations" and page.input_value("#wf-split") == "ModelId"
    page.select_option("#wf-stat", "Sum")
    page.click("#wf-apply")

    add_widget(page, "logTable")
    page.fill("#wf-title", "Requests by model")
    page.fill("#wf-query", "stats count(*) as requests by modelId | sort requests desc")
    page.click("#wf-apply")

    add_widget(page, "number")
    page.click("#wf-apply")

    add_widget(page, "text")
    page.fill("#wf-markdown", "# Team view\nAll **Bedrock** traffic.")
    page.click("#wf-apply")
    assert page.locator("[data-widget]").count() == 4
    page.click("#dashboard-save")
    page.wait_for_url("**/dashboard?*name=team-view*")

    page.reload()
    page.wait_for_load_state("networkidle")
    ok = successes(loaded)
    models_with_successes = {r["modelId"] for r in ok}
    page.wait_for_selector('[data-widget="0"] .cartesianlayer .trace')
    assert widget(page, 0).locator(".cartesianlayer .trace").count() == len(models_with_successes)
    rows = widget(page, 1).locator("tbody tr")
    expected = Counter(r["modelId"] for r in loaded.generated)
    assert rows.count() == len(expected)
    first = rows.first.locator("td")
    assert int(first.nth(1).inner_text().replace(",", "")) == expected.most_common(1)[0][1]
    assert widget(page, 2).locator(".tile-value").inner_text() == compact(len(ok))
    assert widget(page, 3).locator(".markdown h1").inner_text() == "Team view"
    assert widget(page, 3).locator(".markdown strong").inner_text() == "Bedrock"
    assert_no_overlap(page)

    stored = httpx.get(f"{server.url}/api/v1/dashboards/team-view").json()["data"]["body"]
    assert [w["type"] for w in stored["widgets"]] == ["metric", "log", "metric", "text"]
    assert stored["widgets"][1]["properties"]["query"].startswith("stats count(*)")
    page.screenshot(path=screenshots / "dashboard-composed.png", full_page=True)

    # Arrange: the text widget grows wider and moves up; what is saved is what is drawn.
    page.click("#dashboard-edit")
    page.wait_for_selector(".widget-tools")
    before = {w["type"]: w for w in stored["widgets"]}["text"]
    widget(page, 3).locator('button[aria-label="Shorter"]').click()
    widget(page, 3).locator('button[aria-label="Move up"]').click()
    page.click("#dashboard-save")
    page.wait_for_selector("#dashboard-edit")
    after = httpx.get(f"{server.url}/api/v1/dashboards/team-view").json()["data"]["body"]["widgets"][3]
    assert (after["height"], after["y"]) == (before["height"] - 1, before["y"] - 1)


def test_a_body_exported_from_cloudwatch_renders(page, server, loaded, screenshots):
    two = [m for m, _ in Counter(r["modelId"] for r in successes(loaded)).most_common(2)]
    body = {  # as the console's "View/edit source" gives it: region, implicit places, shorthand rows
        "start": "-PT6H", "periodOverride": "inherit",
        "widgets": [
            {"height": 6, "width": 12, "y": 0, "x": 0, "type": "metric", "properties": {
                "metrics": [["AWS/Bedrock", "Invocations", "ModelId", two[0]], ["...", two[1]]],
                "view": "timeSeries", "stacked": False, "region": "us-east-1", "stat": "Sum", "period": 300,
                "title": "Invocations, two models", "annotations": {"horizontal": [{"label": "busy", "value": 25}]}}},
            {"height": 6, "width": 12, "y": 0, "x": 12, "type": "log", "properties": {
                "query": f"SOURCE '{GROUP}' | filter ispresent(errorCode)\n| stats count(*) as errors by errorCode | sort errors desc",
                "region": "us-east-1", "stacked": False, "view": "bar", "title": "Errors by code"}},
            {"height": 3, "width": 24, "type": "metric", "properties": {
                "metrics": [["AWS/Bedrock", "InvocationThrottles"]], "view": "singleValue", "region": "us-east-1",
                "stat": "Sum", "setPeriodToTimeRange": True, "title": "Throttles"}},
            {"height": 2, "width": 24, "y": 0, "x": 0, "type": "text", "properties": {"markdown": "## From AWS"}},
            {"height": 4, "width": 12, "y": 20, "x": 0, "type": "explorer", "properties": {"metrics": []}},
        ]}
    put = httpx.put(f"{server.url}/api/v1/dashboards/from-aws", content=json.dumps(body))
    assert put.status_code == 200, put.text
    open_page(page, f"{server.url}/dashboard?name=from-aws&{loaded.url_range()}")
    page.wait_for_selector('[data-widget="0"] .cartesianlayer .trace')
    assert widget(page, 0).locator(".cartesianlayer .trace").count() == 2
    labels = widget(page, 0).locator(".legend-item").all_inner_texts()
    assert sorted(label.split(" ")[-1] for label in labels) == sorted(m.split("/")[-1] for m in two)  # ARNs shortened
    page.wait_for_selector('[data-widget="1"] .cartesianlayer .trace')
    errors = Counter(r["errorCode"] for r in loaded.generated if r.get("errorCode"))
    bars = page.evaluate("document.querySelector('[data-widget=\"1\"] .chart').data[0]")
    assert dict(zip(bars["y"], bars["x"])) == dict(errors)
    throttles = sum(1 for r in loaded.generated if r.get("errorCode") in THROTTLING_CODES)
    assert widget(page, 2).locator(".tile-value").inner_text() == str(throttles)
    assert widget(page, 3).locator(".markdown h2").inner_text() == "From AWS"
    assert "does not draw" in widget(page, 4).inner_text()
    assert_no_overlap(page)
    page.screenshot(path=screenshots / "dashboard-from-aws.png", full_page=True)


def test_an_example_dashboard_uses_its_own_range_and_is_shared_by_url(page, server, loaded, screenshots):
    from dashcam.dashboards.repository import example_body

    httpx.put(f"{server.url}/api/v1/dashboards/bedrock", content=example_body("bedrock-overview"))
    open_page(page, f"{server.url}/dashboard?name=bedrock")
    assert parse_qs(urlsplit(page.url).query)["range"] == ["6h"]  # the body's "start": "-PT6H"
    assert page.inner_text("#range-label") == "Last 6 hours"
    page.wait_for_function("document.querySelectorAll('[data-widget] .cartesianlayer .trace').length > 20")
    assert page.locator('[data-status="error"]').count() == 0
    assert_no_overlap(page)
    page.screenshot(path=screenshots / "dashboard.png", full_page=True)

    page.click("#dashboard-share")
    shared = page.input_value(".share-url")
    assert parse_qs(urlsplit(shared).query) == {"name": ["bedrock"], "range": ["6h"]}
    other = page.context.new_page()
    other.goto(shared)
    other.wait_for_selector('[data-widget="2"] .cartesianlayer .trace')
    assert other.locator("[data-widget]").count() == page.locator("[data-widget]").count()
    other.close()


def test_edit_the_body_json_directly_and_see_mistakes_named(page, server, loaded):
    body = {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 12, "height": 2, "properties": {"markdown": "first"}}]}
    httpx.put(f"{server.url}/api/v1/dashboards/raw", content=json.dumps(body))
    open_page(page, f"{server.url}/dashboard?name=raw&edit=1&{loaded.url_range()}")
    page.click("text=Edit JSON")
    bad = json.dumps({"widgets": [{"type": "text", "x": 0, "y": 0, "width": 30, "height": 2, "properties": {"markdown": "x"}}]})
    page.fill("#json-editor", bad)
    page.click("#json-apply")
    page.click("#dashboard-save")
    page.wait_for_selector(".problems li")
    assert "/widgets/0/width" in page.inner_text(".problems")
    assert httpx.get(f"{server.url}/api/v1/dashboards/raw").json()["data"]["body"] == body

    page.click("text=Edit JSON")
    page.fill("#json-editor", "{not json")
    page.click("#json-apply")
    assert "Not valid JSON" in page.inner_text(".json-dialog .form-error")
    text = json.dumps({"widgets": [{"type": "text", "x": 0, "y": 0, "width": 12, "height": 2,
                                    "properties": {"markdown": "# Rewritten"}}]}, indent=4)
    page.fill("#json-editor", text)
    page.click("#json-apply")
    page.click("#dashboard-save")
    page.wait_for_selector("#dashboard-edit")
    assert httpx.get(f"{server.url}/api/v1/dashboards/raw").json()["data"]["bodyText"] == text  # kept as typed
    page.reload()
    page.wait_for_selector(".markdown h1")
    assert page.inner_text(".markdown h1") == "Rewritten"


def test_a_reader_sees_dashboards_without_the_editor(page, secured_server, secured_loaded):
    httpx.put(f"{secured_server.url}/api/v1/dashboards/shared", content=json.dumps(
        {"widgets": [{"type": "text", "width": 24, "height": 2, "properties": {"markdown": "hello"}}]}),
        headers={"authorization": f"Bearer {secured_server.keys.create('admin').bearer}"})
    reader = secured_server.keys.create("read")
    open_page(page, f"{secured_server.url}/dashboards")
    page.wait_for_selector("#login:not([hidden])")
    page.fill("#login-key", reader.bearer)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector('[data-dashboard="shared"]')
    assert page.locator("text=New dashboard").count() == 0
    page.click('[data-dashboard="shared"] a')
    page.wait_for_selector(".markdown p")
    assert page.locator("#dashboard-edit").count() == 0


def test_a_new_dashboard_starts_from_a_shipped_example(page, server, loaded):
    from dashcam.dashboards.repository import example_body

    open_page(page, f"{server.url}/dashboard?new=1&{loaded.url_range()}")
    page.fill("#dashboard-name", "from-example")
    page.wait_for_selector('#dashboard-example option[value]:not([value=""])', state="attached")
    page.select_option("#dashboard-example", label="bedrock-logs-insights")
    page.wait_for_selector('[data-widget="1"] .cartesianlayer .trace')
    page.click("#dashboard-save")
    page.wait_for_url("**/dashboard?*name=from-example*")
    stored = httpx.get(f"{server.url}/api/v1/dashboards/from-example").json()["data"]
    assert stored["bodyText"] == example_body("bedrock-logs-insights")  # stored exactly as shipped
    page.wait_for_selector('[data-widget="3"] tbody tr')
    assert page.locator("[data-widget]").count() == len(json.loads(stored["bodyText"])["widgets"])
