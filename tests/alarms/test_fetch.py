"""Reading an alarm's datapoints (dashcam.alarms.fetch) through recording stand-ins for the engine.

The stand-ins answer from a known function of time and record every request, so what is asked
of the metrics engine and the query runner (and how often) can be checked.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from dashcam.alarms.evaluate import evaluation_range
from dashcam.alarms.fetch import SETTLE_MS, AlarmData, query_value
from dashcam.alarms.model import parse_definition
from dashcam.errors import InputError
from dashcam.metrics.engine import MetricQuery, MetricSeries

MINUTE = 60_000
HOUR = 3_600_000
NOW = int(datetime(2026, 3, 16, 12, 0, 20, tzinfo=timezone.utc).timestamp() * 1000)


def traffic(t: int) -> float:
    return 100 + 50 * math.sin(2 * math.pi * (t % 86_400_000) / 86_400_000)


class Engine:
    """GetMetricData from ``traffic``: every metric query gets it, every period has a datapoint."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[MetricQuery], int, int]] = []

    def __call__(self, queries, start_ms, end_ms):
        self.calls.append((list(queries), start_ms, end_ms))
        out = []
        for query in queries:
            if not query.return_data:
                continue
            period = (query.metric_stat.period if query.metric_stat else 60) * 1000
            stamps = list(range(start_ms // period * period, end_ms, period))
            value = (lambda t: 1000.0) if query.metric_stat and query.metric_stat.stat == "SampleCount" else traffic
            out.append(MetricSeries(query.id, query.id, stamps, [value(t) for t in stamps]))
        return out


SINGLE = {"AlarmName": "p99", "MetricName": "InvocationLatency", "Namespace": "AWS/Bedrock", "ExtendedStatistic": "p99",
          "Period": 60, "EvaluationPeriods": 3, "Threshold": 500, "ComparisonOperator": "GreaterThanThreshold",
          "Dimensions": [{"Name": "ModelId", "Value": "m"}]}
BAND = {"AlarmName": "band", "EvaluationPeriods": 2, "ComparisonOperator": "GreaterThanUpperThreshold",
        "ThresholdMetricId": "ad", "Metrics": [
            {"Id": "calls", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                           "Period": 300, "Stat": "Sum"}},
            {"Id": "ad", "Expression": "ANOMALY_DETECTION_BAND(calls, 2)"}]}


def test_a_single_metric_alarm_asks_for_its_range_and_its_sample_counts():
    engine = Engine()
    definition = parse_definition({**SINGLE, "EvaluateLowSampleCountPercentile": "ignore"})
    points = AlarmData(engine).datapoints(definition, NOW)
    [(queries, start, end)] = engine.calls
    assert (start, end) == evaluation_range(definition, NOW)
    stat = queries[0].metric_stat
    assert (stat.metric_name, stat.stat, stat.period, stat.dimensions) == ("InvocationLatency", "p99", 60,
                                                                           (("ModelId", "m"),))
    assert queries[1].metric_stat.stat == "SampleCount"
    assert [p.value for p in points] == [traffic(t) for t in range(start, end, MINUTE)]
    assert all(p.sample_count == 1000.0 for p in points)
    AlarmData(engine).datapoints(parse_definition(SINGLE), NOW)
    assert len(engine.calls[1][0]) == 1  # no sample counts unless they decide something


def test_metric_math_returns_only_the_judged_series():
    engine = Engine()
    definition = parse_definition({"AlarmName": "rate", "EvaluationPeriods": 1, "Threshold": 1,
                                   "ComparisonOperator": "GreaterThanThreshold", "Metrics": [
                                       {"Id": "a", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock",
                                                                             "MetricName": "Invocations"},
                                                                  "Period": 60, "Stat": "Sum"}, "ReturnData": False},
                                       {"Id": "e", "Expression": "a * 2", "ReturnData": True}]})
    AlarmData(engine).datapoints(definition, NOW)
    [(queries, _, _)] = engine.calls
    assert [(q.id, q.return_data, q.expression) for q in queries] == [("a", False, None), ("e", True, "a * 2")]


def test_band_alarms_learn_two_weeks_once_an_hour():
    engine = Engine()
    data = AlarmData(engine)
    definition = parse_definition(BAND)
    first = data.datapoints(definition, NOW)
    start, end = evaluation_range(definition, NOW)
    assert [(s, e) for _, s, e in engine.calls] == [(start, end), (start - 14 * 86_400_000, start)]
    assert all(q.id != "ad" for q in engine.calls[0][0])  # the band is computed here, not asked for
    for point in first:
        assert point.lower < traffic(point.timestamp_ms) < point.upper
    data.datapoints(definition, NOW + 10 * MINUTE)
    assert len(engine.calls) == 3  # the range again, the model from the cache
    data.datapoints(definition, NOW + HOUR)
    assert len(engine.calls) == 5  # an hour later: learned again
    changed = parse_definition({**BAND, "EvaluationPeriods": 3})
    data.forget_others([changed])
    data.datapoints(changed, NOW + HOUR)
    assert len(engine.calls) == 7  # a new definition learns afresh


class Queries:
    """A Logs Insights runner answering ``count`` rows from a table of per-period numbers."""

    def __init__(self, values: dict[int, float | None]) -> None:
        self.values = values
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, text, start_ms, end_ms):
        self.calls.append((text, start_ms, end_ms))
        value = self.values.get(start_ms)
        return [{"count(*)": value}] if start_ms in self.values else []


QUERY = {"AlarmName": "slow", "EvaluationPeriods": 3, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold",
         "Metrics": [{"Id": "q", "Period": 60, "Expression": "SOURCE 'g' | filter latencyMs > 5000 | stats count(*)"}]}


def test_query_alarms_run_once_per_period_and_keep_settled_periods():
    definition = parse_definition(QUERY)
    start, end = evaluation_range(definition, NOW)
    runner = Queries({t: float(i) for i, t in enumerate(range(start, end, MINUTE))} | {start + MINUTE: None})
    data = AlarmData(run_query=runner)
    points = data.datapoints(definition, NOW)
    assert [(p.timestamp_ms, p.value) for p in points] == [
        (t, float(i)) for i, t in enumerate(range(start, end, MINUTE)) if t != start + MINUTE]
    assert [(s, e) for _, s, e in runner.calls] == [(t, t + MINUTE) for t in range(start, end, MINUTE)]
    assert all(text == definition.query_text for text, _, _ in runner.calls)
    runner.calls.clear()
    data.datapoints(definition, NOW + MINUTE)
    # Periods that had ended SETTLE_MS before the first round were kept; the others run again.
    unsettled = [t for t in range(start + MINUTE, end + MINUTE, MINUTE) if t + MINUTE > NOW - SETTLE_MS]
    assert 0 < len(unsettled) < 5
    assert sorted(s for _, s, _ in runner.calls) == unsettled


@pytest.mark.parametrize(("rows", "value"), [
    ([], None),
    ([{"count(*)": 3}], 3.0),
    ([{"n": 2.5}], 2.5),
    ([{"n": None}], None),
    ([{"bin(5m)": "2026-03-02 14:00:00.000", "n": 7}], 7.0),
])
def test_the_number_a_query_yields(rows, value):
    assert query_value(rows) == value


@pytest.mark.parametrize(("rows", "message"), [
    ([{"n": 1}, {"n": 2}], "the query gave 2 rows for one period"),
    ([{"n": 1, "m": 2}], "the query gave the columns n, m"),
    ([{"model": "x"}], "the query gave the columns model"),
])
def test_queries_that_do_not_yield_one_number(rows, message):
    with pytest.raises(InputError, match=message):
        query_value(rows)


def test_without_a_data_source_the_reason_says_so():
    with pytest.raises(InputError, match="no metrics engine"):
        AlarmData().datapoints(parse_definition(SINGLE), NOW)
    with pytest.raises(InputError, match="no query runner"):
        AlarmData().datapoints(parse_definition(QUERY), NOW)
