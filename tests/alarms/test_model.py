"""Alarm definitions (dashcam.alarms.model): the three kinds, round trips, and errors that name the problem."""

from __future__ import annotations

import pytest

from dashcam.alarms.model import ANOMALY, QUERY, STATIC, parse_definition
from dashcam.errors import InputError

SINGLE = {"AlarmName": "throttles", "MetricName": "InvocationThrottles", "Namespace": "AWS/Bedrock",
          "Statistic": "Sum", "Period": 300, "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 0,
          "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
          "Dimensions": [{"Name": "ModelId", "Value": "amazon.nova-lite-v1:0"}],
          "AlarmActions": ["https://hooks.example.com/a#secret=ops", "slack+https://hooks.slack.com/services/T/B/x"],
          "OKActions": ["exec:page-me --resolved"], "InsufficientDataActions": ["arn:aws:sns:us-east-1:1:t"],
          "Tags": [{"Key": "team", "Value": "ml"}]}
MATH = {"AlarmName": "error-rate", "EvaluationPeriods": 2, "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold",
        "Metrics": [
            {"Id": "calls", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                           "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "errors", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock",
                                                       "MetricName": "InvocationServerErrors"},
                                            "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "rate", "Expression": "errors / (calls + errors) * 100", "Label": "Error %"}]}
BAND = {"AlarmName": "traffic", "EvaluationPeriods": 3, "ComparisonOperator": "GreaterThanUpperThreshold",
        "ThresholdMetricId": "ad1", "Metrics": [
            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                        "Period": 300, "Stat": "Sum"}, "ReturnData": True},
            {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 3)", "ReturnData": True}]}
QUERY_ALARM = {"AlarmName": "slow-requests", "EvaluationPeriods": 1, "Threshold": 10,
               "ComparisonOperator": "GreaterThanOrEqualToThreshold",
               "Metrics": [{"Id": "slow", "Period": 300, "Expression":
                            "SOURCE '/aws/bedrock/modelinvocations' | filter latencyMs > 5000 | stats count(*)"}]}


@pytest.mark.parametrize(("params", "kind"), [(SINGLE, STATIC), (MATH, STATIC), (BAND, ANOMALY), (QUERY_ALARM, QUERY)])
def test_each_kind_parses_and_round_trips(params, kind):
    definition = parse_definition(params)
    assert definition.kind == kind
    again = parse_definition(definition.to_params())
    assert again == definition


def test_derived_members():
    single = parse_definition(SINGLE)
    assert (single.period, single.m, single.metric.stat, single.metric.dimensions) == (
        300, 2, "Sum", (("ModelId", "amazon.nova-lite-v1:0"),))
    assert single.actions_for("ALARM") == tuple(SINGLE["AlarmActions"])
    math = parse_definition(MATH)
    assert (math.watched_id, math.period, math.m) == ("rate", 60, 2)
    band = parse_definition(BAND)
    assert (band.watched_id, band.band_metric_id, band.band_width, band.threshold) == ("m1", "m1", 3.0, None)
    query = parse_definition(QUERY_ALARM)
    assert query.period == 300 and query.query_text.startswith("SOURCE '/aws/bedrock/modelinvocations'")
    default_width = parse_definition({**BAND, "Metrics": [BAND["Metrics"][0],
                                                          {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1)"}]})
    assert default_width.band_width == 2.0


def without(params, *keys):
    return {k: v for k, v in params.items() if k not in keys}


@pytest.mark.parametrize(("params", "named"), [
    (without(SINGLE, "AlarmName"), "AlarmName is required"),
    (without(SINGLE, "EvaluationPeriods"), "EvaluationPeriods is required"),
    ({**SINGLE, "DatapointsToAlarm": 4}, "DatapointsToAlarm (4) must not be greater than EvaluationPeriods (3)"),
    ({**SINGLE, "ExtendedStatistic": "p99"}, "exactly one of Statistic and ExtendedStatistic"),
    ({**without(SINGLE, "Statistic"), "ExtendedStatistic": "p1000"}, "ExtendedStatistic 'p1000'"),
    ({**SINGLE, "Statistic": "Median"}, "Statistic 'Median' is not one of"),
    ({**SINGLE, "Period": 30}, "Period 30 is not a multiple of 60"),
    ({**SINGLE, "Period": 3600, "EvaluationPeriods": 169}, "must not exceed 604800 seconds"),
    ({**SINGLE, "Period": 60, "EvaluationPeriods": 1441}, "must not exceed 86400 seconds"),
    ({**SINGLE, "Threshold": "high"}, "Threshold must be a finite number"),
    (without(SINGLE, "Threshold"), "Threshold is required"),
    ({**SINGLE, "ComparisonOperator": "Above"}, "ComparisonOperator 'Above' is not one of"),
    ({**SINGLE, "ComparisonOperator": "GreaterThanUpperThreshold"}, "only for anomaly detection alarms"),
    ({**SINGLE, "TreatMissingData": "zero"}, "TreatMissingData 'zero'"),
    ({**SINGLE, "AlarmActions": ["mailto:ops@example.com"]}, "AlarmActions: 'mailto:ops@example.com' is not an action"),
    ({**SINGLE, "OKActions": ["exec:../bin/sh"]}, "must be a plain file name"),
    ({**SINGLE, "AlarmActions": ["https://x.example/#token=1"]}, "the only webhook option is #secret=NAME"),
    ({**SINGLE, "AlarmActions": [f"https://x.example/{i}" for i in range(6)]}, "at most 5 are allowed"),
    ({**SINGLE, "Metrics": MATH["Metrics"]}, "not both"),
    (without(SINGLE, "MetricName", "Namespace", "Statistic", "Period", "Dimensions"), "say what the alarm watches"),
    ({**SINGLE, "Dimensions": [{"Name": "ModelId"}]}, "Dimensions.1.Value is required"),
    ({**MATH, "Metrics": MATH["Metrics"][:2]}, "exactly one entry of Metrics"),
    ({**MATH, "Metrics": [*MATH["Metrics"][:2], {**MATH["Metrics"][2], "Id": "Rate"}]}, "must start with a lowercase"),
    ({**MATH, "Metrics": [MATH["Metrics"][0], {**MATH["Metrics"][1], "Id": "calls"}, MATH["Metrics"][2]]},
     "Ids must be unique; repeated: calls"),
    ({**MATH, "Metrics": [{**MATH["Metrics"][0], "MetricStat": {**MATH["Metrics"][0]["MetricStat"], "Period": 300}},
                          *MATH["Metrics"][1:]]}, "same Period"),
    ({**BAND, "ThresholdMetricId": "nope"}, "ThresholdMetricId 'nope' names no entry"),
    ({**BAND, "Threshold": 3}, "Threshold or ThresholdMetricId, not both"),
    ({**BAND, "ComparisonOperator": "GreaterThanThreshold"}, "ComparisonOperator must be one of"),
    ({**BAND, "Metrics": [BAND["Metrics"][0], {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m2, 2)"}]},
     "refers to 'm2'"),
    ({**BAND, "Metrics": [BAND["Metrics"][0], {"Id": "ad1", "Expression": "m1 * 2"}]},
     "must name an ANOMALY_DETECTION_BAND"),
    ({**QUERY_ALARM, "Metrics": [without(QUERY_ALARM["Metrics"][0], "Period")]}, "needs Period"),
    ({**QUERY_ALARM, "Metrics": [*QUERY_ALARM["Metrics"], MATH["Metrics"][0]]}, "exactly one entry"),
    ({**QUERY_ALARM, "Metrics": [{**QUERY_ALARM["Metrics"][0], "MetricStat": BAND["Metrics"][0]["MetricStat"]}]},
     "exactly one of MetricStat and Expression"),
    ({**QUERY_ALARM, "Metrics": [{**QUERY_ALARM["Metrics"][0], "Expression": "SOURCE 'g' | stats count(*) by"}]},
     "slow: the Logs Insights query does not parse: line 1, column"),
    ([], "must be a JSON object"),
])
def test_errors_name_what_is_wrong(params, named):
    with pytest.raises(InputError) as raised:
        parse_definition(params)
    assert named in str(raised.value)
