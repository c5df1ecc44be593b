"""Request plumbing shared by every node feature: errors, sessions, CSRF, headers.

Handlers stay thin: they call ``viewer_of`` / ``require_active`` for access, raise
``AppError`` for anything the client got wrong, and use ``respond`` to answer HTML or
JSON from the same code path.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from node import caches
from node import queries_web as QW
from node import typedefs as T
from node.canonical import link_base
from node.errors import AppError, forbidden
from node.requests.permissions import Actor
from node.skins import catalog as skin_catalog
from service import web as plumbing
from service.web import UNSAFE_METHODS, Handler

log = logging.getLogger("wb.node.web")

SESSION_COOKIE = "wb_session_id"
ANON_CSRF_COOKIE = "wb_csrf"


def csrf_exempt(handler: Handler) -> Handler:
    """Mark a handler that authenticates by bearer token, never by cookie."""
    handler.wb_csrf_exempt = True  # type: ignore[attr-defined]
    return handler


def wants_json(request: web.Request) -> bool:
    # the API and the peers' inbox answer JSON whatever the client accepts (also when the
    # route policy refuses before the handler runs)
    return plumbing.wants_json(request, ("/api/", "/sync/inbox"))


def client_ip(request: web.Request) -> str:
    if request.app[T.config_key].get_bool("WB_TRUST_PROXY"):
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.remote or ""


def viewer_of(request: web.Request) -> T.Viewer | None:
    return request.get(T.VIEWER)


def actor(request: web.Request) -> Actor | None:
    """Who acts in this request (None when no one is signed in), for the services."""
    return Actor.of(viewer_of(request), client_ip(request))


def require_viewer(request: web.Request) -> T.Viewer:
    viewer = viewer_of(request)
    if viewer is None:
        if wants_json(request):
            raise AppError(401, "login_required", "Sign in first.")
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
    return viewer


def require_active(request: web.Request) -> T.Viewer:
    viewer = require_viewer(request)
    if not viewer.active:
        raise forbidden("session_not_approved",
                        "This device is waiting for approval; ask your other device or an admin.")
    return viewer


def require_admin(request: web.Request) -> T.Viewer:
    viewer = require_active(request)
    if not viewer.is_admin:
        raise forbidden("admin_only", "Only an admin may do that.")
    return viewer


def session_hash(cookie_value: str) -> str:
    return plumbing.cookie_hash(cookie_value)


def set_session_cookie(request: web.Request, response: web.StreamResponse, value: str,
                       max_age: int) -> None:
    config = request.app[T.config_key]
    response.set_cookie(SESSION_COOKIE, value, max_age=max_age, httponly=True,
                        samesite="Lax", secure=config.https, path="/")


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


def template_context(request: web.Request) -> dict[str, Any]:
    """What every page needs: the viewer, the CSRF token, the site's name and URL."""
    config = request.app[T.config_key]
    return {
        "viewer": viewer_of(request),
        "csrf_token": request.get(T.CSRF_TOKEN, ""),
        "site_name": config["SITE_NAME"],
        "site_url": link_base(config),
        "request_path": request.path,
        "waiting_approvals": request.get(T.WAITING_APPROVALS, 0),
        "public_scope": public_scope(request),
        "messages_on": config.get_bool("WB_MESSAGES"),
        "unread_messages": request.get(T.UNREAD_MESSAGES, 0),
        **skin_context(request),
    }


def public_scope(request: web.Request) -> str:
    """SYNC_PUBLIC_SCOPE in force, for what a page offers (the service decides again on
    every change): read with the session, else as this process last saw it, else the
    setting."""
    mode = request.get(T.PUBLIC_SCOPE) or request.app[T.extras_key].get("public_scope")
    return mode or request.app[T.config_key]["SYNC_PUBLIC_SCOPE"].strip().lower() \
        or "members"


def skin_context(request: web.Request) -> dict[str, Any]:
    """The skin of this page: an admin's ``?skin=`` preview, else the member's choice,
    else WB_SKIN, else the default."""
    skins = skin_catalog.catalog()
    viewer = viewer_of(request)
    preview = request.query.get("skin", "")
    name = None
    if preview and viewer is not None and viewer.is_admin and viewer.active \
            and preview in skins:
        name = preview
    else:
        preview = ""
    for candidate in (name, request.get(T.SKIN), request.app[T.config_key]["WB_SKIN"],
                      skin_catalog.DEFAULT_SKIN):
        if candidate in skins:
            name = candidate
            break
    skin = skins.get(name or "")
    return {"skin": name, "skin_href": skin.href if skin else "", "skin_preview": preview,
            "member_skin": request.get(T.SKIN), "skins": list(skins.values())}


def render(request: web.Request, template: str, context: dict[str, Any] | None = None,
           *, status: int = 200) -> web.Response:
    """Render a page with the common context merged in."""
    full = template_context(request)
    full.update(context or {})
    return aiohttp_jinja2.render_template(template, request, full, status=status)


async def respond(request: web.Request, template: str, context: dict[str, Any],
                  *, json_body: Any = None, status: int = 200) -> web.StreamResponse:
    """Answer with a rendered page, or with JSON when the client asked for it."""
    if json_body is not None and wants_json(request):
        return web.json_response(json_body, status=status, dumps=json_dumps)
    return render(request, template, context, status=status)


def json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=json_default, ensure_ascii=False)


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


# --------------------------------------------------------------------------- middlewares

def _classify(exc: Exception) -> tuple[int, str, str, dict[str, Any]] | None:
    if isinstance(exc, AppError):
        return exc.status, exc.code, exc.message, exc.fields
    return None


async def _error_response(request: web.Request, status: int, code: str, message: str,
                          fields: dict[str, str]) -> web.StreamResponse:
    if wants_json(request):
        body: dict[str, Any] = {"error": {"code": code, "message": message}}
        if fields:
            body["error"]["fields"] = fields
        return web.json_response(body, status=status)
    try:
        return render(request, "node/error.html",
                      {"status": status, "code": code, "message": message, "fields": fields},
                      status=status)
    except Exception:
        log.exception("error page failed to render")
        return web.Response(status=status, text=f"{status} {code}: {message}\n")


error_middleware = plumbing.error_middleware(
    _error_response, _classify, log=log,
    internal_message="Something went wrong on our side. It was logged.")


# Last-seen is kept to the minute: a write per page view would halve the throughput of
# every signed-in page. Migration 0290's trigger and the cache's query logger both leave
# that statement out, so the touch does not make every cached session stale.
TOUCH_EVERY = 60.0


@dataclass
class _Session:
    viewer: T.Viewer
    skin: str | None
    touched: float  # time.monotonic() of the last-seen stored in the database
    public_scope: str | None  # SYNC_PUBLIC_SCOPE in force (an admin may switch it)
    unread_messages: int  # direct messages' nav badge


async def _session(app: web.Application, id_hash: str) -> _Session | None:
    """The live session of this cookie hash, from the viewer cache until a session, user
    or skin changes (or it expires)."""
    pool = app[T.pool_key]
    cache = caches.get(app, "viewer")
    stamp = cache.stamp()
    found = cache.get(id_hash, stamp)
    now = time.monotonic()
    if found is None:
        row = await QW.session_by_hash(pool, id_hash)
        if row is None:
            return None
        found = _Session(
            T.Viewer(user_id=row["id"], username=row["username"],
                     display_name=row["display_name"] or row["username"],
                     is_admin=row["is_admin"], status=row["status"],
                     session_hash=row["id_hash"], roles=frozenset(row["roles"])),
            row["skin"], now - row["seen_ago"], row["public_scope"], row["unread_messages"])
        cache.put(id_hash, stamp, found, ttl=row["expires_in"])
    if now - found.touched >= TOUCH_EVERY:
        found.touched = now
        app[T.table_watch_key].ignored.add(QW.TOUCH_SESSION)
        await QW.touch_session(pool, id_hash)
    return found


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the session cookie to a Viewer (or None) and touch last-seen."""
    request[T.VIEWER] = None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and len(cookie) <= 128:
        found = await _session(request.app, session_hash(cookie))
        if found is not None:
            request[T.VIEWER] = found.viewer
            request[T.SKIN] = found.skin
            request[T.PUBLIC_SCOPE] = found.public_scope
            # direct messages' nav badge: folded into the session query, no round trip
            request[T.UNREAD_MESSAGES] = found.unread_messages
    return await handler(request)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_json_object(request: web.Request) -> dict[str, Any] | None:
    """The JSON object sent as ``application/json`` (None for any other body, so the caller
    reads its form): one place answers 400 ``invalid_json`` for bad JSON or a non-object."""
    if request.content_type != "application/json":
        return None
    try:
        data = await request.json()
    except ValueError:
        raise AppError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise AppError(400, "invalid_json", "Send a JSON object.")
    try:  # "\ud800" is valid JSON, yet half a UTF-16 pair: no UTF-8, a 500 at the database
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise AppError(400, "invalid_json", "The body holds text that is not valid Unicode "
                       "(half of a UTF-16 surrogate pair).") from None
    return data


async def read_fields(request: web.Request, lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON object sent, or the form's text fields (the last value of each, files left
    out); the fields named in ``lists`` are lists of every text value given."""
    data = await read_json_object(request)
    if data is not None:
        return data
    form = await read_form(request)
    out: dict[str, Any] = {k: v for k, v in form.items()
                           if isinstance(v, str) and k not in lists}
    for name in lists:
        out[name] = [v for v in form.getall(name, []) if isinstance(v, str)]
    return out


async def read_form(request: web.Request) -> Any:
    """``request.post()``, with a malformed body answered as 400 ``malformed_body``."""
    try:
        return await request.post()
    except web.HTTPException:
        raise
    except (ValueError, UnicodeDecodeError, AssertionError, LookupError) as exc:
        raise AppError(400, "malformed_body",
                       "The form data could not be read (malformed body).") from exc


@functools.lru_cache(maxsize=4096)
def _csrf_token(secret: bytes, base: str) -> str:
    """An HMAC per request and session is ~3% of a cached page: the token of a session
    (or anonymous cookie) never changes, so recent ones are kept."""
    return plumbing.csrf_token(secret, base)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every state-changing request that relies on cookies must carry the CSRF token."""
    secret = request.app[T.csrf_secret_key]
    viewer = viewer_of(request)
    anon_cookie = request.cookies.get(ANON_CSRF_COOKIE)
    new_anon: str | None = None
    if viewer is not None:
        base = viewer.session_hash
    elif anon_cookie and 16 <= len(anon_cookie) <= 64:
        base = anon_cookie
    else:
        new_anon = secrets.token_urlsafe(24)
        base = new_anon
    expected = _csrf_token(secret, base)
    request[T.CSRF_TOKEN] = expected
    # Bearer-token endpoints (/mcp, /sync/inbox) neither check nor hand out CSRF cookies.
    exempt = getattr(getattr(request.match_info, "handler", None), "wb_csrf_exempt", False)

    if request.method in UNSAFE_METHODS:
        if not exempt:
            sent = request.headers.get("X-CSRF-Token", "")
            if request.content_type in FORM_TYPES:
                # Read (and cache) the form here, so a malformed body is one clear 400 for
                # every handler instead of a ValueError deep inside one of them.
                form = await read_form(request)
                value = form.get("csrf_token", "")
                if not sent:
                    sent = value if isinstance(value, str) else ""
            if new_anon is not None or not plumbing.csrf_matches(sent, expected):
                raise AppError(403, "csrf_failed",
                               "The form expired or did not come from this site. "
                               "Reload the page and try again.")

    response = await handler(request)
    if new_anon is not None and not exempt:
        response.set_cookie(ANON_CSRF_COOKIE, new_anon, httponly=True, samesite="Lax",
                            secure=request.app[T.config_key].https, path="/")
    return response


headers_middleware = plumbing.headers_middleware(
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    no_store=lambda request: request.get(T.VIEWER) is not None)
