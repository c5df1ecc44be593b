"""Skins on the web: fingerprinted CSS (cached for a year), a member's choice on the
account settings page, and the admin's overview with previews and check results."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import not_found
from node.skins import catalog
from node.skins import queries as Q
from node.skins import service as S

IMMUTABLE = "public, max-age=31536000, immutable"


async def skin_file(request: web.Request) -> web.StreamResponse:
    skin = catalog.by_file(request.match_info["file"])
    if skin is None:
        raise not_found("skin_not_found", "No such skin file.")
    return web.Response(body=skin.css, content_type="text/css", charset="utf-8",
                        headers={"Cache-Control": IMMUTABLE, "ETag": f'"{skin.fingerprint}"'})


async def choose(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    if request.content_type == "application/json":
        data = await W.read_json_object(request)
        value = data.get("skin") if data is not None else None
        if not isinstance(value, str):
            from node.errors import bad_request
            raise bad_request("invalid_json", "Send {\"skin\": NAME}.")
    else:
        value = (await W.read_form(request)).get("skin", "")
    skin = await S.set_member_skin(request.app[T.pool_key], viewer.user_id, value)
    if W.wants_json(request):
        return web.json_response({"skin": skin})
    raise W.redirect("/settings/account?saved=skin")


async def admin_skins(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    counts = await Q.counts(request.app[T.pool_key])
    default = request.app[T.config_key]["WB_SKIN"]
    rows = []
    for skin in catalog.catalog().values():
        report = catalog.check(skin)
        rows.append({"name": skin.name, "title": skin.title, "file": skin.file_name,
                     "members": counts.get(skin.name, 0), "default": skin.name == default,
                     "ok": report.ok, "errors": report.errors,
                     "lowest": min((c["ratio"] for c in report.contrast), default=None)})
    return await W.respond(request, "node/skins/admin.html", {"rows": rows},
                           json_body={"default": default, "skins": rows})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/skins/{file}", skin_file, name="skin_file")
    r.add_post("/settings/skin", choose, name="settings_skin")
    r.add_get("/admin/skins", admin_skins, name="admin_skins")
