"""Device-approved login: codes, approval by another device or an admin, denial,
lockout, rate limits, expiry, logout, and every role transition."""

from __future__ import annotations

import itertools

from node.app import create_app
from node.auth import queries as q
from node.auth import service as svc
from tests.conftest import make_node_config
from tests.node.auth.helpers import Device, bootstrap_admin


async def member_with_device(devices, admin, username="bob"):
    invite = await admin.invite()
    phone = devices()
    status, body = await phone.register(username, token=invite["token"])
    assert status == 201 and body["status"] == "active"
    return phone, body["user_id"]


async def test_login_creates_pending_session_with_a_six_digit_code(devices, node_pool):
    admin = await bootstrap_admin(devices)
    laptop = devices()
    status, body = await laptop.login("ADA")  # usernames are case-insensitive
    assert status == 200 and body["status"] == "pending"
    assert len(body["code"]) == 6 and body["code"].isdigit()
    assert await laptop.whoami() == "pending"
    status, page = await laptop.get("/login/pending")
    assert status == 200 and body["code"] in page
    # the approving device sees the request, never its code
    status, listing = await admin.get_json("/auth/devices")
    assert [r["id"] for r in listing["pending"]] == [body["request_id"]]
    assert body["code"] not in str(listing)
    status, html = await admin.get("/auth/devices")
    assert body["request_id"] in html and body["code"] not in html
    row = await node_pool.fetchrow("SELECT * FROM audit_log WHERE action='login.request'")
    assert row["target"] == body["request_id"] and row["ip"]


async def test_pending_login_for_session_contract(devices, node_pool):
    await bootstrap_admin(devices)
    laptop = devices()
    _, body = await laptop.login("ada")
    sess = await node_pool.fetchval(
        "SELECT session_hash FROM auth_requests WHERE id=$1", body["request_id"])
    info = await q.pending_login_for_session(node_pool, sess)
    assert set(info) == {"id", "code", "expires_at", "status"}
    assert (info["id"], info["code"], info["status"]) == (body["request_id"], body["code"],
                                                         "pending")
    assert await q.pending_login_for_session(node_pool, "0" * 64) is None
    await node_pool.execute("UPDATE auth_requests SET status='locked'")
    assert await q.pending_login_for_session(node_pool, sess) is None  # nothing live


async def test_unknown_username_is_a_clear_404(devices, node_pool):
    await bootstrap_admin(devices)
    d = devices()
    status, body = await d.login("nobody")
    assert status == 404 and body["error"]["code"] == "unknown_user"
    status, html, _ = await d.post_form("/auth/login", {"username": "nobody"})
    assert status == 404 and "no member called" in html and 'value="nobody"' in html
    assert await node_pool.fetchval("SELECT count(*) FROM sessions WHERE status='pending'") == 0


async def test_other_device_approves_with_the_code(devices, node_pool):
    admin = await bootstrap_admin(devices)
    phone, bob = await member_with_device(devices, admin)
    laptop = devices()
    _, login = await laptop.login("bob")
    # what the laptop wrote while waiting is bound to ITS sign-in request (issue 14)
    await node_pool.execute(
        "INSERT INTO requests (id, description, created_by, status, auth_request_id) "
        "VALUES ('R1', 'x', $1, 'pending', $2)", bob, login["request_id"])
    status, body = await phone.post_json("/auth/approve", {"request_id": login["request_id"],
                                                           "code": login["code"]})
    assert status == 200 and body["status"] == "approved"
    assert await laptop.whoami() == "active"
    # approving promotes what this device posted while pending
    assert await node_pool.fetchval("SELECT status FROM requests WHERE id='R1'") == "open"
    row = await node_pool.fetchrow(
        "SELECT status, decided_by FROM auth_requests WHERE id=$1", login["request_id"])
    assert tuple(row) == ("approved", bob)
    expires = await node_pool.fetchval(
        "SELECT s.expires_at - now() > interval '29 days' FROM sessions s JOIN auth_requests r "
        "ON r.session_hash = s.id_hash WHERE r.id=$1", login["request_id"])
    assert expires  # the approved session gets the full lifetime
    audit = await node_pool.fetchrow("SELECT * FROM audit_log WHERE action='login.approve'")
    assert audit["actor_id"] == bob and audit["target"] == login["request_id"]
    # a used request cannot be approved again
    status, body = await phone.post_json("/auth/approve", {"request_id": login["request_id"],
                                                           "code": login["code"]})
    assert status == 409 and body["error"]["code"] == "request_approved"


async def test_approval_by_form_redirects_and_pending_page_moves_on(devices):
    admin = await bootstrap_admin(devices)
    laptop = devices()
    _, login = await laptop.login("ada")
    status, _, r = await admin.post_form("/auth/approve", {"request_id": login["request_id"],
                                                           "code": login["code"]})
    assert status == 303 and r.headers["Location"] == "/auth/devices?done=approved"
    status, _ = await laptop.get("/login/pending")
    assert status == 303


async def test_another_member_cannot_approve_my_login(devices, node_pool):
    admin = await bootstrap_admin(devices)
    mallory, _ = await member_with_device(devices, admin, "mallory")
    laptop = devices()
    _, login = await laptop.login("ada")
    status, body = await mallory.post_json("/auth/approve", {"request_id": login["request_id"],
                                                             "code": login["code"]})
    assert status == 404
    status, body = await mallory.post_json("/auth/deny", {"request_id": login["request_id"]})
    assert status == 404
    assert await laptop.whoami() == "pending"


async def test_anonymous_client_can_never_reach_an_active_session(devices, node_pool):
    """An attacker who knows a username and reads its own code tries every door."""
    await bootstrap_admin(devices)
    attacker = devices()
    _, login = await attacker.login("ada")
    rid, code = login["request_id"], login["code"]
    attempts = [
        ("/auth/approve", {"request_id": rid, "code": code}),
        ("/auth/deny", {"request_id": rid}),
        (f"/admin/sessions/{rid}/approve", {"code": code}),
        (f"/admin/sessions/{rid}/approve", {}),
        ("/admin/sessions/revoke", {"session": "x"}),
        ("/auth/invites", {"max_uses": 1}),
        ("/auth/register", {"username": "ada2"}),
        ("/auth/register", {"username": "ada"}),
        ("/auth/login", {"username": "ada"}),  # a new login replaces the pending one
    ]
    for path, body in attempts:
        status, _ = await attacker.post_json(path, body)
        assert status in ((200,) if path == "/auth/login" else (400, 401, 403, 404, 409)), path
        assert await attacker.whoami() in ("pending", "anonymous"), path
    # and without any session at all
    stranger = devices()
    for path, body in attempts[:6]:
        status, _ = await stranger.post_json(path, body)
        assert status in (401, 403, 404), (path, status)
    assert await node_pool.fetchval(
        "SELECT count(*) FROM sessions WHERE status='active'") == 1  # only the admin's own
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 0
    assert await node_pool.fetchval("SELECT count(*) FROM users") == 1


async def test_wrong_codes_lock_the_request(devices, node_pool, node_config):
    admin = await bootstrap_admin(devices)
    laptop = devices()
    _, login = await laptop.login("ada")
    wrong = "000000" if login["code"] != "000000" else "111111"
    limit = node_config.get_int("WB_CODE_MAX_ATTEMPTS")
    for i in range(1, limit):
        status, body = await admin.post_json("/auth/approve", {"request_id": login["request_id"],
                                                               "code": wrong})
        assert status == 400 and body["error"]["code"] == "wrong_code"
        assert f"{limit - i} attempt" in body["error"]["message"]
    status, body = await admin.post_json("/auth/approve", {"request_id": login["request_id"],
                                                           "code": wrong})
    assert status == 423 and body["error"]["code"] == "request_locked"
    # even the right code is refused now
    status, body = await admin.post_json("/auth/approve", {"request_id": login["request_id"],
                                                           "code": login["code"]})
    assert status == 409 and body["error"]["code"] == "request_locked"
    assert await laptop.whoami() == "pending"
    status, info = await laptop.get_json("/login/pending")
    assert info["login"]["status"] == "locked"
    row = await node_pool.fetchrow("SELECT status, attempts FROM auth_requests")
    assert tuple(row) == ("locked", limit)
    assert await node_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action='login.lock'") == 1


async def test_code_entry_is_rate_limited_per_address(node_db_url, tmp_path, aiohttp_client):
    config = make_node_config(node_db_url, tmp_path / "n", WB_LOGIN_RATE_PER_MINUTE="3",
                              WB_CODE_MAX_ATTEMPTS="100")
    client = await aiohttp_client(create_app(config))
    admin, laptop = Device(client), Device(client)
    try:
        await admin.register("ada")
        _, login = await laptop.login("ada")
        statuses = []
        for _ in range(5):
            status, _ = await admin.post_json("/auth/approve", {
                "request_id": login["request_id"], "code": "x"})
            statuses.append(status)
        assert statuses == [400, 400, 400, 429, 429]
        status, _ = await admin.post_json("/auth/approve", {
            "request_id": login["request_id"], "code": login["code"]})
        assert status == 429
        statuses = [(await laptop.login("ada"))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
    finally:
        await admin.close()
        await laptop.close()


async def test_admin_approves_on_the_sessions_page(devices, node_pool):
    admin = await bootstrap_admin(devices)
    _, bob = await member_with_device(devices, admin)
    laptop = devices()
    _, login = await laptop.login("bob")
    status, html = await admin.get("/admin/sessions")
    assert status == 200 and login["request_id"] in html and login["code"] not in html
    # a wrong code typed by the admin is refused and counted
    status, body = await admin.post_json(f"/admin/sessions/{login['request_id']}/approve",
                                         {"code": "12345x"})
    assert status == 400
    status, _, r = await admin.post_form(f"/admin/sessions/{login['request_id']}/approve",
                                         {"code": login["code"]})
    assert status == 303
    assert await laptop.whoami() == "active"
    admin_id = await node_pool.fetchval("SELECT id FROM users WHERE username='ada'")
    assert await node_pool.fetchval("SELECT decided_by FROM auth_requests") == admin_id


async def test_members_cannot_use_admin_pages(devices):
    admin = await bootstrap_admin(devices)
    phone, _ = await member_with_device(devices, admin)
    laptop = devices()
    _, login = await laptop.login("ada")
    for path in ("/admin", "/admin/sessions"):
        status, _ = await phone.get_json(path)
        assert status == 403
    status, body = await phone.post_json(f"/admin/sessions/{login['request_id']}/approve", {})
    assert status == 403 and body["error"]["code"] == "admin_only"
    assert await laptop.whoami() == "pending"
    status, body = await admin.get_json("/admin")
    assert status == 200 and body["pending_logins"] == 1 and body["members"] == 2


async def test_deny_revokes_the_pending_device(devices, node_pool):
    admin = await bootstrap_admin(devices)
    laptop = devices()
    _, login = await laptop.login("ada")
    status, body = await admin.post_json("/auth/deny", {"request_id": login["request_id"]})
    assert status == 200 and body["status"] == "denied"
    assert await laptop.whoami() == "anonymous"
    assert await node_pool.fetchval("SELECT status FROM auth_requests") == "denied"
    assert await node_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action='login.deny'") == 1


async def test_logout_revokes_server_side(devices, node_pool):
    admin = await bootstrap_admin(devices)
    cookie = next(c.value for c in admin.session.cookie_jar if c.key == "wb_session_id")
    status, body = await admin.post_json("/auth/logout")
    assert status == 200
    assert await admin.whoami() == "anonymous"
    assert await node_pool.fetchval("SELECT revoked_at IS NOT NULL FROM sessions")
    # replaying the old cookie does not bring the session back
    replay = devices()
    replay.session.cookie_jar.update_cookies({"wb_session_id": cookie})
    assert await replay.whoami() == "anonymous"


async def test_logout_of_a_pending_device_kills_its_request(devices, node_pool):
    admin = await bootstrap_admin(devices)
    laptop = devices()
    _, login = await laptop.login("ada")
    await laptop.post_json("/auth/logout")
    status, body = await admin.post_json("/auth/approve", {"request_id": login["request_id"],
                                                           "code": login["code"]})
    assert status == 409
    assert await node_pool.fetchval("SELECT count(*) FROM sessions WHERE status='active'") == 1


async def test_expired_requests_cannot_be_approved_and_are_cleaned(devices, node_pool):
    admin = await bootstrap_admin(devices)
    laptop = devices()
    _, login = await laptop.login("ada")
    await node_pool.execute("UPDATE auth_requests SET expires_at = now() - interval '1 s'")
    status, body = await admin.post_json("/auth/approve", {"request_id": login["request_id"],
                                                           "code": login["code"]})
    assert status == 409 and body["error"]["code"] == "request_expired"
    sess = await node_pool.fetchval("SELECT session_hash FROM auth_requests")
    assert await q.pending_login_for_session(node_pool, sess) is None
    assert (await q.latest_login_for_session(node_pool, sess))["status"] == "expired"
    status, info = await laptop.get_json("/login/pending")
    assert info["login"]["status"] == "expired" and info["login"]["code"] is None
    await node_pool.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 s' WHERE status='pending'")
    result = await svc.expire_stale(node_pool)
    assert result == {"expired_requests": 1, "deleted_sessions": 1}
    assert await node_pool.fetchval("SELECT count(*) FROM sessions") == 1
    assert await laptop.whoami() == "anonymous"
    assert await admin.whoami() == "active"


async def test_every_role_transition(devices, node_pool):
    """anonymous -> admin (bootstrap); anonymous -> member (auto-approve invite);
    anonymous -> pending (invite needing approval) -> member (admin approves, pending
    request opens); member -> anonymous (logout); anonymous -> pending (login) ->
    member (other device) ; pending -> anonymous (denied); member -> admin (create-admin)."""
    names = itertools.count()
    admin = await bootstrap_admin(devices)
    status, body = await admin.get_json("/admin")
    assert status == 200

    invite = await admin.invite(auto_approve=False)
    newbie = devices()
    status, reg = await newbie.register("newbie", token=invite["token"],
                                        request_description="Need a ride")
    assert status == 201 and reg["status"] == "pending" and len(reg["code"]) == 6
    assert await newbie.whoami() == "pending"
    assert await node_pool.fetchval("SELECT status FROM requests WHERE id=$1",
                                    reg["request_id"]) == "pending"
    status, html = await newbie.get("/login/pending")
    assert reg["code"] in html
    status, _ = await newbie.get_json("/auth/devices")
    assert status == 403
    status, _ = await admin.post_json(f"/admin/sessions/{reg['login_request_id']}/approve", {})
    assert status == 200
    assert await newbie.whoami() == "active"
    assert await node_pool.fetchval("SELECT status FROM requests WHERE id=$1",
                                    reg["request_id"]) == "open"
    status, body = await newbie.get_json("/admin")
    assert status == 403  # a member, not an admin

    await newbie.post_json("/auth/logout")
    assert await newbie.whoami() == "anonymous"

    status, login = await newbie.login("newbie")
    assert await newbie.whoami() == "pending"
    other = devices()
    other_invite = await admin.invite()
    await other.register(f"x{next(names)}", token=other_invite["token"])
    status, _ = await admin.post_json(f"/admin/sessions/{login['request_id']}/deny", {})
    assert status == 200
    assert await newbie.whoami() == "anonymous"

    uid, created = await svc.create_admin(node_pool, "newbie")
    assert not created
    _, login = await newbie.login("newbie")
    await admin.post_json(f"/admin/sessions/{login['request_id']}/approve", {})
    status, _ = await newbie.get_json("/admin")
    assert status == 200


async def test_logs_never_carry_codes_tokens_or_cookies(devices, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    admin = await bootstrap_admin(devices)
    invite = await admin.invite()
    phone = devices()
    await phone.register("bob", token=invite["token"])
    laptop = devices()
    _, login = await laptop.login("bob")
    await phone.post_json("/auth/approve", {"request_id": login["request_id"],
                                            "code": "000000x"})
    await phone.post_json("/auth/approve", {"request_id": login["request_id"],
                                            "code": login["code"]})
    assert await laptop.whoami() == "active"
    text = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "login approved" in text
    cookies = [c.value for d in (admin, phone, laptop) for c in d.session.cookie_jar]
    for secret in [login["code"], invite["token"], *cookies]:
        assert secret not in text


async def test_pasted_invite_link_opens_the_invite(devices):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite(gratitude="Welcome aboard")
    guest = devices()
    status, _ = await guest.get("/register?invite=" + invite["link"])
    assert status == 303
    status, html = await guest.get(f"/register/{invite['token']}")
    assert "Welcome aboard" in html
    status, _ = await guest.get("/register?invite=http://x/register/%0d%0aSet-Cookie:x")
    assert status == 404


async def test_form_errors_show_the_form_again_with_values(devices, node_pool):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite()
    guest = devices()
    status, html, _ = await guest.post_form("/auth/register", {
        "invite_token": invite["token"], "username": "ada", "bio": "I knit"})
    assert status == 409 and "is taken" in html and "I knit" in html
    assert f'name="invite_token" value="{invite["token"]}"' in html
    assert await node_pool.fetchval("SELECT use_count FROM invites") == 0
