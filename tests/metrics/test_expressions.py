"""Metric math: parsing with a whitelist, evaluation aligned by timestamp, and through the engine."""

from __future__ import annotations

import pytest

from dashcam.errors import InputError
from dashcam.metrics.engine import MetricQuery, MetricStat, get_metric_data
from dashcam.metrics.expressions import Context, Series, evaluate, evaluation_order, parse_expression

T0 = 1_772_442_000_000
M = 60_000


def series(*values: float | None, period: int = 60, label: str = "") -> Series:
    """A series with ``values`` at consecutive minutes from T0 (None: no datapoint)."""
    return Series({T0 + i * M: float(v) for i, v in enumerate(values) if v is not None}, period, label)


def run(text: str, end_minutes: int = 4, **scope: Series):
    ctx = Context(T0, T0 + end_minutes * M, metric_series=list(scope.values()), scope=dict(scope))
    return evaluate(parse_expression(text), ctx)


def values(result: Series) -> list[tuple[int, float]]:
    return [((t - T0) // M, v) for t, v in sorted(result.points.items())]


def test_arithmetic_meets_at_shared_timestamps():
    m1, m2 = series(10, 20, None, 40), series(1, 2, 3, None)
    assert values(run("m1 + m2", m1=m1, m2=m2)) == [(0, 11.0), (1, 22.0)]
    assert values(run("m2 / m1 * 100", m1=m1, m2=m2)) == [(0, 10.0), (1, 10.0)]
    assert values(run("-(m1 - 2 * m2)", m1=m1, m2=m2)) == [(0, -8.0), (1, -16.0)]
    assert values(run("m1 / 10 + 1", m1=m1)) == [(0, 2.0), (1, 3.0), (3, 5.0)]
    assert run("(1 + 2) * 4") == 12.0


def test_division_by_zero_gives_no_datapoint():
    assert values(run("m1 / m2", m1=series(1, 2, 3), m2=series(0, 4, 0))) == [(1, 0.5)]


def test_aggregates_across_series_and_over_one_series():
    m1, m2 = series(1, None, 5), series(3, 4, None)
    assert values(run("SUM([m1, m2])", m1=m1, m2=m2)) == [(0, 4.0), (1, 4.0), (2, 5.0)]
    assert values(run("MAX([m1, m2])", m1=m1, m2=m2)) == [(0, 3.0), (1, 4.0), (2, 5.0)]
    assert values(run("AVG(METRICS())", m1=m1, m2=m2)) == [(0, 2.0), (1, 4.0), (2, 5.0)]
    assert run("AVG(m1)", m1=m1) == 3.0  # one series: a single number, as in CloudWatch
    assert values(run("m1 - MIN(m1)", m1=m1)) == [(0, 0.0), (2, 4.0)]
    assert values(run("ABS(m1 - 4)", m1=m1)) == [(0, 3.0), (2, 1.0)]


def test_metrics_filters_by_label():
    lat, tok = series(1, label="InvocationLatency"), series(5, label="OutputTokenCount")
    assert values(run('SUM(METRICS("Token"))', m1=lat, m2=tok)) == [(0, 5.0)]


def test_fill_gives_every_period_of_the_range():
    m1 = series(None, 2, None, 6)
    assert values(run("FILL(m1, 0)", end_minutes=5, m1=m1)) == [(0, 0.0), (1, 2.0), (2, 0.0), (3, 6.0), (4, 0.0)]
    assert values(run("FILL(m1, REPEAT)", end_minutes=5, m1=m1)) == [(0, 2.0), (1, 2.0), (2, 2.0), (3, 6.0), (4, 6.0)]
    assert values(run("FILL(m1, LINEAR)", end_minutes=5, m1=m1)) == [(0, 2.0), (1, 2.0), (2, 4.0), (3, 6.0), (4, 6.0)]


@pytest.mark.parametrize("text, message", [
    ("m1 +", "does not parse"),
    ("m1 ** 2", r"\*\*"),
    ("m1 ^ 2", r"\^"),
    ("m1 > 2", "not allowed"),
    ("m1.real", "not allowed"),
    ("__import__('os')", "unknown function"),
    ("(lambda: 1)()", "unknown function"),
    ("m1[0]", "not allowed"),
    ("SQRT(m1)", "SQRT"),
    ("FILL(m1, zero)", "unknown id zero"),
    ("Foo + 1", "'Foo' is not a query id"),
    ("SELECT AVG(x) FROM y", "Metrics Insights"),
    ("", "non-empty"),
    ("-" * 3000 + "m1", "2048"),
    ("FILL(m1, x=1)", "positional"),
    ("True + m1", "not a number"),
])
def test_anything_outside_metric_math_is_refused(text, message):
    with pytest.raises(InputError, match=message):
        parse = parse_expression(text)
        run(text, m1=series(1)) if parse else None


def test_unknown_ids_and_cycles_are_refused():
    expressions = {"e1": parse_expression("m1 + e2"), "e2": parse_expression("e1 * 2")}
    with pytest.raises(InputError, match="cycle"):
        evaluation_order(expressions, ["m1"])
    with pytest.raises(InputError, match="unknown id m9"):
        evaluation_order({"e1": parse_expression("m9 / 2")}, ["m1"])
    assert evaluation_order({"b": parse_expression("a + 1"), "a": parse_expression("m1 * 2")}, ["m1"]) == ["a", "b"]


def test_expressions_through_the_engine_match_the_series_they_combine(store_of, invocation, write):
    store = store_of()
    records = []
    for minute, (ok, throttled) in enumerate([(8, 2), (5, 0), (0, 3), (6, 6)]):
        records += [invocation(T0 + minute * M + i) for i in range(ok)]
        records += [invocation(T0 + minute * M + 100 + i, error="ThrottlingException") for i in range(throttled)]
    write(store, records)
    results = get_metric_data(store, [
        MetricQuery("ok", MetricStat("Invocations", 60, "Sum"), return_data=False),
        MetricQuery("thr", MetricStat("InvocationThrottles", 60, "Sum")),
        MetricQuery("pct", expression="100 * thr / (ok + thr)", label="throttled %"),
        MetricQuery("filled", expression="FILL(ok, 0)"),
    ], T0, T0 + 4 * M)
    thr, pct, filled = results
    ok_points = dict(zip(filled.timestamps, filled.values))
    thr_points = dict(zip(thr.timestamps, thr.values))
    assert ok_points == {T0: 8.0, T0 + M: 5.0, T0 + 2 * M: 0.0, T0 + 3 * M: 6.0}  # minute 2 had no invocation
    expected = {t: 100 * thr_points[t] / (ok_points[t] + thr_points[t]) for t in thr_points if ok_points[t] > 0}
    assert dict(zip(pct.timestamps, pct.values)) == pytest.approx(expected)
    with pytest.raises(InputError, match="unknown id nope"):
        get_metric_data(store, [MetricQuery("e", expression="nope * 2")], T0, T0 + M)
