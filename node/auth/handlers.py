"""Auth pages and JSON endpoints: /login, /register, /invite/new, /auth/*.

Each form POST also accepts a JSON body (answered in JSON); form errors re-render the
form with the messages and the values typed so far.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.auth import approval, qr
from node.auth import queries as q
from node.auth import service as svc
from node.canonical import link_base
from node.errors import AppError

PRIMARY_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]{1,255}$")
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# --------------------------------------------------------------------------- helpers

def json_client(request: web.Request) -> bool:
    return W.wants_json(request) or request.content_type == "application/json"


async def read_input(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request's fields (JSON object or form) and its uploaded files."""
    body = await W.read_json_object(request)
    if body is not None:
        return body, {}
    form = await request.post()
    data = {k: v for k, v in form.items() if isinstance(v, str)}
    files = {k: v for k, v in form.items() if isinstance(v, web.FileField)}
    return data, files


def answer(request: web.Request, template: str, context: dict[str, Any], body: Any,
           *, status: int = 200) -> web.StreamResponse:
    if json_client(request):
        return web.json_response(body, status=status, dumps=W.json_dumps)
    return W.render(request, template, context, status=status)


def form_error(request: web.Request, exc: AppError, template: str,
               context: dict[str, Any]) -> web.StreamResponse:
    """JSON clients get the error middleware's answer; forms are shown again with errors."""
    if json_client(request):
        return web.json_response(
            {"error": {"code": exc.code, "message": exc.message,
                       **({"fields": exc.fields} if exc.fields else {})}}, status=exc.status)
    ctx = dict(context)
    ctx.update(error=exc.message, fields=exc.fields)
    return W.render(request, template, ctx, status=exc.status)


def rate_limit(request: web.Request, action: str) -> None:
    if not request.app[T.rate_limiter_key].allow(f"{action}:{W.client_ip(request)}"):
        raise AppError(429, "rate_limited", "Too many attempts from this address; wait a "
                       "minute and try again.")


def share_base(request: web.Request) -> str:
    """Where the invite link points: PREFERRED_HOST, else the origin the creator used,
    else SITE_URL."""
    origin = request.headers.get("Origin", "")
    if not (origin and origin != "null" and PRIMARY_ORIGIN.match(origin)):
        origin = ""
    return link_base(request.app[T.config_key], request, origin or None)


def _pool(request: web.Request):
    return request.app[T.pool_key]


def _config(request: web.Request):
    return request.app[T.config_key]


def _ua(request: web.Request) -> str:
    return request.headers.get("User-Agent", "")[:300]


def _logins(request: web.Request, outcome: str) -> None:
    request.app[T.metrics_key].logins.labels(outcome).inc()


# --------------------------------------------------------------------------- login

async def login_page(request: web.Request) -> web.StreamResponse:
    viewer = W.viewer_of(request)
    if viewer is not None and viewer.active:
        raise W.redirect("/")
    return W.render(request, "node/auth/login.html",
                    {"values": {"username": request.query.get("username", "")}})


async def login(request: web.Request) -> web.StreamResponse:
    viewer = W.viewer_of(request)
    data, _ = await read_input(request)
    if viewer is not None and viewer.active:
        if json_client(request):
            raise AppError(409, "already_signed_in", "This device is already signed in.")
        raise W.redirect("/")
    try:
        rate_limit(request, "login")
        start = await svc.start_login(
            _pool(request), _config(request), data.get("username"), ip=W.client_ip(request),
            user_agent=_ua(request), replaces=viewer.session_hash if viewer else None)
    except AppError as exc:
        return form_error(request, exc, "node/auth/login.html",
                          {"values": {"username": data.get("username", "")}})
    _logins(request, "requested")
    if json_client(request):
        response: web.StreamResponse = web.json_response(
            {"status": "pending", "request_id": start.request_id, "code": start.code,
             "expires_at": start.expires_at, "approve_at": "/auth/devices"},
            dumps=W.json_dumps)
    else:
        response = web.HTTPSeeOther("/login/pending?done=login")
    W.set_session_cookie(request, response, start.cookie,
                         int(svc.request_lifetime(_config(request)).total_seconds()))
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def login_pending(request: web.Request) -> web.StreamResponse:
    """The half-authenticated device's page: its code and whether it was approved."""
    viewer = W.require_viewer(request)
    if viewer.active:
        if json_client(request):
            return web.json_response({"status": "active"})
        raise W.redirect("/?done=approved")
    pending = await q.latest_login_for_session(_pool(request), viewer.session_hash)
    if pending is not None and pending["status"] != "pending":
        pending["code"] = None  # a dead request's code is of no use to anyone
    from node.admin.queries import waiting_member_context

    who = await waiting_member_context(_pool(request), viewer.user_id, viewer.session_hash)
    who.update(await approval.approvers(_pool(request), _config(request), viewer.user_id))
    body = {"status": "pending", "login": pending,
            "approvers": {"own_device": who["other_device"], "admins": who["admins"],
                          "reviewers": who["reviewers"], "inviter": who["inviter"]}}
    return answer(request, "node/auth/pending.html",
                  {"login": pending, "flash": _FLASH.get(request.query.get("done", ""), ""),
                   **who}, body)


_FLASH = {"registered": "Welcome! Your account is saved; an admin will let you in.",
          "login": "Sign-in started: approve it with the code below."}


async def logout(request: web.Request) -> web.StreamResponse:
    viewer = W.viewer_of(request)
    if viewer is not None:
        await svc.logout(_pool(request), viewer.session_hash, actor_id=viewer.user_id,
                         ip=W.client_ip(request))
    if json_client(request):
        response: web.StreamResponse = web.json_response({"status": "signed_out"})
    else:
        response = web.HTTPSeeOther("/?done=signed_out")
    W.clear_session_cookie(response)
    if isinstance(response, web.HTTPException):
        raise response
    return response


# --------------------------------------------------------------------------- approving devices

async def devices_page(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    items = await waiting_devices(_pool(request), viewer.user_id)
    return answer(request, "node/auth/devices.html",
                  {"requests": items, "done": request.query.get("done", "")}, {"pending": items})


async def waiting_devices(pool: Any, user_id: str | None) -> list[dict[str, Any]]:
    """Sign-in requests waiting (one member's, or everyone's when ``user_id`` is None),
    each with what that device wrote meanwhile, so a stranger can be recognised."""
    rows = (await q.pending_requests_of_user(pool, user_id) if user_id is not None
            else await q.pending_requests(pool))
    items = [_request_view(r) for r in rows]
    wrote = await q.written_by(pool, [i["id"] for i in items])
    for item in items:
        item["wrote"] = wrote.get(item["id"], [])
    return items


def _request_view(r: Any) -> dict[str, Any]:
    """A login request as others see it: never its code."""
    return {"id": r["id"], "username": r["username"], "created_at": r["created_at"],
            "expires_at": r["expires_at"], "ip": r["ip"], "user_agent": r["user_agent"],
            "attempts": r["attempts"]}


async def approve(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    data, _ = await read_input(request)
    request_id = str(data.get("request_id") or "")
    try:
        rate_limit(request, "code")
        decision = await svc.approve(_pool(request), _config(request), request_id,
                                     actor_id=viewer.user_id, ip=W.client_ip(request),
                                     code=str(data.get("code") or ""),
                                     same_member=viewer.user_id)
    except AppError as exc:
        if getattr(exc, "locked", False):
            _logins(request, "locked")
        return form_error(request, exc, "node/auth/devices.html",
                          {"requests": await waiting_devices(_pool(request), viewer.user_id),
                           "failed_id": request_id})
    _logins(request, "approved")
    if json_client(request):
        return web.json_response({"status": "approved", "request_id": decision.request_id})
    raise W.redirect("/auth/devices?done=approved")


async def deny(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    data, _ = await read_input(request)
    decision = await svc.deny(_pool(request), str(data.get("request_id") or ""),
                              actor_id=viewer.user_id, ip=W.client_ip(request),
                              same_member=viewer.user_id)
    _logins(request, "denied")
    if json_client(request):
        return web.json_response({"status": "denied", "request_id": decision.request_id})
    raise W.redirect("/auth/devices?done=denied")


# --------------------------------------------------------------------------- registration

async def register_page(request: web.Request) -> web.StreamResponse:
    viewer = W.viewer_of(request)
    if viewer is not None and viewer.active:
        raise W.redirect("/")
    token = request.match_info.get("token", "")
    pasted = request.query.get("invite", "").strip()
    if not token and pasted:
        candidate = pasted.rstrip("/").rsplit("/", 1)[-1]
        if not TOKEN_CHARS.match(candidate):
            raise svc.invite_problem(None)
        raise W.redirect(f"/register/{candidate}")
    first = not await q.has_local_users(_pool(request))
    invite = None
    if token and not first:
        invite = await svc.invite_for_token(_pool(request), token)
    values = {}
    if invite is not None:
        values = {"username": invite["suggested_username"], "bio": invite["suggested_bio"]}
    return W.render(request, "node/auth/register.html",
                    {"first": first, "invite": invite, "token": token, "values": values,
                     "has_photo": bool(invite and invite["photo_path"])})


async def invite_photo(request: web.Request) -> web.StreamResponse:
    invite = await svc.invite_for_token(_pool(request), request.match_info["token"])
    path = svc.photo_file(_config(request), invite["photo_path"])
    if path is None:
        raise AppError(404, "not_found", "This invite has no photo.")
    types = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif",
             "webp": "image/webp"}
    return web.Response(body=path.read_bytes(), content_type=types[path.suffix[1:]],
                        headers={"Cache-Control": "private, max-age=3600"})


async def register(request: web.Request) -> web.StreamResponse:
    viewer = W.viewer_of(request)
    data, _ = await read_input(request)
    if viewer is not None and viewer.active:
        raise AppError(409, "already_signed_in", "Sign out before registering a new member.")
    token = str(data.get("invite_token") or "")
    try:
        result = await svc.register(_pool(request), _config(request), data, invite_token=token,
                                    ip=W.client_ip(request), user_agent=_ua(request))
    except AppError as exc:
        pool = _pool(request)
        first = not await q.has_local_users(pool)
        invite = None
        if token and not first:
            invite = await q.invite_by_token_hash(pool, svc.token_hash(token))
        return form_error(request, exc, "node/auth/register.html",
                          {"first": first, "invite": invite, "token": token,
                           "values": data, "has_photo": False})
    if viewer is not None:  # a half-authenticated device registering someone new
        await svc.logout(_pool(request), viewer.session_hash, actor_id=viewer.user_id,
                         ip=W.client_ip(request))
    lifetime = int(svc.session_lifetime(_config(request)).total_seconds())
    if json_client(request):
        response: web.StreamResponse = web.json_response(
            {"user_id": result.user_id, "username": result.username, "status": result.status,
             "is_admin": result.is_admin, "request_id": result.request_id,
             "login_request_id": result.auth_request_id, "code": result.code}, status=201)
    else:
        response = web.HTTPSeeOther("/?done=joined" if result.status == "active"
                                    else "/login/pending?done=registered")
    W.set_session_cookie(request, response, result.cookie, lifetime)
    if isinstance(response, web.HTTPException):
        raise response
    return response


# --------------------------------------------------------------------------- invites

async def invite_page(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    invites = await q.invites_by_creator(_pool(request), viewer.user_id)
    others = []
    if viewer.is_admin:  # admins may disable anyone's invite
        others = [i for i in await q.invites_by_creator(_pool(request), None, limit=50)
                  if i["created_by"] != viewer.user_id]
    return answer(request, "node/auth/invite_new.html",
                  {"invites": invites, "others": others,
                   "values": {"max_uses": 1, "expires_days": 14, "auto_approve": True}},
                  {"invites": [_invite_view(i) for i in invites]})


def _invite_view(i: Any) -> dict[str, Any]:
    return {"id": i["id"], "max_uses": i["max_uses"], "use_count": i["use_count"],
            "expires_at": i["expires_at"], "auto_approve": i["auto_approve"],
            "disabled": i["disabled"], "created_at": i["created_at"]}


async def invite_create(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    data, files = await read_input(request)
    photo = None
    upload = files.get("photo")
    if upload is not None and upload.filename:
        limit = _config(request).get_int("WB_MAX_UPLOAD_BYTES")
        photo = upload.file.read(limit + 1)
    if not json_client(request):
        data.setdefault("auto_approve", "false")  # an unticked checkbox sends nothing
    try:
        invite = await svc.create_invite(_pool(request), _config(request), data,
                                         created_by=viewer.user_id, ip=W.client_ip(request),
                                         photo=photo or None)
    except AppError as exc:
        invites = await q.invites_by_creator(_pool(request), viewer.user_id)
        return form_error(request, exc, "node/auth/invite_new.html",
                          {"invites": invites, "values": data})
    link = svc.invite_link(share_base(request), invite.token)
    body = {"id": invite.id, "token": invite.token, "link": link,
            "max_uses": invite.max_uses, "expires_at": invite.expires_at,
            "auto_approve": invite.auto_approve}
    if json_client(request):
        return web.json_response(body, status=201, dumps=W.json_dumps)
    # Post/Redirect/Get: a reload must not create a second invite. The link (whose token
    # the node keeps only as a hash) rides to the next page in a cookie scoped to that
    # page alone, which shows it once and deletes it.
    path = f"/invite/created/{invite.id}"
    response = web.HTTPSeeOther(path)
    response.set_cookie(NEW_INVITE_COOKIE, quote(link, safe=""), path=path,
                        max_age=NEW_INVITE_SECONDS, httponly=True, samesite="Strict",
                        secure=_config(request).https)
    raise response


NEW_INVITE_COOKIE = "wb_new_invite"
NEW_INVITE_SECONDS = 600


async def invite_created(request: web.Request) -> web.StreamResponse:
    """The new invite's link and QR code, shown once after the redirect."""
    viewer = W.require_active(request)
    invite_id = request.match_info["invite_id"]
    link = unquote(request.cookies.get(NEW_INVITE_COOKIE, ""))
    token = link.rstrip("/").rsplit("/", 1)[-1] if link else ""
    invite = (await q.invite_by_token_hash(_pool(request), svc.token_hash(token))
              if token and TOKEN_CHARS.match(token) else None)
    if (invite is None or invite["id"] != invite_id
            or (invite["created_by"] != viewer.user_id and not viewer.is_admin)):
        response = W.render(request, "node/auth/invite_created.html", {"gone": True})
    else:
        response = W.render(request, "node/auth/invite_created.html",
                            {"invite": invite, "link": link, "qr": qr.svg_data_uri(link)})
    response.del_cookie(NEW_INVITE_COOKIE, path=f"/invite/created/{invite_id}")
    return response


async def invite_disable(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    invite_id = request.match_info["invite_id"]
    await svc.disable_invite(_pool(request), invite_id, actor_id=viewer.user_id,
                             is_admin=viewer.is_admin, ip=W.client_ip(request))
    if json_client(request):
        return web.json_response({"id": invite_id, "disabled": True})
    raise W.redirect("/invite/new")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/login", login_page, name="login")
    r.add_post("/auth/login", login, name="auth_login")
    r.add_get("/login/pending", login_pending, name="login_pending")
    r.add_post("/auth/logout", logout, name="auth_logout")
    r.add_get("/auth/devices", devices_page, name="auth_devices")
    r.add_post("/auth/approve", approve, name="auth_approve")
    r.add_post("/auth/deny", deny, name="auth_deny")
    r.add_get("/register", register_page, name="register")
    r.add_get("/register/{token}", register_page, name="register_invite")
    r.add_get("/register/{token}/photo", invite_photo, name="register_invite_photo")
    r.add_post("/auth/register", register, name="auth_register")
    r.add_get("/invite/new", invite_page, name="invite_new")
    r.add_post("/auth/invites", invite_create, name="auth_invites")
    r.add_get("/invite/created/{invite_id}", invite_created, name="invite_created")
    r.add_post("/auth/invites/{invite_id}/disable", invite_disable, name="auth_invite_disable")
