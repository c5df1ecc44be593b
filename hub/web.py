"""Request plumbing of the hub: JSON errors with stable codes, headers, bearer peers,
admin sessions with CSRF, a per-peer rate limiter."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub import queries as Q
from hub import typedefs as T
from hub.errors import HubError
from protocol.errors import ProtocolError
from service import web as plumbing
from service.ids import token_hash
from service.web import UNSAFE_METHODS, Handler

log = logging.getLogger("wb.hub.web")

ADMIN_COOKIE = "wb_hub_admin"


def wants_json(request: web.Request) -> bool:
    return plumbing.wants_json(request, ("/api/", "/.well-known/"))


def protocol_status(code: str) -> int:
    return 413 if code in ("bundle_too_large", "too_many_files") else 400


def _classify(exc: Exception) -> tuple[int, str, str, dict[str, Any]] | None:
    if isinstance(exc, HubError):
        return exc.status, exc.code, exc.message, exc.extra
    if isinstance(exc, ProtocolError):
        return (protocol_status(exc.code), exc.code, exc.message,
                {"path": exc.path} if exc.path else {})
    return None


async def _error(request: web.Request, status: int, code: str, message: str,
                 extra: dict[str, Any]) -> web.StreamResponse:
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    if wants_json(request):
        body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
        if request.path.startswith("/api/v1/"):
            # refused before the v1 handler (route policy, outage): the original's shape too
            body["detail"] = f"{code}: {message}"
        return web.json_response(body, status=status, headers=headers)
    try:
        return aiohttp_jinja2.render_template(
            "hub/error.html", request,
            {"status": status, "code": code, "message": message}, status=status)
    except Exception:
        return web.Response(status=status, text=f"{status} {code}: {message}\n")


error_middleware = plumbing.error_middleware(
    _error, _classify, log=log, internal_message="Something went wrong; it was logged.",
    http_codes={413: "bundle_too_large"})
headers_middleware = plumbing.headers_middleware(
    "default-src 'self'; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'")


# ------------------------------------------------------------------------- peers

async def require_peer(request: web.Request) -> T.Peer:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 512:
        raise HubError(401, "unauthorized", "send Authorization: Bearer <peer token>")
    row = await Q.peer_by_token(request.app[T.pool_key], token_hash(token.strip()))
    if row is None:
        raise HubError(401, "unauthorized", "unknown peer token")
    if row["status"] != "active":
        state = "waits for the admin's approval" if row["status"] == "pending" else "is blocked"
        raise HubError(403, "peer_blocked", f"peer {row['name']} {state} on this hub")
    return T.Peer(row["name"], row["kind"], row["max_bundle_bytes"], row["rate_per_minute"])


# ------------------------------------------------------------------------- admin

def session_hash(value: str) -> str:
    return plumbing.cookie_hash(value, prefix="hub-admin:")


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the admin cookie (a random session id; never a token or hash) and check
    CSRF on unsafe admin requests."""
    request[T.ADMIN] = None
    request[T.CSRF_TOKEN] = ""
    if not request.path.startswith("/admin"):
        return await handler(request)
    pool = request.app[T.pool_key]
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    if cookie and len(cookie) <= 128 and await Q.admin_session_valid(pool, session_hash(cookie)):
        request[T.ADMIN] = session_hash(cookie)
        secret = await Q.csrf_secret(pool)
        request[T.CSRF_TOKEN] = plumbing.csrf_token(secret.encode(), cookie)
        if request.method in UNSAFE_METHODS:
            form = await request.post()
            sent = str(form.get("csrf_token", "")) or request.headers.get("X-CSRF-Token", "")
            if not plumbing.csrf_matches(sent, request[T.CSRF_TOKEN]):
                raise HubError(403, "csrf_failed", "The form expired; reload and try again.")
    return await handler(request)


def require_admin(request: web.Request) -> str:
    admin = request.get(T.ADMIN)
    if admin is None:
        raise web.HTTPSeeOther("/admin/login")
    return admin


def logged(app: web.Application, seq: int) -> None:
    """This process just logged entry ``seq`` (a push, an approved key's replay, a
    followed upstream's bundle): its streams and API cache move now, not when the
    NOTIFY arrives, and the delivery worker looks for it."""
    app[T.broadcaster_key].advance(seq)
    app[T.delivery_key].wake()
