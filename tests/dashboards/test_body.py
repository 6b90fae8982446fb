"""Dashboard bodies: the compact metric rows, validation messages, and bodies exported from AWS."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from dashcam.dashboards.body import (
    NOT_JSON,
    check_body,
    expand_metrics,
    parse_body,
    parse_time_point,
    parse_widget,
    split_sources,
)
from dashcam.errors import InputError

AWS_EXPORT = Path(__file__).with_name("aws_exported_dashboard.json")


def body_of(*widgets: dict, **top: object) -> str:
    return json.dumps({"widgets": list(widgets), **top})


def metric_widget(metrics: list, **properties: object) -> dict:
    return {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
            "properties": {"metrics": metrics, "region": "us-east-1", **properties}}


def paths(messages) -> list[str]:
    return [m.data_path for m in messages]


# ---------------------------------------------------------------------- metric rows


def test_dot_repeats_the_item_at_the_same_position_of_the_previous_metric():
    rows, errors, _ = expand_metrics([
        ["AWS/Bedrock", "Invocations", "ModelId", "model-a"],
        [".", ".", ".", "model-b"],
        [".", "InvocationLatency", ".", ".", {"stat": "p90"}],
    ], "/m")
    assert errors == []
    assert [(r.namespace, r.metric_name, r.dimensions) for r in rows] == [
        ("AWS/Bedrock", "Invocations", (("ModelId", "model-a"),)),
        ("AWS/Bedrock", "Invocations", (("ModelId", "model-b"),)),
        ("AWS/Bedrock", "InvocationLatency", (("ModelId", "model-b"),)),  # "." takes the expanded previous row
    ]
    assert rows[2].options == {"stat": "p90"}


def test_ellipsis_fills_the_middle_from_the_previous_metric():
    rows, errors, _ = expand_metrics([
        ["AWS/Bedrock", "InvocationLatency", "ModelId", "model-a", "Operation", "Converse"],
        ["...", "ConverseStream"],
        ["AWS/Bedrock", "...", {"stat": "p99"}],
    ], "/m")
    assert errors == []
    assert rows[1].dimensions == (("ModelId", "model-a"), ("Operation", "ConverseStream"))
    assert rows[2].metric_name == "InvocationLatency" and rows[2].dimensions == rows[1].dimensions
    assert rows[2].options["stat"] == "p99"


def test_expression_rows_and_hidden_rows():
    rows, errors, _ = expand_metrics([
        ["AWS/Bedrock", "InvocationThrottles", {"id": "t", "visible": False}],
        [".", "Invocations", {"id": "i", "visible": False}],
        [{"expression": "100 * t / (t + i)", "id": "rate", "label": "throttled %"}],
    ], "/m")
    assert errors == []
    assert [r.visible for r in rows] == [False, False, True]
    assert rows[2].expression == "100 * t / (t + i)" and rows[2].id == "rate" and rows[2].namespace is None


@pytest.mark.parametrize(("row", "path", "fragment"), [
    ([".", "Invocations"], "/m/0/0", "there is none before"),
    (["AWS/Bedrock"], "/m/0", "namespace and a metric name"),
    (["AWS/Bedrock", "Invocations", "ModelId"], "/m/0/2", "has no value"),
    (["AWS/Bedrock", 7], "/m/0/1", "not of type 'string'"),
    ([{"label": "x"}], "/m/0", "or an {\"expression\""),
    (["AWS/Bedrock", "Invocations", {"id": "Upper"}], "/m/0/2/id", "is not valid"),
    (["AWS/Bedrock", "Invocations", {"stat": 5}], "/m/0/2/stat", "not of type"),
    (["AWS/Bedrock", "Invocations", {"period": 90}], "/m/0/2/period", "multiple of 60"),
    (["AWS/Bedrock", "Invocations", {"yAxis": "middle"}], "/m/0/2/yAxis", "'left', 'right'"),
    (["AWS/Bedrock", {"stat": "Sum"}, "Invocations"], "/m/0", "last item"),
    (["AWS/Bedrock", "Invocations", {"expression": "m1"}], "/m/0", "expression row"),
])
def test_unreadable_rows_are_errors_naming_where(row, path, fragment):
    _, errors, _ = expand_metrics([row], "/m")
    assert path in paths(errors), errors
    assert any(fragment in m.message for m in errors if m.data_path == path), errors


def test_an_id_used_twice_is_an_error():
    _, errors, _ = expand_metrics([
        ["AWS/Bedrock", "Invocations", {"id": "a"}], [".", "InvocationThrottles", {"id": "a"}]], "/m")
    assert paths(errors) == ["/m/1/2/id"]


# ---------------------------------------------------------------------- validation


def test_not_json_or_not_an_object_is_refused_as_putdashboard_words_it():
    for text in ("{", "[]", '"widgets"', "null"):
        check = check_body(text)
        assert check.body is None and [m.message for m in check.errors] == [NOT_JSON]


@pytest.mark.parametrize(("body", "path", "fragment"), [
    ({}, "", "'widgets' is a required property"),
    ({"widgets": [{"properties": {}}]}, "/widgets/0", "'type' is a required property"),
    ({"widgets": [{"type": "text"}]}, "/widgets/0", "'properties' is a required property"),
    ({"widgets": [{"type": "text", "width": 25, "properties": {"markdown": "x"}}]}, "/widgets/0/width", "24"),
    ({"widgets": [{"type": "text", "x": -1, "properties": {"markdown": "x"}}]}, "/widgets/0/x", "minimum"),
    ({"widgets": [{"type": "text", "height": "6", "properties": {"markdown": "x"}}]}, "/widgets/0/height", "integer"),
    ({"widgets": [{"type": "text", "properties": {}}]}, "/widgets/0/properties", "'markdown'"),
    ({"widgets": [{"type": "log", "properties": {"view": "table"}}]}, "/widgets/0/properties", "'query'"),
    ({"widgets": [{"type": "log", "properties": {"query": "fields @message", "view": "gauge"}}]},
     "/widgets/0/properties/view", "gauge"),
    ({"widgets": [{"type": "metric", "properties": {"region": "us-east-1"}}]}, "/widgets/0/properties", "'metrics'"),
    ({"widgets": [metric_widget([["AWS/Bedrock", "Invocations"]], view="line")]}, "/widgets/0/properties/view",
     "line"),
    ({"widgets": [metric_widget([["AWS/Bedrock", "Invocations"]], period=45)]}, "/widgets/0/properties/period",
     "multiple of 60"),
    ({"widgets": [metric_widget(["AWS/Bedrock"])]}, "/widgets/0/properties/metrics/0", "array"),
    ({"widgets": [{"type": "alarm", "properties": {"alarms": []}}]}, "/widgets/0/properties/alarms", "empty"),
    ({"widgets": [], "start": "yesterday-ish"}, "/start", "not a time"),
    ({"widgets": [], "end": "2026-03-02T10:00:00Z"}, "/end", "needs start"),
    ({"widgets": [], "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:00:00Z"}, "/start", "before end"),
    ({"widgets": [], "periodOverride": "sometimes"}, "/periodOverride", "sometimes"),
])
def test_bad_bodies_get_validation_messages(body, path, fragment):
    check = check_body(json.dumps(body))
    assert check.body is None
    assert path in paths(check.errors), check.errors
    assert any(fragment in m.message for m in check.errors if m.data_path == path), check.errors
    with pytest.raises(InputError, match="not valid"):
        parse_body(json.dumps(body))


def test_every_error_is_reported_not_just_the_first():
    body = body_of({"type": "text", "width": 30, "properties": {}},
                   metric_widget([[".", "Invocations"]]))
    assert set(paths(check_body(body).errors)) == {"/widgets/0/width", "/widgets/0/properties",
                                                    "/widgets/1/properties/metrics/0/0"}


def test_a_graph_of_an_alarm_needs_no_metrics():
    widget = {"type": "metric", "properties": {"annotations": {"alarms": ["arn:aws:cloudwatch:us-east-1:1:alarm:a"]}}}
    assert check_body(body_of(widget)).errors == []


def test_what_dashcam_cannot_draw_is_a_warning_and_kept():
    body = body_of(
        metric_widget([["AWS/EC2", "CPUUtilization", "InstanceId", "i-1"]]),
        metric_widget([["AWS/Bedrock", "NoSuchMetric"]], period=10),
        {"type": "explorer", "properties": {"metrics": [{"metricName": "CPUUtilization"}]}},
        {"type": "log", "properties": {"query": "SOURCE '/g' | stats count( by"}},
    )
    check = check_body(body)
    assert check.errors == [] and check.body is not None
    assert set(paths(check.warnings)) == {"/widgets/0/properties/metrics/0/0", "/widgets/1/properties/metrics/0/1",
                                          "/widgets/1/properties/period", "/widgets/2/type",
                                          "/widgets/3/properties/query"}
    assert not any(m.error for m in check.warnings)
    assert [w.drawn for w in check.body.widgets] == [True, True, False, True]
    assert check.body.widgets[2].properties == {"metrics": [{"metricName": "CPUUtilization"}]}


def test_an_aws_exported_dashboard_is_read_whole():
    text = AWS_EXPORT.read_text()
    check = check_body(text)
    assert check.errors == []
    body = check.body
    assert body.start == "-PT12H" and body.period_override == "inherit"
    assert len(body.widgets) == len(orjson.loads(text)["widgets"])
    # The document is kept as given, unknown members included.
    assert body.document == orjson.loads(text)
    kinds = [w.type for w in body.widgets]
    assert kinds.count("explorer") == 1 and "custom" in kinds
    by_title = {w.title: w for w in body.widgets}
    latency = by_title["Latency by model"]
    assert [r.dimensions for r in latency.metrics] == [
        (("ModelId", "anthropic.claude-3-5-haiku-20241022-v1:0"),),
        (("ModelId", "amazon.nova-pro-v1:0"),),
        (("ModelId", "amazon.nova-pro-v1:0"),),
    ]
    assert latency.metrics[2].options["stat"] == "p90"


def test_parse_widget_checks_one_widget_alone():
    widget = parse_widget({"type": "metric", "properties": {"metrics": [["AWS/Bedrock", "Invocations"]]}}, 4)
    assert widget.index == 4 and widget.view == "timeSeries" and widget.width == 6 and widget.height == 6
    with pytest.raises(InputError, match=r"/properties: 'metrics' is a required property"):
        parse_widget({"type": "metric", "properties": {}})


# ---------------------------------------------------------------------- log queries and times


def test_source_prefixes_become_log_groups():
    groups, text = split_sources("SOURCE '/aws/bedrock/modelinvocations' | SOURCE \"/app/o'neil\", '/b' |"
                                 " filter a = 'x | y'\n| stats count(*)")
    assert groups == ("/aws/bedrock/modelinvocations", "/app/o'neil", "/b")
    assert text == "filter a = 'x | y'\n| stats count(*)"


def test_queries_without_a_source_prefix_are_left_alone():
    query = "SOURCE logGroups(namePrefix: ['/aws']) | stats count(*)"
    assert split_sources(query) == ((), query)
    assert split_sources("fields @message") == ((), "fields @message")


def test_time_points_as_cloudwatch_writes_them():
    now = int(datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc).timestamp() * 1000)
    assert parse_time_point("-PT3H", now_ms=now) == now - 3 * 3_600_000
    assert parse_time_point("-P7D", now_ms=now) == now - 7 * 86_400_000
    assert parse_time_point("-PT1H30M", now_ms=now) == now - 90 * 60_000
    assert parse_time_point("-P2W", now_ms=now) == now - 14 * 86_400_000
    assert parse_time_point("2026-03-02T09:30:00.000Z", now_ms=now) == int(
        datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc).timestamp() * 1000)
    assert parse_time_point("2026-03-02T09:30:00+01:00", now_ms=now) == int(
        datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc).timestamp() * 1000)
    assert parse_time_point("3h", now_ms=now) == now - 3 * 3_600_000
    for bad in ("-PTxH", "2026-13-45T00:00:00Z", "soon"):
        with pytest.raises(InputError):
            parse_time_point(bad, now_ms=now)
