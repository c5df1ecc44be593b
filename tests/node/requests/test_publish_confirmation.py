"""Publishing asks first: a plain form post that would make something public shows a
confirmation page and changes nothing; only the confirmed post publishes. Badges never
claim that something leaves when it does not."""

from __future__ import annotations

from tests.node.requests.test_requests import _insert


async def _add_request(pool, user_id, title):
    return await _insert(pool, user_id, title=title, description=f"{title}, please")


async def _comment(pool, request_id, user_id, scope="private"):
    from service.ids import ulid

    cid = ulid()
    await pool.execute("INSERT INTO comments (id, request_id, created_by, body, sync_scope) "
                       "VALUES ($1, $2, $3, 'I can help on Sunday.', $4)",
                       cid, request_id, user_id, scope)
    return cid


async def test_a_form_post_asks_before_publishing(member_factory, pool):
    ann = await member_factory("ann")
    rid = await _add_request(pool, ann.user_id, "Borrow a ladder")
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "public"})
    assert r.status == 200
    page = await r.text()
    assert "Share this request with other communities?" in page
    assert 'name="confirm" value="1"' in page and "Written by you." in page
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "private"
    assert await pool.fetchval("SELECT count(*) FROM audit_log "
                               "WHERE action LIKE '%scope%'") == 0
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "public", "confirm": "1"})
    assert r.status == 303 and r.headers["Location"] == f"/requests/{rid}"
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "public"
    # keeping something home needs no confirmation
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "private"})
    assert r.status == 303
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "private"


async def test_the_admin_is_told_whose_request_it_is(member_factory, pool):
    ann = await member_factory("ann")
    root = await member_factory("root", admin=True)
    rid = await _add_request(pool, ann.user_id, "Soup")
    page = await (await root.post(f"/requests/{rid}/scope", {"sync_scope": "public"})).text()
    assert "Written by <strong>Ann</strong>, not by you" in page
    detail = await (await root.client.get(f"/requests/{rid}")).text()
    assert "It was written by Ann, not by you." in detail  # the JS dialog says it too


async def test_someone_else_gets_no_confirmation_page(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    rid = await _add_request(pool, ann.user_id, "Soup")
    cid = await _comment(pool, rid, ann.user_id)
    for path in (f"/requests/{rid}/scope", f"/comments/{cid}/scope"):
        r = await bob.post(path, {"sync_scope": "public"})
        assert r.status == 403, path
        assert "Share this" not in await r.text()
    r = await bob.post(f"/comments/{cid}/scope", {"sync_scope": "public", "confirm": "1"})
    assert r.status == 403
    assert await pool.fetchval("SELECT sync_scope FROM comments WHERE id=$1", cid) == "private"


async def test_comment_publication_is_confirmed_too(member_factory, pool):
    ann = await member_factory("ann")
    rid = await _add_request(pool, ann.user_id, "Soup")
    cid = await _comment(pool, rid, ann.user_id)
    r = await ann.post(f"/comments/{cid}/scope", {"sync_scope": "public"})
    assert r.status == 200 and "Share this comment" in await r.text()
    assert await pool.fetchval("SELECT sync_scope FROM comments WHERE id=$1", cid) == "private"
    r = await ann.post(f"/comments/{cid}/scope", {"sync_scope": "public", "confirm": "1"})
    assert r.status == 303
    assert await pool.fetchval("SELECT sync_scope FROM comments WHERE id=$1", cid) == "public"


async def test_a_public_comment_on_a_private_request_says_it_stays(member_factory, pool):
    ann = await member_factory("ann")
    rid = await _add_request(pool, ann.user_id, "Soup")
    await _comment(pool, rid, ann.user_id, scope="public")
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert "public · held back, request is private" in page
    assert "public · shared" not in page
    await pool.execute("UPDATE requests SET sync_scope = 'public' WHERE id = $1", rid)
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert page.count("public · shared") == 2  # the request and its comment
