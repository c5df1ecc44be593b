"""Issue 14, attacks 1 and 2 from the attacker's side: a client that only knows a member's
username gets a half-authenticated cookie and its own CSRF token, then tries to read the
community's private content and to post in the member's name (JSON and form variants)."""

from __future__ import annotations

from node.auth import service as svc
from tests.node.auth.helpers import JSON, bootstrap_admin
from tests.node.auth.test_login import member_with_device

PRIVATE = "PRIVATE-ONLY-FOR-MEMBERS"
FORGED = "FORGED-BY-A-STRANGER"


async def _private_request(admin) -> str:
    status, body = await admin.post_json("/api/requests", {
        "title": PRIVATE, "description": PRIVATE, "contact_email": "ada-private@example.org"})
    assert status == 201, body
    return body["request"]["id"]


async def test_a_username_reads_nothing_private(devices):
    """Attack 1: /, /api/requests (?status=all), /api/requests/<id>, /requests/<id>."""
    admin = await bootstrap_admin(devices)
    rid = await _private_request(admin)
    await admin.post_json(f"/requests/{rid}/comments", {"body": PRIVATE + " comment"})
    attacker = devices()
    status, login = await attacker.login("ada")  # an ADMIN's username: the worst case
    assert status == 200 and await attacker.whoami() == "pending"
    for path in ("/", "/api/requests", "/api/requests?status=all", f"/api/requests/{rid}",
                 f"/requests/{rid}", "/api/requests/pending", "/members", "/people/ada",
                 "/profile", "/invite/new", "/admin", "/auth/devices"):
        for accept in ("text/html", "application/json"):
            status, text = await attacker.get(path, headers={"Accept": accept})
            assert PRIVATE not in text and "ada-private@example.org" not in text, path
            assert status in (200, 303, 401, 403), (path, status)
    status, body = await attacker.get_json("/api/requests?status=all")
    assert status == 403 and body["error"]["code"] == "session_not_approved"
    status, page = await attacker.get("/")
    assert status == 200 and login["code"] in page and "Waiting for approval" in page


async def _forge(attacker, *, form: bool) -> None:
    payload = {"title": FORGED, "description": FORGED + (" form" if form else " json"),
               "sync_scope": "public"}
    if form:
        status, _, r = await attacker.post_form("/requests", payload)
        assert status == 303 and r.headers["Location"] == "/"
    else:
        status, body = await attacker.post_json("/api/requests", payload)
        assert status == 201 and body["request"]["status"] == "pending", body


async def test_approving_another_device_never_publishes_what_a_stranger_wrote(devices,
                                                                              node_pool):
    """Attack 2: the stranger posts (JSON and form, own CSRF token) as bob; bob approves
    his own new laptop; the forged requests stay pending, then die with the denial."""
    admin = await bootstrap_admin(devices)
    phone, bob = await member_with_device(devices, admin)
    attacker = devices()
    _, stranger = await attacker.login("bob")
    await _forge(attacker, form=False)
    await _forge(attacker, form=True)
    rows = await node_pool.fetch("SELECT status, auth_request_id FROM requests "
                                 "WHERE title = $1", FORGED)
    assert [(r["status"], r["auth_request_id"]) for r in rows] == \
        [("pending", stranger["request_id"])] * 2

    # the stranger sees what it wrote, nobody else's
    status, mine = await attacker.get_json("/api/requests/pending")
    assert status == 200 and len(mine["requests"]) == 2

    # bob's real laptop signs in too, and bob approves IT from his phone
    laptop = devices()
    _, real = await laptop.login("bob")
    await _forge(laptop, form=False)  # the laptop's own pending writing
    status, listing = await phone.get_json("/auth/devices")
    wrote = {r["id"]: [w["description"] for w in r["wrote"]] for r in listing["pending"]}
    assert sorted(wrote[stranger["request_id"]]) == [FORGED + " form", FORGED + " json"]
    assert wrote[real["request_id"]] == [FORGED + " json"]
    status, html = await phone.get("/auth/devices")
    assert "This device also wrote" in html and FORGED + " form" in html

    status, body = await phone.post_json("/auth/approve", {"request_id": real["request_id"],
                                                           "code": real["code"]})
    assert status == 200
    statuses = {r["auth_request_id"]: r["status"] for r in await node_pool.fetch(
        "SELECT auth_request_id, status FROM requests WHERE title = $1", FORGED)}
    assert statuses == {stranger["request_id"]: "pending", real["request_id"]: "open"}
    # nothing the stranger wrote can be exported: pending rows never leave the node
    assert await node_pool.fetchval(
        "SELECT count(*) FROM requests WHERE auth_request_id = $1 AND status <> 'pending'",
        stranger["request_id"]) == 0

    # bob denies the stranger: what it wrote is gone, in the same transaction
    status, body = await phone.post_json("/auth/deny", {"request_id": stranger["request_id"]})
    assert status == 200
    assert await node_pool.fetchval("SELECT count(*) FROM requests WHERE auth_request_id = $1",
                                    stranger["request_id"]) == 0
    assert await attacker.whoami() == "anonymous"


async def test_expired_or_cancelled_sign_in_discards_what_the_device_wrote(devices,
                                                                           node_pool):
    admin = await bootstrap_admin(devices)
    _, bob = await member_with_device(devices, admin)
    expiring, quitting = devices(), devices()
    _, one = await expiring.login("bob")
    _, two = await quitting.login("bob")
    await _forge(expiring, form=False)
    await _forge(quitting, form=True)
    # signing out withdraws what the device wrote
    status, _ = await quitting.post_json("/auth/logout")
    assert status == 200
    assert await node_pool.fetchval("SELECT count(*) FROM requests WHERE auth_request_id = $1",
                                    two["request_id"]) == 0
    # the sign-in expires: the scheduler's clean-up discards the rest
    await node_pool.execute("UPDATE auth_requests SET expires_at = now() - interval '1 s' "
                            "WHERE id = $1", one["request_id"])
    status, body = await expiring.post_json("/api/requests", {"description": "late"})
    assert status == 409 and body["error"]["code"] == "sign_in_closed"
    await svc.expire_stale(node_pool)
    assert await node_pool.fetchval("SELECT count(*) FROM requests WHERE status = 'pending'") == 0


async def test_approving_the_writing_device_publishes_what_it_wrote(devices, node_pool):
    admin = await bootstrap_admin(devices)
    phone, bob = await member_with_device(devices, admin)
    tablet = devices()
    _, login = await tablet.login("bob")
    await _forge(tablet, form=True)
    status, body = await admin.post_json(f"/admin/sessions/{login['request_id']}/approve",
                                         {"code": login["code"]})
    assert status == 200, body
    assert await node_pool.fetchval("SELECT status FROM requests WHERE title = $1",
                                    FORGED) == "open"


async def test_a_member_route_refuses_the_stranger_with_its_own_csrf_token(devices,
                                                                            node_pool):
    """Writes beyond its own pending request are refused by policy, JSON and form alike."""
    admin = await bootstrap_admin(devices)
    rid = await _private_request(admin)
    attacker = devices()
    await attacker.login("ada")
    for path, payload in ((f"/requests/{rid}/comments", {"body": "x"}),
                          (f"/requests/{rid}/scope", {"sync_scope": "public"}),
                          ("/sync/scope", {"item": f"request:{rid}", "sync_scope": "public"}),
                          (f"/requests/{rid}/complete", {}),
                          ("/settings/account", {"display_name": "owned"}),
                          ("/auth/invites", {"max_uses": 5})):
        status, body = await attacker.post_json(path, payload)
        assert status == 403 and body["error"]["code"] == "session_not_approved", path
        status, _, _ = await attacker.post_form(path, payload)
        assert status == 403, path
    row = await node_pool.fetchrow("SELECT sync_scope, status FROM requests WHERE id=$1", rid)
    assert tuple(row) == ("private", "open")
    assert await node_pool.fetchval("SELECT count(*) FROM comments") == 0
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 0
    async with attacker.session.get(attacker.base + "/admin", headers=JSON) as r:
        assert r.status == 403


async def test_cleaning_up_an_approved_devices_session_keeps_what_it_published(devices,
                                                                              node_pool):
    """The binding must never take published requests with it when old sessions (and
    their sign-in requests) are deleted by the clean-up job."""
    admin = await bootstrap_admin(devices)
    phone, bob = await member_with_device(devices, admin)
    tablet = devices()
    _, login = await tablet.login("bob")
    await _forge(tablet, form=False)
    status, _ = await phone.post_json("/auth/approve", {"request_id": login["request_id"],
                                                        "code": login["code"]})
    assert status == 200
    rid = await node_pool.fetchval("SELECT id FROM requests WHERE auth_request_id = $1",
                                   login["request_id"])
    await node_pool.execute("INSERT INTO comments (id, request_id, created_by, body) "
                            "VALUES ('KEEP1', $1, $2, 'kept')", rid, bob)
    await node_pool.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 s' WHERE id_hash = "
        "(SELECT session_hash FROM auth_requests WHERE id = $1)", login["request_id"])
    result = await svc.expire_stale(node_pool)
    assert result["deleted_sessions"] == 1
    assert await node_pool.fetchval("SELECT count(*) FROM auth_requests WHERE id = $1",
                                    login["request_id"]) == 0
    row = await node_pool.fetchrow("SELECT status, auth_request_id FROM requests WHERE id = $1",
                                   rid)
    assert tuple(row) == ("open", None)
    assert await node_pool.fetchval("SELECT count(*) FROM comments WHERE id = 'KEEP1'") == 1


async def test_discarding_a_strangers_public_post_leaves_no_outbox_work(devices, node_pool):
    admin = await bootstrap_admin(devices)
    phone, _ = await member_with_device(devices, admin)
    attacker = devices()
    _, stranger = await attacker.login("bob")
    await _forge(attacker, form=False)
    await phone.post_json("/auth/deny", {"request_id": stranger["request_id"]})
    assert await node_pool.fetchval("SELECT count(*) FROM sync_outbox_withdrawn") == 0


async def test_an_unapproved_device_cannot_flood_the_approval_page(devices, node_pool):
    from node.requests.service import MAX_PENDING_PER_SIGN_IN

    await bootstrap_admin(devices)
    attacker = devices()
    await attacker.login("ada")
    for i in range(MAX_PENDING_PER_SIGN_IN):
        status, _ = await attacker.post_json("/api/requests", {"description": f"spam {i}"})
        assert status == 201
    status, body = await attacker.post_json("/api/requests", {"description": "one more"})
    assert status == 429 and body["error"]["code"] == "pending_limit"
    status, _, _ = await attacker.post_form("/requests", {"description": "one more"})
    assert status == 429
    assert await node_pool.fetchval("SELECT count(*) FROM requests") == MAX_PENDING_PER_SIGN_IN
