"""The metrics engine: CloudWatch ``GetMetricData`` over the stored invocation records.

The contract other parts of dashcam code against (alarms, Prometheus, the web UI) is
:class:`MetricStat`, :class:`MetricQuery`, :class:`MetricSeries` and :func:`get_metric_data`
(see ``metrics-interface.md``); :func:`get_metric_statistics` and :func:`list_metrics` serve the
older ``GetMetricStatistics`` and ``ListMetrics`` shapes.

How a request is answered:

1. Every query is checked (ids, metric names, periods, statistics, dimensions, expressions).
2. Metric queries that share a period and a set of dimension *names* are answered by ONE SQL
   scan: ``GROUP BY`` the period bucket and those dimensions, with one conditional aggregate
   per (metric, statistic) and the dimension values asked for in an ``IN`` list. Six metrics
   for eight models over a week at one minute is one scan, not 48.
3. Expressions are evaluated in dependency order over the series, aligned by timestamp.

Periods are whole multiples of 60 seconds. Buckets are aligned to the epoch and labelled by their
start; the start time is rounded down to a whole period (as CloudWatch rounds ``StartTime``), the
end time is exclusive. A period without samples has no datapoint.
"""

from __future__ import annotations

import bisect
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from dashcam.errors import InputError
from dashcam.metrics.definitions import (
    DIMENSION_COLUMNS,
    METRICS,
    NAMESPACE,
    Metric,
    check_dimension_name,
    dimension_expression,
    get_metric,
    invocation_record,
)
from dashcam.metrics.expressions import (
    QUERY_ID,
    Band,
    Context,
    Expression,
    Series,
    evaluate,
    evaluation_order,
    parse_expression,
)
from dashcam.metrics import quota
from dashcam.metrics.statistics import Statistic, parse_statistic, sample_count
from dashcam.query.dialects import Dialect, and_, cast, col, fn, get_dialect, lit, not_null
from dashcam.store.base import Store
from dashcam.store.schema import EVENTS_TABLE

# History an anomaly band learns from, before the requested start.
BAND_HISTORY_MS = 14 * 86_400_000
# Dimension sets ListMetrics reports besides any a filter names.
LISTED_DIMENSIONS: tuple[tuple[str, ...], ...] = ((), ("ModelId",), ("Operation",), ("Caller",), ("App",))
_MAX_DIMENSIONS = 30


@dataclass(frozen=True)
class MetricStat:
    """One metric aggregated per period: ``stat`` of ``metric_name`` where ``dimensions`` match."""

    metric_name: str
    period: int
    stat: str
    dimensions: tuple[tuple[str, str], ...] = ()
    namespace: str = NAMESPACE


@dataclass(frozen=True)
class MetricQuery:
    """One entry of a request: a metric (``metric_stat``) or metric math over other ids."""

    id: str
    metric_stat: MetricStat | None = None
    expression: str | None = None
    label: str | None = None
    return_data: bool = True


@dataclass
class MetricSeries:
    """One result: datapoints at period starts (epoch ms, ascending)."""

    id: str
    label: str
    timestamps: list[int]
    values: list[float]
    status_code: str = "Complete"
    messages: list[dict] = field(default_factory=list)


@dataclass
class StatisticsDatapoint:
    """One period of ``GetMetricStatistics``: each statistic asked for, by its text."""

    timestamp_ms: int
    statistics: dict[str, float]
    unit: str


@dataclass(frozen=True)
class _Wanted:
    """A checked metric query."""

    query: MetricQuery
    metric: Metric
    stat: Statistic
    period: int
    dimensions: tuple[tuple[str, str], ...]  # sorted by name


# ---------------------------------------------------------------------- checks


def check_period(period: object) -> int:
    """``period`` if it is a whole multiple of 60 seconds, else InputError naming it."""
    if isinstance(period, bool) or not isinstance(period, int) or period < 60 or period % 60:
        raise InputError(f"period {period!r} is not valid: use a whole multiple of 60 seconds (60, 300, 3600, ...)")
    return period


def check_dimensions(dimensions: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Dimensions as sorted (name, value) pairs; InputError for a bad name, value or repeat."""
    pairs = tuple(dimensions)
    if len(pairs) > _MAX_DIMENSIONS:
        raise InputError(f"at most {_MAX_DIMENSIONS} dimensions, got {len(pairs)}")
    seen: set[str] = set()
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise InputError(f"a dimension is a (name, value) pair, got {pair!r}")
        name, value = pair
        check_dimension_name(name)
        if not isinstance(value, str) or not 1 <= len(value) <= 1024:
            raise InputError(f"the value of dimension {name} must be text of 1 to 1024 characters, got {value!r}")
        if name in seen:
            raise InputError(f"dimension {name} is given twice")
        seen.add(name)
    return tuple(sorted((str(n), str(v)) for n, v in pairs))


def _check_query(query: MetricQuery) -> None:
    if not isinstance(query.id, str) or not QUERY_ID.fullmatch(query.id):
        raise InputError(f"query id {query.id!r} is not valid: 1 to 255 letters, digits and underscores, "
                         "starting with a lowercase letter")
    if (query.metric_stat is None) == (query.expression is None):
        raise InputError(f"query {query.id} needs exactly one of a metric (MetricStat) and an expression")


def _wanted(query: MetricQuery) -> _Wanted:
    stat = query.metric_stat
    assert stat is not None
    if stat.namespace != NAMESPACE:
        raise InputError(f"query {query.id}: namespace {stat.namespace!r} is not served here; dashcam's "
                         f"metrics are in {NAMESPACE}")
    metric = get_metric(stat.metric_name)
    return _Wanted(query, metric, parse_statistic(stat.stat), check_period(stat.period),
                   check_dimensions(stat.dimensions))


def _check_range(start_ms: int, end_ms: int) -> None:
    for name, value in (("start", start_ms), ("end", end_ms)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"the {name} time must be epoch milliseconds (an integer), got {value!r}")
    if start_ms >= end_ms:
        raise InputError("the start time must be before the end time")


# ---------------------------------------------------------------------- SQL


def _bucket(d: Dialect, period: int) -> exp.Expression:
    """The period a record falls in, as an integer: epoch microseconds // period."""
    return exp.IntDiv(this=d.epoch_us(col("ts")), expression=lit(period * 1_000_000))


def _scope(d: Dialect, start_ms: int | None, end_ms: int | None,
           log_groups: Sequence[str] | None) -> list[exp.Expression]:
    """Invocation records of the time range and log groups (None: all; [] matches nothing)."""
    conditions = [invocation_record(d)]
    if start_ms is not None:
        conditions.append(exp.GTE(this=col("ts"), expression=d.timestamp_literal(start_ms)))
    if end_ms is not None:
        conditions.append(exp.LT(this=col("ts"), expression=d.timestamp_literal(end_ms)))
    if log_groups is not None:
        conditions.append(exp.In(this=col("log_group"), expressions=[lit(g) for g in log_groups])
                          if log_groups else exp.false())
    return conditions


def _stat_key(stat: Statistic) -> tuple:
    return (stat.kind, stat.quantile, stat.lower, stat.upper)


# Statistics that are NULL over no samples on DuckDB, so need no separate sample count there
# (ClickHouse's -If aggregates give 0 or nan instead; there every metric gets its count).
_NULL_WHEN_EMPTY = frozenset({"Sum", "Average", "Minimum", "Maximum", "percentile", "SampleCount"})


@dataclass
class _Scan:
    """Metric queries answered by one SQL scan: same period, same dimension names."""

    period: int
    names: tuple[str, ...]
    wanted: list[_Wanted] = field(default_factory=list)

    def sql(self, d: Dialect, start_ms: int, end_ms: int,
            log_groups: Sequence[str] | None, *, hashed: bool = False) -> tuple[str, dict, list[str]]:
        """The scan's SQL, the column of each (metric, statistic) and each needed sample count,
        and the names of all its columns.

        With ``hashed`` (DuckDB only), rows are grouped by the 64-bit ``hash()`` of each dimension
        value rather than by the text, and the values are joined back onto the groups. The scan
        keeps only rows whose values are among those asked for, so the groups are the same
        whenever those values' hashes are distinct; the last column, ``_distinct``, says whether
        they are (when not, the caller runs the scan again unhashed). Grouping by an integer
        instead of the model id saves DuckDB about a tenth of a 6-metric, 6-model scan.
        """
        selects: list[exp.Expression] = [exp.alias_(_bucket(d, self.period), "_bucket", quoted=True)]
        dimension_values = [sorted({dict(w.dimensions)[n] for w in self.wanted}) for n in self.names]
        conditions = _scope(d, start_ms, end_ms, log_groups)
        for i, (name, values) in enumerate(zip(self.names, dimension_values)):
            value = dimension_expression(d, name)
            selects.append(exp.alias_(fn("hash", value) if hashed else value, f"_d{i}", quoted=True))
            conditions.append(exp.In(this=value, expressions=[lit(v) for v in values]))
        metrics = list({w.metric.name: w.metric for w in self.wanted}.values())
        parts = {m.name: (m.sample(d), m.where(d)) for m in metrics}
        layout: dict = {}
        for w in self.wanted:
            name = w.metric.name
            if (name, "count") not in layout and (d.name == "clickhouse" or w.stat.kind not in _NULL_WHEN_EMPTY):
                layout[(name, "count")] = f"_c{len(selects)}"
                selects.append(exp.alias_(sample_count(d, *parts[name]), layout[(name, "count")], quoted=True))
            key = (name, _stat_key(w.stat))
            if key not in layout:
                layout[key] = f"_s{len(selects)}"
                selects.append(exp.alias_(cast(w.stat.aggregate(d, *parts[name]), "DOUBLE"), layout[key], quoted=True))
        # No "any metric's filter" in WHERE: an OR of the filters costs DuckDB more than the
        # aggregates' own FILTER clauses save.
        group = [col("_bucket")] + [col(f"_d{i}") for i in range(len(self.names))]
        tree = (exp.select(*selects).from_(exp.Table(this=exp.to_identifier(EVENTS_TABLE)))
                .where(and_(*conditions)).group_by(*group))
        names = [select.alias for select in selects]
        if hashed and self.names:
            tree, names = _unhashed(tree, names, dimension_values)
        return d.sql(tree.order_by(col("_bucket"))), layout, names


def _unhashed(scan: exp.Select, names: list[str], dimension_values: list[list[str]]) -> tuple[exp.Select, list[str]]:
    """``scan`` (grouped by hashed dimension columns ``_d0``, ``_d1``, ...) with each hash
    replaced by its value, plus the ``_distinct`` column (see :meth:`_Scan.sql`)."""
    values_of = {f"_d{i}": exp.column("_value", table=f"_v{i}", quoted=True) for i in range(len(dimension_values))}
    outer = exp.select(*(values_of[n].as_(n, quoted=True) if n in values_of else col(n) for n in names)
                       ).from_(scan.subquery("_scan", copy=False))
    distinct = []
    for i, values in enumerate(dimension_values):
        listed = exp.values([(v,) for v in values], alias="_listed", columns=["_value"])
        hashes = exp.select(exp.alias_(fn("hash", cast(col("_value"), "VARCHAR")), "_hash", quoted=True),
                            col("_value")).from_(listed)
        outer = outer.with_(f"_v{i}", as_=hashes).join(
            exp.to_identifier(f"_v{i}", quoted=True),
            on=exp.EQ(this=exp.column(f"_d{i}", table="_scan", quoted=True),
                      expression=exp.column("_hash", table=f"_v{i}", quoted=True)))
        unique = exp.EQ(this=exp.Count(this=exp.Distinct(expressions=[col("_hash")])),
                        expression=exp.Count(this=exp.Star()))
        distinct.append(exp.select(unique).from_(exp.to_identifier(f"_v{i}", quoted=True)).subquery())
    return outer.select(exp.alias_(and_(*distinct), "_distinct", quoted=True)), names + ["_distinct"]


def _arrow(store: Store, sql: str, names: Sequence[str]) -> pa.Table:
    """The rows of ``sql`` (columns ``names``) as an Arrow table: both adapters answer in Arrow
    directly; a store that only has ``execute`` has its rows converted."""
    execute_arrow = getattr(store, "execute_arrow", None)
    if execute_arrow is not None:
        return execute_arrow(sql)
    rows = store.execute(sql)
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})


def _run_scan(store: Store, d: Dialect, scan: _Scan, start_ms: int, end_ms: int,
              log_groups: Sequence[str] | None) -> dict[str, dict[int, float]]:
    """Points (period start ms -> value) of every query in the scan, by query id.

    Rows come back as Arrow columns and are split per query with Arrow compute, so a week of
    one-minute datapoints for dozens of series costs milliseconds, not a Python loop per row.
    """
    step = scan.period * 1000
    start = start_ms // step * step
    sql, layout, names = scan.sql(d, start, end_ms, log_groups, hashed=d.name == "duckdb")
    table = _arrow(store, sql, names)
    if "_distinct" in names and table.num_rows and not pc.all(table.column("_distinct")).as_py():
        sql, layout, names = scan.sql(d, start, end_ms, log_groups)  # two values share a hash
        table = _arrow(store, sql, names)
    points: dict[str, dict[int, float]] = {}
    by_key: dict[tuple, list[_Wanted]] = {}
    for w in scan.wanted:
        by_key.setdefault(tuple(v for _, v in w.dimensions), []).append(w)
    for key, wanted in by_key.items():
        rows = table
        for i, value in enumerate(key):
            rows = rows.filter(pc.equal(rows.column(f"_d{i}"), value))
        times = pc.multiply(rows.column("_bucket").cast(pa.int64()), step)
        for w in wanted:
            values = rows.column(layout[(w.metric.name, _stat_key(w.stat))]).cast(pa.float64())
            keep = pc.and_(pc.is_valid(values), pc.is_finite(values))
            count = layout.get((w.metric.name, "count"))
            if count is not None:
                keep = pc.and_(keep, pc.greater(rows.column(count), 0))
            elif w.stat.kind == "SampleCount":
                keep = pc.and_(keep, pc.greater(values, 0))
            keep = pc.fill_null(keep, False)
            points[w.query.id] = dict(zip(times.filter(keep).to_pylist(), values.filter(keep).to_pylist()))
    return points


def _scans(wanted: Sequence[_Wanted]) -> list[_Scan]:
    """The queries grouped by (period, dimension names): one SQL scan each."""
    scans: dict[tuple, _Scan] = {}
    for w in wanted:
        names = tuple(n for n, _ in w.dimensions)
        scans.setdefault((w.period, names), _Scan(w.period, names)).wanted.append(w)
    return list(scans.values())


# ---------------------------------------------------------------------- GetMetricData


def band_available() -> bool:
    """Whether the anomaly model (``dashcam.metrics.anomaly``) is installed."""
    return importlib.util.find_spec("dashcam.metrics.anomaly") is not None


def _band(series: Series, width: float, start_ms: int) -> Band:
    from dashcam.metrics import anomaly  # written by the alarms work; optional until it lands

    history = [(t, v) for t, v in series.points.items() if t < start_ms]
    at = [t for t in series.points if t >= start_ms]
    bands = anomaly.seasonal_band(history, at, width=width, period_s=series.period)
    lower: dict[int, float] = {}
    upper: dict[int, float] = {}
    for t, (low, high) in zip(at, bands):
        if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
            lower[t], upper[t] = float(low), float(high)
    return Band(Series(lower, series.period), Series(upper, series.period))


def get_metric_data(store: Store, queries: Sequence[MetricQuery], start_ms: int, end_ms: int, *,
                    log_groups: Sequence[str] | None = None) -> list[MetricSeries]:
    """One series per query with return_data, covering periods in [start_ms, end_ms), buckets
    aligned to the epoch; a period with no samples has no datapoint (as in CloudWatch).

    An ``ANOMALY_DETECTION_BAND`` query gives two series with its id, the lower band first
    (label ``<label> (lower)``), then the upper (``<label> (upper)``). ``log_groups`` limits the
    records to those groups (None: all). Raises InputError for anything malformed.
    """
    _check_range(start_ms, end_ms)
    if not queries:
        raise InputError("a request needs at least one query")
    ids: set[str] = set()
    for query in queries:
        _check_query(query)
        if query.id in ids:
            raise InputError(f"query id {query.id} is used twice; ids must be unique in a request")
        ids.add(query.id)
    wanted = [_wanted(q) for q in queries if q.metric_stat is not None]
    parsed: dict[str, Expression] = {q.id: parse_expression(q.expression) for q in queries if q.expression is not None}
    order = evaluation_order(parsed, [w.query.id for w in wanted])
    if not any(q.return_data for q in queries):
        raise InputError("no query has ReturnData set: nothing would be returned")

    uses_band = any(p.uses_band for p in parsed.values())
    if uses_band and not band_available():
        raise InputError("ANOMALY_DETECTION_BAND is not available: dashcam.metrics.anomaly is not installed")
    fetch_start = start_ms - BAND_HISTORY_MS if uses_band else start_ms

    d = get_dialect(store.dialect)
    scope: dict[str, object] = {}
    for scan in _scans([w for w in wanted if w.metric.name not in quota.QUOTA_METRICS]):
        for query_id, points in _run_scan(store, d, scan, fetch_start, end_ms, log_groups).items():
            scope[query_id] = points
    scope.update(quota.quota_points(store, d, [w for w in wanted if w.metric.name in quota.QUOTA_METRICS],
                                    fetch_start, end_ms, log_groups))
    labels = {q.id: q.label or (q.metric_stat.metric_name if q.metric_stat else q.id) for q in queries}
    series_of = {w.query.id: Series(scope[w.query.id], w.period, labels[w.query.id]) for w in wanted}
    context = Context(start_ms, end_ms, metric_series=[series_of[w.query.id] for w in wanted],
                      band=lambda s, width: _band(s, width, _aligned(start_ms, s.period)),
                      scope=dict(series_of))
    for query_id in order:
        context.scope[query_id] = evaluate(parsed[query_id], context)

    results: list[MetricSeries] = []
    for query in queries:
        if not query.return_data:
            continue
        value = context.scope[query.id]
        if isinstance(value, Band):
            for part, series in (("lower", value.lower), ("upper", value.upper)):
                results.append(_result(query.id, f"{labels[query.id]} ({part})", series, start_ms, end_ms))
        else:
            results.append(_result(query.id, labels[query.id], _as_series(value, query, series_of), start_ms, end_ms))
    return results


def _aligned(start_ms: int, period: int) -> int:
    step = period * 1000
    return start_ms // step * step


def _as_series(value: object, query: MetricQuery, series_of: dict[str, Series]) -> Series:
    if isinstance(value, Series):
        return value
    if isinstance(value, list):
        raise InputError(f"expression of {query.id} gives a list of series; combine them, e.g. SUM(...)")
    # A single number is drawn as a line: one datapoint at each timestamp any metric query has.
    times = sorted({t for s in series_of.values() for t in s.points})
    period = min((s.period for s in series_of.values()), default=60)
    return Series({t: float(value) for t in times}, period)  # type: ignore[arg-type]


def _result(query_id: str, label: str, series: Series, start_ms: int, end_ms: int) -> MetricSeries:
    # Series come out of the scans and the expressions in time order; lists are cut by bisection
    # (a week at one minute is 10,080 datapoints per series).
    times, values = list(series.points), list(series.points.values())
    if times != sorted(times):
        pairs = sorted(series.points.items())
        times, values = [t for t, _ in pairs], [v for _, v in pairs]
    low, high = bisect.bisect_left(times, _aligned(start_ms, series.period)), bisect.bisect_left(times, end_ms)
    return MetricSeries(query_id, label, times[low:high], values[low:high])


# ---------------------------------------------------------------------- GetMetricStatistics


def get_metric_statistics(store: Store, metric_name: str, statistics: Sequence[str], start_ms: int, end_ms: int,
                          period: int, *, dimensions: Sequence[tuple[str, str]] = (), namespace: str = NAMESPACE,
                          log_groups: Sequence[str] | None = None) -> list[StatisticsDatapoint]:
    """``GetMetricStatistics``: every statistic asked for (basic and extended alike), per period,
    in one scan; datapoints ascending by time, a period without samples left out."""
    if not statistics:
        raise InputError("ask for at least one statistic")
    if len(set(statistics)) != len(statistics):
        raise InputError("a statistic is asked for twice")
    queries = [MetricQuery(f"s{i}", MetricStat(metric_name, period, stat, tuple(dimensions), namespace))
               for i, stat in enumerate(statistics)]
    results = get_metric_data(store, queries, start_ms, end_ms, log_groups=log_groups)
    unit = get_metric(metric_name).unit
    by_time: dict[int, dict[str, float]] = {}
    for stat, series in zip(statistics, results):
        for t, v in zip(series.timestamps, series.values):
            by_time.setdefault(t, {})[stat] = v
    return [StatisticsDatapoint(t, values, unit) for t, values in sorted(by_time.items())]


# ---------------------------------------------------------------------- ListMetrics


def list_metrics(store: Store, metric_name: str | None = None,
                 dimensions: Sequence[tuple[str, str | None]] = (), *, log_groups: Sequence[str] | None = None,
                 since_ms: int | None = None) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """The (metric, dimensions) combinations that have samples, sorted.

    Reported: every metric without dimensions, and by each of ``ModelId``, ``Operation``,
    ``Caller`` and ``App``. ``dimensions`` filters (name, value or None for any value): only
    combinations having all of them are returned, and a set of names the filter gives that is not
    among those (``UserId``, a requestMetadata key, or several names together) is added.
    ``since_ms`` keeps only recent samples (``RecentlyActive``). A metric is listed only under
    the dimension sets it accepts (:meth:`Metric.accepts`: quota metrics by ``ModelId`` or none),
    so every combination listed can be fetched.
    """
    metrics = [get_metric(metric_name)] if metric_name is not None else list(METRICS.values())
    wanted: list[tuple[str, str | None]] = []
    for pair in dimensions:
        name, value = pair
        check_dimension_name(name)
        if value is not None and not isinstance(value, str):
            raise InputError(f"the value of dimension filter {name} must be text")
        wanted.append((name, value))
    names = tuple(sorted({n for n, _ in wanted}))
    sets = [s for s in LISTED_DIMENSIONS if set(names) <= set(s)]
    if names and names not in sets:
        sets.append(names)
    d = get_dialect(store.dialect)
    found: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for dimension_set in sets:
        accepting = [m for m in metrics if m.accepts(dimension_set)]
        if accepting:
            found |= _present(store, d, accepting, dimension_set, wanted, log_groups, since_ms)
    return sorted(found)


def _present(store: Store, d: Dialect, metrics: list[Metric], names: tuple[str, ...],
             wanted: list[tuple[str, str | None]], log_groups: Sequence[str] | None,
             since_ms: int | None) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Which metrics have samples for each value combination of the dimensions ``names``."""
    conditions = _scope(d, since_ms, None, log_groups)
    values = [dimension_expression(d, n) for n in names]
    for name, value in zip(names, values):
        conditions.append(not_null(value))
        conditions += [exp.EQ(this=value, expression=lit(v)) for n, v in wanted if n == name and v is not None]
    selects = [exp.alias_(v, f"_d{i}", quoted=True) for i, v in enumerate(values)]
    selects += [exp.alias_(sample_count(d, m.sample(d), m.where(d)), f"_c{i}", quoted=True)
                for i, m in enumerate(metrics)]
    tree = exp.select(*selects).from_(exp.Table(this=exp.to_identifier(EVENTS_TABLE))).where(and_(*conditions))
    if names:
        tree = tree.group_by(*(col(f"_d{i}") for i in range(len(names))))
    found = set()
    for row in store.execute(d.sql(tree)):
        key = tuple(zip(names, (str(v) for v in row[:len(names)])))
        for metric, count in zip(metrics, row[len(names):]):
            if count:
                found.add((metric.name, key))
    return found


def data_range(store: Store, *, log_groups: Sequence[str] | None = None) -> tuple[int, int] | None:
    """The first and last invocation timestamps (epoch ms) in the store, or None when it has none."""
    d = get_dialect(store.dialect)
    tree = (exp.select(d.epoch_ms(exp.Min(this=col("ts"))), d.epoch_ms(exp.Max(this=col("ts"))))
            .from_(exp.Table(this=exp.to_identifier(EVENTS_TABLE))).where(and_(*_scope(d, None, None, log_groups))))
    first, last = store.execute(d.sql(tree))[0]
    return None if first is None else (int(first), int(last))


__all__ = ["BAND_HISTORY_MS", "DIMENSION_COLUMNS", "LISTED_DIMENSIONS", "MetricQuery", "MetricSeries", "MetricStat",
           "StatisticsDatapoint", "band_available", "check_dimensions", "check_period", "data_range", "get_metric_data",
           "get_metric_statistics", "list_metrics"]
