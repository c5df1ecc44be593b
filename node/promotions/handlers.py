"""``POST /comments/{id}/promote``: a plain form on the comment (JSON to Accept: json)."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.promotions import service as S
from node.requests import service as RS


async def promote(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    actor = RS.Actor.of(W.viewer_of(request), W.client_ip(request))
    data = await W.read_json_object(request)
    if data is None:
        data = dict(await W.read_form(request))
    row = await S.promote(request.app[T.pool_key], actor, request.match_info["id"],
                          title=data.get("title") or "")
    if W.wants_json(request):
        return web.json_response({"request": RS.request_json(actor, row),
                                  "comment_id": request.match_info["id"]}, status=201,
                                 dumps=W.json_dumps)
    raise W.redirect(f"/requests/{row['id']}")


def setup(app: web.Application) -> None:
    app.router.add_post("/comments/{id}/promote", promote, name="comment_promote")
