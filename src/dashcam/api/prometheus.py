"""``GET /metrics``: the Prometheus exposition of the stored invocations and of this server.

The store's families come from :mod:`dashcam.metrics.prometheus` (computed at scrape time, cached
a few seconds); this process adds its own: prometheus_client's process, platform and GC
collectors, the write gate's backpressure counters, and what data protection masked and dropped
since the server started (``dashcam_protection_*``). The text format is negotiated from
``Accept`` (Prometheus text 0.0.4 by default, OpenMetrics when asked for).

A scraper needs the ``read`` role once keys exist (Prometheus sends one with
``authorization: {credentials: dk_...}``); a key limited to some log groups sees only theirs.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from dashcam.api.auth import current_principal
from dashcam.api.native import readable_groups
from dashcam.keys import Principal
from dashcam.metrics.prometheus import ScrapeCache, StoreCollector, protection_families

router = APIRouter(tags=["metrics"])


class _ServerCollector(Collector):
    """This server's own state: write requests in flight and refused (see :mod:`dashcam.api.limits`)."""

    def __init__(self, request: Request) -> None:
        self.gate = request.app.state.write_gate

    def collect(self) -> Iterator[Metric]:
        """The write gate's figures as they are now."""
        yield GaugeMetricFamily("dashcam_write_requests_in_flight", "Write requests being committed now.",
                                value=self.gate.in_flight)
        yield CounterMetricFamily("dashcam_write_requests_refused", "Write requests refused with 503 "
                                  "because too many were waiting.", value=self.gate.refused)


class _ProtectionCollector(Collector):
    """Data protection's counts since the server started, for the log groups the scraper may read."""

    def __init__(self, request: Request, log_groups: list[str] | None) -> None:
        self.protection = request.app.state.dashcam.protection
        self.log_groups = log_groups

    def collect(self) -> Iterator[Metric]:
        """Findings masked, body data dropped and events changed, as counted now."""
        if self.protection is None:  # a store opened without protection has nothing to count
            return
        stats = self.protection.stats
        yield from protection_families(stats.masked_counts(), stats.dropped_counts(), stats.changed_events(),
                                       self.log_groups)


class _Exposition(Collector):
    """Several collectors as one, for prometheus_client's encoders."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        """Every family of every collector, in order."""
        for collector in self.collectors:
            yield from collector.collect()


def _scrape_cache(request: Request) -> ScrapeCache:
    """The app's one cache of store metrics, made on first use."""
    state = request.app.state
    cache = getattr(state, "prometheus_cache", None)
    if cache is None:
        cache = state.prometheus_cache = ScrapeCache(state.dashcam.store)
    return cache


@router.get("/metrics", summary="Prometheus metrics: invocations, throttles, errors, tokens, cost, latency")
def metrics(request: Request, principal: Principal = Depends(current_principal)) -> Response:
    """Counters and histograms by model in the Prometheus text format (OpenMetrics on request)."""
    groups = readable_groups(request.app.state.dashcam, principal, None)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    exposition = _Exposition(StoreCollector(_scrape_cache(request), groups), _ServerCollector(request),
                             _ProtectionCollector(request, groups),
                             PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR)
    return Response(content=encoder(exposition), media_type=content_type)
