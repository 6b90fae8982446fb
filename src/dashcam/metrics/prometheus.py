"""Prometheus metrics computed from the stored invocation records when Prometheus scrapes.

There is no second pipeline: every scrape runs two aggregations over the store's typed columns
(built with sqlglot, so the same tree runs on DuckDB and ClickHouse) and turns their rows into
metric families. Counters therefore count what the store holds: importing old logs raises them
at once, and a retention cut or a deleted log group lowers them, which Prometheus reads as a
counter reset. Results are kept for a few seconds (:class:`ScrapeCache`) so that many scrapers,
or a scraper and a dashboard, do not each scan the store.

Families, over invocation records (those that name a model; label ``model`` is the ``modelId``):

* ``dashcam_invocations_total{model,operation,outcome}``: every recorded invocation, ``outcome``
  one of ``success``, ``throttled``, ``client_error``, ``server_error`` (see :func:`outcome_of`: the
  classes of :mod:`dashcam.metrics.definitions`).
* ``dashcam_invocation_throttles_total{model}``: throttled invocations (``InvocationThrottles``).
* ``dashcam_invocation_errors_total{model,error_code,type}``: failed invocations by error code,
  ``type`` one of ``throttle``, ``client``, ``server``.
* ``dashcam_tokens_total{model,type}``: ``input``, ``output``, ``cache_read``, ``cache_write`` tokens.
* ``dashcam_cost_usd_total{model}``: dollars, by the price catalog; calls of unpriced models are
  counted in ``dashcam_unpriced_invocations_total{model}`` instead of adding a silent $0.
* ``dashcam_invocation_latency_seconds{model}`` and ``dashcam_time_to_first_token_seconds{model}``:
  histograms over successful invocations (TTFT: streaming ones), with the buckets OpenTelemetry's GenAI conventions
  advise (``gen_ai.client.operation.duration`` and ``gen_ai.server.time_to_first_token``).
* ``dashcam_log_group_events{log_group}`` and
  ``dashcam_log_group_last_ingestion_timestamp_seconds{log_group}``: what each group holds.
* ``dashcam_metrics_query_seconds``: how long the last aggregation took.

Data protection's counts are not in the store: they are kept in memory by the process that masks
(:class:`dashcam.protect.masking.MaskStats`, passed in as plain dictionaries) and count since it
started, so a restart is a counter reset, which Prometheus handles (:func:`protection_families`):

* ``dashcam_protection_masked_findings_total{log_group,detector}``: findings replaced by the mask.
* ``dashcam_protection_dropped_body_items_total{log_group,modality}``: body data dropped by the
  body switches: whole bodies (``text``), image payloads (``image``), vectors (``embedding``).
* ``dashcam_protection_changed_events_total{log_group}``: events masked or with body data dropped.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlglot import exp

from dashcam.metrics.definitions import STREAMING_OPERATIONS, error_class
from dashcam.query.dialects import Dialect, and_, case, col, get_dialect, is_null, lit, not_null, or_
from dashcam.store.base import Store
from dashcam.store.schema import EVENTS_TABLE

# Bucket bounds in milliseconds (the store keeps ms; Prometheus wants seconds): OpenTelemetry's
# advised boundaries for GenAI operation duration and time to first token.
LATENCY_BUCKETS_MS: tuple[int, ...] = (10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960, 81920)
TTFT_BUCKETS_MS: tuple[int, ...] = (1, 5, 10, 20, 40, 60, 80, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)

DEFAULT_CACHE_SECONDS = 5.0

SUCCESS, THROTTLED, CLIENT_ERROR, SERVER_ERROR = "success", "throttled", "client_error", "server_error"
OUTCOMES = (SUCCESS, THROTTLED, CLIENT_ERROR, SERVER_ERROR)
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")


_OUTCOME_OF_CLASS = {None: SUCCESS, "throttle": THROTTLED, "client": CLIENT_ERROR, "server": SERVER_ERROR}


def outcome_of(error_code: str | None, throttled: int | None) -> str:
    """How an invocation ended: ``success``, ``throttled``, ``client_error`` or ``server_error``, by
    the same rules as the CloudWatch-style metrics (:func:`dashcam.metrics.definitions.error_class`)."""
    return _OUTCOME_OF_CLASS[error_class(error_code, is_throttled=bool(throttled))]


# The aggregation's columns after its four group keys, in order; histogram bucket columns follow.
_SUMS = ("calls", "input", "output", "cache_read", "cache_write", "cost", "unpriced",
         "latency_count", "latency_sum", "ttft_count", "ttft_sum")


def _count_if(condition: exp.Expression) -> exp.Expression:
    return exp.Sum(this=case((condition, lit(1)), default=lit(0)))


def invocations_sql(dialect: Dialect, log_groups: Sequence[str] | None = None) -> str:
    """One aggregation of every stored invocation by (model, operation, error code, throttled):
    the counts, token and cost sums, and cumulative latency/TTFT bucket counts behind the metrics."""
    latency, ttft = col("latency_ms"), col("ttft_ms")
    unpriced = and_(is_null(col("cost_usd")), or_(not_null(col("input_tokens")), not_null(col("output_tokens"))))
    columns: list[exp.Expression] = [
        col("model_id"), col("operation"), col("error_code"), col("throttled"),
        exp.Count(this=exp.Star()),
        exp.Sum(this=col("input_tokens")), exp.Sum(this=col("output_tokens")),
        exp.Sum(this=col("cache_read_tokens")), exp.Sum(this=col("cache_write_tokens")),
        exp.Sum(this=col("cost_usd")), _count_if(unpriced),
        exp.Count(this=latency), exp.Sum(this=latency), exp.Count(this=ttft), exp.Sum(this=ttft),
    ]
    columns += [_count_if(exp.LTE(this=latency, expression=lit(b))) for b in LATENCY_BUCKETS_MS]
    columns += [_count_if(exp.LTE(this=ttft, expression=lit(b))) for b in TTFT_BUCKETS_MS]
    # Only invocation records (they name a model), as in the CloudWatch-style metrics.
    query = exp.select(*columns).from_(EVENTS_TABLE).where(not_null(col("model_id"))).group_by(*columns[:4])
    if log_groups is not None:
        query = query.where(_in_groups(log_groups))
    return dialect.sql(query)


def log_groups_sql(dialect: Dialect, log_groups: Sequence[str] | None = None) -> str:
    """Events and the latest ingestion time (epoch ms) per log group."""
    query = exp.select(
        col("log_group"), exp.Count(this=exp.Star()), exp.Max(this=dialect.epoch_ms(col("ingestion_time")))
    ).from_(EVENTS_TABLE).group_by(col("log_group"))
    if log_groups is not None:
        query = query.where(_in_groups(log_groups))
    return dialect.sql(query)


def _in_groups(log_groups: Sequence[str]) -> exp.Expression:
    if not log_groups:
        return exp.false()
    return exp.In(this=col("log_group"), expressions=[lit(g) for g in log_groups])


@dataclass
class _Histogram:
    """Cumulative bucket counts (same order as the bounds), sum and count of one model."""

    buckets: list[int]
    total: float = 0.0
    count: int = 0

    def add(self, counts: Sequence[Any], total: Any, count: Any) -> None:
        for i, value in enumerate(counts):
            self.buckets[i] += int(value or 0)
        self.total += float(total or 0.0)
        self.count += int(count or 0)


def _histogram_family(name: str, documentation: str, bounds_ms: Sequence[int],
                      by_model: dict[str, _Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["model"], unit="seconds")
    for model in sorted(by_model):
        h = by_model[model]
        buckets = [(floatToGoString(b / 1000), float(n)) for b, n in zip(bounds_ms, h.buckets)]
        buckets.append(("+Inf", float(h.count)))
        family.add_metric([model], buckets, sum_value=h.total / 1000)
    return family


def invocation_families(rows: Iterable[Sequence[Any]]) -> list[Metric]:
    """Metric families from the rows of :func:`invocations_sql`."""
    invocations: dict[tuple[str, str, str], float] = defaultdict(float)
    errors: dict[tuple[str, str, str], float] = defaultdict(float)
    throttles: dict[str, float] = defaultdict(float)
    tokens: dict[tuple[str, str], float] = defaultdict(float)
    cost: dict[str, float] = defaultdict(float)
    unpriced: dict[str, float] = defaultdict(float)
    latency: dict[str, _Histogram] = {}
    ttft: dict[str, _Histogram] = {}
    models: set[str] = set()
    n_latency = len(LATENCY_BUCKETS_MS)
    for row in rows:
        model, operation, error_code, throttled = (row[0] or "", row[1] or "", row[2], row[3])
        sums = dict(zip(_SUMS, row[4:4 + len(_SUMS)]))
        bucket_counts = row[4 + len(_SUMS):]
        outcome = outcome_of(error_code, throttled)
        models.add(model)
        calls = float(sums["calls"] or 0)
        invocations[(model, operation, outcome)] += calls
        if outcome == THROTTLED:
            throttles[model] += calls
        if outcome != SUCCESS:
            kind = {THROTTLED: "throttle", CLIENT_ERROR: "client", SERVER_ERROR: "server"}[outcome]
            errors[(model, error_code or "", kind)] += calls
        for token_type in TOKEN_TYPES:
            tokens[(model, token_type)] += float(sums[token_type] or 0)
        cost[model] += float(sums["cost"] or 0.0)
        unpriced[model] += float(sums["unpriced"] or 0)
        if outcome == SUCCESS:
            # Latency of calls that failed says little about the model; CloudWatch counts successes too.
            latency.setdefault(model, _Histogram([0] * n_latency)).add(
                bucket_counts[:n_latency], sums["latency_sum"], sums["latency_count"])
            if operation in STREAMING_OPERATIONS:  # only streams have a first token apart from the last
                ttft.setdefault(model, _Histogram([0] * len(TTFT_BUCKETS_MS))).add(
                    bucket_counts[n_latency:], sums["ttft_sum"], sums["ttft_count"])

    def counter(name: str, documentation: str, labels: list[str], values: dict) -> CounterMetricFamily:
        family = CounterMetricFamily(name, documentation, labels=labels)
        for key in sorted(values):
            family.add_metric(list(key) if isinstance(key, tuple) else [key], values[key])
        return family

    return [
        counter("dashcam_invocations", "Recorded model invocations by how they ended.",
                ["model", "operation", "outcome"], invocations),
        counter("dashcam_invocation_throttles", "Invocations refused by throttling (HTTP 429).", ["model"],
                {m: throttles.get(m, 0.0) for m in models}),
        counter("dashcam_invocation_errors", "Failed invocations by error code; type is throttle, client or server.",
                ["model", "error_code", "type"], errors),
        counter("dashcam_tokens", "Tokens by type: input, output, cache_read, cache_write.", ["model", "type"], tokens),
        counter("dashcam_cost_usd", "Cost in US dollars by the price catalog (unpriced calls excluded).", ["model"],
                cost),
        counter("dashcam_unpriced_invocations", "Invocations with token counts whose model has no price.",
                ["model"], unpriced),
        _histogram_family("dashcam_invocation_latency_seconds", "Latency of successful invocations "
                          "(request to last byte).", LATENCY_BUCKETS_MS,
                          {m: h for m, h in latency.items() if h.count}),
        _histogram_family("dashcam_time_to_first_token_seconds", "Time to first token of successful "
                          "streaming invocations.", TTFT_BUCKETS_MS, {m: h for m, h in ttft.items() if h.count}),
    ]


def log_group_families(rows: Iterable[Sequence[Any]]) -> list[Metric]:
    """Metric families from the rows of :func:`log_groups_sql`."""
    events = GaugeMetricFamily("dashcam_log_group_events", "Events stored in each log group.", labels=["log_group"])
    ingested = GaugeMetricFamily("dashcam_log_group_last_ingestion_timestamp_seconds",
                                 "When each log group last received an event (Unix time).", labels=["log_group"])
    for group, count, last_ms in sorted(rows, key=lambda r: r[0]):
        events.add_metric([group], float(count))
        if last_ms is not None:
            ingested.add_metric([group], float(last_ms) / 1000)
    return [events, ingested]


def protection_families(masked: Mapping[tuple[str, str], int], dropped: Mapping[tuple[str, str], int],
                        changed: Mapping[str, int], log_groups: Sequence[str] | None = None) -> list[Metric]:
    """Counter families from data protection's counts since the process started: findings masked by
    (log group, detector), body data dropped by (log group, modality), events changed by log group
    (as :class:`dashcam.protect.masking.MaskStats` returns them). ``log_groups`` None means all."""
    allowed = None if log_groups is None else set(log_groups)

    def counter(name: str, documentation: str, labels: list[str], values: Mapping) -> CounterMetricFamily:
        family = CounterMetricFamily(name, documentation, labels=labels)
        for key in sorted(values):
            label_values = list(key) if isinstance(key, tuple) else [key]
            if allowed is None or label_values[0] in allowed:
                family.add_metric(label_values, float(values[key]))
        return family

    return [
        counter("dashcam_protection_masked_findings", "Findings replaced by the mask at ingest, by detector, "
                "since the server started.", ["log_group", "detector"], masked),
        counter("dashcam_protection_dropped_body_items", "Body data dropped at ingest by the body switches "
                "(text: whole bodies, image: image payloads, embedding: vectors), since the server started.",
                ["log_group", "modality"], dropped),
        counter("dashcam_protection_changed_events", "Events masked or with body data dropped at ingest, "
                "since the server started.", ["log_group"], changed),
    ]


def store_families(store: Store, log_groups: Sequence[str] | None = None) -> list[Metric]:
    """Every store-derived family, computed now (``log_groups`` None means all groups)."""
    dialect = get_dialect(store.dialect)
    started = time.perf_counter()
    families = invocation_families(store.execute(invocations_sql(dialect, log_groups)))
    families += log_group_families(store.execute(log_groups_sql(dialect, log_groups)))
    families.append(GaugeMetricFamily("dashcam_metrics_query_seconds",
                                      "Seconds the store took to compute these metrics.",
                                      value=time.perf_counter() - started))
    return families


class ScrapeCache:
    """Store families per log-group scope, recomputed at most every ``seconds``.

    One computation runs at a time: scrapers that arrive while it runs wait for it and share its
    result rather than scanning the store again.
    """

    def __init__(self, store: Store, *, seconds: float = DEFAULT_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.seconds = seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...] | None, tuple[float, list[Metric]]] = {}

    def families(self, log_groups: Sequence[str] | None = None) -> list[Metric]:
        """The families for ``log_groups`` (None: all), from the cache while fresh."""
        key = None if log_groups is None else tuple(sorted(set(log_groups)))
        with self._lock:
            entry = self._entries.get(key)
            now = self._clock()
            if entry is not None and now - entry[0] < self.seconds:
                return entry[1]
            families = store_families(self.store, key)
            # Scopes are few (one per distinct key pattern); drop stale ones so the dict cannot grow.
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] < self.seconds}
            self._entries[key] = (self._clock(), families)
            return families


class StoreCollector(Collector):
    """A prometheus_client collector yielding one scope's cached store families."""

    def __init__(self, cache: ScrapeCache, log_groups: Sequence[str] | None = None) -> None:
        self.cache = cache
        self.log_groups = log_groups

    def collect(self) -> Iterator[Metric]:
        """The families, as prometheus_client's encoders ask for them."""
        yield from self.cache.families(self.log_groups)
