"""Drafts on the web: the member's list, the edit page, save / publish / delete (plain forms,
JSON to ``Accept: application/json``), and ``/api/drafts``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.drafts import service as S
from node.errors import AppError
from node.requests import service as RS

FLASH = {"saved": "Draft saved. Only you can see it.", "deleted": "Draft deleted."}
LIMITS = {"title": RS.TITLE_MAX, "description": RS.DESCRIPTION_MAX}


async def drafts(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    rows = await S.mine(request.app[T.pool_key], W.actor(request))
    return await W.respond(request, "node/drafts/index.html",
                           {"drafts": rows, "flash": FLASH.get(request.query.get("done", ""),
                                                               ""), "limits": LIMITS,
                            "max_drafts": S.MAX_DRAFTS},
                           json_body={"drafts": [S.draft_json(r) for r in rows]})


async def _edit_page(request: web.Request, draft: Any, *, values: dict[str, Any] | None = None,
                     error: AppError | None = None, status: int = 200) -> web.StreamResponse:
    ctx = {"draft": draft, "values": values or (dict(draft) if draft else {}),
           "errors": error.fields if error else {}, "error": error, "limits": LIMITS,
           "flash": FLASH.get(request.query.get("done", ""), "")}
    return W.render(request, "node/drafts/edit.html", ctx, status=status)


async def create(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    data = await W.read_fields(request)
    try:
        row = await S.save(request.app[T.pool_key], W.actor(request), data)
    except AppError as exc:
        if W.wants_json(request) or exc.status not in (400, 409):
            raise
        return await _edit_page(request, None, values=data, error=exc, status=exc.status)
    if W.wants_json(request):
        return web.json_response({"draft": S.draft_json(row)}, status=201, dumps=W.json_dumps)
    raise W.redirect(f"/drafts/{row['id']}?done=saved")


async def detail(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    row = await S.get(request.app[T.pool_key], W.actor(request), request.match_info["id"])
    if W.wants_json(request):
        return web.json_response({"draft": S.draft_json(row)}, dumps=W.json_dumps)
    return await _edit_page(request, row)


async def update(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    pool = request.app[T.pool_key]
    actor = W.actor(request)
    data = await W.read_fields(request)
    draft_id = request.match_info["id"]
    try:
        row = await S.save(pool, actor, data, draft_id)
    except AppError as exc:
        if W.wants_json(request) or exc.status != 400:
            raise
        return await _edit_page(request, await S.get(pool, actor, draft_id), values=data,
                                error=exc, status=400)
    if W.wants_json(request):
        return web.json_response({"draft": S.draft_json(row)}, dumps=W.json_dumps)
    if data.get("then") == "publish":
        return await _publish(request, draft_id)
    raise W.redirect(f"/drafts/{row['id']}?done=saved")


async def _publish(request: web.Request, draft_id: str) -> web.StreamResponse:
    pool = request.app[T.pool_key]
    actor = W.actor(request)
    try:
        row = await S.publish(pool, actor, draft_id)
    except AppError as exc:
        if W.wants_json(request) or exc.status != 400:
            raise
        draft = await S.get(pool, actor, draft_id)
        return await _edit_page(request, draft, error=exc, status=400)
    if W.wants_json(request):
        return web.json_response({"request": RS.request_json(actor, row)}, status=201,
                                 dumps=W.json_dumps)
    raise W.redirect(f"/requests/{row['id']}")


async def publish(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    return await _publish(request, request.match_info["id"])


async def delete(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    await S.delete(request.app[T.pool_key], W.actor(request), request.match_info["id"])
    if W.wants_json(request):
        return web.json_response({"deleted": request.match_info["id"]})
    raise W.redirect("/drafts?done=deleted")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/drafts", drafts, name="drafts")
    r.add_post("/drafts", create, name="draft_create")
    r.add_get("/drafts/{id}", detail, name="draft_detail")
    r.add_post("/drafts/{id}", update, name="draft_update")
    r.add_post("/drafts/{id}/publish", publish, name="draft_publish")
    r.add_post("/drafts/{id}/delete", delete, name="draft_delete")
    r.add_get("/api/drafts", drafts, name="api_drafts")
    r.add_post("/api/drafts", create, name="api_draft_create")
