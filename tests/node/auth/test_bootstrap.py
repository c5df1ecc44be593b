"""First-admin bootstrap, registration rules and session cookie flags."""

from __future__ import annotations

import asyncio

from node.app import create_app
from tests.conftest import make_node_config
from tests.node.auth.helpers import bootstrap_admin


async def test_first_registration_becomes_admin_with_active_session(devices, node_pool):
    d = devices()
    status, body = await d.register("ada", display_name="Ada L.", bio="hi",
                                    request_title="Need a ladder",
                                    request_description="For Saturday")
    assert status == 201
    assert body["is_admin"] is True and body["status"] == "active"
    assert await d.whoami() == "active"
    user = await node_pool.fetchrow("SELECT * FROM users WHERE id=$1", body["user_id"])
    assert user["is_admin"] and user["display_name"] == "Ada L." and user["invited_by"] is None
    req = await node_pool.fetchrow("SELECT * FROM requests WHERE id=$1", body["request_id"])
    assert req["status"] == "open" and req["created_by"] == body["user_id"]
    actions = {r["action"] for r in await node_pool.fetch("SELECT action FROM audit_log")}
    assert {"user.register", "admin.bootstrap"} <= actions


async def test_second_registration_needs_an_invite(devices, node_pool):
    await bootstrap_admin(devices)
    d = devices()
    status, body = await d.register("bob")
    assert status == 403 and body["error"]["code"] == "invite_required"
    status, body = await d.register("bob", token="not-a-real-token")
    assert status == 404 and body["error"]["code"] == "invite_unknown"
    assert await node_pool.fetchval("SELECT count(*) FROM users") == 1
    assert await d.whoami() == "anonymous"


async def test_concurrent_first_registrations_make_exactly_one_admin(devices, node_pool):
    clients = [devices() for _ in range(8)]
    results = await asyncio.gather(*(c.register(f"user{i}") for i, c in enumerate(clients)))
    created = [b for s, b in results if s == 201]
    assert len(created) == 1 and created[0]["is_admin"]
    assert all(b["error"]["code"] == "invite_required" for s, b in results if s != 201)
    assert await node_pool.fetchval("SELECT count(*) FROM users") == 1
    assert await node_pool.fetchval("SELECT count(*) FROM users WHERE is_admin") == 1
    assert await node_pool.fetchval("SELECT count(*) FROM sessions") == 1


async def test_bad_registration_input_is_400_and_changes_nothing(devices, node_pool):
    d = devices()
    for body, field in [({"username": "a"}, "username"),
                        ({"username": "has space"}, "username"),
                        ({"username": "ok_name", "contact_email": "nope"}, "contact_email"),
                        ({"username": "ok_name", "request_title": "T"}, "request_description")]:
        status, answer = await d.post_json("/auth/register", body)
        assert status == 400, answer
        assert field in answer["error"]["fields"]
    assert await node_pool.fetchval("SELECT count(*) FROM users") == 0


async def test_username_taken_is_409(devices, node_pool):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite(max_uses=2)
    status, body = await devices().register("ADA", token=invite["token"])
    assert status == 409 and body["error"]["code"] == "username_taken"
    # the failed registration did not consume a use of the invite
    assert await node_pool.fetchval("SELECT use_count FROM invites") == 0


async def test_session_cookie_flags_http(devices):
    d = devices()
    status, _, r = await d.post_form("/auth/register", {"username": "ada"})
    assert status == 303 and r.headers["Location"] == "/?done=joined"  # with a welcome flash
    morsel = r.cookies["wb_session_id"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert not morsel["secure"]
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == 30 * 86400


async def test_session_cookie_is_secure_under_https(node_db_url, tmp_path, aiohttp_client):
    config = make_node_config(node_db_url, tmp_path / "n", SITE_URL="https://node.example")
    client = await aiohttp_client(create_app(config))
    r = await client.get("/api/csrf")
    token = (await r.json())["csrf_token"]
    anon = r.cookies["wb_csrf"]
    assert anon["secure"] and anon["httponly"]
    # the test server speaks plain http, so send the Secure anti-CSRF cookie by hand
    r = await client.post("/auth/register", data={"username": "ada", "csrf_token": token},
                          headers={"Cookie": f"wb_csrf={anon.value}"}, allow_redirects=False)
    assert r.status == 303
    header = [h for h in r.headers.getall("Set-Cookie") if "wb_session_id" in h][0]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header


async def test_cookie_stores_only_a_hash(devices, node_pool):
    d = devices()
    _, _, r = await d.post_form("/auth/register", {"username": "ada"})
    value = r.cookies["wb_session_id"].value
    rows = await node_pool.fetch("SELECT id_hash FROM sessions")
    import hashlib
    assert [x["id_hash"] for x in rows] == [hashlib.sha256(value.encode()).hexdigest()]


async def test_register_page_tells_the_first_person_they_become_admin(devices):
    d = devices()
    status, html = await d.get("/register")
    assert status == 200 and "you will become this community's admin" in html
    await d.register("ada")
    status, html = await devices().get("/register")
    assert "invite-only" in html and "become this community's admin" not in html
