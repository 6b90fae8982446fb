"""GetMetricData, GetMetricStatistics and ListMetrics over a store, on both engines."""

from __future__ import annotations

import pytest

from dashcam.errors import InputError
from dashcam.metrics.engine import (
    MetricQuery,
    MetricStat,
    get_metric_data,
    get_metric_statistics,
    list_metrics,
)

T0 = 1_772_442_000_000  # 2026-03-02T09:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE
GROUP = "/aws/bedrock/modelinvocations"
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/app-role/task-1"


def invocations(store, start=T0, end=T0 + HOUR, period=3600, stat="Sum", dimensions=(), metric="Invocations",
                **kwargs) -> dict[int, float]:
    [result] = get_metric_data(store, [MetricQuery("m", MetricStat(metric, period, stat, dimensions))], start, end,
                               **kwargs)
    return dict(zip(result.timestamps, result.values))


@pytest.fixture
def mixed(store_of, invocation, write):
    """A store with a known mix of models, operations, callers, apps, users and teams."""
    store = store_of()
    people = [
        # (model, operation, caller, metadata, how many)
        ("model-a", "Converse", ALICE, {"app": "support", "userId": "u1", "team": "care"}, 3),
        ("model-a", "ConverseStream", BOB, {"app": "support", "userId": "u2", "team": "care"}, 2),
        ("model-b", "Converse", ALICE, {"app": "indexer", "userId": "u1", "team": "data"}, 4),
        ("model-b", "InvokeModel", BOB, None, 5),
    ]
    records = []
    for model, operation, caller, metadata, count in people:
        records += [invocation(T0 + len(records) * 1000, model=model, operation=operation, caller=caller,
                               metadata=metadata, latency=10.0 * (i + 1)) for i in range(count)]
    write(store, records)
    return store


# ---------------------------------------------------------------------- dimensions


@pytest.mark.parametrize("dimensions, expected", [
    ((), 14),
    ((("ModelId", "model-a"),), 5),
    ((("ModelId", "model-b"),), 9),
    ((("Operation", "Converse"),), 7),
    ((("Caller", ALICE),), 7),
    ((("App", "support"),), 5),
    ((("UserId", "u1"),), 7),
    ((("team", "data"),), 4),  # a requestMetadata key
    ((("ModelId", "model-b"), ("Caller", ALICE)), 4),  # several dimensions: AND
    ((("ModelId", "model-a"), ("Operation", "InvokeModel")), None),
    ((("ModelId", "no-such-model"),), None),
])
def test_dimensions_select_records_and_combine_with_and(mixed, dimensions, expected):
    got = invocations(mixed, dimensions=dimensions)
    assert got == ({T0: float(expected)} if expected is not None else {})


def test_queries_of_one_period_and_dimension_names_share_one_scan(mixed):
    """Six metrics for three models is one SQL scan, not eighteen."""
    calls = []

    class Counting:
        dialect = mixed.dialect

        def execute_arrow(self, sql):
            calls.append(sql)
            return mixed.execute_arrow(sql)

    metrics = ("Invocations", "InvocationLatency", "InvocationThrottles", "InputTokenCount", "OutputTokenCount",
               "ErrorRate")
    queries = [MetricQuery(f"m{i}{j}", MetricStat(name, 60, "Average", (("ModelId", model),)))
               for i, name in enumerate(metrics) for j, model in enumerate(("model-a", "model-b", "model-c"))]
    results = get_metric_data(Counting(), queries, T0, T0 + HOUR)
    assert len(calls) == 1
    alone = get_metric_data(mixed, [MetricQuery("x", MetricStat("InvocationLatency", 60, "Average",
                                                                 (("ModelId", "model-b"),)))], T0, T0 + HOUR)
    assert results[4].values == alone[0].values  # InvocationLatency of model-b, answered within the shared scan
    # A different set of dimension names or another period is another scan.
    get_metric_data(Counting(), queries[:1] + [MetricQuery("o", MetricStat("Invocations", 60, "Sum",
                                                                            (("Operation", "Converse"),))),
                                               MetricQuery("p", MetricStat("Invocations", 120, "Sum"))],
                    T0, T0 + HOUR)
    assert len(calls) == 4


def test_a_store_that_only_returns_rows_gives_the_same_series(mixed):
    class RowsOnly:
        dialect = mixed.dialect

        def execute(self, sql):
            return mixed.execute(sql)

    queries = [MetricQuery("a", MetricStat("InvocationLatency", 60, "p50", (("ModelId", "model-b"),))),
               MetricQuery("b", MetricStat("Invocations", 60, "SampleCount")),
               MetricQuery("c", MetricStat("InvocationLatency", 60, "IQM"))]
    via_rows = get_metric_data(RowsOnly(), queries, T0, T0 + HOUR)
    assert via_rows == get_metric_data(mixed, queries, T0, T0 + HOUR)
    assert all(r.values for r in via_rows)


def test_a_hash_collision_between_dimension_values_falls_back_to_grouping_by_value(mixed, monkeypatch):
    # DuckDB groups by hash(value); were two asked-for values to share a hash, the scan says so
    # (its _distinct column) and runs again grouped by the values themselves.
    import pyarrow as pa

    from dashcam.metrics import engine

    queries = [MetricQuery(f"m{i}", MetricStat("Invocations", 60, "Sum", (("ModelId", model),)))
               for i, model in enumerate(("model-a", "model-b"))]
    honest = get_metric_data(mixed, queries, T0, T0 + HOUR)
    real_arrow, calls = engine._arrow, []

    def colliding(store, sql, names):
        table = real_arrow(store, sql, names)
        calls.append(names)
        if "_distinct" in names:  # pretend the two models' hashes collided
            table = table.set_column(names.index("_distinct"), "_distinct", pa.array([False] * table.num_rows))
        return table

    monkeypatch.setattr(engine, "_arrow", colliding)
    assert get_metric_data(mixed, queries, T0, T0 + HOUR) == honest
    if mixed.dialect == "duckdb":
        assert len(calls) == 2 and "_distinct" in calls[0] and "_distinct" not in calls[1]


def test_log_groups_limit_the_records(store_of, invocation, write):
    store = store_of()
    write(store, [invocation(T0)], group="/team/a")
    write(store, [invocation(T0 + 1), invocation(T0 + 2)], group="/team/b")
    assert invocations(store) == {T0: 3.0}
    assert invocations(store, log_groups=["/team/b"]) == {T0: 2.0}
    assert invocations(store, log_groups=[]) == {}


# ---------------------------------------------------------------------- periods and time range


def test_periods_are_aligned_to_the_epoch_and_the_end_is_exclusive(store_of, invocation, write):
    store = store_of()
    write(store, [invocation(T0 + 59_999), invocation(T0 + 60_000), invocation(T0 + 60_001),
                  invocation(T0 + 5 * MINUTE), invocation(T0 + 10 * MINUTE)])
    assert invocations(store, period=60) == {T0: 1.0, T0 + MINUTE: 2.0, T0 + 5 * MINUTE: 1.0, T0 + 10 * MINUTE: 1.0}
    # 7 minutes does not divide an hour: buckets still start at multiples of 420 s since the epoch.
    seven = invocations(store, period=420)
    assert all(t % 420_000 == 0 for t in seven) and sum(seven.values()) == 5
    # A start inside a period is rounded down to the period's start, as CloudWatch rounds StartTime.
    assert invocations(store, start=T0 + 30_000, end=T0 + 2 * MINUTE, period=60) == {T0: 1.0, T0 + MINUTE: 2.0}
    assert invocations(store, start=T0, end=T0 + 10 * MINUTE, period=300) == {T0: 3.0, T0 + 5 * MINUTE: 1.0}


@pytest.mark.parametrize("period", [0, 30, 61, 90, 59, -60, "60", True, 1.5])
def test_periods_that_are_not_whole_minutes_are_refused_by_value(mixed, period):
    with pytest.raises(InputError) as caught:
        invocations(mixed, period=period)
    assert f"period {period!r}" in str(caught.value)


@pytest.mark.parametrize("query, message", [
    (MetricQuery("M1", MetricStat("Invocations", 60, "Sum")), "'M1'"),
    (MetricQuery("1m", MetricStat("Invocations", 60, "Sum")), "'1m'"),
    (MetricQuery("m1"), "exactly one"),
    (MetricQuery("m1", MetricStat("Invocations", 60, "Sum"), expression="m1"), "exactly one"),
    (MetricQuery("m1", MetricStat("NoSuchMetric", 60, "Sum")), "NoSuchMetric"),
    (MetricQuery("m1", MetricStat("Invocations", 60, "Sum", namespace="AWS/EC2")), "AWS/EC2"),
    (MetricQuery("m1", MetricStat("Invocations", 60, "Median")), "Median"),
    (MetricQuery("m1", MetricStat("Invocations", 60, "Sum", (("bad;name", "x"),))), "bad;name"),
    (MetricQuery("m1", MetricStat("Invocations", 60, "Sum", (("ModelId", "a"), ("ModelId", "b")))), "twice"),
    (MetricQuery("m1", MetricStat("Invocations", 60, "Sum"), return_data=False), "ReturnData"),
])
def test_malformed_queries_are_input_errors_naming_the_problem(mixed, query, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        get_metric_data(mixed, [query], T0, T0 + HOUR)


def test_ids_are_unique_and_the_range_must_be_forward(mixed):
    query = MetricQuery("m1", MetricStat("Invocations", 60, "Sum"))
    with pytest.raises(InputError, match="twice"):
        get_metric_data(mixed, [query, query], T0, T0 + HOUR)
    with pytest.raises(InputError, match="before the end"):
        get_metric_data(mixed, [query], T0 + HOUR, T0)


def test_only_queries_with_return_data_are_returned_in_request_order(mixed):
    results = get_metric_data(mixed, [
        MetricQuery("b", MetricStat("Invocations", 3600, "Sum"), return_data=False),
        MetricQuery("a", expression="b * 2", label="twice"),
        MetricQuery("c", MetricStat("InvocationLatency", 3600, "Maximum"), label="slowest"),
    ], T0, T0 + HOUR)
    assert [(r.id, r.label) for r in results] == [("a", "twice"), ("c", "slowest")]
    assert results[0].values == [28.0] and results[1].values == [50.0]
    assert all(r.status_code == "Complete" for r in results)


# ---------------------------------------------------------------------- GetMetricStatistics and ListMetrics


def test_get_metric_statistics_gives_every_statistic_per_period(mixed):
    points = get_metric_statistics(mixed, "InvocationLatency", ["SampleCount", "Maximum", "p50"], T0, T0 + HOUR, 3600,
                                   dimensions=[("ModelId", "model-a")])
    latencies = [10.0, 20.0, 30.0, 10.0, 20.0]  # model-a's five calls
    assert len(points) == 1 and points[0].timestamp_ms == T0 and points[0].unit == "Milliseconds"
    assert points[0].statistics == {"SampleCount": 5.0, "Maximum": max(latencies), "p50": sorted(latencies)[2]}
    with pytest.raises(InputError, match="twice"):
        get_metric_statistics(mixed, "InvocationLatency", ["Sum", "Sum"], T0, T0 + HOUR, 3600)


def test_list_metrics_reports_combinations_that_have_samples(mixed):
    found = list_metrics(mixed)
    assert ("Invocations", ()) in found
    assert {d for m, d in found if m == "Invocations" and d and d[0][0] == "ModelId"} == {
        (("ModelId", "model-a"),), (("ModelId", "model-b"),)}
    assert (("Caller", BOB),) in {d for m, d in found if m == "InvocationLatency"}
    assert (("App", "indexer"),) in {d for m, d in found if m == "Invocations"}
    assert not any(m in ("InvocationThrottles", "OutputImageCount", "TimeToFirstToken") for m, _ in found)
    assert found == sorted(found)


def test_list_metrics_filters_by_metric_and_dimension(mixed):
    assert list_metrics(mixed, "Invocations", [("ModelId", "model-a")]) == [("Invocations", (("ModelId", "model-a"),))]
    teams = list_metrics(mixed, "Invocations", [("team", None)])
    assert teams == [("Invocations", (("team", "care"),)), ("Invocations", (("team", "data"),))]
    pairs = list_metrics(mixed, "Invocations", [("ModelId", "model-b"), ("Operation", None)])
    assert pairs == [("Invocations", (("ModelId", "model-b"), ("Operation", "Converse"))),
                     ("Invocations", (("ModelId", "model-b"), ("Operation", "InvokeModel")))]
    with pytest.raises(InputError):
        list_metrics(mixed, "NoSuchMetric")


# ---------------------------------------------------------------------- anomaly band


def test_anomaly_band_gives_a_lower_and_an_upper_series_learned_from_history(store_of, invocation, write):
    store = store_of()
    start = T0 + 14 * 24 * HOUR
    # Two weeks of history at 10, 11 or 12 calls an hour (by day), then three hours of 11.
    records = [invocation(start - h * HOUR + i * 1000) for h in range(1, 14 * 24) for i in range(10 + (h // 24) % 3)]
    records += [invocation(start + h * HOUR + i * 1000) for h in range(3) for i in range(11)]
    write(store, records)
    results = get_metric_data(store, [MetricQuery("m1", MetricStat("Invocations", 3600, "Sum")),
                                      MetricQuery("ad", expression="ANOMALY_DETECTION_BAND(m1, 2)", label="band")],
                              start, start + 3 * HOUR)
    [m1, lower, upper] = results
    assert (lower.id, lower.label, upper.id, upper.label) == ("ad", "band (lower)", "ad", "band (upper)")
    assert m1.timestamps == lower.timestamps == upper.timestamps == [start + h * HOUR for h in range(3)]
    assert all(lo < value < hi for lo, value, hi in zip(lower.values, m1.values, upper.values))
