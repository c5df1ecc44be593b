"""The hub's Atom feeds (overall and per origin), conditional GET, /llms.txt."""

from __future__ import annotations

import feedparser

from tests.hub.helpers import Origin, seed
from tests.hub.test_ingest import push

MARKER = "PRIVATE-MARKER-93b"


def _parse(body: bytes):
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    return feed


async def test_overall_and_per_origin_feeds(hub_client, hub_pool, peer, origin):
    from hub import queries as Q

    other = Origin(seed(7), "http://other.test")
    await Q.trust_key(hub_pool, other.origin, other.origin, other.public_key, "alpha")
    r1 = origin.request("A1", title="Ladder")
    secret = origin.request("A2", title=f"Secret {MARKER}", body=MARKER, scope="private")
    assert (await push(hub_client, peer, origin.bundle([r1, secret]))).status == 201
    assert (await push(hub_client, peer, other.bundle([other.request("B1", title="Soup")]))
            ).status == 201

    r = await hub_client.get("/feed.atom")
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/atom+xml")
    body = await r.read()
    assert MARKER.encode() not in body
    feed = _parse(body)
    assert sorted(e.title for e in feed.entries) == ["Ladder", "Soup"]
    etag = r.headers["ETag"]
    assert (await hub_client.get("/feed.atom", headers={"If-None-Match": etag})).status == 304
    assert (await hub_client.get("/feed.atom", headers={
        "If-Modified-Since": r.headers["Last-Modified"]})).status == 304

    r = await hub_client.get(f"/origins/{origin.origin}/feed.atom")
    assert r.status == 200
    assert [e.title for e in _parse(await r.read()).entries] == ["Ladder"]
    r = await hub_client.get(f"/origins/{other.origin}/feed.atom")
    assert [e.title for e in _parse(await r.read()).entries] == ["Soup"]
    assert (await hub_client.get("/origins/nobody/feed.atom")).status == 404
    assert (await hub_client.get("/origins/%27%20OR%201=1/feed.atom")).status == 404


async def test_hub_llms_txt(hub_client):
    r = await hub_client.get("/llms.txt")
    assert r.status == 200
    text = await r.text()
    assert text.startswith("# WhiteBalloon hub") and "/feed.atom" in text
    assert "never publishes" in text
