"""Visibility of /profile, /people/{username}, /members for self, member, admin, logged out."""

from __future__ import annotations

import pytest

from service.ids import ulid
from tests.factories import create_user, sign_in

JSON = {"Accept": "application/json"}


async def _world(pool):
    """root(admin) → ann(private) → bob(public), cat(private); dan(public) by root;
    eve(private) by root; zed(public, disabled)."""
    w = {}
    w["root"] = await create_user(pool, "root", admin=True)
    w["ann"] = await create_user(pool, "ann", invited_by=w["root"], email="ann@example.org")
    w["bob"] = await create_user(pool, "bob", scope="public", invited_by=w["ann"],
                                 email="bob@example.org", share_contact=True)
    w["cat"] = await create_user(pool, "cat", invited_by=w["ann"])
    w["dan"] = await create_user(pool, "dan", scope="public", invited_by=w["root"],
                                 email="dan@example.org")
    w["eve"] = await create_user(pool, "eve", invited_by=w["root"])
    w["zed"] = await create_user(pool, "zed", scope="public", invited_by=w["root"])
    await pool.execute("UPDATE users SET disabled = true WHERE id = $1", w["zed"])
    return w


async def _request(pool, user_id, title, status="open"):
    rid = ulid()
    await pool.execute(
        "INSERT INTO requests (id, title, description, status, created_by) "
        "VALUES ($1, $2, 'please help', $3, $4)", rid, title, status, user_id)
    return rid


@pytest.mark.parametrize("path", ["/profile", "/people/bob", "/members", "/invite/map",
                                  "/invite/map.svg", "/settings/account", "/admin/profiles"])
async def test_logged_out_is_sent_to_login(node_client, node_pool, path):
    await _world(node_pool)
    r = await node_client.get(path, allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"].startswith("/login?next=")
    r = await node_client.get(path, headers=JSON, allow_redirects=False)
    assert r.status == 401
    assert (await r.json())["error"]["code"] == "login_required"


@pytest.mark.parametrize("path", ["/profile", "/people/bob", "/members", "/invite/map",
                                  "/settings/account"])
async def test_half_authenticated_session_is_refused(node_client, node_pool, path):
    w = await _world(node_pool)
    await sign_in(node_client, w["bob"], status="pending")
    r = await node_client.get(path, headers=JSON)
    assert r.status == 403
    assert (await r.json())["error"]["code"] == "session_not_approved"


async def test_people_visibility_for_a_member(node_client, node_pool):
    w = await _world(node_pool)
    await sign_in(node_client, w["ann"])
    # every live member of the community, private or public, invited by ann or not
    # (name and bio are for members; scope only says what leaves the community)
    for name in ("bob", "cat", "root", "dan", "ann", "eve"):
        r = await node_client.get(f"/people/{name}", headers=JSON)
        assert r.status == 200, name
    # a disabled member and nobody at all: hidden as 404
    for name in ("zed", "nobody"):
        r = await node_client.get(f"/people/{name}", headers=JSON)
        assert r.status == 404, name
        assert (await r.json())["error"]["code"] == "member_not_found"
    r = await node_client.get("/people/zed")
    assert r.status == 404 and "text/html" in r.headers["Content-Type"]
    # ... and a private profile's contact address stays private
    eve = await (await node_client.get("/people/eve", headers=JSON)).json()
    assert eve["contact_email"] is None


async def test_people_visibility_for_another_member(node_client, node_pool):
    w = await _world(node_pool)
    await sign_in(node_client, w["bob"])
    assert (await node_client.get("/people/dan", headers=JSON)).status == 200
    assert (await node_client.get("/people/ann", headers=JSON)).status == 200  # inviter
    assert (await node_client.get("/people/cat", headers=JSON)).status == 200  # sibling
    assert (await node_client.get("/people/root", headers=JSON)).status == 200
    assert (await node_client.get("/people/zed", headers=JSON)).status == 404  # disabled


async def test_admin_sees_everyone_including_disabled(node_client, node_pool):
    w = await _world(node_pool)
    await sign_in(node_client, w["root"])
    for name in ("ann", "bob", "cat", "dan", "eve", "zed"):
        assert (await node_client.get(f"/people/{name}", headers=JSON)).status == 200, name


async def test_contact_email_rules(node_client, node_pool):
    w = await _world(node_pool)
    await sign_in(node_client, w["cat"])
    # bob shares, dan does not
    bob = await (await node_client.get("/people/bob", headers=JSON)).json()
    assert bob["contact_email"] == "bob@example.org"
    dan = await (await node_client.get("/people/dan", headers=JSON)).json()
    assert dan["contact_email"] is None
    html = await (await node_client.get("/people/dan")).text()
    assert "dan@example.org" not in html
    ann = await (await node_client.get("/people/ann", headers=JSON)).json()
    assert ann["contact_email"] is None


async def test_contact_email_shown_to_self_and_admin(node_client, node_pool, aiohttp_client):
    w = await _world(node_pool)
    await sign_in(node_client, w["dan"])
    dan = await (await node_client.get("/people/dan", headers=JSON)).json()
    assert dan["contact_email"] == "dan@example.org"
    node_client.session.cookie_jar.clear()
    await sign_in(node_client, w["root"])
    html = await (await node_client.get("/people/dan")).text()
    assert "dan@example.org" in html


async def test_pending_requests_never_shown_to_other_members(node_client, node_pool):
    w = await _world(node_pool)
    await _request(node_pool, w["bob"], "Open one")
    await _request(node_pool, w["bob"], "Secret pending", status="pending")
    await sign_in(node_client, w["dan"])
    body = await (await node_client.get("/people/bob", headers=JSON)).json()
    titles = [r["title"] for r in body["requests"]]
    assert titles == ["Open one"]
    assert "Secret pending" not in await (await node_client.get("/people/bob")).text()
    node_client.session.cookie_jar.clear()
    await sign_in(node_client, w["bob"])
    body = await (await node_client.get("/people/bob", headers=JSON)).json()
    assert sorted(r["title"] for r in body["requests"]) == ["Open one", "Secret pending"]
    body = await (await node_client.get("/profile", headers=JSON)).json()
    assert sorted(r["title"] for r in body["requests"]) == ["Open one", "Secret pending"]


async def test_comments_on_hidden_requests_are_not_listed(node_client, node_pool):
    w = await _world(node_pool)
    open_req = await _request(node_pool, w["ann"], "Visible thread")
    pending = await _request(node_pool, w["ann"], "Pending thread", status="pending")
    for rid, body in ((open_req, "public remark"), (pending, "remark on pending")):
        await node_pool.execute(
            "INSERT INTO comments (id, request_id, created_by, body) VALUES ($1, $2, $3, $4)",
            ulid(), rid, w["bob"], body)
    await sign_in(node_client, w["dan"])
    body = await (await node_client.get("/people/bob", headers=JSON)).json()
    assert [c["body"] for c in body["comments"]] == ["public remark"]


async def test_inviter_shown_anonymously_when_hidden(node_client, node_pool):
    w = await _world(node_pool)
    await node_pool.execute("UPDATE users SET invited_by = $1 WHERE id = $2", w["zed"], w["dan"])
    await sign_in(node_client, w["bob"])
    dan = await (await node_client.get("/people/dan", headers=JSON)).json()
    assert dan["invited_by"] == "member"  # zed is disabled: hidden from members
    html = await (await node_client.get("/people/dan")).text()
    assert "Invited by a member" in html and "@zed" not in html and "/people/zed" not in html
    node_client.session.cookie_jar.clear()
    await sign_in(node_client, w["cat"])
    bob = await (await node_client.get("/people/bob", headers=JSON)).json()
    assert bob["invited_by"] == "ann"


async def test_members_directory_scoping(node_client, node_pool):
    w = await _world(node_pool)
    await sign_in(node_client, w["ann"])
    body = await (await node_client.get("/members", headers=JSON)).json()
    names = {m["username"] for m in body["members"]}
    assert names == {"ann", "bob", "cat", "dan", "eve", "root"}
    mine = {m["username"] for m in body["members"] if m["my_invitee"]}
    assert mine == {"bob", "cat"}
    body = await (await node_client.get("/members?invited=me", headers=JSON)).json()
    assert {m["username"] for m in body["members"]} == {"bob", "cat"}
    body = await (await node_client.get("/members?scope=public", headers=JSON)).json()
    assert {m["username"] for m in body["members"]} == {"bob", "dan"}
    body = await (await node_client.get("/members?q=CA", headers=JSON)).json()
    assert {m["username"] for m in body["members"]} == {"cat"}
    body = await (await node_client.get("/members?q=%25", headers=JSON)).json()
    assert body["members"] == []  # LIKE wildcards are searched literally
    html = await (await node_client.get("/members")).text()
    assert "@eve" in html and "@zed" not in html and "@cat" in html


async def test_members_directory_for_admin_and_bad_filters(node_client, node_pool):
    w = await _world(node_pool)
    await sign_in(node_client, w["root"])
    body = await (await node_client.get("/members", headers=JSON)).json()
    assert {m["username"] for m in body["members"]} == {
        "root", "ann", "bob", "cat", "dan", "eve", "zed"}
    body = await (await node_client.get("/members?role=admin", headers=JSON)).json()
    assert [m["username"] for m in body["members"]] == ["root"]
    r = await node_client.get("/members?role=wizard", headers=JSON)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_role"
    r = await node_client.get("/members?page=-1", headers=JSON)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_page"


async def test_members_directory_paginates(node_client, node_pool):
    admin = await create_user(node_pool, "admin", admin=True)
    for i in range(30):
        await create_user(node_pool, f"m{i:02d}", scope="public")
    await sign_in(node_client, admin)
    first = await (await node_client.get("/members", headers=JSON)).json()
    second = await (await node_client.get("/members?page=2", headers=JSON)).json()
    assert len(first["members"]) == 25 and first["more"]
    assert len(second["members"]) == 6 and not second["more"]
    assert not {m["username"] for m in first["members"]} & {
        m["username"] for m in second["members"]}


async def test_own_profile_shows_privileges_and_invites(node_client, node_pool):
    w = await _world(node_pool)
    await node_pool.execute(
        "INSERT INTO invites (id, token_hash, created_by, max_uses, use_count) "
        "VALUES ('I1', 'h1', $1, 2, 1)", w["ann"])
    await node_pool.execute("UPDATE users SET invite_id = 'I1' WHERE id = $1", w["bob"])
    await sign_in(node_client, w["ann"])
    body = await (await node_client.get("/profile", headers=JSON)).json()
    assert body["role"] == "member" and body["is_admin"] is False
    assert body["invites_sent"] == 1
    assert sorted(body["invitees"]) == ["bob", "cat"]
    html = await (await node_client.get("/profile")).text()
    assert "1 / 2" in html and "@bob" in html and "Role: <strong>member</strong>" in html
    node_client.session.cookie_jar.clear()
    await sign_in(node_client, w["root"])
    body = await (await node_client.get("/profile", headers=JSON)).json()
    assert body["role"] == "admin"
