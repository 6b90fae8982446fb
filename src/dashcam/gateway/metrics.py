"""The gateway's own Prometheus metrics (``GET /metrics`` on the gateway's port).

Counters are bumped on the hot path (a dict lookup and an add each); the shaper's and the
recorder's state is read at scrape time by a collector, so waiting requests and queued records
cost nothing until someone looks. Each gateway has its own registry, so several can run in one
process (tests, benchmarks).

=============================================== =====================================================
family                                          meaning
=============================================== =====================================================
dashcam_gateway_requests_total                  calls answered, by api, operation, model, status code
dashcam_gateway_shaping_queued_total            calls that waited for their model's limits
dashcam_gateway_shaping_wait_seconds_total      seconds they waited, in total
dashcam_gateway_shaping_waiting                 calls waiting now
dashcam_gateway_shaping_in_flight               calls holding a permit now
dashcam_gateway_shaped_throttles_total          calls the gateway answered 429 itself, by reason
dashcam_gateway_upstream_throttles_total        429/503 answers from the upstream
dashcam_gateway_upstream_retries_total          attempts the gateway retried after them
dashcam_gateway_upstream_failures_total         upstream unreachable, silent or malformed, by kind
dashcam_gateway_records_total                   records by outcome: captured, sent, dropped, pending
=============================================== =====================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashcam.capture.shipper import CaptureStats
from dashcam.gateway.shaping import Shaper


class _StateCollector(Collector):
    """The shaper's and recorder's figures as they are at scrape time."""

    def __init__(self, shaper: Shaper, record_stats: Callable[[], CaptureStats] | None) -> None:
        self.shaper = shaper
        self.record_stats = record_stats

    def collect(self) -> Iterator[Metric]:
        """Waiting and in-flight calls and wait totals per limited model; record delivery counts."""
        queued = CounterMetricFamily("dashcam_gateway_shaping_queued", "Calls that waited for their model's "
                                     "limits.", labels=["model"])
        waited = CounterMetricFamily("dashcam_gateway_shaping_wait_seconds", "Seconds calls waited for their "
                                     "model's limits, in total.", labels=["model"])
        waiting = GaugeMetricFamily("dashcam_gateway_shaping_waiting", "Calls waiting for their model's limits "
                                    "now.", labels=["model"])
        in_flight = GaugeMetricFamily("dashcam_gateway_shaping_in_flight", "Calls to a limited model in flight "
                                      "now.", labels=["model"])
        for model, shaper in sorted(self.shaper.models.items()):
            queued.add_metric([model], shaper.queued)
            waited.add_metric([model], shaper.waited_s)
            waiting.add_metric([model], shaper.waiting)
            in_flight.add_metric([model], shaper.in_flight)
        yield from (queued, waited, waiting, in_flight)
        if self.record_stats is not None:
            stats = self.record_stats()
            records = CounterMetricFamily("dashcam_gateway_records", "Invocation records by outcome: captured, "
                                          "sent (stored), dropped (queue full or undeliverable).",
                                          labels=["outcome"])
            for outcome in ("captured", "sent", "dropped"):
                records.add_metric([outcome], getattr(stats, outcome))
            yield records
            yield GaugeMetricFamily("dashcam_gateway_records_pending", "Records waiting for delivery.",
                                    value=stats.pending)


class GatewayMetrics:
    """Counters the request path bumps, and the registry ``/metrics`` exposes."""

    def __init__(self, shaper: Shaper, record_stats: Callable[[], CaptureStats] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("dashcam_gateway_requests", "Calls answered, by API, operation, model and HTTP "
                                "status.", ["api", "operation", "model", "status"], registry=self.registry)
        self.shaped = Counter("dashcam_gateway_shaped_throttles", "Calls the gateway answered with a throttle "
                              "itself (its wait would have been too long, or too many were waiting).",
                              ["model", "reason"], registry=self.registry)
        self.upstream_throttles = Counter("dashcam_gateway_upstream_throttles", "Throttles (429/503) the "
                                          "upstream answered.", ["model"], registry=self.registry)
        self.retries = Counter("dashcam_gateway_upstream_retries", "Attempts the gateway retried after an "
                               "upstream throttle.", ["model"], registry=self.registry)
        self.failures = Counter("dashcam_gateway_upstream_failures", "Upstream failures: unreachable, timeout, "
                                "malformed answer.", ["api", "kind"], registry=self.registry)
        self.registry.register(_StateCollector(shaper, record_stats))

    def count(self, api: str, operation: str | None, model: str | None, status: int) -> None:
        """Count one answered call."""
        self.requests.labels(api, operation or "other", model or "", str(status)).inc()


def exposition(metrics: GatewayMetrics, accept: str) -> tuple[bytes, str]:
    """The registry in the format ``accept`` asks for (Prometheus text by default)."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept)
    return encoder(metrics.registry), content_type
