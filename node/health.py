"""Liveness, readiness (service.health) and metrics endpoints."""

from __future__ import annotations

from aiohttp import web

from node import queries_ops as QO
from node import typedefs as T
from service.health import add_health_routes


async def metrics(request: web.Request) -> web.Response:
    m = request.app[T.metrics_key]
    pool = request.app[T.pool_key]
    rows = await QO.count_sessions_by_revoked_at(pool)
    counts = {r["status"]: r["n"] for r in rows}
    for status in ("pending", "active"):
        m.sessions.labels(status).set(counts.get(status, 0))
    rows = await QO.count_requests_by_origin(pool)
    counts = {r["status"]: r["n"] for r in rows}
    for status in ("pending", "open", "completed"):
        m.requests_by_status.labels(status).set(counts.get(status, 0))
    return web.Response(body=m.render(), content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    add_health_routes(app, T.pool_key)
    app.router.add_get("/metrics", metrics, name="metrics")
