"""Prometheus metrics of one hub process, in a registry of its own (no globals).

Under ``wb hub serve --workers N`` (``service.workers``) the supervisor gives the workers
a directory in ``PROMETHEUS_MULTIPROC_DIR``: each worker's counters, histograms and
stream gauge live in files there (prometheus_client's multiprocess mode), and whichever
worker answers a scrape reports the sum over all of them. The values read from the
database at scrape time (log head, pending bundles, subscription lag) are not per
process: they are computed by the answering worker and reported once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.workers import MULTIPROC_ENV


class _DatabaseValues(Collector):
    """The gauges the scrape reads from the database, as of the last ``set``."""

    def __init__(self) -> None:
        self.head = 0
        self.pending = 0
        self.lags: list[tuple[str, str, int]] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("wb_hub_log_head", "Newest hub sequence", value=self.head)
        lag = GaugeMetricFamily("wb_hub_subscription_lag",
                                "Log entries a push subscription is behind",
                                labels=["subscription", "peer"])
        for subscription, peer, value in self.lags:
            lag.add_metric([subscription, peer], value)
        yield lag
        yield GaugeMetricFamily("wb_hub_pending_bundles", "Bundles parked for key approval",
                                value=self.pending)


class HubMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.ingest_bundles = Counter("wb_hub_ingest_bundles_total",
                                      "Pushed bundles by result", ["result"], registry=r)
        self.ingest_records = Counter("wb_hub_ingest_records_total",
                                      "Public records stored by ingest", registry=r)
        self.rejections = Counter("wb_hub_ingest_rejections_total",
                                  "Rejected pushes by stable error code", ["code"], registry=r)
        self.ingest_seconds = Histogram("wb_hub_ingest_seconds", "Time to verify and commit",
                                        buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5),
                                        registry=r)
        self.stream_subscribers = Gauge("wb_hub_stream_subscribers",
                                        "Open WebSocket streams in this process", registry=r,
                                        multiprocess_mode="livesum")
        self.deliveries = Counter("wb_hub_deliveries_total", "Push deliveries by result",
                                  ["result"], registry=r)
        self.database = _DatabaseValues()
        r.register(self.database)

    def set_database_values(self, head: int, pending: int,
                            lags: Iterable[tuple[str, str, int]]) -> None:
        self.database.head, self.database.pending = head, pending
        self.database.lags = list(lags)

    def render(self) -> bytes:
        shared = os.environ.get(MULTIPROC_ENV)
        if not shared:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, shared)  # every worker's files, this one's too
        registry.register(self.database)
        return generate_latest(registry)
