"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[T.pool_key].fetchval("SELECT 1")
    except Exception:
        return web.json_response({"status": "unavailable", "database": "down"}, status=503)
    return web.json_response({"status": "ready"})


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
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
