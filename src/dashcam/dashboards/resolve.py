"""One dashboard widget turned into data any renderer can draw.

:func:`resolve_widget` takes a parsed :class:`~dashcam.dashboards.body.Widget`, a time range and
a :class:`WidgetData` (callables the service layer injects, so nothing here imports the store or
the service) and returns plain JSON-ready data:

- **metric** widgets: the ``metrics`` rows become :class:`~dashcam.metrics.engine.MetricQuery`
  objects (``"."`` shorthand already expanded; ``stat`` and ``period`` from the row, else the
  widget, else ``Average`` and 300 s; dimensions as given, e.g. ``ModelId``; rows with
  ``"visible": false`` feed expressions but are not returned; ``SEARCH(...)`` expanded by
  :mod:`~dashcam.dashboards.search`), answered by one ``get_metric_data`` call. Each series has
  its timestamps and values, its latest datapoint, the metric or expression it came from, its
  axis and colour. Views other than ``timeSeries`` (``singleValue``, ``gauge``, ``bar``,
  ``pie``, ``table``) also get ``values``: the latest datapoint of each series; with
  ``setPeriodToTimeRange``, the statistic over the whole time range (exactly for ``Sum``,
  ``SampleCount``, ``Minimum``, ``Maximum`` and ``Average``, from buckets that tile the range;
  for other statistics, the value of one bucket as long as the range; for expressions, their
  latest datapoint).
- **log** widgets: the ``SOURCE '<group>' | ...`` prefix gives the log groups, the rest runs as
  a Logs Insights query: ``columns`` and ``rows``; for ``timeSeries`` views also ``series``
  (one per numeric column, and per value of any other ``by`` column, over the ``bin()`` column),
  for ``bar`` and ``pie`` views ``series`` of categories and values.
- **text** widgets: the markdown; **alarm** widgets: the alarms' states.
- anything else: ``status: "unsupported"``, with its properties as given.

Every result has ``status`` (``ok``, ``error`` with ``messages``, or ``unsupported``), the
widget's place and its properties as given (axes, annotations, legend ... for the renderer). A
widget that cannot be answered reports an error; it never fails the dashboard.

Periods: with the dashboard's ``periodOverride`` ``auto`` (the default) a period grows to the
next of :data:`AUTO_PERIODS` while the time range would give more than :data:`MAX_POINTS`
datapoints per series; ``inherit`` keeps each widget's period. dashcam's metrics have one-minute
resolution, so shorter periods are drawn as 60 seconds.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dashcam.dashboards.body import (
    DEFAULT_PERIOD,
    DEFAULT_START,
    DEFAULT_STAT,
    DashboardBody,
    MetricRow,
    Widget,
    parse_time_point,
    split_sources,
)
from dashcam.dashboards.search import MAX_RESULTS, default_label, find_searches
from dashcam.errors import DashcamError, InputError
from dashcam.metrics.definitions import METRICS, NAMESPACE
from dashcam.metrics.engine import MetricQuery, MetricSeries, MetricStat

MAX_POINTS = 1_440
MAX_WHOLE_RANGE_BUCKETS = 20_160  # two weeks of minutes
# Statistics whose value over a range follows from its buckets' values (Average: from Sum and SampleCount).
_COMBINE: dict[str, Callable[[list[float]], float]] = {"Sum": sum, "SampleCount": sum, "Minimum": min,
                                                       "Maximum": max}
AUTO_PERIODS = (60, 300, 900, 3_600, 10_800, 21_600, 86_400, 604_800)
ALARM_STATE_ORDER = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}

MetricFetcher = Callable[[Sequence[MetricQuery], int, int], Sequence[MetricSeries]]
# (query text, log groups or None for all, start ms, end ms inclusive) -> (columns, rows)
QueryRunner = Callable[[str, Sequence[str] | None, int, int], tuple[list[str], list[dict[str, Any]]]]
# (dimension filters as (name, None), since ms) -> [(metric name, ((dimension, value), ...)), ...]
# (dimension filters, since ms, metric name or None for all) -> (metric, dimensions) with data
MetricLister = Callable[[Sequence[tuple[str, str | None]], int, str | None],
                        Sequence[tuple[str, tuple[tuple[str, str], ...]]]]
# alarm names -> [{"name", "state", "reason", "updatedMs", ...}] of those that exist
AlarmStates = Callable[[Sequence[str]], Sequence[Mapping[str, Any]]]


@dataclass
class WidgetData:
    """Where a widget's data comes from: callables bound to a store (and a caller's rights)."""

    fetch_metrics: MetricFetcher
    run_query: QueryRunner | None = None
    list_metrics: MetricLister | None = None
    alarm_states: AlarmStates | None = None


@dataclass(frozen=True)
class TimeRange:
    """A time range in epoch ms, ``end_ms`` exclusive."""

    start_ms: int
    end_ms: int


def time_range(start: str | None = None, end: str | None = None, *, now_ms: int | None = None,
               default_start: str = DEFAULT_START) -> TimeRange:
    """The range ``start``/``end`` name, as CloudWatch writes them (``-PT3H``, ISO-8601 times) or
    as dashcam does (``3h``, epoch); no start means ``default_start``, no end means now."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    start_ms = parse_time_point(start or default_start, now_ms=now)
    end_ms = parse_time_point(end, now_ms=now) if end else now
    if start_ms >= end_ms:
        raise InputError(f"the start ({start or default_start}) must be before the end ({end or 'now'})")
    return TimeRange(start_ms, end_ms)


def dashboard_time_range(body: DashboardBody, start: str | None = None, end: str | None = None, *,
                         now_ms: int | None = None) -> TimeRange:
    """The range to draw a dashboard over: the one asked for, else the dashboard's own, else 3 hours."""
    if start is None and end is None:
        start, end = body.start, body.end
    return time_range(start, end, now_ms=now_ms)


def resolve_dashboard(body: DashboardBody, data: WidgetData, when: TimeRange) -> list[dict[str, Any]]:
    """Every widget of a dashboard, resolved (see :func:`resolve_widget`)."""
    return [resolve_widget(widget, data, when, period_override=body.period_override) for widget in body.widgets]


def resolve_widget(widget: Widget, data: WidgetData, when: TimeRange, *,
                   period_override: str = "auto") -> dict[str, Any]:
    """The data of one widget over ``when`` (see the module docstring for the shape)."""
    result: dict[str, Any] = {
        "index": widget.index, "type": widget.type, "view": widget.view, "title": widget.title,
        "x": widget.x, "y": widget.y, "width": widget.width, "height": widget.height,
        "properties": widget.properties, "status": "ok", "messages": [],
    }
    try:
        when = _own_range(widget, when)
        result.update(start=when.start_ms, end=when.end_ms)
        if widget.type == "metric":
            result.update(_metric_widget(widget, data, when, period_override))
        elif widget.type == "log":
            result.update(_log_widget(widget, data, when))
        elif widget.type == "text":
            result.update(markdown=widget.properties.get("markdown", ""),
                          background=widget.properties.get("background", "solid"))
        elif widget.type == "alarm":
            result.update(_alarm_widget(widget, data))
        else:
            result.update(status="unsupported", messages=[f"dashcam does not draw {widget.type!r} widgets"])
    except DashcamError as exc:
        result.update(status="error", messages=[*result["messages"], str(exc)])
    return result


def _own_range(widget: Widget, when: TimeRange) -> TimeRange:
    """A metric widget may set its own ``start``/``end``."""
    start, end = widget.properties.get("start"), widget.properties.get("end")
    if widget.type != "metric" or not (start or end):
        return when
    return time_range(start, end, now_ms=when.end_ms if end is None else None)


# ---------------------------------------------------------------------- metric widgets


def effective_period(period: int, when: TimeRange, *, period_override: str = "auto",
                     whole_range: bool = False, stat: str | None = None) -> int:
    """The period a widget is drawn with (see the module docstring).

    For a whole-range value of a statistic that follows from its buckets (Sum, SampleCount,
    Minimum, Maximum, Average) it is the longest period whose epoch-aligned buckets start at the
    range's start and end at its end (both taken in whole minutes), so the buckets add up to
    exactly the range; for other statistics, or when that would take more than
    :data:`MAX_WHOLE_RANGE_BUCKETS` buckets, the range's length in whole minutes.
    """
    span_s = max((when.end_ms - when.start_ms) / 1000, 1)
    if whole_range:
        first, last = when.start_ms // 60_000, -(-when.end_ms // 60_000)
        step = math.gcd(first, last)
        if (stat in _COMBINE or stat == "Average") and step and (last - first) / step <= MAX_WHOLE_RANGE_BUCKETS:
            return step * 60
        return max(60, math.ceil(span_s / 60) * 60)
    period = max(60, period if period % 60 == 0 else 60)
    if period_override == "auto":
        for candidate in AUTO_PERIODS:
            if span_s / period <= MAX_POINTS:
                break
            period = max(period, candidate)
    return period


@dataclass
class _Planned:
    """A query of the widget and what the renderer should know of it."""

    query: MetricQuery
    row: MetricRow
    metric: dict[str, Any] | None


def _metric_widget(widget: Widget, data: WidgetData, when: TimeRange, period_override: str) -> dict[str, Any]:
    props = widget.properties
    whole_range = bool(props.get("setPeriodToTimeRange")) and widget.view != "timeSeries"
    base_stat = props.get("stat", DEFAULT_STAT)
    base_period = props.get("period", DEFAULT_PERIOD)
    messages: list[str] = []
    taken = {row.id for row in widget.metrics if row.id}
    planned: list[_Planned] = []
    names = [row.metric_name for row in widget.metrics if row.metric_name]
    for row in widget.metrics:
        query_id = row.id or _auto_id(row.position, taken)
        stat = row.options.get("stat", base_stat)
        period = row.options.get("period", base_period)
        label = row.options.get("label")
        if row.expression is not None:
            planned.extend(_expression(row, query_id, label, stat, period, data, when, messages, period_override,
                                       whole_range))
            continue
        if row.namespace != NAMESPACE:
            messages.append(f"metrics row {row.position}: dashcam serves {NAMESPACE} only; "
                            f"{row.namespace}/{row.metric_name} is not drawn")
            continue
        period = effective_period(period, when, period_override=period_override, whole_range=whole_range, stat=stat)
        metric = {"namespace": row.namespace, "metricName": row.metric_name, "dimensions": dict(row.dimensions),
                  "stat": stat, "period": period}
        if label is None:
            label = (f"{row.metric_name} {' '.join(v for _, v in row.dimensions)}"
                     if row.dimensions and names.count(row.metric_name) > 1 else row.metric_name)
        planned.append(_Planned(MetricQuery(query_id, MetricStat(row.metric_name, period, stat, row.dimensions),
                                            label=_static_label(label, metric), return_data=row.visible),
                                row, metric))
    if not any(p.query.return_data for p in planned):
        return {"series": [], "values": [], "messages": messages or ["the widget has no metric to draw"]}
    helpers = _average_helpers(planned) if whole_range else {}
    queries = [p.query for p in planned] + [q for pair in helpers.values() for q in pair]
    results = data.fetch_metrics(queries, when.start_ms, when.end_ms)
    helper_ids = {q.id for pair in helpers.values() for q in pair}
    by_id = {p.query.id: p for p in planned}
    helper_values = {r.id: r.values for r in results if r.id in helper_ids}
    shown = [r for r in results if r.id not in helper_ids]
    series = [_series(result, by_id.get(result.id)) for result in shown]
    out: dict[str, Any] = {"series": series, "messages": messages}
    if widget.view != "timeSeries":
        out["values"] = [_value(s, by_id.get(s["id"]), when, whole_range, helpers, helper_values) for s in series]
    return out


def _average_helpers(planned: list[_Planned]) -> dict[str, tuple[MetricQuery, MetricQuery]]:
    """Sum and SampleCount queries for each Average metric, whose whole-range value they give."""
    helpers = {}
    for p in planned:
        stat = p.query.metric_stat
        if stat is not None and p.query.return_data and stat.stat == "Average":
            helpers[p.query.id] = tuple(  # type: ignore[assignment]
                MetricQuery(f"{p.query.id}_{kind.lower()}_total", MetricStat(stat.metric_name, stat.period, kind,
                                                                           stat.dimensions, stat.namespace))
                for kind in ("Sum", "SampleCount"))
    return helpers


def _value(series: dict[str, Any], planned: _Planned | None, when: TimeRange, whole_range: bool,
           helpers: dict[str, tuple[MetricQuery, MetricQuery]],
           helper_values: dict[str, list[float]]) -> dict[str, Any]:
    """The one number a single-value, gauge, bar, pie or table view shows for a series: its latest
    datapoint; with ``setPeriodToTimeRange`` the statistic over the whole range when it follows
    from the buckets (Sum, SampleCount, Minimum, Maximum, Average), else the latest bucket's."""
    latest = series["latest"] or {"timestamp": None, "value": None}
    value: dict[str, Any] = {"id": series["id"], "label": series["label"], **latest}
    stat = planned.query.metric_stat if planned else None
    if not whole_range or stat is None:
        return value
    values = series["values"]
    if stat.stat in _COMBINE:
        return {**value, "timestamp": when.start_ms, "value": _COMBINE[stat.stat](values) if values else None}
    if stat.stat == "Average" and series["id"] in helpers:
        total, count = (sum(helper_values.get(q.id, [])) for q in helpers[series["id"]])
        return {**value, "timestamp": when.start_ms, "value": total / count if count else None}
    return value


def _auto_id(position: int, taken: set[str]) -> str:
    """``m<n>`` by the row's place, as the CloudWatch console numbers rows without ids."""
    n = position + 1
    while f"m{n}" in taken:
        n += 1
    taken.add(f"m{n}")
    return f"m{n}"


def _expression(row: MetricRow, query_id: str, label: str | None, stat: str, period: int, data: WidgetData,
                when: TimeRange, messages: list[str], period_override: str, whole_range: bool) -> list[_Planned]:
    expression = row.expression or ""
    searches = find_searches(expression)
    if not searches:
        return [_Planned(MetricQuery(query_id, expression=expression, label=label, return_data=row.visible),
                         row, None)]
    if data.list_metrics is None:
        raise InputError("SEARCH expressions need the list of metrics, which is not available here")
    planned: list[_Planned] = []
    replaced, last = [], 0
    start, stop = searches[0].span
    whole = len(searches) == 1 and not expression[:start].strip() and not expression[stop:].strip()
    for n, search in enumerate(searches):
        wanted = [(name, None) for name in search.dimension_names or ()]
        names = search.metric_names()
        if names is None:
            listed = list(data.list_metrics(wanted, when.start_ms, None))
        else:  # one metric listed is ~100x cheaper than all of them
            listed = [found for name in dict.fromkeys(names) if name in METRICS
                      for found in data.list_metrics(wanted, when.start_ms, name)]
        found = [(name, dims) for name, dims in listed if search.matches(name, dims)]
        if len(found) > MAX_RESULTS:
            messages.append(f"metrics row {row.position}: the search found {len(found)} metrics; "
                            f"the first {MAX_RESULTS} are drawn")
            found = found[:MAX_RESULTS]
        if not found:
            messages.append(f"metrics row {row.position}: the search {expression[search.span[0]:search.span[1]]} "
                            "found no metric with data")
        several = len({name for name, _ in found}) > 1
        search_stat = search.stat or stat
        search_period = effective_period(search.period or period, when, period_override=period_override,
                                         whole_range=whole_range, stat=search_stat)
        ids = []
        for k, (name, dims) in enumerate(found):
            sub_id = f"{query_id}_s{n}_{k}" if not whole else f"{query_id}_{k}"
            ids.append(sub_id)
            metric = {"namespace": NAMESPACE, "metricName": name, "dimensions": dict(dims),
                      "stat": search_stat, "period": search_period}
            template = label or default_label(name, dims, several)
            planned.append(_Planned(
                MetricQuery(sub_id, MetricStat(name, search_period, search_stat, dims),
                            label=_static_label(template, metric), return_data=whole and row.visible),
                row, metric))
        replaced.append(expression[last:search.span[0]] + f"[{', '.join(ids)}]")
        last = search.span[1]
    if whole:
        return planned
    if any(part.endswith("[]") for part in replaced):
        return planned  # a search found nothing: the expression over it has nothing to compute
    rewritten = "".join(replaced) + expression[last:]
    planned.append(_Planned(MetricQuery(query_id, expression=rewritten, label=label, return_data=row.visible),
                            row, None))
    return planned


_DYNAMIC = re.compile(r"\$\{(?:PROP\('(?P<prop>[^']+)'\)|(?P<summary>[A-Z_]+))\}")


def _static_label(template: str, metric: dict[str, Any] | None) -> str:
    """A label with ``${PROP('...')}`` filled in (``MetricName``, ``Namespace``, ``Stat``,
    ``Period``, ``Dim.<name>``); summary labels (``${LAST}``, ...) wait for the data."""
    def fill(match: re.Match) -> str:
        prop = match["prop"]
        if prop is None or metric is None:
            return match.group(0)
        if prop.startswith("Dim."):
            return str(metric["dimensions"].get(prop[4:], ""))
        value = {"MetricName": metric["metricName"], "Namespace": metric["namespace"], "Stat": metric["stat"],
                 "Period": metric["period"]}.get(prop)
        return match.group(0) if value is None else str(value)

    return _DYNAMIC.sub(fill, template)


def _summary_label(label: str, values: list[float]) -> str:
    """``${LAST}``, ``${FIRST}``, ``${MIN}``, ``${MAX}``, ``${AVG}``, ``${SUM}``, ``${DATAPOINT_COUNT}``."""
    def fill(match: re.Match) -> str:
        name = match["summary"]
        if name is None:
            return match.group(0)
        if name == "DATAPOINT_COUNT":
            return str(len(values))
        if not values:
            return ""
        figures = {"LAST": values[-1], "FIRST": values[0], "MIN": min(values), "MAX": max(values),
                   "AVG": sum(values) / len(values), "SUM": sum(values)}
        return f"{figures[name]:.6g}" if name in figures else match.group(0)

    return _DYNAMIC.sub(fill, label)


def _series(result: MetricSeries, planned: _Planned | None) -> dict[str, Any]:
    options = planned.row.options if planned else {}
    latest = ({"timestamp": result.timestamps[-1], "value": result.values[-1]} if result.timestamps else None)
    return {
        "id": result.id,
        "label": _summary_label(result.label, result.values),
        "timestamps": result.timestamps,
        "values": result.values,
        "latest": latest,
        "statusCode": result.status_code,
        "messages": result.messages,
        "metric": planned.metric if planned else None,
        "expression": planned.query.expression if planned else None,
        "yAxis": options.get("yAxis", "left"),
        "color": options.get("color"),
    }


# ---------------------------------------------------------------------- log widgets


def _log_widget(widget: Widget, data: WidgetData, when: TimeRange) -> dict[str, Any]:
    if data.run_query is None:
        raise InputError("Logs Insights queries are not available here")
    groups, text = split_sources(widget.properties["query"])
    # Logs Insights ranges are inclusive; the widget's range is [start, end).
    columns, rows = data.run_query(text, list(groups) or None, when.start_ms, when.end_ms - 1)
    out: dict[str, Any] = {"query": text, "logGroups": list(groups), "columns": columns, "rows": rows}
    if widget.view == "timeSeries":
        out["series"] = query_time_series(columns, rows)
    elif widget.view in ("bar", "pie"):
        out["series"] = query_categories(columns, rows)
    return out


_RESULT_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$")


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str) or not _RESULT_TIME.match(value):
        return None
    return int(datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp() * 1000)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _column_kinds(columns: list[str], rows: list[dict[str, Any]]) -> tuple[str | None, list[str], list[str]]:
    """(the time column, the numeric columns, the other columns) of a result."""
    time_column = next((c for c in columns if c.startswith("bin(") or c == "@timestamp"), None)
    if time_column is None:
        time_column = next((c for c in columns if rows and all(_epoch_ms(r.get(c)) is not None for r in rows
                                                                  if r.get(c) is not None)
                            and any(r.get(c) is not None for r in rows)), None)
    numeric = [c for c in columns if c != time_column and any(_is_number(r.get(c)) for r in rows)
               and all(r.get(c) is None or _is_number(r.get(c)) for r in rows)]
    other = [c for c in columns if c != time_column and c not in numeric]
    return time_column, numeric, other


def query_time_series(columns: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines from a ``stats ... by bin(...)`` result: one per numeric column and per value of the
    other ``by`` columns, timestamps ascending (empty when the result has no time column)."""
    time_column, numeric, other = _column_kinds(columns, rows)
    if time_column is None:
        return []
    lines: dict[tuple, dict[int, float]] = {}
    for row in rows:
        at = _epoch_ms(row.get(time_column))
        if at is None:
            continue
        group = tuple(row.get(c) for c in other)
        for column in numeric:
            if _is_number(row.get(column)):
                lines.setdefault((column, group), {})[at] = row[column]
    out = []
    for (column, group), points in lines.items():
        label = column if not other else f"{column} {' '.join('null' if v is None else str(v) for v in group)}"
        ordered = sorted(points.items())
        out.append({"label": label, "column": column, "group": dict(zip(other, group)),
                    "timestamps": [t for t, _ in ordered], "values": [v for _, v in ordered]})
    return out


def query_categories(columns: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bars or pie slices from a result: one series per numeric column, a category per row
    (named by the row's other columns)."""
    _, numeric, other = _column_kinds(columns, rows)
    categories = [" / ".join("null" if row.get(c) is None else str(row.get(c)) for c in other) or str(i + 1)
                  for i, row in enumerate(rows)]
    return [{"label": column, "column": column, "categories": categories,
             "values": [row.get(column) if _is_number(row.get(column)) else None for row in rows]}
            for column in numeric]


# ---------------------------------------------------------------------- alarm widgets


def _alarm_widget(widget: Widget, data: WidgetData) -> dict[str, Any]:
    if data.alarm_states is None:
        raise InputError("alarm states are not available here")
    names = [arn.split(":alarm:", 1)[1] if ":alarm:" in arn else arn for arn in widget.properties["alarms"]]
    found = {a["name"]: dict(a) for a in data.alarm_states(names)}
    wanted_states = widget.properties.get("states")
    alarms = [found[name] for name in names if name in found
              and (not wanted_states or found[name].get("state") in wanted_states)]
    sort_by = widget.properties.get("sortBy", "default")
    if sort_by in ("stateUpdatedTimestamp", "timestamp"):
        alarms.sort(key=lambda a: -(a.get("updatedMs") or 0))
    else:
        alarms.sort(key=lambda a: ALARM_STATE_ORDER.get(a.get("state"), 3))
    missing = [name for name in names if name not in found]
    return {"alarms": alarms, "messages": [f"no alarm named {name!r}" for name in missing]}
