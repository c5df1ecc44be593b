"""A comment promoted to its own request (#23): by its author or an admin only, once, the
link shown both ways, the new request private whatever the comment's scope, and nothing of
a private comment leaving through the promotion."""

from __future__ import annotations

import asyncio

import pytest

from node import typedefs as T
from node.errors import AppError
from node.promotions import service as PS
from node.requests.service import Actor
from node.sync.service import run_export
from protocol.containers import to_targz
from service.ids import ulid

MARKER = "PROMOTE-PRIVATE-MARKER-3b8"


async def _thread(pool, owner: str, commenter: str, body: str, *,
                  scope: str = "private", req_scope: str = "public") -> tuple[str, str]:
    rid, cid = ulid(), ulid()
    await pool.execute("INSERT INTO requests (id, title, description, created_by, sync_scope) "
                       "VALUES ($1, 'Garden day', 'weeding', $2, $3)", rid, owner, req_scope)
    await pool.execute("INSERT INTO comments (id, request_id, created_by, body, sync_scope) "
                       "VALUES ($1, $2, $3, $4, $5)", cid, rid, commenter, body, scope)
    return rid, cid


async def test_author_promotes_and_the_link_shows_both_ways(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    rid, cid = await _thread(pool, ann.user_id, bob.user_id,
                             "Also: does anyone have a wheelbarrow to lend?", scope="public")
    r = await bob.post(f"/comments/{cid}/promote", {"title": ""})
    assert r.status == 303
    new_id = r.headers["Location"].rsplit("/", 1)[1]
    row = await pool.fetchrow("SELECT * FROM requests WHERE id = $1", new_id)
    assert row["created_by"] == bob.user_id and row["status"] == "open"
    assert row["sync_scope"] == "private"  # a public comment does not make it public
    assert row["title"] == "Also: does anyone have a wheelbarrow to lend?"
    assert row["description"] == "Also: does anyone have a wheelbarrow to lend?"

    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert f'href="/requests/{new_id}"' in page and "Became its own request" in page
    page = await (await ann.client.get(f"/requests/{new_id}")).text()
    assert f'href="/requests/{rid}#c-{cid}"' in page and "Garden day" in page

    r = await bob.post(f"/comments/{cid}/promote", json_reply=True)
    assert r.status == 409 and (await r.json())["error"]["code"] == "comment_already_promoted"
    assert await pool.fetchval("SELECT count(*) FROM requests") == 2
    assert await pool.fetchval("SELECT count(*) FROM audit_log "
                               "WHERE action = 'comment.promote' AND target = $1", cid) == 1


async def test_who_may_promote(member_factory, pool, aiohttp_client, node_client):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    admin = await member_factory("ada", admin=True)
    waiting = await member_factory("wes", status="pending")
    rid, cid = await _thread(pool, ann.user_id, bob.user_id, "a lift on Sunday?")
    anon = await aiohttp_client(node_client.server)
    token = (await (await anon.get("/api/csrf")).json())["csrf_token"]
    for who, client, csrf, status in (("anonymous", anon, token, (401, 403)),
                                      ("unapproved", waiting.client, waiting.csrf, (401, 403)),
                                      ("request owner", ann.client, ann.csrf, (403,))):
        r = await client.post(f"/comments/{cid}/promote", data={"csrf_token": csrf},
                              headers={"Accept": "application/json"}, allow_redirects=False)
        assert r.status in status, (who, r.status)
    # the request owner (not the comment's author) sees no promote form either
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert f"/comments/{cid}/promote" not in page
    assert await pool.fetchval("SELECT count(*) FROM requests") == 1

    r = await admin.post(f"/comments/{cid}/promote", {"title": "Lift on Sunday"},
                         json_reply=True)
    assert r.status == 201
    body = await r.json()
    assert body["request"]["title"] == "Lift on Sunday"
    # written by the comment's author, not by the admin who promoted it
    assert await pool.fetchval("SELECT created_by FROM requests WHERE id = $1",
                               body["request"]["id"]) == bob.user_id


async def test_deleted_remote_unknown_and_hidden_comments_are_refused(member_factory, pool):
    bob = await member_factory("bob")
    admin = await member_factory("ada", admin=True)
    _, deleted = await _thread(pool, bob.user_id, bob.user_id, "gone")
    await pool.execute("UPDATE comments SET deleted_at = now() WHERE id = $1", deleted)
    rid, remote = await _thread(pool, bob.user_id, bob.user_id, "from afar")
    await pool.execute("UPDATE comments SET origin = 'other.example', origin_id = 'x1', "
                       "instance = 'other.example' WHERE id = $1", remote)
    pending_rid, hidden = await _thread(pool, admin.user_id, admin.user_id, "hidden")
    await pool.execute("UPDATE requests SET status = 'pending' WHERE id = $1", pending_rid)
    for cid, client, code in ((deleted, bob, "cannot_promote"),
                              (remote, admin, "comment_remote"),
                              ("NOPE", bob, "comment_not_found"),
                              (hidden, bob, "request_not_found")):
        r = await client.post(f"/comments/{cid}/promote", json_reply=True)
        assert (await r.json())["error"]["code"] == code, cid
        assert r.status in (403, 404, 409)
    r = await bob.api_post(f"/comments/{rid}/promote", {"title": ["x"]})
    assert r.status in (400, 404)
    assert await pool.fetchval("SELECT count(*) FROM comment_promotions") == 0


async def test_racing_promotions_make_one_request(member_factory, pool):
    bob = await member_factory("bob")
    admin = await member_factory("ada", admin=True)
    _, cid = await _thread(pool, bob.user_id, bob.user_id, "twice?")
    results = await asyncio.gather(
        PS.promote(pool, Actor(bob.user_id, False, True), cid),
        PS.promote(pool, Actor(admin.user_id, True, True), cid),
        PS.promote(pool, Actor(bob.user_id, False, True), cid), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, Exception)]
    assert len(ok) == 1
    assert all(isinstance(r, AppError) and r.code == "comment_already_promoted"
               for r in results if isinstance(r, Exception))
    assert await pool.fetchval("SELECT count(*) FROM requests") == 2


@pytest.mark.parametrize("scope", ["private", "public"])
async def test_a_promoted_comment_leaves_only_if_it_was_already_public(member_factory, pool,
                                                                       node_client, scope):
    bob = await member_factory("bob")
    await pool.execute("UPDATE users SET sync_scope = 'public' WHERE id = $1", bob.user_id)
    _, cid = await _thread(pool, bob.user_id, bob.user_id, f"body {MARKER}", scope=scope)
    r = await bob.post(f"/comments/{cid}/promote", {"title": f"title {MARKER}"})
    assert r.status == 303
    res = await run_export(pool, node_client.server.app[T.config_key], snapshot=True)
    blob = res.envelope + to_targz(res.bundle)
    assert b"Garden day" in blob
    assert (f"title {MARKER}".encode() in blob) is False  # the new request is private
    assert (f"body {MARKER}".encode() in blob) is (scope == "public")  # only the comment
    feed = await (await node_client.get("/feeds/requests.atom")).text()
    assert f"title {MARKER}" not in feed
