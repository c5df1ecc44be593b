"""The public face: the feed page, health checks and metrics."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from hub import queries as Q
from hub import typedefs as T
from hub.api import head_fields
from service.health import add_health_routes


def link_target(value: str | None) -> str | None:
    """``value`` if it is an absolute http(s) URL with a host, else None: a record's
    ``Instance`` is whatever its origin signed, so only those two schemes become links
    (``javascript:``, ``data:`` and relative values are shown as text)."""
    if not value or any(c.isspace() or ord(c) < 32 for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


async def feed(request: web.Request) -> web.Response:
    await request.app[T.writes_first_key].read_turn()
    size = request.app[T.options_key].feed_page_size
    raw = request.query.get("page", "1")
    page = int(raw) if raw.isdigit() and 0 < int(raw) < 10_000 else 1
    pool = request.app[T.pool_key]
    rows = await Q.feed(pool, limit=size + 1, offset=(page - 1) * size)
    more = len(rows) > size
    rows = rows[:size]
    refs = [f"{r['origin']}/{r['id']}" for r in rows]
    comments: dict[str, list[dict[str, str]]] = {}
    for c in await Q.comments_for(pool, refs) if refs else []:
        comments.setdefault(c["parent_ref"], []).append(
            {"body": c["body"], "created_at": c["created_at"] or "",
             "by": head_fields(c["head"]).get("Created-By", "")})
    items = [{"origin": r["origin"], "id": r["id"], "instance": r["instance"] or "",
              "instance_url": link_target(r["instance"]),
              "title": r["title"] or "(untitled)", "status": r["status"] or "",
              "body": r["body"], "created_at": r["created_at"] or "",
              "comments": comments.get(f"{r['origin']}/{r['id']}", [])} for r in rows]
    return aiohttp_jinja2.render_template("hub/feed.html", request, {
        "items": items, "page": page, "more": more})


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    m = app[T.metrics_key]
    pool = app[T.pool_key]
    head, _ = await Q.log_state(pool)
    m.set_database_values(head, await Q.count_pending_bundles(pool),
                          [(str(s["id"]), s["peer_name"], s["lag"])
                           for s in await Q.subscriptions(pool)])
    return web.Response(body=m.render(), content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/", feed, name="feed")
    add_health_routes(app, T.pool_key)
    app.router.add_get("/metrics", metrics, name="metrics")
