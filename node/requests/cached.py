"""The feed's cached reads (#24): pages of rows shared by every member, their HTML
fragment and their JSON, the running pins and the tag catalogue, each held in the
process until a table it was read from changes (``node.caches``).

Only what looks the same to every approved member is shared (the open and completed
feeds; pending and "all" depend on the viewer and are read each time); what differs for
one member (their own items, an admin's view) is encoded for that request only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from node import caches
from node import typedefs as T
from node import web as W
from node.pins import service as pins_service
from node.requests import service as S
from node.tags import service as tags

# Feed pages that look the same to every member (open / completed) are cached in the
# process until one of the tables they are read from changes (node.caches: any process,
# any path). The HTML fragment shows relative times ("5 minutes ago"), so it is also
# re-rendered at least every caches.PAGE_SECONDS.
SHARED_STATUSES = ("open", "completed")
Stamp = tuple[int, ...] | None


async def feed(request: web.Request, actor: S.Actor | None, *, status: str, search: str,
               cursor: str, limit: int = S.FEED_PAGE, tag: str = ""
               ) -> tuple[S.FeedPage, Stamp]:
    """The feed page, from the shared cache when it does not depend on the viewer, and
    the stamp it is valid under (None: not shareable) for what is derived from it."""
    pool = request.app[T.pool_key]
    cache = caches.get(request.app, "feed")
    shared = status in SHARED_STATUSES and actor is not None and actor.active
    key = ("rows", status, search, cursor, limit, tag)
    stamp = cache.stamp() if shared else None
    page = cache.get(key, stamp)
    if page is None:
        page = await S.feed(pool, actor, status=status, search=search, cursor=cursor,
                            limit=limit, tag=tag)
        cache.put(key, stamp, page)
    return page, stamp


def feed_html(request: web.Request, page: S.FeedPage, cursor: str, stamp: Stamp) -> Markup:
    cache = caches.get(request.app, "feed")
    key = ("html", page.status, page.search, cursor, page.tag)
    html = cache.get(key, stamp)
    if html is None:
        env = aiohttp_jinja2.get_env(request.app)
        rendered = env.get_template("node/requests/_feed.html").render(
            {"page": page, "page_cursor": cursor})
        html = Markup(rendered)  # noqa: S704 (output of an autoescaping template)
        cache.put(key, stamp, html, ttl=caches.PAGE_SECONDS)
    return html


@dataclass(frozen=True)
class _FeedJson:
    """A feed page as /api/requests encodes it for a member who neither wrote any of its
    items nor is an admin: each item, the whole body, and who wrote the items."""

    items: list[str]
    body: bytes
    authors: frozenset[str]


def feed_body(request: web.Request, actor: S.Actor | None, page: S.FeedPage,
               key: tuple[Any, ...], stamp: Stamp) -> bytes:
    """The body of /api/requests. The shared encoding (cached with the page) is sent as
    it is unless this actor sees some item differently (its author, an admin:
    ``can_complete``, ``contact_email``); those items are encoded for this request."""
    cache = caches.get(request.app, "feed")
    shared: _FeedJson | None = cache.get(("json", *key), stamp)
    if shared is None:
        items = [W.json_dumps(S.request_json(S.MEMBER, r)) for r in page.items]
        shared = _FeedJson(items, _feed_envelope(items, page), frozenset(
            r["created_by"] for r in page.items if r["created_by"] is not None))
        cache.put(("json", *key), stamp, shared)
    if actor is None or not actor.is_admin and actor.user_id not in shared.authors:
        return shared.body
    return _feed_envelope([W.json_dumps(S.request_json(actor, r))
                           if actor.is_admin or r["created_by"] == actor.user_id else text
                           for r, text in zip(page.items, shared.items, strict=True)], page)


def _feed_envelope(items: list[str], page: S.FeedPage) -> bytes:
    return (f'{{"requests": [{", ".join(items)}], '
            f'"next_cursor": {W.json_dumps(page.next_cursor)}}}').encode()


async def tag_catalog(request: web.Request) -> list[Any]:
    pool = request.app[T.pool_key]
    return await caches.get(request.app, "tags").load("catalog", lambda: tags.catalog(pool))


async def pins(request: web.Request, actor: S.Actor) -> list[Any]:
    """The running pins (the same for every member), cached until a pin, request or user
    changes or the first of them ends."""
    if not actor.active:
        return []
    pool = request.app[T.pool_key]
    cache = caches.get(request.app, "pins")
    stamp = cache.stamp()
    found = cache.get_until("active", stamp)
    if found is None:
        rows = await pins_service.active(pool, actor)
        ends = [r["ends_at"] for r in rows if r["ends_at"] is not None]
        ttl = (min(ends) - dt.datetime.now(dt.UTC)).total_seconds() if ends else None
        found = rows, cache.put("active", stamp, rows, ttl=ttl)
    caches.valid_until(request, found[1])
    return found[0]
