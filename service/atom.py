"""Atom feeds and conditional GET, shared by the node and the hub.

Feeds are built with feedgen (a maintained Atom/RSS library); ``conditional`` answers
``If-None-Match`` / ``If-Modified-Since`` with 304 so feed readers that poll every few
minutes cost one small query and no body.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from aiohttp import web

ATOM_TYPE = "application/atom+xml"
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Entry:
    id: str  # a stable URI (tag: or the record's page URL)
    title: str
    link: str
    updated: dt.datetime
    published: dt.datetime | None
    content: str
    author: str | None = None


def build(*, feed_id: str, title: str, self_url: str, site_url: str,
          entries: list[Entry], subtitle: str = "") -> tuple[bytes, dt.datetime]:
    """Render an Atom document; return its bytes and the newest ``updated``."""
    # imported here: feedgen (with lxml) takes ~0.05 s to import, and every node process
    # imports this module; only a feed request needs it
    from feedgen.feed import FeedGenerator

    newest = max((e.updated for e in entries), default=EPOCH)
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(title or "(untitled)")
    fg.link(href=self_url, rel="self", type=ATOM_TYPE)
    fg.link(href=site_url, rel="alternate", type="text/html")
    if subtitle:
        fg.subtitle(subtitle)
    fg.updated(newest)
    for e in entries:
        fe = fg.add_entry(order="append")
        fe.id(e.id)
        fe.title(e.title or "(untitled)")
        fe.link(href=e.link, rel="alternate", type="text/html")
        fe.updated(e.updated)
        if e.published is not None:
            fe.published(e.published)
        fe.content(e.content, type="text")
        if e.author:
            fe.author(name=e.author)
    return fg.atom_str(pretty=True), newest


def parse_time(value: str | None) -> dt.datetime:
    """An RFC 3339 string from a record header; EPOCH when missing or unreadable."""
    if not value:
        return EPOCH
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def conditional(request: web.Request, body: bytes, last_modified: dt.datetime,
                *, content_type: str = ATOM_TYPE, cache: str = "public, max-age=60"
                ) -> web.Response:
    """200 with ETag and Last-Modified, or 304 when the client already has this body."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    last_modified = last_modified.replace(microsecond=0)
    headers = {"ETag": etag, "Last-Modified": _http_date(last_modified),
               "Cache-Control": cache}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if etag in tags or "*" in tags:
            return web.Response(status=304, headers=headers)
    elif request.if_modified_since is not None and last_modified <= request.if_modified_since:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, headers=headers,
                        content_type=content_type, charset="utf-8")


def _http_date(value: dt.datetime) -> str:
    import email.utils

    return email.utils.format_datetime(value.astimezone(dt.UTC), usegmt=True)
