"""Pinned requests on the web: the admin's pin/unpin forms and overview, members' JSON list.
The pinned block above the feed is rendered by the home page (node.requests.handlers)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import AppError, bad_request
from node.pins import service as S

FLASH = {"pinned": "The request is pinned.", "unpinned": "The request is no longer pinned."}


def _limit(request: web.Request) -> int:
    return request.app[T.config_key].get_int("WB_PINNED_REQUESTS_LIMIT")


async def _input(request: web.Request) -> dict[str, Any]:
    data = await W.read_json_object(request)
    if data is not None:
        return data
    return dict(await W.read_form(request))


async def _page(request: web.Request, *, status: int = 200, error: AppError | None = None,
                values: dict[str, Any] | None = None) -> web.StreamResponse:
    actor = W.actor(request)
    rows = await S.overview(request.app[T.pool_key], actor)
    ctx = {"pins": rows, "limit": _limit(request), "note_max": S.NOTE_MAX,
           "flash": FLASH.get(request.query.get("done", ""), ""), "error": error,
           "values": values or {}}
    return await W.respond(request, "node/pins/admin.html", ctx, status=status,
                           json_body={"limit": ctx["limit"],
                                      "pins": [S.pin_json(r) for r in rows]})


async def admin_pins(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    return await _page(request)


async def pin(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    return await _pin(request, request.match_info["id"], await _input(request))


async def _pin(request: web.Request, request_id: str,
               data: dict[str, Any]) -> web.StreamResponse:
    try:
        row = await S.pin(request.app[T.pool_key], W.actor(request), request_id,
                          limit=_limit(request), position=data.get("position"),
                          note=data.get("note"), ends_at=data.get("ends_at"))
    except AppError as exc:
        if W.wants_json(request) or exc.status not in (400, 409):
            raise
        return await _page(request, status=exc.status, error=exc,
                           values={**data, "request_id": request_id})
    if W.wants_json(request):
        return web.json_response({"pin": S.pin_json(row)}, dumps=W.json_dumps)
    raise W.redirect("/admin/pins?done=pinned")


async def pin_by_id(request: web.Request) -> web.StreamResponse:
    """The admin page's "pin a request" form names the request in a field."""
    W.require_admin(request)
    data = await _input(request)
    request_id = str(data.get("request_id", "")).strip().rsplit("/", 1)[-1]
    if not request_id:
        raise bad_request("invalid_request_id", "Name the request to pin.",
                          request_id="Paste the request's id or link.")
    return await _pin(request, request_id, data)


async def unpin(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    await S.unpin(request.app[T.pool_key], W.actor(request), request.match_info["id"])
    if W.wants_json(request):
        return web.json_response({"unpinned": request.match_info["id"]})
    raise W.redirect("/admin/pins?done=unpinned")


async def api_pins(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    rows = await S.active(request.app[T.pool_key], W.actor(request))
    return web.json_response({"pins": [S.pin_json(r) for r in rows]}, dumps=W.json_dumps)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/pins", admin_pins, name="admin_pins")
    r.add_post("/admin/pins", pin_by_id, name="admin_pin_add")
    r.add_post("/requests/{id}/pin", pin, name="request_pin")
    r.add_post("/requests/{id}/unpin", unpin, name="request_unpin")
    r.add_get("/api/pins", api_pins, name="api_pins")
