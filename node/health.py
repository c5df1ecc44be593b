"""Liveness, readiness (service.health) and metrics endpoints."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from service.health import add_health_routes


async def metrics(request: web.Request) -> web.Response:
    m = request.app[T.metrics_key]
    pool = request.app[T.pool_key]
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM sessions WHERE revoked_at IS NULL "
        "AND expires_at > now() GROUP BY status")
    counts = {r["status"]: r["n"] for r in rows}
    for status in ("pending", "active"):
        m.sessions.labels(status).set(counts.get(status, 0))
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM requests WHERE origin IS NULL AND deleted_at IS NULL "
        "GROUP BY status")
    counts = {r["status"]: r["n"] for r in rows}
    for status in ("pending", "open", "completed"):
        m.requests_by_status.labels(status).set(counts.get(status, 0))
    return web.Response(body=m.render(), content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    add_health_routes(app, T.pool_key)
    app.router.add_get("/metrics", metrics, name="metrics")
