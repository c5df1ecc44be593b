"""Prometheus metrics of one hub process, in a registry of its own (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


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
        self.log_head = Gauge("wb_hub_log_head", "Newest hub sequence", registry=r)
        self.stream_subscribers = Gauge("wb_hub_stream_subscribers",
                                        "Open WebSocket streams in this process", registry=r)
        self.subscriber_lag = Gauge("wb_hub_subscription_lag",
                                    "Log entries a push subscription is behind",
                                    ["subscription", "peer"], registry=r)
        self.pending_bundles = Gauge("wb_hub_pending_bundles",
                                     "Bundles parked for key approval", registry=r)
        self.deliveries = Counter("wb_hub_deliveries_total", "Push deliveries by result",
                                  ["result"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
