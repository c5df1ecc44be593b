"""Web plumbing shared by the node and the hub apps: JSON-or-HTML negotiation, the error
middleware, security headers, CSRF tokens and session-cookie hashes.

Each app parameterises these with what really differs (its JSON path prefixes, its error
classes and pages, its Content-Security-Policy); the route policy lives in
``service.policy`` and the database-outage answer in ``service.outage``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import jinja2
import jinja2.bccache
from aiohttp import web

from service.db import client_data_error

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
# (request, status, code, message, extra) -> the answer: JSON or the app's error page
ErrorRenderer = Callable[[web.Request, int, str, str, dict[str, Any]],
                         Awaitable[web.StreamResponse]]
# an app's own exception -> (status, code, message, extra), or None when it is not one
ErrorClassifier = Callable[[Exception], "tuple[int, str, str, dict[str, Any]] | None"]

HTTP_ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 413: "payload_too_large"}


def wants_json(request: web.Request, json_prefixes: Iterable[str] = ("/api/",)) -> bool:
    """JSON for API paths and for clients that ask for JSON and not for HTML."""
    path = request.path
    if any(path.startswith(prefix) for prefix in json_prefixes):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_middleware(render_error: ErrorRenderer, classify: ErrorClassifier, *,
                     log: logging.Logger, internal_message: str,
                     http_codes: dict[int, str] | None = None) -> Middleware:
    """One middleware turning every failure into ``render_error``'s answer: the app's own
    errors (via ``classify``), aiohttp's HTTP errors, bad client data the database refused,
    and anything else as a logged 500 that shows no traceback."""
    codes = {**HTTP_ERROR_CODES, **(http_codes or {})}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            known = classify(exc)
            if known is not None:
                return await render_error(request, *known)
            if isinstance(exc, web.HTTPException):
                if exc.status < 400:
                    raise
                return await render_error(request, exc.status,
                                          codes.get(exc.status, "http_error"), exc.reason, {})
            bad_input = client_data_error(exc)
            if bad_input is not None:
                return await render_error(request, 400, bad_input[0], bad_input[1], {})
            log.exception("unhandled error",
                          extra={"path": request.path, "method": request.method})
            return await render_error(request, 500, "internal_error", internal_message, {})

    return middleware


def headers_middleware(csp: str, *,
                       no_store: Callable[[web.Request], bool] | None = None) -> Middleware:
    """Security headers on every answer (a handler's own values win); ``no_store`` marks
    the answers that must not be cached (pages of a signed-in member)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if isinstance(response, web.WebSocketResponse):
            return response  # already sent; its headers can no longer change
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Content-Security-Policy", csp)
        if no_store is not None and no_store(request):
            h.setdefault("Cache-Control", "private, no-store")
        return response

    return middleware


def csrf_token(secret: bytes, base: str) -> str:
    """The CSRF token bound to ``base`` (a session or an anonymous cookie)."""
    return hmac.new(secret, f"csrf:{base}".encode(), hashlib.sha256).hexdigest()[:40]


def csrf_matches(sent: str, expected: str) -> bool:
    return bool(sent) and hmac.compare_digest(sent, expected)


def cookie_hash(value: str, *, prefix: str = "") -> str:
    """What the database keeps of a session cookie: never the cookie itself."""
    return hashlib.sha256(f"{prefix}{value}".encode()).hexdigest()


def client_session_ctx(key: web.AppKey[aiohttp.ClientSession], user_agent: str
                       ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context holding the app's one outgoing HTTP session under ``key``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=60, connect=10)
        async with aiohttp.ClientSession(timeout=timeout,
                                         headers={"User-Agent": user_agent}) as session:
            app[key] = session
            yield

    return ctx


class SharedTemplateCode(jinja2.BytecodeCache):
    """Compiled templates kept for the life of the process and shared by every
    Environment given this cache: an app made again in the same process (each test's;
    a command that builds the app beside a running one) loads a template's code instead
    of parsing and compiling its source again. Jinja checks the source's checksum on every
    load, so an edited template (``WB_TEMPLATE_RELOAD``) is compiled anew. Share one only
    between Environments configured alike (extensions, autoescape): the code depends on
    them."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()
