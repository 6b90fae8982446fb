"""The datapoints an alarm judges, read through callables the service layer injects.

:class:`AlarmData` is the scheduler's data port. It is given two callables, so nothing here
imports the store or the service:

- ``fetch_metrics(queries, start_ms, end_ms)``: :func:`dashcam.metrics.engine.get_metric_data`
  bound to a store; ``end_ms`` exclusive.
- ``run_query(text, start_ms, end_ms)``: a Logs Insights query's rows over ``[start_ms, end_ms)``.

What it does per kind:

- **static**: one GetMetricData request for the evaluation range (plus a ``SampleCount`` series
  when ``EvaluateLowSampleCountPercentile`` is ``ignore``).
- **anomaly**: the same for the watched series; the band comes from
  :class:`dashcam.metrics.anomaly.SeasonalModel`, learned from the :data:`BAND_HISTORY_MS`
  before the evaluation range and re-learned every :data:`BAND_REFRESH_MS` (learning reads two
  weeks of data; the band changes slowly, and the model never learns from the range it judges).
- **query**: the query runs once per period of the range and must yield one number (one row
  with one numeric column; no row, or a null, is a missing datapoint). A period's number is
  kept once the period ended :data:`SETTLE_MS` ago, so each minute re-runs only the newest
  periods, where late records may still arrive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dashcam.alarms.evaluate import Datapoint, evaluation_range, watched_metric
from dashcam.alarms.model import ANOMALY, QUERY, AlarmDefinition, MetricSpec, QuerySpec
from dashcam.errors import InputError
from dashcam.metrics.anomaly import SeasonalModel
from dashcam.metrics.engine import MetricQuery, MetricSeries, MetricStat

MetricFetcher = Callable[[Sequence[MetricQuery], int, int], Sequence[MetricSeries]]
QueryRunner = Callable[[str, int, int], Sequence[Mapping[str, Any]]]

BAND_HISTORY_MS = 14 * 86_400_000
BAND_REFRESH_MS = 3_600_000
SETTLE_MS = 120_000
SINGLE_ID = "alarm"
SAMPLES_ID = "dashcam_samples"


def _metric_stat(spec: MetricSpec, stat: str | None = None) -> MetricStat:
    return MetricStat(spec.metric_name, spec.period, stat or spec.stat, spec.dimensions, spec.namespace)


def metric_queries(definition: AlarmDefinition, *, samples: bool = False) -> tuple[list[MetricQuery], str]:
    """The GetMetricData queries for an alarm (without its band) and the id of the judged series."""
    if definition.metric is not None:
        queries = [MetricQuery(SINGLE_ID, _metric_stat(definition.metric))]
        watched = SINGLE_ID
    else:
        queries = [_query(q, definition) for q in definition.metrics if q.id != definition.threshold_metric_id]
        assert definition.watched_id is not None
        watched = definition.watched_id
    metric = watched_metric(definition)
    if samples and metric is not None:
        queries.append(MetricQuery(SAMPLES_ID, _metric_stat(metric, "SampleCount")))
    return queries, watched


def _query(query: QuerySpec, definition: AlarmDefinition) -> MetricQuery:
    # Only the judged series is returned: the others are inputs to it.
    return_data = query.id == definition.watched_id
    if query.metric is not None:
        return MetricQuery(query.id, _metric_stat(query.metric), label=query.label, return_data=return_data)
    return MetricQuery(query.id, expression=query.expression, label=query.label, return_data=return_data)


def query_value(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """The one number a query alarm's query yields for a period (None: no datapoint)."""
    if not rows:
        return None
    if len(rows) > 1:
        raise InputError(f"the query gave {len(rows)} rows for one period; a query alarm needs one number per "
                         "period (end it with a stats command without 'by')")
    numbers = {k: v for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    nulls = [k for k, v in rows[0].items() if v is None]
    if len(numbers) + len(nulls) != 1:
        raise InputError(f"the query gave the columns {', '.join(rows[0]) or '(none)'}; a query alarm needs "
                         "exactly one, holding a number")
    value = next(iter(numbers.values()), None)
    return float(value) if value is not None and math.isfinite(value) else None


class AlarmData:
    """Reads each alarm's datapoints; keeps what is worth keeping between rounds (bands, periods)."""

    def __init__(self, fetch_metrics: MetricFetcher | None = None, run_query: QueryRunner | None = None) -> None:
        self.fetch_metrics = fetch_metrics
        self.run_query = run_query
        self._models: dict[AlarmDefinition, tuple[int, SeasonalModel]] = {}
        self._periods: dict[AlarmDefinition, dict[int, float | None]] = {}

    def datapoints(self, definition: AlarmDefinition, now_ms: int) -> list[Datapoint]:
        """The alarm's datapoints in its evaluation range at ``now_ms`` (raises DashcamError)."""
        start, end = evaluation_range(definition, now_ms)
        if definition.kind == QUERY:
            return self._query_datapoints(definition, start, end, now_ms)
        samples = definition.evaluate_low_sample_count_percentile == "ignore" and _percentile(definition)
        points = self._metric_datapoints(definition, start, end, samples=samples)
        if definition.kind != ANOMALY:
            return points
        model = self._model(definition, start, now_ms)
        width = definition.band_width
        assert width is not None
        bands = model.band([p.timestamp_ms for p in points], width)
        return [Datapoint(p.timestamp_ms, p.value, *(None if math.isnan(x) else x for x in band),
                          sample_count=p.sample_count) for p, band in zip(points, bands)]

    def forget_others(self, definitions: Iterable[AlarmDefinition]) -> None:
        """Drop what is kept for alarms no longer defined (or defined differently now)."""
        keep = set(definitions)
        for cache in (self._models, self._periods):
            for stale in [d for d in cache if d not in keep]:
                del cache[stale]

    # ------------------------------------------------------------------ metrics

    def _series(self, definition: AlarmDefinition, start: int, end: int, *,
                samples: bool = False) -> tuple[MetricSeries, MetricSeries | None]:
        if self.fetch_metrics is None:
            raise InputError("metric alarms cannot be evaluated here: no metrics engine was given")
        queries, watched = metric_queries(definition, samples=samples)
        results = {s.id: s for s in self.fetch_metrics(queries, start, end)}
        if watched not in results:
            raise InputError(f"the metrics engine returned no series {watched!r}")
        return results[watched], results.get(SAMPLES_ID)

    def _metric_datapoints(self, definition: AlarmDefinition, start: int, end: int, *,
                           samples: bool) -> list[Datapoint]:
        series, counts = self._series(definition, start, end, samples=samples)
        count_at = dict(zip(counts.timestamps, counts.values)) if counts is not None else {}
        return [Datapoint(t, float(v), sample_count=count_at.get(t))
                for t, v in zip(series.timestamps, series.values) if v is not None]

    def _model(self, definition: AlarmDefinition, start: int, now_ms: int) -> SeasonalModel:
        cached = self._models.get(definition)
        if cached is not None and now_ms - cached[0] < BAND_REFRESH_MS:
            return cached[1]
        series, _ = self._series(definition, start - BAND_HISTORY_MS, start)
        history = [(t, v) for t, v in zip(series.timestamps, series.values) if v is not None]
        model = SeasonalModel(history, period_s=definition.period)
        self._models[definition] = (now_ms, model)
        return model

    # ------------------------------------------------------------------ queries

    def _query_datapoints(self, definition: AlarmDefinition, start: int, end: int, now_ms: int) -> list[Datapoint]:
        if self.run_query is None:
            raise InputError("query alarms cannot be evaluated here: no query runner was given")
        text = definition.query_text
        assert text is not None
        period_ms = definition.period * 1000
        known = self._periods.setdefault(definition, {})
        for old in [t for t in known if t < start]:
            del known[old]
        points = []
        for slot in range(start, end, period_ms):
            settled = slot + period_ms <= now_ms - SETTLE_MS
            if settled and slot in known:
                value = known[slot]
            else:
                value = query_value(self.run_query(text, slot, slot + period_ms))
                if settled:
                    known[slot] = value
            if value is not None:
                points.append(Datapoint(slot, value))
        return points


def _percentile(definition: AlarmDefinition) -> bool:
    metric = watched_metric(definition)
    return metric is not None and metric.percentile is not None
