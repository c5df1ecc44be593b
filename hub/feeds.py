"""Atom feeds of the hub's public index (overall and per origin) and /llms.txt.

The index holds public records only (ingest never stores anything else), so the feeds
can carry nothing else either. Every feed answers conditional GETs (ETag,
Last-Modified) so readers polling it cost a query and no body.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from aiohttp import web

from hub import queries as Q
from hub import typedefs as T
from service import atom

FEED_ENTRIES = 50
_ORIGIN = re.compile(r"^[0-9A-Za-z_.:-]{1,128}$")


def _entries(hub_url: str, rows: list) -> list[atom.Entry]:
    out = []
    for r in rows:
        link = f"{(r['instance'] or hub_url).rstrip('/')}/requests/{quote(r['id'])}"
        out.append(atom.Entry(
            id=f"tag:whiteballoon,2025:{r['origin']}/request/{r['id']}",
            title=r["title"] or "(untitled)", link=link,
            updated=atom.parse_time(r["updated_at"]),
            published=atom.parse_time(r["created_at"]) if r["created_at"] else None,
            content=f"[{r['status'] or 'open'}] {r['body']}", author=r["instance"] or None))
    return out


async def overall(request: web.Request) -> web.StreamResponse:
    await request.app[T.writes_first_key].read_turn()
    hub_url = request.app[T.config_key]["WB_HUB_URL"].rstrip("/")
    rows = await Q.feed(request.app[T.pool_key], limit=FEED_ENTRIES, offset=0)
    body, newest = atom.build(
        feed_id=f"{hub_url}/feed.atom", title="WhiteBalloon hub: public requests",
        self_url=f"{hub_url}/feed.atom", site_url=f"{hub_url}/",
        entries=_entries(hub_url, rows),
        subtitle="Public help requests relayed by this hub, from every origin.")
    return atom.conditional(request, body, newest)


async def per_origin(request: web.Request) -> web.StreamResponse:
    await request.app[T.writes_first_key].read_turn()
    origin = request.match_info["origin"]
    if not _ORIGIN.match(origin):
        raise web.HTTPNotFound(reason="unknown origin")
    hub_url = request.app[T.config_key]["WB_HUB_URL"].rstrip("/")
    pool = request.app[T.pool_key]
    if not await Q.origin_known(pool, origin):
        raise web.HTTPNotFound(reason="unknown origin")
    rows = await Q.feed_of_origin(pool, origin, limit=FEED_ENTRIES)
    self_url = f"{hub_url}/origins/{origin}/feed.atom"
    body, newest = atom.build(
        feed_id=self_url, title=f"WhiteBalloon hub: public requests of {origin}",
        self_url=self_url, site_url=f"{hub_url}/", entries=_entries(hub_url, rows))
    return atom.conditional(request, body, newest)


LLMS_TXT = """# WhiteBalloon hub

> A relay of the WhiteBalloon mutual-aid network. It verifies the signed .sync.txt
> bundles that community nodes publish, indexes their public records and forwards them
> to subscribers.

## Public pages and documents

- [Public requests]({hub}/): the feed page
- [Public requests (Atom)]({hub}/feed.atom); per origin: {hub}/origins/ORIGIN/feed.atom
- [Origins and their keys (JSON)]({hub}/api/v2/origins)
- [Public records (JSON)]({hub}/api/v2/records)
- [Hub metadata]({hub}/.well-known/whiteballoon-hub)
- [OpenAPI]({hub}/openapi.json)

## What this hub never publishes

- Records that their origin did not mark `public`: it refuses to index, store or forward
  them. Deleted or re-scoped records are forgotten when their tombstone arrives.
- Peer tokens, admin sessions, and the hub's private key.
"""


async def llms_txt(request: web.Request) -> web.Response:
    hub_url = request.app[T.config_key]["WB_HUB_URL"].rstrip("/")
    return web.Response(text=LLMS_TXT.format(hub=hub_url), content_type="text/plain",
                        charset="utf-8", headers={"Cache-Control": "public, max-age=3600"})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/feed.atom", overall, name="feed_atom")
    r.add_get("/origins/{origin}/feed.atom", per_origin, name="origin_feed_atom")
    r.add_get("/llms.txt", llms_txt, name="llms_txt")
