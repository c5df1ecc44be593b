"""The admin console: /admin (counts that link to their pages), /admin/sessions
(approvals, explained, and live sessions), /admin/requests (what needs triage) and
/admin/audit. All rules live in node.auth; these handlers check the admin role, read
with node.admin.queries and render."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from node import caches
from node import typedefs as T
from node import web as W
from node.admin import queries as AQ
from node.auth import queries as q
from node.auth import queries_review as QR
from node.auth import service as svc
from node.auth.handlers import answer, json_client, read_input, waiting_devices
from node.errors import AppError
from node.notifications.mailer import relay_configured

# What the admin nav lists, in order: (label, path). Each page is one click from any
# admin page, so every admin job is at most three clicks from /admin.
ADMIN_NAV = (("Overview", "/admin"), ("Members", "/admin/profiles"),
             ("Approvals", "/admin/sessions"), ("Requests", "/admin/requests"),
             ("Scope", "/sync/scope"), ("Sync", "/admin/sync-control"),
             ("Invites", "/invite/new"), ("Mail", "/admin/mail"),
             ("Copilot", "/admin/copilot"), ("Audit", "/admin/audit"))


@web.middleware
async def approvals_badge(request: web.Request, handler: W.Handler) -> web.StreamResponse:
    """For an admin's pages: how many sign-ins wait, shown as a badge on the main nav."""
    viewer = W.viewer_of(request)
    if (viewer is not None and viewer.active and viewer.is_admin and request.method == "GET"
            and not request.path.startswith(("/static/", "/api/"))):
        # held a second at most: a sign-in request stops waiting when it expires
        pool = request.app[T.pool_key]
        count, until = await caches.get(request.app, "approvals").load_until(
            "waiting", lambda: AQ.waiting_approvals(pool), ttl=1.0)
        request[T.WAITING_APPROVALS] = count
        caches.valid_until(request, until)
    return await handler(request)


async def index(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    pool = request.app[T.pool_key]
    counts = await AQ.console_counts(pool)
    session_counts = await q.session_counts(pool)
    members = await q.local_user_count(pool)
    peers = await AQ.peer_health(pool)
    body = {"members": members, "sessions": session_counts,
            "pending_logins": counts["approvals"], "counts": counts,
            "peers": [dict(p) for p in peers]}
    return answer(request, "node/admin/index.html",
                  {"counts": counts, "members": members, "peers": peers,
                   "jobs": _sync_jobs(request, peers),
                   "flash": request.query.get("flash", "")[:300],
                   "mail_relay": relay_configured(request.app[T.config_key])}, body)


def _sync_jobs(request: web.Request, peers: list[Any]) -> dict[str, list[str]]:
    """The 'Sync now' buttons: each peer's push and pull jobs that exist in this app."""
    from node.scheduler import jobs_key

    table = request.app[jobs_key]
    return {p["name"]: [j for j in (f"push:{p['name']}", f"pull:{p['name']}") if j in table]
            for p in peers}


async def _approvals_context(request: web.Request) -> dict[str, Any]:
    pool = request.app[T.pool_key]
    pending = await AQ.approvals(pool)
    wrote = await q.written_by(pool, [r["id"] for r in pending])
    for r in pending:  # what this very device wrote (bound to its sign-in request)
        r["wrote"] = wrote.get(r["id"], [])
    return {"pending": pending, "sessions": await q.live_sessions(pool),
            "ledger_head": await QR.ledger_head(pool)}


async def sessions_page(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    ctx = await _approvals_context(request)
    body = {"pending": await waiting_devices(request.app[T.pool_key], None),
            "sessions": [{"username": s["username"], "status": s["status"],
                          "created_at": s["created_at"], "last_seen_at": s["last_seen_at"],
                          "expires_at": s["expires_at"], "ip": s["ip"]}
                         for s in ctx["sessions"]]}
    ctx["done"] = _DONE.get(request.query.get("done", ""), "")
    return answer(request, "node/admin/sessions.html", ctx, body)


_DONE = {"approved": "Approved: that device is signed in now.",
         "denied": "Denied: that device was turned away.",
         "revoked": "Signed out: that session is closed."}


async def approve(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    data, _ = await read_input(request)
    code = str(data.get("code") or "")
    request_id = request.match_info["request_id"]
    try:
        if code and not request.app[T.rate_limiter_key].allow(f"code:{W.client_ip(request)}"):
            raise AppError(429, "rate_limited", "Too many attempts; wait a minute.")
        decision = await svc.approve(request.app[T.pool_key], request.app[T.config_key],
                                     request_id, actor_id=viewer.user_id,
                                     ip=W.client_ip(request), code=code or None,
                                     note=data.get("note"))
    except AppError as exc:
        if json_client(request):
            raise
        # The form is shown again, the message next to the entry it is about.
        ctx = await _approvals_context(request)
        ctx.update(error=exc.message, failed_id=request_id)
        return W.render(request, "node/admin/sessions.html", ctx, status=exc.status)
    request.app[T.metrics_key].logins.labels("approved").inc()
    if json_client(request):
        return web.json_response({"status": "approved", "request_id": decision.request_id})
    raise W.redirect("/admin/sessions?done=approved")


async def deny(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    data, _ = await read_input(request)
    decision = await svc.deny(request.app[T.pool_key], request.match_info["request_id"],
                              actor_id=viewer.user_id, ip=W.client_ip(request),
                              note=data.get("note"))
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


async def requests_page(request: web.Request) -> web.StreamResponse:
    """Triage: requests waiting for their author's approval, then open ones."""
    W.require_admin(request)
    rows = await AQ.triage_requests(request.app[T.pool_key])
    body = {"requests": [dict(r) for r in rows]}
    return answer(request, "node/admin/requests.html", {"requests": rows}, body)


async def audit_page(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    rows = await q.recent_audit(request.app[T.pool_key], limit=200)
    body = {"audit": [{k: r[k] for k in ("at", "actor", "action", "target", "ip")}
                      for r in rows]}
    return answer(request, "node/admin/audit.html", {"audit": rows}, body)


def setup(app: web.Application) -> None:
    app.middlewares.append(approvals_badge)
    aiohttp_jinja2.get_env(app).globals["admin_nav"] = ADMIN_NAV
    r = app.router
    r.add_get("/admin", index, name="admin")
    r.add_get("/admin/sessions", sessions_page, name="admin_sessions")
    r.add_get("/admin/requests", requests_page, name="admin_requests")
    r.add_get("/admin/audit", audit_page, name="admin_audit")
    r.add_post("/admin/sessions/revoke", revoke, name="admin_session_revoke")
    r.add_post("/admin/sessions/{request_id}/approve", approve, name="admin_session_approve")
    r.add_post("/admin/sessions/{request_id}/deny", deny, name="admin_session_deny")
