"""The node's in-process caches (issue 24): what every signed-in page reads, held until
the database changes.

Each cache names the tables its answers are read from; an answer is served while none of
them has changed (``service.tablecache``: a trigger's NOTIFY from any process, a write
through this process's pool, any state-changing request) and, for answers that change
with time, until their deadline. Each holds at most ``WB_CACHE_ENTRIES`` entries (0
turns them off). Keys say whose answer it is: a per-viewer answer is keyed by the
session or the member, never shared.
"""

from __future__ import annotations

import math
import time
from typing import Any

import asyncpg
from aiohttp import web

from node import typedefs as T
from service.tablecache import Stamp, StampedCache, TableWatch
from service.web import UNSAFE_METHODS, Handler

# cache name -> the tables its answers are read from (migration 0290 watches each)
TABLES: dict[str, tuple[str, ...]] = {
    # session cookie -> Viewer, its roles, the public-scope mode and the unread badge
    "viewer": ("sessions", "users", "member_skins", "member_roles", "node_public_scope",
               "messages"),
    "approvals": ("auth_requests",),                  # admins' nav badge
    "pins": ("request_pins", "requests", "users"),
    "tags": ("community_tags", "request_tags"),
    "feed": ("requests", "users", "comments", "request_tags"),  # rows, HTML, JSON items
}
# A whole page for one session: everything above may show on it.
TABLES["pages"] = tuple(dict.fromkeys(t for tables in TABLES.values() for t in tables))
# Pages and fragments show relative times ("5 minutes ago", to the minute): they are
# rendered again at least this often.
PAGE_SECONDS = 5.0

caches_key: web.AppKey[dict[str, StampedCache[Any]]] = web.AppKey("caches", dict)


def get(app: web.Application, name: str) -> StampedCache[Any]:
    return app[caches_key][name]


def setup(app: web.Application) -> None:
    watch = TableWatch()
    app[T.table_watch_key] = watch
    size = app[T.config_key].get_int("WB_CACHE_ENTRIES")
    app[caches_key] = {name: StampedCache(watch, tables, size)
                       for name, tables in TABLES.items()}
    app.middlewares.append(stale_after_writes)


def valid_until(request: web.Request, deadline: float) -> None:
    """What this request read stops being true at ``deadline`` (``time.monotonic()``): a
    pin that ends, a sign-in that expires. A page cached whole is dropped by then."""
    request[T.VALID_UNTIL] = min(deadline, request.get(T.VALID_UNTIL, deadline))


def page_ttl(request: web.Request) -> float:
    """How long a whole page rendered for this request may be kept: PAGE_SECONDS, or less
    when something on it ends sooner (``valid_until``)."""
    return min(PAGE_SECONDS, request.get(T.VALID_UNTIL, math.inf) - time.monotonic())


def page_stamp(request: web.Request, viewer: T.Viewer) -> Stamp | None:
    """The stamp to store a page rendered for ``viewer`` under, or None when it must not
    be stored: the viewer the session middleware resolved must still be the cached one
    (nothing about the session, member or skin changed since it was read)."""
    app = request.app
    stamp = get(app, "pages").stamp()
    if stamp is None:
        return None
    viewers = get(app, "viewer")
    found = viewers.get(viewer.session_hash, viewers.stamp())
    if found is None or found.viewer is not viewer:
        return None
    return stamp


async def init_connection(watch: TableWatch, conn: asyncpg.Connection) -> None:
    """Pool ``init``: every statement that writes through this process moves the counters
    on the loop's next turn (before the trigger's notification arrives)."""
    conn.add_query_logger(watch.query_logger)


@web.middleware
async def stale_after_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After a state-changing request, nothing cached is served again (whatever it wrote,
    by whatever path). A refused one (4xx: nothing written, the house rule) leaves the
    caches alone, so a flood of refused posts cannot keep them cold."""
    if request.method not in UNSAFE_METHODS:
        return await handler(request)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except Exception as exc:
        status = getattr(exc, "status", 500)
        raise
    finally:
        if not 400 <= status < 500:
            request.app[T.table_watch_key].changed()
