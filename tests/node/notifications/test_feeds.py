"""Atom feeds of the node, parsed by a real feed parser; conditional GET; /llms.txt."""

from __future__ import annotations

import logging

import feedparser

from node import typedefs as T
from service.logs import ScrubSecrets
from tests.factories import create_user, sign_in

MARKER = "PRIVATE-MARKER-7c1"


async def _seed(pool) -> str:
    owner = await create_user(pool, "olga", scope="public")
    rows = [("R1", "Public ladder", "public", "open", "a ladder for the roof"),
            ("R2", f"Secret {MARKER}", "private", "open", f"body {MARKER}"),
            ("R3", "Public but pending", "public", "pending", f"pending {MARKER}"),
            ("R4", "Public done", "public", "completed", "soup delivered")]
    for rid, title, scope, status, body in rows:
        await pool.execute("INSERT INTO requests (id, title, description, sync_scope, status, "
                           "created_by) VALUES ($1, $2, $3, $4, $5, $6)",
                           rid, title, body, scope, status, owner)
    await pool.execute("INSERT INTO requests (id, title, description, sync_scope, created_by, "
                       "deleted_at) VALUES ('R5', $1, 'gone', 'public', $2, now())",
                       f"Deleted {MARKER}", owner)
    return owner


def _parse(body: bytes):
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    return feed


async def test_public_feed_is_atom_and_carries_nothing_private(node_client, node_pool):
    await _seed(node_pool)
    r = await node_client.get("/feeds/requests.atom")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/atom+xml")
    body = await r.read()
    assert MARKER.encode() not in body
    feed = _parse(body)
    assert sorted(e.title for e in feed.entries) == ["Public done", "Public ladder"]
    assert {e.link for e in feed.entries} == {"http://node.test/requests/R1",
                                              "http://node.test/requests/R4"}
    assert feed.feed.links[0].href == "http://node.test/feeds/requests.atom"

    # conditional GET: same ETag -> 304 without a body; a change -> a new ETag
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    r = await node_client.get("/feeds/requests.atom", headers={"If-None-Match": etag})
    assert r.status == 304 and await r.read() == b""
    r = await node_client.get("/feeds/requests.atom", headers={"If-Modified-Since": modified})
    assert r.status == 304
    r = await node_client.get("/feeds/requests.atom", headers={"If-None-Match": '"other"'})
    assert r.status == 200
    await node_pool.execute("UPDATE requests SET title = 'Public ladder, urgent' "
                            "WHERE id = 'R1'")
    # HTTP dates have whole seconds: the change is dated a little later than the copy
    await node_pool.execute("UPDATE requests SET updated_at = updated_at + interval '2 s' "
                            "WHERE id = 'R1'")
    r = await node_client.get("/feeds/requests.atom", headers={"If-None-Match": etag})
    assert r.status == 200 and r.headers["ETag"] != etag
    assert "Public ladder, urgent" in [e.title for e in _parse(await r.read()).entries]
    r = await node_client.get("/feeds/requests.atom", headers={"If-Modified-Since": modified})
    assert r.status == 200  # the change is newer than the copy the reader holds


async def test_member_feed_token_revocable_and_never_logged(aiohttp_client, node_client,
                                                           node_pool, caplog):
    caplog.set_level(logging.DEBUG)
    owner = await _seed(node_pool)
    csrf = await sign_in(node_client, owner)
    r = await node_client.post("/settings/notifications/feed", data={"csrf_token": csrf},
                               headers={"Accept": "application/json"})
    assert r.status == 200
    url = (await r.json())["feed_url"]
    assert url.startswith("http://node.test/feeds/mine.atom?token=")
    token = url.split("token=", 1)[1]
    assert token not in await (await node_client.get("/settings/notifications")).text()

    anon = await aiohttp_client(node_client.server)
    r = await anon.get(f"/feeds/mine.atom?token={token}")
    assert r.status == 200, await r.text()
    feed = _parse(await r.read())
    titles = {e.title for e in feed.entries}
    assert f"Secret {MARKER}" in titles and "Public but pending" in titles  # hers to see
    assert f"Deleted {MARKER}" not in titles
    etag = r.headers["ETag"]
    r = await anon.get(f"/feeds/mine.atom?token={token}", headers={"If-None-Match": etag})
    assert r.status == 304

    # another member's pending request stays out of her feed
    other = await create_user(node_pool, "zed")
    await node_pool.execute("INSERT INTO requests (id, title, description, status, created_by)"
                            " VALUES ('Z1', 'Zed pending', 'x', 'pending', $1)", other)
    r = await anon.get(f"/feeds/mine.atom?token={token}")
    assert "Zed pending" not in {e.title for e in _parse(await r.read()).entries}

    for bad in ("", "nope", token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 500):
        r = await anon.get(f"/feeds/mine.atom?token={bad}")
        assert r.status == 404, bad
    r = await node_client.post("/settings/notifications/feed/revoke",
                               data={"csrf_token": csrf}, allow_redirects=False)
    assert r.status == 303
    r = await anon.get(f"/feeds/mine.atom?token={token}")
    assert r.status == 404
    # a disabled member's feed dies with the account
    r = await node_client.post("/settings/notifications/feed", data={"csrf_token": csrf},
                               headers={"Accept": "application/json"})
    token2 = (await r.json())["feed_url"].split("token=", 1)[1]
    await node_pool.execute("UPDATE users SET disabled = true WHERE id = $1", owner)
    assert (await anon.get(f"/feeds/mine.atom?token={token2}")).status == 404

    # what the log handler writes: every record passes the node's secret filter (the test
    # server even keeps an access log, which `wb serve` turns off)
    scrub = ScrubSecrets()
    assert any("/feeds/mine.atom" in rec.getMessage() for rec in caplog.records)
    for rec in caplog.records:
        scrub.filter(rec)
    logged = "\n".join(rec.getMessage() + " " + str(vars(rec)) for rec in caplog.records)
    assert token not in logged and token2 not in logged
    assert "/feeds/mine.atom?token=[redacted]" in logged


async def test_llms_txt(node_client):
    r = await node_client.get("/llms.txt")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = await r.text()
    assert text.startswith("# WhiteBalloon\n")
    assert "http://node.test/feeds/requests.atom" in text
    assert "never publishes" in text
    r = await node_client.get(f"/feeds/mine.atom?token={T.__name__}")
    assert r.status == 404
