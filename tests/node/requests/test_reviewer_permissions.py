"""A reviewer (#23: a member an admin designated to approve sign-ins) holds exactly a
member's rights in the community features: the role approves sign-ins and nothing else.
Pins and the tag list stay admin-only, a draft stays its owner's, a comment is promoted by
its author or an admin, and what a member may do a reviewer may do too."""

from __future__ import annotations

from service.ids import ulid
from tests.node.requests.test_pins import _pins, _request
from tests.node.requests.test_promotions import _thread

JSON = {"Accept": "application/json"}


async def test_a_reviewer_cannot_pin_or_manage_tags(member_factory, pool):
    ann = await member_factory("ann")
    rev = await member_factory("rita", roles=("reviewer",))
    rid = await _request(pool, ann.user_id, "Ladder")
    for path, form in ((f"/requests/{rid}/pin", {"position": "1"}), ("/admin/pins", {}),
                       ("/admin/tags", {"name": "food", "colour": "#000080"})):
        r = await rev.post(path, form, json_reply=True)
        assert r.status == 403, (path, r.status)
    for path in ("/admin/pins", "/admin/tags"):
        r = await rev.client.get(path, headers=JSON, allow_redirects=False)
        assert r.status == 403, path
    assert await _pins(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM community_tags") == 0


async def test_a_reviewer_cannot_see_or_touch_another_members_draft(member_factory, pool):
    mel = await member_factory("mel")
    rev = await member_factory("rita", roles=("reviewer",))
    r = await mel.api_post("/api/drafts", {"title": "Rent help", "description": "private"})
    assert r.status == 201
    draft_id = (await r.json())["draft"]["id"]
    r = await rev.client.get(f"/drafts/{draft_id}", headers=JSON, allow_redirects=False)
    assert r.status == 404
    for path in (f"/drafts/{draft_id}/publish", f"/drafts/{draft_id}/delete"):
        r = await rev.post(path, json_reply=True)
        assert r.status == 404, path
    assert await pool.fetchval("SELECT count(*) FROM request_drafts") == 1
    assert await pool.fetchval("SELECT count(*) FROM requests") == 0
    # ...and keeps drafts of their own like any member
    r = await rev.api_post("/api/drafts", {"title": "Own draft", "description": "mine"})
    assert r.status == 201


async def test_a_reviewer_promotes_only_their_own_comments(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    rev = await member_factory("rita", roles=("reviewer",))
    _rid, cid = await _thread(pool, ann.user_id, bob.user_id, "a lift on Sunday?")
    r = await rev.post(f"/comments/{cid}/promote", json_reply=True)
    assert r.status == 403
    assert await pool.fetchval("SELECT count(*) FROM requests") == 1
    _rid2, own = await _thread(pool, ann.user_id, rev.user_id, "I can bring soup")
    r = await rev.post(f"/comments/{own}/promote", {"title": "Soup"}, json_reply=True)
    assert r.status == 201


async def test_a_reviewer_tags_only_their_own_requests(member_factory, pool):
    admin = await member_factory("ada", admin=True)
    ann = await member_factory("ann")
    rev = await member_factory("rita", roles=("reviewer",))
    r = await admin.post("/admin/tags", {"name": "food", "colour": "#000080"})
    assert r.status == 303
    theirs = await _request(pool, ann.user_id, "Soup")
    r = await rev.post(f"/requests/{theirs}/tags", {"tags": "food"}, json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "cannot_tag"
    own = ulid()
    await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                       "VALUES ($1, 'Bread', 'b', $2)", own, rev.user_id)
    r = await rev.post(f"/requests/{own}/tags", {"tags": "food"}, json_reply=True)
    assert r.status == 200 and (await r.json())["tags"] == ["food"]
