"""The seasonal anomaly band (dashcam.metrics.anomaly) on generated traffic with known truth.

Traffic follows a daily cycle (and, where said, a quieter weekend) plus Gaussian noise of known
standard deviation; the expected band is computed from that truth, not hard-coded.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone

import pytest

from dashcam.alarms.evaluate import Datapoint, evaluate
from dashcam.alarms.model import ALARM, OK, parse_definition
from dashcam.errors import InputError
from dashcam.metrics.anomaly import SeasonalModel, seasonal_band

DAY = 86_400_000
PERIOD_S = 300
STEP = PERIOD_S * 1000
SIGMA = 5.0
START = int(datetime(2026, 1, 5, tzinfo=timezone.utc).timestamp() * 1000)  # a Monday


def daily(t: int) -> float:
    """Requests per 5 minutes: 40 at 04:00 UTC, 160 at 16:00."""
    return 100 + 60 * math.sin(2 * math.pi * ((t % DAY) / DAY - 10 / 24))


def weekly(t: int) -> float:
    """The daily cycle, halved on Saturdays and Sundays."""
    weekday = (t // DAY + 3) % 7
    return daily(t) * (0.5 if weekday >= 5 else 1.0)


def generate(truth, start: int, days: float, seed: int) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    return [(t, truth(t + STEP // 2) + rng.gauss(0, SIGMA)) for t in range(start, start + int(days * DAY), STEP)]


def outside(values, bands) -> list[int]:
    return [i for i, ((_, v), (low, high)) in enumerate(zip(values, bands)) if not low <= v <= high]


def test_the_baseline_follows_the_daily_cycle():
    history = generate(daily, START, 14, seed=1)
    at = list(range(START + 14 * DAY, START + 15 * DAY, STEP))
    bands = seasonal_band(history, at, width=2, period_s=PERIOD_S)
    # A centre is a median of the 24 values of its hour of the week: its error is about
    # 1.25 sigma / sqrt(24) = 0.26 sigma.
    errors = [abs((low + high) / 2 - daily(t + STEP // 2)) for t, (low, high) in zip(at, bands)]
    assert max(errors) < SIGMA and sum(errors) / len(errors) < 0.3 * SIGMA
    for low, high in bands:
        assert 2 * 0.8 * SIGMA < (high - low) / 2 < 2 * 1.3 * SIGMA  # width 2 x a spread close to sigma


@pytest.mark.parametrize("seed", range(3))
def test_normal_days_stay_inside_the_band(seed):
    history = generate(daily, START, 14, seed=seed)
    upcoming = generate(daily, START + 14 * DAY, 7, seed=100 + seed)
    bands = seasonal_band(history, [t for t, _ in upcoming], width=2, period_s=PERIOD_S)
    # Width 2: about 4.6% of normal points fall outside a Gaussian band, and never for long.
    share = len(outside(upcoming, bands)) / len(upcoming)
    assert 0.01 < share < 0.09
    # The cycle itself, without noise, is inside the band all day.
    for (t, _), (low, high) in zip(upcoming, bands):
        assert low < daily(t + STEP // 2) < high
    # The peak of the day is normal at its hour and abnormal at night.
    peak = max(upcoming, key=lambda p: p[1])
    night = min(range(len(upcoming)), key=lambda i: daily(upcoming[i][0]))
    assert bands[night][1] < peak[1]


def anomaly_alarm(width: float, m: int = 3, n: int = 3):
    return parse_definition({
        "AlarmName": "traffic", "EvaluationPeriods": n, "DatapointsToAlarm": m, "ThresholdMetricId": "ad1",
        "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "Metrics": [
            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/Bedrock", "MetricName": "Invocations"},
                                        "Period": PERIOD_S, "Stat": "Sum"}},
            {"Id": "ad1", "Expression": f"ANOMALY_DETECTION_BAND(m1, {width})"}]})


def run_alarm(definition, history, upcoming) -> list[tuple[int, str]]:
    """Evaluate the alarm after every period of ``upcoming``; returns (time, state) for each ALARM."""
    model = SeasonalModel(history, period_s=PERIOD_S)
    bands = model.band([t for t, _ in upcoming], definition.band_width)
    points = [Datapoint(t, v, low, high) for (t, v), (low, high) in zip(upcoming, bands)]
    state, alarms = OK, []
    for i in range(len(points)):
        now = points[i].timestamp_ms + STEP + 10_000
        evaluation = evaluate(definition, points[max(0, i - 6):i + 1], state, now)
        state = evaluation.state
        if state == ALARM:
            alarms.append((points[i].timestamp_ms, evaluation.reason))
    return alarms


@pytest.mark.parametrize("seed", range(3))
def test_an_anomaly_alarm_is_quiet_through_a_normal_week(seed):
    history = generate(daily, START, 14, seed=seed)
    upcoming = generate(daily, START + 14 * DAY, 7, seed=200 + seed)
    # Width 3: three 5-minute periods in a row beyond 3 sigma happen by chance about once in 500
    # years. (At width 2, pure noise does it about once in five weeks.)
    assert run_alarm(anomaly_alarm(3), history, upcoming) == []


@pytest.mark.parametrize("seed", range(3))
def test_an_anomaly_alarm_fires_on_an_injected_spike(seed):
    history = generate(daily, START, 14, seed=seed)
    upcoming = generate(daily, START + 14 * DAY, 2, seed=300 + seed)
    spike_at = len(upcoming) // 2 + 17
    for i in range(spike_at, spike_at + 4):  # 20 minutes at +8 sigma, at whatever hour that is
        t, v = upcoming[i]
        upcoming[i] = (t, v + 8 * SIGMA)
    fired = run_alarm(anomaly_alarm(3), history, upcoming)
    assert fired, "the spike did not raise the alarm"
    assert fired[0][0] == upcoming[spike_at + 2][0]  # 3 of 3: on the third spiked period
    assert all(upcoming[spike_at][0] <= t <= upcoming[spike_at + 3][0] for t, _ in fired)
    assert fired[0][1].startswith("Thresholds Crossed: 3 out of the last 3 datapoints")


def test_weekends_are_learned_from_two_weeks_of_history():
    history = generate(weekly, START, 21, seed=4)
    saturday = START + 26 * DAY  # the fourth Saturday
    at = list(range(saturday, saturday + DAY, STEP))
    bands = seasonal_band(history, at, width=2, period_s=PERIOD_S)
    # The baseline is interpolated between hours, so Friday's level blurs into Saturday's first hour.
    for t, (low, high) in list(zip(at, bands))[12:]:
        assert low <= weekly(t + STEP // 2) <= high
    # A weekday's traffic on a Saturday afternoon is an anomaly.
    afternoon = at.index(saturday + 16 * 3_600_000)
    assert daily(at[afternoon]) > bands[afternoon][1]


def test_little_history_falls_back_to_coarser_baselines():
    one_day = generate(daily, START, 1, seed=5)
    at = [START + 2 * DAY + h * 3_600_000 for h in range(24)]
    flat = seasonal_band(one_day, at, width=2, period_s=PERIOD_S)
    assert len(set(flat)) == 1  # one day says nothing about hours: one band for every hour
    low, high = flat[0]
    assert low < min(v for _, v in one_day) + 3 * SIGMA and high > max(v for _, v in one_day) - 3 * SIGMA
    three_days = generate(daily, START, 3, seed=5)
    hourly = seasonal_band(three_days, at, width=2, period_s=PERIOD_S)
    for t, (low, high) in zip(at, hourly):
        assert abs((low + high) / 2 - daily(t + STEP // 2)) < 2 * SIGMA


def test_past_spikes_do_not_widen_the_band():
    clean = generate(daily, START, 14, seed=6)
    spiky = list(clean)
    rng = random.Random(7)
    for i in rng.sample(range(len(spiky)), 40):  # 1% of the history at +30 sigma
        spiky[i] = (spiky[i][0], spiky[i][1] + 30 * SIGMA)
    at = list(range(START + 14 * DAY, START + 15 * DAY, STEP))
    widths = [[(high - low) for low, high in seasonal_band(h, at, width=2, period_s=PERIOD_S)] for h in (clean, spiky)]
    assert sum(widths[1]) / sum(widths[0]) < 1.1


def test_a_mostly_zero_metric_still_has_a_band():
    rng = random.Random(8)
    history = [(t, float(rng.random() < 0.05)) for t in range(START, START + 14 * DAY, STEP)]
    low, high = seasonal_band(history, [START + 15 * DAY], width=3, period_s=PERIOD_S)[0]
    assert low <= 0.0 < high < 5.0


def test_the_width_scales_the_band_and_no_history_gives_none():
    history = generate(daily, START, 14, seed=9)
    at = [START + 14 * DAY + 7 * 3_600_000]
    (low2, high2), = seasonal_band(history, at, width=2, period_s=PERIOD_S)
    (low4, high4), = seasonal_band(history, at, width=4, period_s=PERIOD_S)
    assert high4 - low4 == pytest.approx(2 * (high2 - low2))
    assert (low2 + high2) == pytest.approx(low4 + high4)
    assert all(math.isnan(x) for x in seasonal_band([], at, width=2, period_s=PERIOD_S)[0])
    with pytest.raises(InputError):
        seasonal_band(history, at, width=0, period_s=PERIOD_S)
