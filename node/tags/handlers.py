"""Tags on the web: the admin's list (/admin/tags), a request's tags form, the tag
stylesheet, and ``/api/tags``. The feed's ``?tag=`` filter lives in the requests feature."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import AppError
from node.tags import service as S

FLASH = {"saved": "Tag saved.", "deleted": "Tag deleted."}


async def _input(request: web.Request) -> dict[str, Any]:
    data = await W.read_json_object(request)
    if data is not None:
        return data
    form = await W.read_form(request)
    return {"name": form.get("name", ""), "colour": form.get("colour", ""),
            "tags": [v for v in form.getall("tags", []) if isinstance(v, str)]}


async def _page(request: web.Request, *, error: AppError | None = None,
                values: dict[str, Any] | None = None, status: int = 200) -> web.StreamResponse:
    rows = await S.catalog(request.app[T.pool_key])
    return await W.respond(request, "node/tags/admin.html",
                           {"tags": rows, "error": error, "values": values or {},
                            "flash": FLASH.get(request.query.get("done", ""), ""),
                            "max_tags": S.MAX_TAGS, "min_contrast": S.MIN_CONTRAST},
                           json_body={"tags": [S.tag_json(r) for r in rows]}, status=status)


async def admin_tags(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    return await _page(request)


async def save(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    data = await _input(request)
    try:
        row = await S.save_tag(request.app[T.pool_key], W.actor(request), data.get("name"),
                               data.get("colour"))
    except AppError as exc:
        if W.wants_json(request) or exc.status not in (400, 409):
            raise
        return await _page(request, error=exc, values=data, status=exc.status)
    if W.wants_json(request):
        return web.json_response({"tag": S.tag_json(row)})
    raise W.redirect("/admin/tags?done=saved")


async def delete(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    await S.delete_tag(request.app[T.pool_key], W.actor(request), request.match_info["name"])
    if W.wants_json(request):
        return web.json_response({"deleted": request.match_info["name"]})
    raise W.redirect("/admin/tags?done=deleted")


async def request_tags(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    data = await _input(request)
    names = await S.set_request_tags(request.app[T.pool_key], W.actor(request),
                                     request.match_info["id"], data.get("tags", []))
    if W.wants_json(request):
        return web.json_response({"request_id": request.match_info["id"], "tags": names})
    raise W.redirect(f"/requests/{request.match_info['id']}")


async def stylesheet(request: web.Request) -> web.StreamResponse:
    css = S.stylesheet(await S.catalog(request.app[T.pool_key]))
    return web.Response(text=css, content_type="text/css",
                        headers={"Cache-Control": "private, max-age=60"})


async def api_tags(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    rows = await S.catalog(request.app[T.pool_key])
    return web.json_response({"tags": [S.tag_json(r) for r in rows]})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/tags", admin_tags, name="admin_tags")
    r.add_post("/admin/tags", save, name="admin_tag_save")
    r.add_post("/admin/tags/{name}/delete", delete, name="admin_tag_delete")
    r.add_post("/requests/{id}/tags", request_tags, name="request_tags")
    r.add_get("/tags.css", stylesheet, name="tags_css")
    r.add_get("/api/tags", api_tags, name="api_tags")
