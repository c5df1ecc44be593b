"""``GET /api/csrf``: the token JSON clients send back as ``X-CSRF-Token``."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T


async def csrf_token(request: web.Request) -> web.Response:
    return web.json_response({"csrf_token": request[T.CSRF_TOKEN]},
                             headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/csrf", csrf_token, name="api_csrf")
