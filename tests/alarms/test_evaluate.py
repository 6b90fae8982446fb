"""The alarm state machine (dashcam.alarms.evaluate) with an injected clock.

The missing-data cases are the two tables of CloudWatch's user guide ("How alarm state is
evaluated when data is missing"): datapoints written oldest to newest, ``0`` not breaching, ``X``
breaching, ``-`` missing, over an evaluation range of 5 periods for 3 evaluation periods.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashcam.alarms.evaluate import Datapoint, evaluate, evaluation_range, failed_evaluation
from dashcam.alarms.model import ALARM, INSUFFICIENT_DATA, OK, parse_definition

MINUTE = 60_000
# 2026-03-02 14:05:20 UTC: 20 s into a minute, so the period 14:05 is incomplete.
NOW = int(datetime(2026, 3, 2, 14, 5, 20, tzinfo=timezone.utc).timestamp() * 1000)
THRESHOLD = 10.0
GOOD, BAD = 1.0, 20.0
RETAIN = "retain"


def alarm(**members):
    params = {"AlarmName": "latency", "MetricName": "InvocationLatency", "Namespace": "AWS/Bedrock",
              "Statistic": "Average", "Period": 60, "EvaluationPeriods": 3, "Threshold": THRESHOLD,
              "ComparisonOperator": "GreaterThanThreshold"}
    params.update(members)
    return parse_definition(params)


def points(pattern: str, now: int = NOW, period_ms: int = MINUTE) -> list[Datapoint]:
    """Datapoints for a pattern like ``0 - X - X`` (oldest first) ending at the last complete period."""
    marks = pattern.split()
    last = now // period_ms * period_ms - period_ms
    out = []
    for age, mark in enumerate(reversed(marks)):
        if mark != "-":
            out.append(Datapoint(last - age * period_ms, BAD if mark == "X" else GOOD))
    return out


MODES = ("missing", "ignore", "breaching", "notBreaching")

# (pattern, M, expected state per mode in MODES order), from the user guide's two tables.
AWS_TABLES = [
    ("0 - X - X", 3, (OK, OK, OK, OK)),
    ("0 - - - -", 3, (OK, OK, OK, OK)),
    ("- - - - -", 3, (INSUFFICIENT_DATA, RETAIN, ALARM, OK)),
    ("0 X X - X", 3, (ALARM, ALARM, ALARM, ALARM)),
    ("- - X - -", 3, (ALARM, RETAIN, ALARM, OK)),
    ("0 - X - X", 2, (ALARM, ALARM, ALARM, ALARM)),
    ("0 0 X 0 X", 2, (ALARM, ALARM, ALARM, ALARM)),
    ("0 - X - -", 2, (OK, OK, ALARM, OK)),
    ("- - - - 0", 2, (OK, OK, ALARM, OK)),
    ("- - - X -", 2, (ALARM, RETAIN, ALARM, OK)),
]


@pytest.mark.parametrize(("pattern", "m", "expected"), AWS_TABLES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("previous", (OK, ALARM, INSUFFICIENT_DATA))
def test_the_user_guide_tables(pattern, m, expected, mode, previous):
    definition = alarm(DatapointsToAlarm=m, TreatMissingData=mode)
    evaluation = evaluate(definition, points(pattern), previous, NOW)
    want = expected[MODES.index(mode)]
    assert evaluation.state == (previous if want == RETAIN else want)
    assert evaluation.changed == (evaluation.state != previous)
    assert evaluation.previous_state == previous


def test_a_lone_recent_breach_is_not_a_premature_alarm():
    # "- - - - X" with 3 of 3: the next point may be good, so no ALARM yet.
    definition = alarm(TreatMissingData="missing")
    assert evaluate(definition, points("- - - - X"), OK, NOW).state == OK
    assert evaluate(definition, points("- - - X -"), OK, NOW).state == OK
    assert evaluate(definition, points("- - X - -"), OK, NOW).state == ALARM


def test_a_new_alarm_without_data_stays_insufficient():
    evaluation = evaluate(alarm(), [], INSUFFICIENT_DATA, NOW)
    assert evaluation.state == INSUFFICIENT_DATA
    assert not evaluation.changed
    assert evaluation.reason == "Insufficient Data: 5 datapoints were unknown."


def test_m_of_n_goes_to_alarm_and_recovers():
    definition = alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    history = [("0 0 0 0 0", OK), ("0 0 0 0 X", OK), ("0 0 0 X X", ALARM), ("0 0 X X 0", ALARM),
               ("0 X X 0 0", OK), ("X X 0 0 0", OK)]
    state = INSUFFICIENT_DATA
    for minute, (pattern, expected) in enumerate(history):
        now = NOW + minute * MINUTE
        evaluation = evaluate(definition, points(pattern, now), state, now)
        assert evaluation.state == expected, pattern
        state = evaluation.state
    recovered = evaluate(definition, points("0 0 X X 0", NOW), ALARM, NOW)
    assert recovered.state == ALARM  # 2 of the last 3 still breach
    back = evaluate(definition, points("0 X X 0 0", NOW), ALARM, NOW)
    assert back.state == OK and back.changed
    assert "(minimum 2 datapoints for ALARM -> OK transition)" in back.reason


@given(st.lists(st.one_of(st.none(), st.booleans()), min_size=5, max_size=5),
       st.integers(1, 3), st.sampled_from(MODES))
def test_with_enough_real_datapoints_the_newest_n_decide(marks, m, mode):
    # Whenever the range holds at least N real datapoints, TreatMissingData does not matter:
    # ALARM exactly when M of the N most recent real ones breach.
    real = [mark for mark in marks if mark is not None]
    if len(real) < 3:
        return
    pattern = " ".join("-" if mark is None else ("X" if mark else "0") for mark in marks)
    evaluation = evaluate(alarm(DatapointsToAlarm=m, TreatMissingData=mode), points(pattern), OK, NOW)
    assert evaluation.state == (ALARM if sum(real[-3:]) >= m else OK)


def test_only_complete_periods_in_the_range_count():
    definition = alarm(EvaluationPeriods=1)
    start, end = evaluation_range(definition, NOW)
    assert end == NOW // MINUTE * MINUTE and end - start == 3 * MINUTE
    still_filling = Datapoint(end, BAD)  # the period holding NOW
    too_old = Datapoint(start - MINUTE, BAD)
    good = Datapoint(end - MINUTE, GOOD)
    assert evaluate(definition, [still_filling, too_old, good], OK, NOW).state == OK
    assert evaluate(definition, [still_filling, too_old], OK, NOW).state == INSUFFICIENT_DATA


def test_longer_periods_align_to_the_epoch():
    definition = alarm(Period=300, EvaluationPeriods=2)
    start, end = evaluation_range(definition, NOW)
    assert end % 300_000 == 0 and end <= NOW < end + 300_000
    data = points("X X", NOW, 300_000)
    assert {p.timestamp_ms for p in data} == {end - 300_000, end - 600_000}
    assert evaluate(definition, data, OK, NOW).state == ALARM


@pytest.mark.parametrize(("operator", "at_threshold", "above", "below"), [
    ("GreaterThanOrEqualToThreshold", ALARM, ALARM, OK),
    ("GreaterThanThreshold", OK, ALARM, OK),
    ("LessThanThreshold", OK, OK, ALARM),
    ("LessThanOrEqualToThreshold", ALARM, OK, ALARM),
])
def test_static_operators(operator, at_threshold, above, below):
    definition = alarm(ComparisonOperator=operator, EvaluationPeriods=1)
    last = NOW // MINUTE * MINUTE - MINUTE
    for value, expected in ((THRESHOLD, at_threshold), (THRESHOLD + 0.5, above), (THRESHOLD - 0.5, below)):
        assert evaluate(definition, [Datapoint(last, value)], OK, NOW).state == expected, value


def band_alarm(operator="LessThanLowerOrGreaterThanUpperThreshold", **members):
    params = {"AlarmName": "band", "EvaluationPeriods": 1, "ComparisonOperator": operator,
              "ThresholdMetricId": "ad1", "Metrics": [
                  {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                              "Period": 60, "Stat": "Sum"}},
                  {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"}]}
    params.update(members)
    return parse_definition(params)


@pytest.mark.parametrize(("operator", "below", "inside", "above"), [
    ("LessThanLowerOrGreaterThanUpperThreshold", ALARM, OK, ALARM),
    ("LessThanLowerThreshold", ALARM, OK, OK),
    ("GreaterThanUpperThreshold", OK, OK, ALARM),
])
def test_band_operators(operator, below, inside, above):
    definition = band_alarm(operator)
    last = NOW // MINUTE * MINUTE - MINUTE
    for value, expected in ((5.0, below), (50.0, inside), (95.0, above)):
        evaluation = evaluate(definition, [Datapoint(last, value, lower=10.0, upper=90.0)], OK, NOW)
        assert evaluation.state == expected, value
    data = orjson.loads(evaluate(definition, [Datapoint(last, 95.0, 10.0, 90.0)], OK, NOW).reason_data)
    assert data["recentLowerThresholds"] == [10.0] and data["recentUpperThresholds"] == [90.0]
    assert "threshold" not in data


def test_a_datapoint_without_its_band_counts_as_missing():
    definition = band_alarm()
    last = NOW // MINUTE * MINUTE - MINUTE
    evaluation = evaluate(definition, [Datapoint(last, 1e9, None, None)], OK, NOW)
    assert evaluation.state == INSUFFICIENT_DATA


def test_low_sample_count_percentiles_can_keep_the_state():
    last = NOW // MINUTE * MINUTE - MINUTE
    thin = [Datapoint(last, BAD, sample_count=50)]  # p99 needs 10 / (1 - 0.99) = 1000 samples
    full = [Datapoint(last, BAD, sample_count=1000)]
    common = {"Statistic": None, "ExtendedStatistic": "p99", "EvaluationPeriods": 1}
    ignoring = alarm(EvaluateLowSampleCountPercentile="ignore", **common)
    evaluating = alarm(EvaluateLowSampleCountPercentile="evaluate", **common)
    assert evaluate(ignoring, thin, OK, NOW).state == OK
    assert not evaluate(ignoring, thin, OK, NOW).changed
    assert evaluate(ignoring, full, OK, NOW).state == ALARM
    assert evaluate(evaluating, thin, OK, NOW).state == ALARM


def test_reason_and_reason_data_as_cloudwatch_writes_them():
    definition = alarm(DatapointsToAlarm=2)
    last = NOW // MINUTE * MINUTE - MINUTE
    data = [Datapoint(last - 2 * MINUTE, 3.0), Datapoint(last - MINUTE, 12.5), Datapoint(last, 30.0)]
    evaluation = evaluate(definition, data, OK, NOW)
    assert evaluation.state == ALARM and evaluation.value == 30.0
    stamp = datetime.fromtimestamp(last / 1000, tz=timezone.utc)
    assert evaluation.reason.startswith(
        f"Threshold Crossed: 2 out of the last 3 datapoints [30.0 ({stamp:%d/%m/%y %H:%M:%S}), 12.5 (")
    assert evaluation.reason.endswith("] were greater than the threshold (10.0) "
                                      "(minimum 2 datapoints for OK -> ALARM transition).")
    reason_data = orjson.loads(evaluation.reason_data)
    assert reason_data["version"] == "1.0"
    assert reason_data["statistic"] == "Average" and reason_data["period"] == 60
    assert reason_data["threshold"] == THRESHOLD
    assert reason_data["recentDatapoints"] == [3.0, 12.5, 30.0]
    assert [p["value"] for p in reason_data["evaluatedDatapoints"]] == [30.0, 12.5, 3.0]
    assert reason_data["evaluatedDatapoints"][0]["timestamp"] == f"{stamp:%Y-%m-%dT%H:%M:%S}.000+0000"


def test_filled_datapoints_are_named_in_the_reason():
    evaluation = evaluate(alarm(TreatMissingData="breaching"), [], OK, NOW)
    assert evaluation.state == ALARM
    assert evaluation.reason == ("Threshold Crossed: no datapoints were received for 5 periods and 3 missing "
                                 "datapoints were treated as [Breaching].")
    assert len(orjson.loads(evaluation.reason_data)["evaluatedDatapoints"]) == 3
    partial = evaluate(alarm(TreatMissingData="notBreaching"), points("- - - - 0"), ALARM, NOW)
    assert partial.state == OK
    assert "and 2 missing datapoints were treated as [NonBreaching]" in partial.reason


def test_the_evaluator_depends_only_on_its_arguments():
    definition = alarm(DatapointsToAlarm=2, TreatMissingData="ignore")
    for now in (NOW, NOW - 20 * 365 * 86_400_000, NOW + 4 * 365 * 86_400_000):
        first = evaluate(definition, points("0 X - X -", now), OK, now)
        assert first == evaluate(definition, points("0 X - X -", now), OK, now)
        assert first.state == ALARM and first.evaluated_at_ms == now


def test_unreadable_data_means_insufficient_data():
    evaluation = failed_evaluation(alarm(), ALARM, "metric Nope does not exist", NOW)
    assert evaluation.state == INSUFFICIENT_DATA and evaluation.changed
    assert "metric Nope does not exist" in evaluation.reason
