"""The Alarms pages in a real browser against a real server: an alarm whose data breaches it is
evaluated (the scheduler's round at an injected moment) and the page shows the state change, its
reason and history, the webhook it called, and the metric charted with its threshold; an anomaly
alarm's band is drawn; an admin sets a state from the page.

Expected numbers come from the generated records, not from dashcam.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import httpx
import pytest

PERIOD_MS = 300_000
BROWSER_ZONE = ZoneInfo("America/New_York")  # the page fixture's time zone


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")


def plotted_periods(xs, ys) -> dict[int, float]:
    """Chart points (local times as plotly has them) as {period start epoch ms: value}."""
    return {int(datetime.strptime(x, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BROWSER_ZONE).timestamp() * 1000): y
            for x, y in zip(xs, ys)}


def check_plotted(points: dict[int, float], counts: Counter, data) -> None:
    """Every plotted period has its count, and every complete period of the data is plotted."""
    assert all(points[t] == counts[t] for t in points)
    complete = {t for t in counts if t + PERIOD_MS <= data.end_ms}
    assert complete <= set(points)


def successes_by_period(data) -> Counter:
    """Successful calls (AWS/Bedrock Invocations: no error, not throttled) per 5-minute period."""
    counts: Counter = Counter()
    for record in data.generated:
        if record.get("errorCode") is None:
            ms = int(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)
            counts[ms // PERIOD_MS * PERIOD_MS] += 1
    return counts


@pytest.fixture
def webhook():
    """A receiver on 127.0.0.1 keeping the alarm messages POSTed to it."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the handler's name is http.server's
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_address[1]}/hook", received
    http.shutdown()


def test_an_alarm_changes_state_with_its_history_actions_and_chart(page, server, loaded, webhook, screenshots):
    hook, received = webhook
    counts = successes_by_period(loaded)
    # A busy period well inside the data: the alarm's threshold sits just under its count.
    middle = (loaded.start_ms + loaded.end_ms) // 2 // PERIOD_MS * PERIOD_MS
    busy = max((t for t in counts if abs(t - middle) <= 6 * PERIOD_MS), key=lambda t: (counts[t], -t))
    threshold = counts[busy] - 1
    definition = {"MetricName": "Invocations", "Namespace": "AWS/Bedrock", "Statistic": "Sum", "Period": 300,
                  "EvaluationPeriods": 1, "Threshold": threshold, "ComparisonOperator": "GreaterThanThreshold",
                  "AlarmDescription": "Traffic above normal", "AlarmActions": [hook]}
    assert httpx.put(f"{server.url}/api/v1/alarms/busy", json=definition).status_code == 200

    open_page(page, f"{server.url}/alarms?{loaded.url_range()}")
    row = page.locator('[data-alarm="busy"]')
    assert row.locator("[data-state]").get_attribute("data-state") == "INSUFFICIENT_DATA"
    assert f"Invocations Sum per 5 min > {threshold} for 1 period" in row.inner_text()

    # One evaluation round, 20 s into the period after the busy one: the busy period is judged.
    report = server.dashcam.alarm_scheduler().run_once(busy + PERIOD_MS + 20_000)
    assert report.changed == ["busy"]
    assert server.dashcam.alarms.dispatcher.wait_idle(20)

    page.click("#refresh-now")
    page.wait_for_selector('[data-alarm="busy"] [data-state="ALARM"]')
    page.click('[data-filter="ALARM"]')
    assert page.locator("tr[data-alarm]").count() == 1
    page.screenshot(path=screenshots / "alarms.png")

    page.click('[data-alarm="busy"] a')
    page.wait_for_selector('[data-history="Action"] tbody tr')
    assert page.locator(".alarm-head [data-state]").get_attribute("data-state") == "ALARM"
    assert "Threshold Crossed" in page.inner_text("[data-reason]")
    states = page.locator('[data-history="StateUpdate"] tbody tr')
    assert states.count() == 1
    pills = states.first.locator("[data-state]")
    assert [pills.nth(i).get_attribute("data-state") for i in range(2)] == ["INSUFFICIENT_DATA", "ALARM"]
    action = page.locator('[data-history="Action"] tbody tr').first.inner_text()
    assert "Succeeded" in action and hook in action
    assert [(m["AlarmName"], m["OldStateValue"], m["NewStateValue"]) for m in received] == [("busy", "INSUFFICIENT_DATA", "ALARM")]

    # The chart: the busy period's count among the points, the threshold as a line.
    page.wait_for_selector('[data-chart="alarm"] .cartesianlayer .trace')
    plotted = page.evaluate("(() => { const d = document.querySelector('[data-chart=alarm]'); "
                            "return {x: d.data[0].x, y: d.data[0].y, shapes: d.layout.shapes}; })()")
    points = plotted_periods(plotted["x"], plotted["y"])
    assert points[busy] == counts[busy]
    check_plotted(points, counts, loaded)
    assert any(s["type"] == "line" and s["y0"] == threshold for s in plotted["shapes"])
    assert any(s["type"] == "rect" for s in plotted["shapes"])  # the time in alarm, shaded
    page.screenshot(path=screenshots / "alarm.png", full_page=True)

    # An admin (an open server's user) sets the state from the page; the history grows.
    page.select_option(".set-state-value", "OK")
    page.click(".set-state button")
    page.wait_for_function("document.querySelectorAll('[data-history=StateUpdate] tbody tr').length === 2")
    assert page.locator(".alarm-head [data-state]").get_attribute("data-state") == "OK"
    assert server.dashcam.alarms.get("busy").state.value == "OK"


def test_an_anomaly_alarm_draws_its_band(page, server, loaded):
    definition = {"EvaluationPeriods": 3, "ThresholdMetricId": "band",
                  "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "Metrics": [
                      {"Id": "calls", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                                     "Period": 300, "Stat": "Sum"}, "ReturnData": True},
                      {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(calls, 2)", "ReturnData": True}]}
    assert httpx.put(f"{server.url}/api/v1/alarms/traffic", json=definition).status_code == 200
    open_page(page, f"{server.url}/alarm?name=traffic&{loaded.url_range()}")
    page.wait_for_selector('[data-chart="alarm"] .cartesianlayer .trace')
    assert "outside the band (width 2) for 3 of 3 periods" in page.inner_text(".facts")
    traces = page.evaluate("document.querySelector('[data-chart=alarm]').data"
                           ".map((t) => ({name: t.name, fill: t.fill || null, x: t.x, y: t.y}))")
    lower, upper, calls = traces
    assert upper["fill"] == "tonexty" and upper["name"].startswith("Expected band")
    assert len(upper["y"]) > 10 and len(lower["y"]) == len(upper["y"])
    assert all(low <= high for low, high in zip(lower["y"], upper["y"]))
    check_plotted(plotted_periods(calls["x"], calls["y"]), successes_by_period(loaded), loaded)


def test_no_alarms_says_how_to_make_one(page, server):
    open_page(page, f"{server.url}/alarms")
    assert "No alarms yet" in page.inner_text("main")
    open_page(page, f"{server.url}/alarm?name=nope")
    page.wait_for_selector(".state.failure")
    assert "nope" in page.inner_text(".state.failure")
