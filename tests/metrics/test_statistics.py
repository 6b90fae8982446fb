"""Statistics: parsing, and every statistic per period on both engines against an independent
computation (numpy / statistics over the same generated values)."""

from __future__ import annotations

import math
import statistics
from fractions import Fraction as F

import numpy as np
import pytest

from dashcam.errors import InputError
from dashcam.metrics.engine import MetricQuery, MetricStat, get_metric_data
from dashcam.metrics.statistics import Bound, parse_statistic

T0 = 1_772_442_000_000  # 2026-03-02T09:00:00Z
PERIOD = 60
# Samples per populated minute (every other minute stays empty): tiny periods, ties, long tails.
SIZES = (1, 2, 3, 4, 5, 7, 10, 33, 100, 257)


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text, kind, quantile, lower, upper", [
    ("Sum", "Sum", None, None, None),
    ("sampleCount", "SampleCount", None, None, None),
    ("p99", "percentile", F(99, 100), None, None),
    ("p99.9", "percentile", F(999, 1000), None, None),
    ("P0", "percentile", F(0), None, None),
    ("p100", "percentile", F(1), None, None),
    ("IQM", "TM", None, Bound(F(1, 4), True), Bound(F(3, 4), True)),
    ("tm90", "TM", None, None, Bound(F(9, 10), True)),
    ("TM(10%:90%)", "TM", None, Bound(F(1, 10), True), Bound(F(9, 10), True)),
    ("TM(90%)", "TM", None, None, Bound(F(9, 10), True)),
    ("TM(150:1000)", "TM", None, Bound(F(150), False), Bound(F(1000), False)),
    ("wm98", "WM", None, None, Bound(F(98, 100), True)),
    ("TC(:5%)", "TC", None, None, Bound(F(5, 100), True)),
    ("ts12.5", "TS", None, None, Bound(F(125, 1000), True)),
    ("PR(:300)", "PR", None, None, Bound(F(300), False)),
    ("PR(100:2000)", "PR", None, Bound(F(100), False), Bound(F(2000), False)),
])
def test_statistics_parse_to_their_definition(text, kind, quantile, lower, upper):
    stat = parse_statistic(text)
    assert (stat.kind, stat.quantile, stat.lower, stat.upper) == (kind, quantile, lower, upper)
    assert stat.text == text


@pytest.mark.parametrize("text", [
    "p101", "p-1", "Median", "avg", "TM(90%:10%)", "TM(10%:90)", "PR(10%:90%)", "TM()", "tm0", "TM(:0%)",
    "TM(10%:120%)", "p99.1234567", "", "sum(x)",
])
def test_unknown_or_malformed_statistics_are_named_in_the_error(text):
    with pytest.raises(InputError) as caught:
        parse_statistic(text)
    assert repr(text) in str(caught.value)


# ---------------------------------------------------------------------- values on both engines


def nearest_rank(values: list[float], q: F) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def by_rank(values: list[float], low: F, high: F) -> tuple[list[float], int, int]:
    """The kept samples and how many were dropped below and above."""
    ordered = sorted(values)
    n = len(ordered)
    drop_low, drop_high = math.floor(low * n), math.floor((1 - high) * n)
    return ordered[drop_low:n - drop_high], drop_low, drop_high


def trimmed_mean(low: F, high: F):
    return lambda v: statistics.fmean(by_rank(v, low, high)[0])


def winsorized_mean(low: F, high: F):
    def compute(v):
        kept, below, above = by_rank(v, low, high)
        return statistics.fmean([kept[0]] * below + kept + [kept[-1]] * above)
    return compute


def in_range(v, low, high):
    return [x for x in v if (low is None or x > low) and (high is None or x <= high)]


def value_mean(low, high):
    return lambda v: statistics.fmean(in_range(v, low, high)) if in_range(v, low, high) else None


ORACLE = {
    "SampleCount": len,
    "Sum": lambda v: float(np.sum(v)),
    "Average": lambda v: float(np.mean(v)),
    "Minimum": lambda v: float(np.min(v)),
    "Maximum": lambda v: float(np.max(v)),
    "p0": lambda v: nearest_rank(v, F(0)),
    "p10": lambda v: nearest_rank(v, F(1, 10)),
    "p50": lambda v: nearest_rank(v, F(1, 2)),
    "p90": lambda v: nearest_rank(v, F(9, 10)),
    "p99": lambda v: nearest_rank(v, F(99, 100)),
    "p99.9": lambda v: nearest_rank(v, F(999, 1000)),
    "p100": lambda v: nearest_rank(v, F(1)),
    "p7": lambda v: nearest_rank(v, F(7, 100)),
    "IQM": trimmed_mean(F(1, 4), F(3, 4)),
    "tm90": trimmed_mean(F(0), F(9, 10)),
    "TM(10%:90%)": trimmed_mean(F(1, 10), F(9, 10)),
    "TM(5%:)": trimmed_mean(F(5, 100), F(1)),
    "TM(29%:71%)": trimmed_mean(F(29, 100), F(71, 100)),
    "WM(10%:90%)": winsorized_mean(F(1, 10), F(9, 10)),
    "wm99": winsorized_mean(F(0), F(99, 100)),
    "TC(25%:75%)": lambda v: len(by_rank(v, F(1, 4), F(3, 4))[0]),
    "tc90": lambda v: len(by_rank(v, F(0), F(9, 10))[0]),
    "TS(10%:90%)": lambda v: math.fsum(by_rank(v, F(1, 10), F(9, 10))[0]),
    "ts50": lambda v: math.fsum(by_rank(v, F(0), F(1, 2))[0]),
    "TM(100:500)": value_mean(100, 500),
    "TM(:12)": value_mean(None, 12),
    "WM(5:15)": lambda v: float(np.mean(np.clip(v, 5, 15))),
    "TC(400:)": lambda v: len(in_range(v, 400, None)),
    "TS(:10)": lambda v: math.fsum(in_range(v, None, 10)),
    "PR(:400)": lambda v: 100 * len(in_range(v, None, 400)) / len(v),
    "PR(5:12)": lambda v: 100 * len(in_range(v, 5, 12)) / len(v),
}


@pytest.fixture(scope="module")
def samples() -> dict[int, list[float]]:
    """Latencies by period start: even periods draw from a long tail, odd ones are small integers
    (many ties); every other minute has no samples at all."""
    rng = np.random.default_rng(20260302)
    out = {}
    for i, n in enumerate(SIZES):
        values = rng.integers(1, 20, n).astype(float) if i % 2 else np.round(rng.lognormal(6, 1, n), 3)
        out[T0 + 2 * i * PERIOD * 1000] = values.tolist()
    return out


@pytest.fixture(scope="module")
def stat_store(module_engine, module_store_opener, samples, invocation, write):
    store = module_store_opener(module_engine, "statistics")
    records = []
    for start, values in samples.items():
        for k, value in enumerate(values):
            records.append(invocation(start + (k * 997) % 60_000, latency=value))
        # Failures carry latencies too; they are no InvocationLatency samples.
        records.append(invocation(start + 5, latency=1e9, error="ValidationException"))
        records.append(invocation(start + 6, latency=-1e9, error="ThrottlingException"))
    write(store, records)
    return store


def test_every_statistic_matches_an_independent_computation(stat_store, samples):
    queries = [MetricQuery(f"q{i}", MetricStat("InvocationLatency", PERIOD, text)) for i, text in enumerate(ORACLE)]
    end = T0 + 2 * len(SIZES) * PERIOD * 1000
    results = get_metric_data(stat_store, queries, T0, end)
    assert [r.id for r in results] == [q.id for q in queries]
    for text, result in zip(ORACLE, results):
        expected = {t: ORACLE[text](v) for t, v in samples.items()}
        expected = {t: float(v) for t, v in expected.items() if v is not None}
        got = dict(zip(result.timestamps, result.values))
        assert got.keys() == expected.keys(), text
        for t, value in expected.items():
            assert got[t] == pytest.approx(value, rel=1e-9, abs=1e-9), (text, (t - T0) // 60_000, len(samples[t]))


def test_nearest_rank_percentiles_agree_with_numpy_inverted_cdf(stat_store, samples):
    """The percentile definition is numpy's ``inverted_cdf`` (nearest rank) where q x n is not at
    a floating-point edge."""
    results = get_metric_data(stat_store, [MetricQuery(f"p{q[1:]}", MetricStat("InvocationLatency", PERIOD, q))
                                           for q in ("p50", "p90", "p99")], T0, T0 + 3_600_000)
    largest = max(samples, key=lambda t: len(samples[t]))
    for q, result in zip((50, 90, 99), results):
        got = dict(zip(result.timestamps, result.values))[largest]
        assert got == np.percentile(samples[largest], q, method="inverted_cdf")


def test_timestamps_are_period_starts_ascending_and_empty_periods_have_no_datapoint(stat_store, samples):
    [result] = get_metric_data(stat_store, [MetricQuery("n", MetricStat("InvocationLatency", PERIOD, "SampleCount"))],
                               T0, T0 + 3_600_000)
    assert result.timestamps == sorted(samples)
    assert result.values == [float(len(samples[t])) for t in sorted(samples)]
