"""The publication review page (/sync/review): the mode in force with the admin's switch,
publication requests waiting for an admin, and what is still public, with "withdraw
all"."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import bad_request
from node.i18n import plural
from node.publication import service as S
from node.requests.service import Actor


def _actor(request: web.Request) -> Actor:
    viewer = W.require_admin(request)
    actor = Actor.of(viewer, W.client_ip(request))
    assert actor is not None
    return actor


async def _note(request: web.Request) -> str:
    data = await W.read_json_object(request)
    if data is not None:
        value = data.get("note", "")
    else:
        value = (await W.read_form(request)).get("note", "")
    if not isinstance(value, str):
        raise bad_request("invalid_field", "note must be a string.", note="Not text.")
    return value


async def review_page(request: web.Request) -> web.StreamResponse:
    actor = _actor(request)
    pool = request.app[T.pool_key]
    status = S.parse_status(request.query.get("status"))
    rows = await S.list_requests(pool, actor, status=status)
    public = await S.still_public(pool, actor)
    async with pool.acquire() as conn:
        state = await S.mode_state(conn)
    mode = state["mode"]
    body: dict[str, Any] = {
        "mode": mode, "explain": S.EXPLAIN[mode], "source": state["source"],
        "configured": state["configured"], "changed_by": state["changed_by"],
        "changed_at": state["changed_at"],
        "requests": [S.request_json(r) for r in rows],
        "still_public": _public_json(public),
    }
    done = request.query.get("done", "")
    count = int(n) if (n := request.query.get("count", "0")).isdigit() else 0
    flash = {"approved": "Approved: the record is public now.",
             "declined": "Declined: the record stays private.",
             "withdrawn": "Withdrawn: " + plural(
                 count,
                 "%(num)d record is private now; its tombstone leaves with the next export.",
                 "%(num)d records are private now; their tombstones leave with the next "
                 "export."),
             "mode": f"SYNC_PUBLIC_SCOPE is {mode} now.",
             "lowered": f"SYNC_PUBLIC_SCOPE is {mode} now. " + plural(
                 count, "%(num)d record is still public: it stays public until withdrawn "
                 "(listed below).", "%(num)d records are still public: they stay public "
                 "until withdrawn (listed below)."),
             "unchanged": f"SYNC_PUBLIC_SCOPE was {mode} already; nothing changed.",
             }.get(done, "")
    ctx = dict(body, status=status or "all", flash=flash, modes=S.MODES,
               explains=S.EXPLAIN, rows=rows, public=public,
               public_count=sum(len(v) for v in public.values()))
    return await W.respond(request, "node/publication/review.html", ctx, json_body=body)


async def _decide(request: web.Request, approve: bool) -> web.StreamResponse:
    actor = _actor(request)
    note = await _note(request)
    result = await S.decide(request.app[T.pool_key], actor, request.match_info["id"],
                            approve, note)
    if W.wants_json(request):
        return web.json_response(result)
    raise W.redirect(f"/sync/review?done={result['status']}")


async def approve(request: web.Request) -> web.StreamResponse:
    return await _decide(request, True)


async def decline(request: web.Request) -> web.StreamResponse:
    return await _decide(request, False)


def _public_json(public: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    return {k: [{"id": r["id"], "summary": r["summary"], "published": r["published"]}
                for r in v] for k, v in public.items()}


async def set_mode(request: web.Request) -> web.StreamResponse:
    """The admin's switch: POST ``mode`` (form or JSON) changes the mode in force."""
    actor = _actor(request)
    data = await W.read_json_object(request)
    if data is None:
        data = await W.read_form(request)
    pool = request.app[T.pool_key]
    result = await S.set_mode(pool, actor, data.get("mode"))
    request.app[T.extras_key]["public_scope"] = result["mode"]
    if W.wants_json(request):
        public = await S.still_public(pool, actor)
        return web.json_response(dict(result, still_public_records=_public_json(public)),
                                 dumps=W.json_dumps)
    if not result["changed"]:
        raise W.redirect("/sync/review?done=unchanged")
    if result["lowered"] and result["still_public"]:
        raise W.redirect(f"/sync/review?done=lowered&count={result['still_public']}"
                         "#still-public")
    raise W.redirect("/sync/review?done=mode")


async def withdraw_all(request: web.Request) -> web.StreamResponse:
    actor = _actor(request)
    count = await S.withdraw_all(request.app[T.pool_key], actor)
    if W.wants_json(request):
        return web.json_response({"withdrawn": count})
    raise W.redirect(f"/sync/review?done=withdrawn&count={count}")


async def _apply_mode(app: web.Application) -> None:
    result = await S.apply_mode(app[T.pool_key], app[T.config_key], actor="config")
    app[T.extras_key]["public_scope"] = result["mode"]


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/sync/review", review_page, name="sync_review")
    r.add_post("/sync/review/mode", set_mode, name="sync_review_mode")
    r.add_post("/sync/review/withdraw-all", withdraw_all, name="sync_review_withdraw_all")
    r.add_post("/sync/review/{id}/approve", approve, name="sync_review_approve")
    r.add_post("/sync/review/{id}/decline", decline, name="sync_review_decline")
    app.on_startup.append(_apply_mode)
