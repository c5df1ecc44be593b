"""Admin dashboard: token login, then peers, subscriptions and their lag, pending keys,
equivocations, ingest errors by code, and the origin blocklist. Every form carries the
CSRF token; the cookie holds a random session id (never a token or a hash)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from hub import ingest as I
from hub import queries as Q
from hub import typedefs as T
from hub.api import http_refusal, limits_of
from hub.errors import HubError
from hub.web import ADMIN_COOKIE, logged, require_admin, session_hash
from service.ids import new_token, token_hash


def _ctx(request: web.Request, **extra: object) -> dict[str, object]:
    return {"csrf_token": request.get(T.CSRF_TOKEN, ""), **extra}


async def login_form(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template("hub/login.html", request, _ctx(request, error=None))


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form.get("token", "")).strip()
    pool = request.app[T.pool_key]
    if not token or len(token) > 256 or not await Q.admin_token_exists(pool, token_hash(token)):
        return aiohttp_jinja2.render_template(
            "hub/login.html", request, _ctx(request, error="Unknown admin token."), status=401)
    session = new_token()
    await Q.create_admin_session(pool, session_hash(session),
                                 request.app[T.options_key].admin_session_hours)
    response = web.HTTPSeeOther("/admin")
    response.set_cookie(ADMIN_COOKIE, session, httponly=True, samesite="Strict",
                        secure=request.app[T.config_key]["WB_HUB_URL"].startswith("https://"),
                        path="/admin")
    raise response


async def logout(request: web.Request) -> web.Response:
    admin = require_admin(request)
    await Q.end_admin_session(request.app[T.pool_key], admin)
    response = web.HTTPSeeOther("/admin/login")
    response.del_cookie(ADMIN_COOKIE, path="/admin")
    raise response


async def dashboard(request: web.Request) -> web.Response:
    require_admin(request)
    pool = request.app[T.pool_key]
    head, pruned = await Q.log_state(pool)
    return aiohttp_jinja2.render_template("hub/admin.html", request, _ctx(
        request, head=head, pruned=pruned, peers=await Q.list_peers(pool),
        subscriptions=await Q.subscriptions(pool), pending=await Q.pending_keys(pool),
        equivocations=await Q.equivocations(pool), errors=await Q.ingest_errors(pool),
        blocklist=await Q.blocklist(pool), gaps=await Q.chain_gaps(pool),
        streams=request.app[T.broadcaster_key].subscribers))


async def approve(request: web.Request) -> web.Response:
    """Approve a pending key; a key claiming a foreign origin needs the confirmation box
    (``for_origin``, the origin it may publish as) ticked in the form."""
    require_admin(request)
    form = await request.post()
    for_origin = str(form.get("for_origin", "")).strip() or None
    try:
        outcomes = await I.approve_key(request.app[T.pool_key], request.match_info["key_id"],
                                       limits=limits_of(request.app), for_origin=for_origin)
    except I.Refused as exc:
        raise http_refusal(exc) from None
    logged(request.app, max((o.stored_seq or 0 for o in outcomes), default=0))
    raise web.HTTPSeeOther("/admin")


async def discard(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        await I.discard_key(request.app[T.pool_key], request.match_info["key_id"])
    except I.Refused as exc:
        raise http_refusal(exc) from None
    raise web.HTTPSeeOther("/admin")


async def block(request: web.Request) -> web.Response:
    require_admin(request)
    form = await request.post()
    origin = str(form.get("origin", "")).strip()
    if not origin or len(origin) > 64:
        raise HubError(400, "invalid_origin", "give the origin key id to block")
    await Q.block_origin(request.app[T.pool_key], origin, str(form.get("reason", ""))[:200])
    raise web.HTTPSeeOther("/admin")


async def unblock(request: web.Request) -> web.Response:
    require_admin(request)
    await Q.unblock_origin(request.app[T.pool_key], request.match_info["origin"])
    raise web.HTTPSeeOther("/admin")


async def peer_status(request: web.Request) -> web.Response:
    require_admin(request)
    status = "blocked" if request.match_info["action"] == "block" else "active"
    await Q.set_peer_status(request.app[T.pool_key], request.match_info["name"], status)
    raise web.HTTPSeeOther("/admin")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/login", login_form, name="admin_login")
    r.add_post("/admin/login", login, name="admin_login_post")
    r.add_post("/admin/logout", logout, name="admin_logout")
    r.add_get("/admin", dashboard, name="admin")
    r.add_post("/admin/keys/{key_id}/approve", approve, name="admin_key_approve")
    r.add_post("/admin/keys/{key_id}/discard", discard, name="admin_key_discard")
    r.add_post("/admin/blocklist", block, name="admin_block")
    r.add_post("/admin/blocklist/{origin}/remove", unblock, name="admin_unblock")
    r.add_post("/admin/peers/{name}/{action:block|unblock}", peer_status, name="admin_peer")
