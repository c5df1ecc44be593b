"""Request plumbing of the hub: JSON errors with stable codes, headers, bearer peers,
admin sessions with CSRF, a per-peer rate limiter."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from hub import queries as Q
from hub import typedefs as T
from hub.errors import HubError
from protocol.errors import ProtocolError
from service.db import client_data_error
from service.ids import token_hash

log = logging.getLogger("wb.hub.web")

ADMIN_COOKIE = "wb_hub_admin"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wants_json(request: web.Request) -> bool:
    if request.path.startswith("/api/") or request.path.startswith("/.well-known/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def protocol_status(code: str) -> int:
    return 413 if code in ("bundle_too_large", "too_many_files") else 400


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HubError as exc:
        return _error(request, exc.status, exc.code, exc.message, exc.extra)
    except ProtocolError as exc:
        extra = {"path": exc.path} if exc.path else {}
        return _error(request, protocol_status(exc.code), exc.code, exc.message, extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "bundle_too_large"}.get(exc.status, "http_error")
        return _error(request, exc.status, code, exc.reason, {})
    except Exception as exc:
        bad_input = client_data_error(exc)
        if bad_input is not None:
            return _error(request, 400, bad_input[0], bad_input[1], {})
        log.exception("unhandled error", extra={"path": request.path})
        return _error(request, 500, "internal_error", "Something went wrong; it was logged.", {})


def _error(request: web.Request, status: int, code: str, message: str,
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


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if isinstance(response, web.WebSocketResponse):
        return response
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Content-Security-Policy",
                 "default-src 'self'; style-src 'self'; script-src 'self'; "
                 "frame-ancestors 'none'; form-action 'self'")
    return response


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


class RateLimiter:
    """Sliding one-minute window per key, in this process."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self.max_keys = max_keys

    def allow(self, key: str, limit: int, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._hits.clear()
            hits = self._hits[key] = deque()
        while hits and hits[0] <= t - 60.0:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(t)
        return True


# ------------------------------------------------------------------------- admin

def session_hash(value: str) -> str:
    return hashlib.sha256(f"hub-admin:{value}".encode()).hexdigest()


def csrf_for(secret: str, session: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session}".encode(), hashlib.sha256).hexdigest()[:40]


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
        request[T.CSRF_TOKEN] = csrf_for(secret, cookie)
        if request.method in UNSAFE:
            form = await request.post()
            sent = str(form.get("csrf_token", "")) or request.headers.get("X-CSRF-Token", "")
            if not hmac.compare_digest(sent, request[T.CSRF_TOKEN]):
                raise HubError(403, "csrf_failed", "The form expired; reload and try again.")
    return await handler(request)


def require_admin(request: web.Request) -> str:
    admin = request.get(T.ADMIN)
    if admin is None:
        raise web.HTTPSeeOther("/admin/login")
    return admin
