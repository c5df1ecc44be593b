"""Liveness and readiness endpoints, the same for node and hub."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_health_routes(app: web.Application, pool_key: web.AppKey[Any]) -> None:
    """``/healthz`` (the process answers) and ``/readyz`` (its database answers too)."""

    async def readyz(request: web.Request) -> web.Response:
        try:
            await request.app[pool_key].fetchval("SELECT 1")
        except Exception:
            return web.json_response({"status": "unavailable", "database": "down"},
                                     status=503)
        return web.json_response({"status": "ready"})

    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
