"""Admin pages: /admin (overview, recent audit log) and /admin/sessions (approve, deny,
revoke). All SQL and rules live in node.auth; these handlers only check the admin role."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.auth import queries as q
from node.auth import service as svc
from node.auth.handlers import _request_view, answer, json_client, read_input
from node.errors import AppError
from node.notifications.mailer import relay_configured


async def index(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    pool = request.app[T.pool_key]
    counts = await q.session_counts(pool)
    pending = await q.pending_requests(pool, limit=1000)
    members = await q.local_user_count(pool)
    audit = await q.recent_audit(pool, limit=30)
    invites = await q.invites_by_creator(pool, None, limit=20)
    body = {"members": members, "sessions": counts, "pending_logins": len(pending)}
    return answer(request, "node/admin/index.html",
                  {"members": members, "counts": counts, "pending": len(pending),
                   "audit": audit, "invites": invites,
                   "mail_relay": relay_configured(request.app[T.config_key])}, body)


async def sessions_page(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    pool = request.app[T.pool_key]
    pending = [_request_view(r) for r in await q.pending_requests(pool)]
    live = await q.live_sessions(pool)
    body = {"pending": pending,
            "sessions": [{"username": s["username"], "status": s["status"],
                          "created_at": s["created_at"], "last_seen_at": s["last_seen_at"],
                          "expires_at": s["expires_at"], "ip": s["ip"]} for s in live]}
    return answer(request, "node/admin/sessions.html",
                  {"pending": pending, "sessions": live, "done": request.query.get("done", "")},
                  body)


async def approve(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    data, _ = await read_input(request)
    code = str(data.get("code") or "")
    if code and not request.app[T.rate_limiter_key].allow(f"code:{W.client_ip(request)}"):
        raise AppError(429, "rate_limited", "Too many attempts; wait a minute.")
    decision = await svc.approve(request.app[T.pool_key], request.app[T.config_key],
                                 request.match_info["request_id"], actor_id=viewer.user_id,
                                 ip=W.client_ip(request), code=code or None)
    request.app[T.metrics_key].logins.labels("approved").inc()
    if json_client(request):
        return web.json_response({"status": "approved", "request_id": decision.request_id})
    raise W.redirect("/admin/sessions?done=approved")


async def deny(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    decision = await svc.deny(request.app[T.pool_key], request.match_info["request_id"],
                              actor_id=viewer.user_id, ip=W.client_ip(request))
    request.app[T.metrics_key].logins.labels("denied").inc()
    if json_client(request):
        return web.json_response({"status": "denied", "request_id": decision.request_id})
    raise W.redirect("/admin/sessions?done=denied")


async def revoke(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    data, _ = await read_input(request)
    await svc.revoke(request.app[T.pool_key], str(data.get("session") or ""),
                     actor_id=viewer.user_id, ip=W.client_ip(request))
    if json_client(request):
        return web.json_response({"status": "revoked"})
    raise W.redirect("/admin/sessions?done=revoked")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin", index, name="admin")
    r.add_get("/admin/sessions", sessions_page, name="admin_sessions")
    r.add_post("/admin/sessions/revoke", revoke, name="admin_session_revoke")
    r.add_post("/admin/sessions/{request_id}/approve", approve, name="admin_session_approve")
    r.add_post("/admin/sessions/{request_id}/deny", deny, name="admin_session_deny")
