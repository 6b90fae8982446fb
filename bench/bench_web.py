"""How long each dashboard page waits for its data, on a store of --records invocations.

Pages: Overview, Models, Query, Invocation, Alarms (the list, a static alarm and an anomaly alarm
with its band), Dashboards (the list, and the shipped bedrock-overview example: 11 widgets, each
resolved by its own request) and Settings.

    python bench/bench_web.py [--records 1000000] [--work bench/out] [--runs 5]

Generates and imports the sample logs once per size (cached under --work, in a directory of its
own), serves them with a real dashcam server on 127.0.0.1, and loads each page in Debian's
Chromium (Playwright) over the whole span, the way a person would. For every load it reads the
browser's own timings of the page's /api/ requests and reports, as medians over --runs loads
after one warm-up: the page's data wait (first API request sent to last answer received; the
requests run in parallel), its slowest single request, and the time from navigating to the page's
main element being drawn (first render; plotly.js and the other assets are cached after the
warm-up). The target is "no page waits more than 1 s on 1M records for its data" (and the
overview's data requests under 1 s at 10M).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import uvicorn
from playwright.sync_api import sync_playwright

from dashcam.api.app import create_app
from dashcam.dashboards.repository import example_body
from dashcam.service import Dashcam
from dashcam.simulate.sample_logs import SampleSpec, write_bedrock_layout

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INVOCATION_QUERY = "fields @timestamp, modelId, latencyMs | sort latencyMs desc | limit 100"
API_TIMINGS = """() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/api/'))
    .map((e) => [e.name.split('/api/v1/')[1], e.startTime, e.responseEnd])"""


def prepare(records: int, work: Path) -> Path:
    """A data directory holding ``records`` sample invocations over max(6, records/50k) hours."""
    data = work / f"web-data-{records}"
    if not (data / ".complete").exists():
        logs = work / f"web-logs-{records}"
        write_bedrock_layout(SampleSpec(records=records, hours=max(6.0, records / 50_000)), logs)
        with Dashcam.open(data) as dashcam:
            summary = dashcam.import_logs([logs])
        (data / ".complete").write_text(str(summary.written))
    return data


def serve(dashcam: Dashcam) -> tuple[str, uvicorn.Server]:
    """A real server for ``dashcam`` on a free port; its URL and the server (set should_exit to stop)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(dashcam), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False, lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server


STATIC_ALARM = {"MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock", "Statistic": "Sum", "Period": 300,
                "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 5,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching"}
ANOMALY_ALARM = {"EvaluationPeriods": 3, "ThresholdMetricId": "band",
                 "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "Metrics": [
                     {"Id": "calls", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                                    "Period": 300, "Stat": "Sum"}, "ReturnData": True},
                     {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(calls, 2)", "ReturnData": True}]}


def define(base: str, data: Path) -> None:
    """The alarms and the dashboard the Alarms and Dashboards pages show (replaced if there), and
    quotas for every model, so the Models page asks for their headroom."""
    rows = httpx.post(f"{base}/api/v1/query", json={"query": "stats count(*) by modelId"}, timeout=60).json()["data"]["rows"]
    quotas = [{"model": row["modelId"].split("/")[-1], "rpm": 1000, "tpm": 2_000_000} for row in rows]
    (data / "quotas.json").write_bytes(orjson.dumps(quotas))
    for name, definition in (("throttles", STATIC_ALARM), ("traffic-anomaly", ANOMALY_ALARM)):
        httpx.put(f"{base}/api/v1/alarms/{name}", json=definition).raise_for_status()
    httpx.put(f"{base}/api/v1/dashboards/bedrock", content=example_body("bedrock-overview")).raise_for_status()


def measure(page, url: str, ready: str) -> tuple[float, float, float]:
    """Load ``url`` until ``ready`` shows; (data wait ms, slowest request ms) from the browser's
    timings, and the ms from navigating to ``ready`` being drawn (first render, assets cached)."""
    page.goto("about:blank")
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(ready, timeout=60_000)
    drawn = (time.perf_counter() - started) * 1000
    page.wait_for_load_state("networkidle")
    timings = page.evaluate(API_TIMINGS)
    first = min(start for _, start, _ in timings)
    last = max(end for _, _, end in timings)
    slowest = max(end - start for _, start, end in timings)
    return last - first, slowest, drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--work", default="bench/out")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--verbose", action="store_true", help="print every load's figures")
    args = parser.parse_args()

    data = prepare(args.records, Path(args.work))
    with Dashcam.open(data) as dashcam, sync_playwright() as playwright:
        base, server = serve(dashcam)
        define(base, data)
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/query?range=all&q={quote('fields @ptr | limit 1')}")
        page.wait_for_selector("td.open a", timeout=60_000)
        ptr_link = page.get_attribute("td.open a", "href")
        pages = {
            "overview": ("/?range=all", '[data-chart="cost"] .cartesianlayer .trace'),
            "models": ("/models?range=all", ".models-table tbody tr"),
            "query (event rows)": (f"/query?range=all&q={quote(INVOCATION_QUERY)}", ".query-results tbody tr"),
            "query (bin chart)": (f"/query?range=all&q={quote('stats count(*) by bin(5m), modelId')}",
                                  '[data-chart="query"] .cartesianlayer .trace'),
            "invocation": (ptr_link, ".facts dd"),
            "alarms": ("/alarms?range=all", "tr[data-alarm]"),
            "alarm (static)": ("/alarm?name=throttles&range=all", '[data-chart="alarm"] .cartesianlayer .trace'),
            "alarm (anomaly band)": ("/alarm?name=traffic-anomaly&range=all", '[data-chart="alarm"] .cartesianlayer .trace'),
            "dashboards": ("/dashboards", "[data-dashboard]"),
            "dashboard (11 widgets)": ("/dashboard?name=bedrock&range=all", '[data-widget="10"] .chart .pielayer'),
            "settings": ("/settings?range=all", ".retention-table tbody tr"),
        }
        print(f"{args.records:,} records; medians of {args.runs} loads after one warm-up")
        print(f"{'page':22s} {'data wait':>10s} {'slowest request':>16s} {'drawn':>9s}")
        for name, (path, ready) in pages.items():
            measure(page, base + path, ready)
            waits, slowest, drawn = zip(*(measure(page, base + path, ready) for _ in range(args.runs)))
            if args.verbose:
                print(name, [round(w) for w in waits], [round(s) for s in slowest], [round(d) for d in drawn])
            print(f"{name:22s} {statistics.median(waits):8.0f} ms {statistics.median(slowest):13.0f} ms "
                  f"{statistics.median(drawn):6.0f} ms")
        browser.close()
        server.should_exit = True


if __name__ == "__main__":
    main()
