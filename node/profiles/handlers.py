"""Routes of the profiles feature: own profile, people, members, admin directory,
invite map, account settings and avatars. Thin: access, parsing, rendering."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import AppError, not_found
from node.profiles import avatars
from node.profiles import invite_map as M
from node.profiles import queries as Q
from node.profiles import service as S

P = "node/profiles/"


def _pool(request: web.Request):
    return request.app[T.pool_key]


def _data_dir(request: web.Request):
    return request.app[T.config_key].path("WB_DATA_DIR")


def _max_upload(request: web.Request) -> int:
    return request.app[T.config_key].get_int("WB_MAX_UPLOAD_BYTES")


# --------------------------------------------------------------------------- own profile

async def own_profile(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    pool = _pool(request)
    me = await Q.user_by_id(pool, viewer.user_id)
    if me is None:
        raise not_found()
    ctx = {
        "me": me,
        "role": viewer.role,
        "invites": await Q.invites_sent(pool, viewer.user_id),
        "invitees": await Q.invitees(pool, viewer.user_id),
        "requests": await Q.requests_by(pool, viewer.user_id, include_pending=True, limit=50),
        "inviter": await Q.visible_user(pool, viewer_id=viewer.user_id,
                                        is_admin=viewer.is_admin, user_id=me["invited_by"]),
        "flash": request.query.get("saved") and "Saved.",
    }
    body = {"username": me["username"], "display_name": me["display_name"],
            "role": viewer.role, "is_admin": me["is_admin"], "scope": me["sync_scope"],
            "contact_email": me["contact_email"], "share_contact": me["share_contact"],
            "invites_sent": len(ctx["invites"]), "invitees": [u["username"] for u in
                                                             ctx["invitees"]],
            "requests": [{"id": r["id"], "title": r["title"], "status": r["status"]}
                         for r in ctx["requests"]]}
    return await W.respond(request, P + "profile.html", ctx, json_body=body)


async def person(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    ctx = await S.person(_pool(request), request.match_info["username"],
                         viewer_id=viewer.user_id, is_admin=viewer.is_admin)
    return await W.respond(request, P + "person.html", ctx, json_body=S.person_json(ctx))


# --------------------------------------------------------------------------- directories

async def members(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    q = request.query
    search = q.get("q", "").strip()[:100]
    role = S.choice(q.get("role"), ("admin", "member"), "role")
    scope = S.choice(q.get("scope"), ("public", "private"), "scope")
    mine = q.get("invited") == "me"
    page = S.parse_page(q.get("page"))
    rows = await Q.directory(_pool(request), viewer_id=viewer.user_id,
                             is_admin=viewer.is_admin, search=search, role=role, scope=scope,
                             invited_by_me=mine, offset=(page - 1) * S.PAGE_SIZE,
                             limit=S.PAGE_SIZE)
    more = len(rows) > S.PAGE_SIZE
    rows = rows[:S.PAGE_SIZE]
    filters = {"q": search, "role": role, "scope": scope, "invited": "me" if mine else ""}
    ctx = {"members": rows, "filters": filters, "page": page, "more": more}
    body = {"members": [{"username": r["username"], "display_name": r["display_name"],
                         "scope": r["sync_scope"], "is_admin": r["is_admin"],
                         "my_invitee": r["my_invitee"]} for r in rows],
            "page": page, "more": more}
    return await W.respond(request, P + "members.html", ctx, json_body=body)


async def admin_profiles(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    q = request.query
    search = q.get("q", "").strip()[:100]
    role = S.choice(q.get("role"), ("admin", "member"), "role")
    scope = S.choice(q.get("scope"), ("public", "private"), "scope")
    status = S.choice(q.get("status"), ("active", "disabled"), "status")
    page = S.parse_page(q.get("page"))
    rows, total = await Q.admin_directory(_pool(request), search=search, role=role,
                                          scope=scope, status=status,
                                          offset=(page - 1) * S.PAGE_SIZE, limit=S.PAGE_SIZE)
    pages = max(1, -(-total // S.PAGE_SIZE))
    filters = {"q": search, "role": role, "scope": scope, "status": status}
    ctx = {"accounts": rows, "filters": filters, "page": page, "pages": pages, "total": total}
    body = {"total": total, "page": page, "pages": pages,
            "accounts": [{"id": r["id"], "username": r["username"], "is_admin": r["is_admin"],
                          "disabled": r["disabled"], "scope": r["sync_scope"]} for r in rows]}
    return await W.respond(request, P + "admin_profiles.html", ctx, json_body=body)


async def admin_profile(request: web.Request, *, error: str = "",
                        status: int = 200) -> web.StreamResponse:
    W.require_admin(request)
    pool = _pool(request)
    account = await Q.user_by_id(pool, request.match_info["user_id"])
    if account is None:
        raise not_found("member_not_found", "No such local member.")
    detail = await Q.admin_detail(pool, account["id"])
    inviter = await Q.user_by_id(pool, account["invited_by"]) if account["invited_by"] else None
    ctx = {"account": account, "inviter": inviter, **detail, "role_names": S.ROLES,
           "invites": await Q.invites_sent(pool, account["id"]),
           "flash": "" if error else request.query.get("done", "")[:200], "error": error}
    return W.render(request, P + "admin_profile.html", ctx, status=status)


async def admin_action(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    target_id = request.match_info["user_id"]
    try:
        message = await S.admin_action(
            _pool(request), _data_dir(request), action=request.match_info["action"],
            target_id=target_id, actor=S.Actor(viewer.user_id, True, W.client_ip(request)))
    except AppError as exc:
        if W.wants_json(request) or exc.status == 404:
            raise
        # e.g. the last admin: the profile page again, the reason at the top
        return await admin_profile(request, error=exc.message, status=exc.status)
    if W.wants_json(request):
        return web.json_response({"ok": True, "message": message})
    from urllib.parse import quote

    raise W.redirect(f"/admin/profiles/{target_id}?done={quote(message)}")


# --------------------------------------------------------------------------- invite map

def _depth(request: web.Request) -> int:
    raw = request.query.get("depth")
    if raw is None or raw == "":
        return M.DEFAULT_DEPTH
    if not raw.isdigit() or not 1 <= int(raw) <= M.MAX_DEPTH:
        raise AppError(400, "invalid_depth",
                       f"Depth must be a whole number from 1 to {M.MAX_DEPTH}.",
                       fields={"depth": f"1 to {M.MAX_DEPTH}"})
    return int(raw)


async def _map_for(request: web.Request) -> tuple[int, dict]:
    viewer = W.require_active(request)
    depth = _depth(request)
    result = await M.get_map(_pool(request), viewer_id=viewer.user_id,
                             is_admin=viewer.is_admin, depth=depth)
    return depth, result


async def invite_map(request: web.Request) -> web.StreamResponse:
    depth, result = await _map_for(request)
    ctx = {"depth": depth, "max_depth": M.MAX_DEPTH, "max_nodes": M.MAX_NODES,
           "svg": result["svg"],
           "nodes": result["nodes"], "cached": result["cached"]}
    body = {"depth": depth, "cached": result["cached"], "nodes": result["nodes"]}
    return await W.respond(request, P + "invite_map.html", ctx, json_body=body)


async def invite_map_svg(request: web.Request) -> web.StreamResponse:
    _depth_value, result = await _map_for(request)
    return web.Response(text=result["svg"], content_type="image/svg+xml",
                        headers={"Cache-Control": "private, no-store"})


# --------------------------------------------------------------------------- settings

async def _settings_page(request: web.Request, *, errors: dict[str, str] | None = None,
                         form: dict | None = None, status: int = 200,
                         flash: str = "") -> web.Response:
    viewer = W.require_active(request)
    me = await Q.user_by_id(_pool(request), viewer.user_id)
    if me is None:
        raise not_found()
    values = form or {"display_name": me["display_name"], "bio": me["bio"],
                      "contact_email": me["contact_email"] or "",
                      "share_contact": me["share_contact"], "scope": me["sync_scope"]}
    return W.render(request, P + "settings.html",
                    {"me": me, "form": values, "errors": errors or {},
                     "max_upload_kib": _max_upload(request) // 1024, "flash": flash},
                    status=status)


async def settings_get(request: web.Request) -> web.StreamResponse:
    flash = {"account": "Account saved.",
             "account-review": "Account saved. Making your profile public waits for an "
                               "admin's approval (this node reviews what leaves it).",
             "avatar": "Avatar updated.", "skin": "Skin saved.",
             "avatar-removed": "Avatar removed."}.get(request.query.get("saved", ""), "")
    return await _settings_page(request, flash=flash)


async def settings_post(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    data = await request.post()
    form = {k: v for k, v in data.items() if isinstance(v, str)}
    values, errors = S.validate_account(form)
    if errors:
        if W.wants_json(request):
            raise AppError(400, "invalid_account", "Some fields need attention.",
                           fields=errors)
        shown = dict(values, contact_email=form.get("contact_email", ""))
        return await _settings_page(request, errors=errors, form=shown, status=400)
    from node.requests.service import Actor

    result = await S.update_account(_pool(request), viewer.user_id, values,
                                    Actor.of(viewer, W.client_ip(request)))
    if W.wants_json(request):
        return web.json_response({"ok": True, "scope_requested": bool(result.requested)})
    raise W.redirect("/settings/account?saved="
                     + ("account-review" if result.requested else "account"))


async def avatar_post(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    data = await request.post()
    upload = data.get("avatar")
    limit = _max_upload(request)
    content = b""
    if isinstance(upload, web.FileField):
        content = upload.file.read(limit + 1)
    try:
        await S.upload_avatar(_pool(request), _data_dir(request), viewer.user_id, content,
                              limit)
    except avatars.AvatarError as exc:
        if W.wants_json(request):
            raise AppError(400, "invalid_avatar", str(exc), fields={"avatar": str(exc)}) \
                from None
        return await _settings_page(request, errors={"avatar": str(exc)}, status=400)
    raise W.redirect("/settings/account?saved=avatar")


async def avatar_remove(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    await S.reset_avatar(_pool(request), _data_dir(request), viewer.user_id,
                         S.Actor(viewer.user_id, viewer.is_admin, W.client_ip(request)))
    raise W.redirect("/settings/account?saved=avatar-removed")


async def avatar_file(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    name = request.match_info["name"]
    path = avatars.path_of(_data_dir(request), name)
    if path is None or not path.is_file() or not await Q.avatar_in_use(_pool(request), name):
        raise not_found("avatar_not_found", "No such avatar.")
    # Names are random and never reused, so the bytes behind one never change.
    return web.FileResponse(path, headers={
        "Content-Type": avatars.content_type_of(name),
        "Cache-Control": "private, max-age=86400, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": "inline",
    })


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/profile", own_profile, name="profile")
    r.add_get("/people/{username}", person, name="person")
    r.add_get("/members", members, name="members")
    r.add_get("/admin/profiles", admin_profiles, name="admin_profiles")
    r.add_get("/admin/profiles/{user_id}", admin_profile, name="admin_profile")
    r.add_post("/admin/profiles/{user_id}/{action}", admin_action, name="admin_profile_action")
    r.add_get("/invite/map", invite_map, name="invite_map")
    r.add_get("/invite/map.svg", invite_map_svg, name="invite_map_svg")
    r.add_get("/settings/account", settings_get, name="settings_account")
    r.add_post("/settings/account", settings_post, name="settings_account_post")
    r.add_post("/settings/avatar", avatar_post, name="settings_avatar")
    r.add_post("/settings/avatar/remove", avatar_remove, name="settings_avatar_remove")
    r.add_get("/avatars/{name}", avatar_file, name="avatar")
