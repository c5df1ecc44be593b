"""Prometheus metrics of one node app, in a registry of its own (no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions = Gauge("wb_sessions", "Live sessions by status", ["status"], registry=r)
        self.logins = Counter("wb_login_events_total", "Login events by outcome", ["outcome"],
                              registry=r)
        self.requests_by_status = Gauge("wb_requests", "Local help requests by status",
                                        ["status"], registry=r)
        self.comments_posted = Counter("wb_comments_posted_total", "Comments posted here",
                                       registry=r)
        self.completion_seconds = Histogram(
            "wb_request_completion_seconds", "Time from creation to completion",
            buckets=(3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400), registry=r)
        self.sync_jobs = Counter("wb_sync_jobs_total", "Sync jobs by kind and result",
                                 ["kind", "result"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
