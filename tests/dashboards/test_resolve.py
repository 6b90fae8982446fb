"""Widgets resolved over real generated data, checked against the metrics engine and Logs Insights
called directly."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dashcam.dashboards.body import parse_body, parse_widget
from dashcam.dashboards.resolve import (
    TimeRange,
    WidgetData,
    dashboard_time_range,
    effective_period,
    resolve_dashboard,
    resolve_widget,
    time_range,
)
from dashcam.errors import InputError
from dashcam.metrics.engine import MetricQuery, MetricStat, get_metric_data
from dashcam.simulate.sample_logs import SampleSpec, generate_records

GROUP = "/aws/bedrock/modelinvocations"
STREAM = "aws/bedrock/modelinvocations"
OTHER_GROUP = "/app/other"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
RANGE = TimeRange(int(START.timestamp() * 1000), int(START.timestamp() * 1000) + 3 * 3_600_000)
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-pro-v1:0"
AWS_EXPORT = Path(__file__).with_name("aws_exported_dashboard.json")


@pytest.fixture
def dashcam(server):
    """The server's dashcam with 3 hours of generated Bedrock records, and a few in another group."""
    records = list(generate_records(SampleSpec(records=3000, hours=3, start=START)))
    server.dashcam.store.write_records(GROUP, STREAM, records, source="api")
    others = list(generate_records(SampleSpec(records=200, hours=3, start=START, seed=11)))
    server.dashcam.store.write_records(OTHER_GROUP, "s", others, source="api")
    return server.dashcam


@pytest.fixture
def data(dashcam):
    def run_query(text, groups, start_ms, end_ms):
        result = dashcam.query(text, log_groups=groups, start_ms=start_ms, end_ms=end_ms)
        return result.columns, result.rows

    def alarm_states(names):
        return [{"name": a.name, "state": a.state.value, "updatedMs": a.state.updated_ms}
                for a in dashcam.alarms.describe(names=list(names))]

    return WidgetData(lambda queries, start, end: dashcam.metric_data(queries, start, end), run_query,
                      lambda filters, since, name: dashcam.list_metrics(name, filters, since_ms=since), alarm_states)


def metric(metrics: list, **properties) -> dict:
    return {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
            "properties": {"metrics": metrics, "region": "us-east-1", **properties}}


def direct(dashcam, queries: list[MetricQuery], when: TimeRange = RANGE) -> dict[str, tuple[list, list]]:
    return {s.id: (s.timestamps, s.values) for s in get_metric_data(dashcam.store, queries, when.start_ms, when.end_ms)}


def drawn(result: dict) -> dict[str, tuple[list, list]]:
    return {s["id"]: (s["timestamps"], s["values"]) for s in result["series"]}


# ---------------------------------------------------------------------- metric widgets


def test_metric_rows_with_shorthand_and_math_match_get_metric_data(dashcam, data):
    widget = parse_widget(metric([
        ["AWS/Bedrock", "Invocations", "ModelId", HAIKU],
        [".", ".", ".", NOVA],
        [".", "InvocationThrottles", ".", ".", {"id": "throttles", "visible": False}],
        [{"expression": "m2 + throttles", "id": "attempts", "label": "Nova attempts"}],
    ], stat="Sum", period=300))
    result = resolve_widget(widget, data, RANGE, period_override="inherit")
    assert result["status"] == "ok", result["messages"]
    expected = direct(dashcam, [
        MetricQuery("m1", MetricStat("Invocations", 300, "Sum", (("ModelId", HAIKU),))),
        MetricQuery("m2", MetricStat("Invocations", 300, "Sum", (("ModelId", NOVA),))),
        MetricQuery("throttles", MetricStat("InvocationThrottles", 300, "Sum", (("ModelId", NOVA),)),
                    return_data=False),
        MetricQuery("attempts", expression="m2 + throttles"),
    ])
    assert drawn(result) == expected
    assert all(values for _, values in expected.values())  # the data really has these series
    labels = {s["id"]: s["label"] for s in result["series"]}
    assert labels == {"m1": f"Invocations {HAIKU}", "m2": f"Invocations {NOVA}", "attempts": "Nova attempts"}
    nova = next(s for s in result["series"] if s["id"] == "m2")
    assert nova["metric"] == {"namespace": "AWS/Bedrock", "metricName": "Invocations",
                              "dimensions": {"ModelId": NOVA}, "stat": "Sum", "period": 300}
    assert nova["latest"] == {"timestamp": nova["timestamps"][-1], "value": nova["values"][-1]}
    assert "values" not in result  # a time series view draws series only


def test_stat_and_period_default_to_average_over_five_minutes(dashcam, data):
    result = resolve_widget(parse_widget(metric([["AWS/Bedrock", "InvocationLatency"]])), data, RANGE)
    expected = direct(dashcam, [MetricQuery("m1", MetricStat("InvocationLatency", 300, "Average"))])
    assert drawn(result) == expected and expected["m1"][1]
    assert result["series"][0]["metric"]["stat"] == "Average"


def test_row_options_override_the_widget(dashcam, data):
    widget = parse_widget(metric([
        ["AWS/Bedrock", "InvocationLatency", {"stat": "p90", "period": 600, "label": "p90", "yAxis": "right",
                                              "color": "#ff0000"}],
        ["...", {"stat": "Maximum"}],
    ], stat="Average", period=300))
    result = resolve_widget(widget, data, RANGE, period_override="inherit")
    assert drawn(result) == direct(dashcam, [MetricQuery("m1", MetricStat("InvocationLatency", 600, "p90")),
                                             MetricQuery("m2", MetricStat("InvocationLatency", 300, "Maximum"))])
    first = result["series"][0]
    assert (first["label"], first["yAxis"], first["color"]) == ("p90", "right", "#ff0000")


def test_single_values_are_the_latest_datapoints(dashcam, data):
    widget = parse_widget(metric([["AWS/Bedrock", "Invocations"], [".", "InvocationThrottles"]],
                                 view="singleValue", stat="Sum", period=900))
    result = resolve_widget(widget, data, RANGE)
    expected = direct(dashcam, [MetricQuery("m1", MetricStat("Invocations", 900, "Sum")),
                                MetricQuery("m2", MetricStat("InvocationThrottles", 900, "Sum"))])
    assert [(v["id"], v["timestamp"], v["value"]) for v in result["values"]] == [
        (key, times[-1], values[-1]) for key, (times, values) in expected.items()]


def test_set_period_to_time_range_gives_the_statistic_over_the_whole_range(dashcam, data):
    # 09:10 to 11:00 is not one epoch-aligned bucket of any period: the value must still cover it all.
    when = TimeRange(RANGE.start_ms + 600_000, RANGE.start_ms + 2 * 3_600_000)
    widget = parse_widget(metric([["AWS/Bedrock", "Invocations", {"stat": "Sum"}],
                                  [".", "InvocationLatency", {"stat": "Average"}],
                                  ["...", {"stat": "Minimum"}], ["...", {"stat": "Maximum"}],
                                  [".", "InvocationThrottles", {"stat": "SampleCount"}]],
                                 view="singleValue", setPeriodToTimeRange=True))
    result = resolve_widget(widget, data, when)
    assert result["status"] == "ok", result["messages"]
    assert [s["id"] for s in result["series"]] == ["m1", "m2", "m3", "m4", "m5"]  # helper queries stay hidden
    (expected,) = dashcam.query(
        "filter not ispresent(errorCode) | stats count(*) as n, avg(latencyMs) as mean, min(latencyMs) as low,"
        " max(latencyMs) as high", log_groups=[GROUP, OTHER_GROUP], start_ms=when.start_ms,
        end_ms=when.end_ms - 1).rows
    (throttles,) = dashcam.query("filter throttled = 1 | stats count(*) as n", start_ms=when.start_ms,
                                 end_ms=when.end_ms - 1).rows
    values = [v["value"] for v in result["values"]]
    assert values == pytest.approx([expected["n"], expected["mean"], expected["low"], expected["high"],
                                    throttles["n"]])
    assert all(v["timestamp"] == when.start_ms for v in result["values"])


def test_whole_range_percentiles_use_one_range_long_bucket(dashcam, data):
    when = TimeRange(RANGE.start_ms + 600_000, RANGE.start_ms + 2 * 3_600_000)
    widget = parse_widget(metric([["AWS/Bedrock", "InvocationLatency", {"stat": "p90"}]], view="singleValue",
                                 setPeriodToTimeRange=True))
    result = resolve_widget(widget, data, when)
    assert result["series"][0]["metric"]["period"] == 110 * 60
    expected = direct(dashcam, [MetricQuery("m1", MetricStat("InvocationLatency", 110 * 60, "p90"))], when)
    assert result["values"][0]["value"] == expected["m1"][1][-1]


def test_auto_periods_grow_with_the_time_range_and_inherit_keeps_them(dashcam, data):
    week = TimeRange(RANGE.start_ms, RANGE.start_ms + 7 * 86_400_000)
    widget = parse_widget(metric([["AWS/Bedrock", "Invocations"]], stat="Sum", period=60))
    auto = resolve_widget(widget, data, week, period_override="auto")
    kept = resolve_widget(widget, data, week, period_override="inherit")
    assert auto["series"][0]["metric"]["period"] == 900  # 7 days / 900 s = 672 points; 300 s would be 2,016
    assert kept["series"][0]["metric"]["period"] == 60
    assert drawn(auto) == direct(dashcam, [MetricQuery("m1", MetricStat("Invocations", 900, "Sum"))], week)
    assert len(auto["series"][0]["timestamps"]) <= 7 * 86_400 / 900


def test_search_draws_one_series_per_model_with_data(dashcam, data):
    widget = parse_widget(metric([[{
        "expression": "SEARCH('{AWS/Bedrock,ModelId} MetricName=\"Invocations\"', 'Sum', 600)", "id": "e1"}]]))
    result = resolve_widget(widget, data, RANGE)
    assert result["status"] == "ok", result["messages"]
    # Every model with a successful request in the range, found independently through Logs Insights.
    models = {row["modelId"] for row in dashcam.query(
        "filter not ispresent(errorCode) | stats count(*) by modelId", log_groups=[GROUP, OTHER_GROUP],
        start_ms=RANGE.start_ms, end_ms=RANGE.end_ms - 1).rows}
    assert {s["label"] for s in result["series"]} == models and len(models) >= 5
    for series in result["series"]:
        model = series["metric"]["dimensions"]["ModelId"]
        expected = direct(dashcam, [MetricQuery("x", MetricStat("Invocations", 600, "Sum", (("ModelId", model),)))])
        assert (series["timestamps"], series["values"]) == expected["x"]


def test_search_inside_math_adds_its_series_up(dashcam, data):
    widget = parse_widget(metric([[{
        "expression": "SUM(SEARCH('{AWS/Bedrock,ModelId} MetricName=\"InvocationThrottles\"', 'Sum', 300))",
        "id": "total", "label": "all throttles"}]]))
    result = resolve_widget(widget, data, RANGE)
    assert [s["id"] for s in result["series"]] == ["total"]
    expected = direct(dashcam, [MetricQuery("x", MetricStat("InvocationThrottles", 300, "Sum"))])["x"]
    assert result["series"][0]["timestamps"] == expected[0]
    assert result["series"][0]["values"] == pytest.approx(expected[1])


def test_dynamic_labels(dashcam, data):
    widget = parse_widget(metric([["AWS/Bedrock", "Invocations", "ModelId", NOVA,
                                   {"label": "${PROP('Dim.ModelId')} ${PROP('Stat')} last ${LAST} max ${MAX}"}]],
                                 stat="Sum"))
    series = resolve_widget(widget, data, RANGE)["series"][0]
    assert series["label"] == f"{NOVA} Sum last {series['values'][-1]:.6g} max {max(series['values']):.6g}"


def test_other_namespaces_are_left_out_with_a_message(dashcam, data):
    widget = parse_widget(metric([["AWS/EC2", "CPUUtilization", "InstanceId", "i-1"],
                                  ["AWS/Bedrock", "Invocations"]], stat="Sum"))
    result = resolve_widget(widget, data, RANGE)
    assert result["status"] == "ok" and [s["id"] for s in result["series"]] == ["m2"]
    assert any("AWS/EC2/CPUUtilization" in m for m in result["messages"])


def test_a_widget_that_cannot_be_answered_reports_an_error(data):
    widget = parse_widget(metric([["AWS/Bedrock", "Invocations"], [{"expression": "m1 / nosuch", "id": "e1"}]]))
    result = resolve_widget(widget, data, RANGE)
    assert result["status"] == "error" and "nosuch" in " ".join(result["messages"])


# ---------------------------------------------------------------------- log widgets


def log_widget(query: str, view: str = "table") -> dict:
    return {"type": "log", "properties": {"query": query, "view": view, "region": "us-east-1"}}


def test_log_widgets_run_their_query_over_their_source_groups(dashcam, data):
    text = "stats count(*) as requests, sum(throttled) as throttles by modelId | sort requests desc"
    result = resolve_widget(parse_widget(log_widget(f"SOURCE '{GROUP}' | {text}")), data, RANGE)
    expected = dashcam.query(text, log_groups=[GROUP], start_ms=RANGE.start_ms, end_ms=RANGE.end_ms - 1)
    assert result["status"] == "ok", result["messages"]
    assert (result["columns"], result["rows"]) == (expected.columns, expected.rows)
    assert result["logGroups"] == [GROUP] and result["query"] == text
    everywhere = dashcam.query(text, start_ms=RANGE.start_ms, end_ms=RANGE.end_ms - 1).rows
    assert sum(r["requests"] for r in result["rows"]) == 3000 < sum(r["requests"] for r in everywhere)


def test_a_log_time_series_has_one_line_per_aggregate_and_group(dashcam, data):
    query = f"SOURCE '{GROUP}' | stats count(*) as requests by bin(30m), operation"
    result = resolve_widget(parse_widget(log_widget(query, "timeSeries")), data, RANGE)
    operations = {row["operation"] for row in dashcam.query("stats count(*) by operation", log_groups=[GROUP]).rows}
    assert {s["label"] for s in result["series"]} == {f"requests {op}" for op in operations}
    for series in result["series"]:
        assert series["timestamps"] == sorted(series["timestamps"])
        assert all(t % 1_800_000 == 0 and RANGE.start_ms <= t < RANGE.end_ms for t in series["timestamps"])
        matching = [r for r in result["rows"] if r["operation"] == series["group"]["operation"]]
        assert sum(series["values"]) == sum(r["requests"] for r in matching)
    assert sum(sum(s["values"]) for s in result["series"]) == 3000


def test_log_bars_name_each_category(dashcam, data):
    query = f"SOURCE '{GROUP}' | stats sum(input.inputTokenCount) as inputTokens by modelId | sort modelId asc"
    result = resolve_widget(parse_widget(log_widget(query, "bar")), data, RANGE)
    (series,) = result["series"]
    assert series["label"] == "inputTokens"
    assert series["categories"] == [r["modelId"] for r in result["rows"]]
    assert series["values"] == [r["inputTokens"] for r in result["rows"]]


def test_a_log_query_that_does_not_parse_is_an_error_of_that_widget_only(dashcam, data):
    body = parse_body(json.dumps({"widgets": [
        log_widget(f"SOURCE '{GROUP}' | stats count( by modelId"),
        {"type": "text", "properties": {"markdown": "# hi"}},
    ]}))
    broken, text = resolve_dashboard(body, data, RANGE)
    assert broken["status"] == "error" and "line 1" in broken["messages"][0]
    assert (text["status"], text["markdown"], text["background"]) == ("ok", "# hi", "solid")


# ---------------------------------------------------------------------- other widgets and time ranges


def test_alarm_widgets_show_the_alarms_states(dashcam, data):
    dashcam.alarms.put({"AlarmName": "bedrock-throttles", "MetricName": "InvocationThrottles",
                        "Namespace": "AWS/Bedrock", "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1,
                        "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold"})
    widget = parse_widget({"type": "alarm", "properties": {"alarms": [
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:bedrock-throttles",
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:gone"]}})
    result = resolve_widget(widget, data, RANGE)
    assert [(a["name"], a["state"]) for a in result["alarms"]] == [("bedrock-throttles", "INSUFFICIENT_DATA")]
    assert result["messages"] == ["no alarm named 'gone'"]


def test_an_aws_exported_dashboard_resolves_widget_by_widget(dashcam, data):
    body = parse_body(AWS_EXPORT.read_text())
    results = resolve_dashboard(body, data, dashboard_time_range(body, "2026-03-02T09:00:00Z",
                                                                  "2026-03-02T12:00:00Z"))
    by_title = {r["title"]: r for r in results}
    assert [r["status"] for r in results].count("error") == 0
    assert by_title["Requests (12h)"]["values"][0]["value"] == direct(
        dashcam, [MetricQuery("m1", MetricStat("Invocations", 3 * 3600, "Sum"))])["m1"][1][-1]
    assert len(by_title["Latency by model"]["series"]) == 3
    assert {s["label"] for s in by_title["Output tokens by model"]["series"]} >= {HAIKU, NOVA}
    assert by_title["Recent failures"]["rows"] and by_title["API errors"]["series"] == []
    assert [r["status"] for r in results if r["type"] in ("explorer", "custom")] == ["unsupported", "unsupported"]
    assert by_title["Latency by model"]["properties"]["annotations"]["horizontal"][0]["value"] == 4000


def test_time_ranges():
    now = RANGE.end_ms
    assert time_range("-PT3H", None, now_ms=now) == RANGE
    assert time_range(None, None, now_ms=now) == RANGE  # the console's default: 3 hours
    assert time_range("2026-03-02T09:00:00Z", "2026-03-02T12:00:00Z") == RANGE
    with pytest.raises(InputError, match="before the end"):
        time_range("2026-03-02T12:00:00Z", "2026-03-02T09:00:00Z")
    body = parse_body(json.dumps({"widgets": [], "start": "-P1D"}))
    assert dashboard_time_range(body, now_ms=now) == TimeRange(now - 86_400_000, now)
    assert dashboard_time_range(body, "-PT1H", now_ms=now) == TimeRange(now - 3_600_000, now)


def test_effective_periods():
    hour = TimeRange(0, 3_600_000)
    assert effective_period(300, hour) == 300
    assert effective_period(10, hour) == 60  # one-minute resolution
    assert effective_period(300, hour, whole_range=True, stat="Sum") == 3600
    tiled = TimeRange(600_000, 3_600_000)
    assert effective_period(300, tiled, whole_range=True, stat="Average") == 600  # buckets tile the range
    assert effective_period(300, tiled, whole_range=True, stat="p90") == 3000  # one bucket, as long as the range
    assert effective_period(300, TimeRange(60_000, 3_600_001), whole_range=True, stat="Sum") == 60
    # 43,199 one-minute buckets would be too many: one bucket as long as the range instead
    assert effective_period(300, TimeRange(60_000, 30 * 86_400_000), whole_range=True, stat="Sum") == 30 * 86_400 - 60
    year = TimeRange(0, 365 * 86_400_000)
    assert effective_period(60, year) == 86_400  # the first of the auto periods giving at most 1,440 points
    assert math.ceil(365 * 86_400 / effective_period(60, year, period_override="inherit")) == 525_600
