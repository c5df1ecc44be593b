"""Peer approval (#23): reviewers (and, when enabled, inviters) approve or deny ANOTHER
member's waiting sign-in after the member reads them the code; written from the
hostile side: anonymous, unapproved device, plain member, reviewer, admin, own sign-in,
an admin's sign-in, missing CSRF, wrong codes, lockout."""

from __future__ import annotations

import pytest

from tests.conftest import make_node_config
from tests.node.auth.helpers import JSON, Device, bootstrap_admin

QUEUE = "/review/sign-ins"


@pytest.fixture
def node_config(node_db_url, tmp_path, request):
    return make_node_config(node_db_url, tmp_path / "node", **getattr(request, "param", {}))


INVITER_ON = pytest.mark.parametrize("node_config", [{"WB_INVITER_MAY_APPROVE": "true"}],
                                     indirect=True)


async def _member(devices, inviter: Device, username: str) -> tuple[Device, str]:
    invite = await inviter.invite()
    device = devices()
    status, body = await device.register(username, token=invite["token"])
    assert status == 201 and body["status"] == "active", body
    return device, body["user_id"]


async def _world(devices, node_pool):
    """ada (admin); rita (reviewer), carl (plain member) invited by ada; bob invited by
    carl, signing in on a new laptop (pending, with its code)."""
    w: dict = {"admin": await bootstrap_admin(devices)}
    w["rita"], w["rita_id"] = await _member(devices, w["admin"], "rita")
    await node_pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                            w["rita_id"])
    w["carl"], w["carl_id"] = await _member(devices, w["admin"], "carl")
    w["bob"], w["bob_id"] = await _member(devices, w["carl"], "bob")
    w["laptop"] = devices()
    status, w["login"] = await w["laptop"].login("bob")
    assert status == 200
    return w


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def _ledger(pool):
    return [dict(r) for r in await pool.fetch(
        "SELECT seq, member, reviewer, capacity, decision, note FROM approval_ledger "
        "ORDER BY seq")]


async def test_reviewer_approves_another_member_with_the_code(devices, node_pool):
    w = await _world(devices, node_pool)
    rid, code = w["login"]["request_id"], w["login"]["code"]
    status, body = await w["rita"].get_json(QUEUE)
    assert status == 200 and [r["id"] for r in body["pending"]] == [rid]
    assert body["pending"][0]["capacity"] == "reviewer"
    assert code not in str(body) and "127.0.0.1" not in str(body)  # no code, no address
    status, html = await w["rita"].get(QUEUE)
    assert status == 200 and rid in html and code not in html and "127.0.0.1" not in html
    # a wrong code is counted exactly like an admin's
    status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve", {"code": _wrong(code)})
    assert status == 400 and body["error"]["code"] == "wrong_code"
    assert await node_pool.fetchval("SELECT attempts FROM auth_requests WHERE id=$1", rid) == 1
    audit = await node_pool.fetchrow("SELECT * FROM audit_log WHERE action='login.wrong_code'")
    assert audit["actor_id"] == w["rita_id"] and audit["details"]
    assert await w["laptop"].whoami() == "pending"
    status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve",
                                             {"code": code, "note": "called him"})
    assert status == 200 and body == {"status": "approved", "request_id": rid,
                                      "ledger_row": 1}
    assert await w["laptop"].whoami() == "active"
    row = await node_pool.fetchrow("SELECT status, decided_by FROM auth_requests WHERE id=$1",
                                   rid)
    assert tuple(row) == ("approved", w["rita_id"])
    assert await _ledger(node_pool) == [{"seq": 1, "member": "bob", "reviewer": "rita",
                                         "capacity": "reviewer", "decision": "approved",
                                         "note": "called him"}]
    status, body = await w["rita"].get_json(QUEUE)
    assert body["pending"] == []


async def test_reviewer_flow_without_javascript(devices, node_pool):
    w = await _world(devices, node_pool)
    rid, code = w["login"]["request_id"], w["login"]["code"]
    status, html, _ = await w["rita"].post_form(f"{QUEUE}/{rid}/approve",
                                                {"code": _wrong(code), "note": "n"})
    assert status == 400 and "not right" in html and f'id="err-{rid}"' in html
    status, html, _ = await w["rita"].post_form(f"{QUEUE}/{rid}/approve", {"code": code},
                                                csrf=False)
    assert status == 403 and await w["laptop"].whoami() == "pending"
    status, _, r = await w["rita"].post_form(f"{QUEUE}/{rid}/approve", {"code": code})
    assert status == 303 and r.headers["Location"] == f"{QUEUE}?done=approved"
    status, html = await w["rita"].get(f"{QUEUE}?done=approved")
    assert "Approved" in html
    assert await w["laptop"].whoami() == "active"


async def test_reviewer_denies_and_the_device_is_turned_away(devices, node_pool):
    w = await _world(devices, node_pool)
    rid = w["login"]["request_id"]
    status, _, _ = await w["rita"].post_form(f"{QUEUE}/{rid}/deny", {}, csrf=False)
    assert status == 403 and await w["laptop"].whoami() == "pending"
    status, _, r = await w["rita"].post_form(f"{QUEUE}/{rid}/deny", {"note": "not him"})
    assert status == 303 and r.headers["Location"] == f"{QUEUE}?done=denied"
    assert await w["laptop"].whoami() == "anonymous"
    assert await _ledger(node_pool) == [{"seq": 1, "member": "bob", "reviewer": "rita",
                                         "capacity": "reviewer", "decision": "denied",
                                         "note": "not him"}]
    status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve",
                                             {"code": w["login"]["code"]})
    assert status == 409 and body["error"]["code"] == "request_denied"


async def test_permissions_of_every_review_route(devices, node_pool):
    w = await _world(devices, node_pool)
    rid, code = w["login"]["request_id"], w["login"]["code"]
    anonymous = devices()
    waiting = devices()  # an unapproved device of the reviewer herself
    _, own = await waiting.login("rita")
    gets = [QUEUE, "/admin/approvals/ledger.txt"]
    posts = [(f"{QUEUE}/{rid}/approve", {"code": code}), (f"{QUEUE}/{rid}/deny", {})]
    for path in gets:
        assert (await anonymous.get_json(path))[0] == 401, path
        status, body = await waiting.get_json(path)
        assert status == 403 and body["error"]["code"] == "session_not_approved", path
    for path, body in posts:
        assert (await anonymous.post_json(path, body))[0] == 401, path
        status, answer = await waiting.post_json(path, body)
        assert status == 403 and answer["error"]["code"] == "session_not_approved", path
        # a plain member (here bob's inviter, with inviters not allowed) is refused
        status, answer = await w["carl"].post_json(path, body)
        assert status == 403 and answer["error"]["code"] == "reviewer_only", path
    status, body = await w["carl"].get_json(QUEUE)
    assert status == 403 and body["error"]["code"] == "reviewer_only"
    status, html = await w["carl"].get(QUEUE)
    assert status == 403 and code not in html
    # the ledger is for admins only, reviewers included
    for who in ("rita", "carl"):
        status, body = await w[who].get_json("/admin/approvals/ledger.txt")
        assert status == 403 and body["error"]["code"] == "admin_only", who
        status, text = await w[who].get("/admin/approvals/ledger.txt")
        assert status == 403 and "sha256-chain-head" not in text, who
    status, body = await w["admin"].get_json("/admin/approvals/ledger.txt")
    assert status == 200 and body["rows"] == 0
    # nothing of the above decided anything
    assert await w["laptop"].whoami() == "pending"
    assert await node_pool.fetchval("SELECT count(*) FROM approval_ledger") == 0
    assert await node_pool.fetchval(
        "SELECT attempts FROM auth_requests WHERE id=$1", rid) == 0
    # the admin may decide on the queue too, but with the code
    status, body = await w["admin"].get_json(QUEUE)
    assert [r["id"] for r in body["pending"]] == [rid, own["request_id"]]  # oldest first
    status, body = await w["admin"].post_json(f"{QUEUE}/{rid}/approve", {})
    assert status == 400 and body["error"]["code"] == "code_required"
    status, body = await w["admin"].post_json(f"{QUEUE}/{rid}/approve", {"code": code})
    assert status == 200
    assert (await _ledger(node_pool))[0]["capacity"] == "admin"


async def test_a_reviewer_never_approves_their_own_or_an_admins_sign_in(devices, node_pool):
    w = await _world(devices, node_pool)
    mine = devices()
    _, own = await mine.login("rita")
    admins = devices()
    _, adm = await admins.login("ada")
    status, body = await w["rita"].get_json(QUEUE)
    assert [r["id"] for r in body["pending"]] == [w["login"]["request_id"]]
    status, body = await mine.get_json("/login/pending")  # she is not offered to herself
    assert body["approvers"]["reviewers"] == [] and body["approvers"]["own_device"]
    for login, error in ((own, "own_sign_in"), (adm, "admin_sign_in")):
        rid = login["request_id"]
        status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve",
                                                 {"code": login["code"]})
        assert status == 403 and body["error"]["code"] == error
        status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/deny", {})
        assert status == 403 and body["error"]["code"] == error
    assert await mine.whoami() == "pending" and await admins.whoami() == "pending"
    # her own sign-in stays hers to approve from her own device, as before
    status, _ = await w["rita"].post_json("/auth/approve", {"request_id": own["request_id"],
                                                            "code": own["code"]})
    assert status == 200 and await mine.whoami() == "active"
    assert [r["capacity"] for r in await _ledger(node_pool)] == ["own_device"]
    status, body = await w["rita"].post_json(f"{QUEUE}/NOPE/approve", {"code": "123456"})
    assert status == 404 and body["error"]["code"] == "unknown_request"


async def test_reviewer_wrong_codes_lock_like_an_admins(devices, node_pool, node_config):
    w = await _world(devices, node_pool)
    rid, code = w["login"]["request_id"], w["login"]["code"]
    limit = node_config.get_int("WB_CODE_MAX_ATTEMPTS")
    status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve", {"note": "x"})
    assert status == 400 and body["error"]["code"] == "code_required"
    for _ in range(limit - 1):
        status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve",
                                                 {"code": _wrong(code)})
        assert status == 400 and body["error"]["code"] == "wrong_code"
    status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve", {"code": _wrong(code)})
    assert status == 423 and body["error"]["code"] == "request_locked"
    status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve", {"code": code})
    assert status == 409 and body["error"]["code"] == "request_locked"
    assert await w["laptop"].whoami() == "pending"
    assert await node_pool.fetchval("SELECT count(*) FROM approval_ledger") == 0
    status, body = await w["rita"].post_json(f"{QUEUE}/{rid}/approve",
                                             {"code": code, "note": "x" * 501})
    assert status == 400 and body["error"]["code"] == "invalid_field"


async def test_inviters_may_not_approve_by_default(devices, node_pool):
    w = await _world(devices, node_pool)
    status, body = await w["carl"].post_json(
        f"{QUEUE}/{w['login']['request_id']}/approve", {"code": w["login"]["code"]})
    assert status == 403 and body["error"]["code"] == "reviewer_only"
    status, body = await w["laptop"].get_json("/login/pending")
    assert body["approvers"]["inviter"] is None
    assert body["approvers"]["reviewers"] == ["rita"] and body["approvers"]["admins"] == ["ada"]


@INVITER_ON
async def test_the_inviter_approves_when_enabled_and_only_their_invitees(devices, node_pool):
    w = await _world(devices, node_pool)
    rid, code = w["login"]["request_id"], w["login"]["code"]
    dan, _ = await _member(devices, w["admin"], "dan")  # invited nobody
    status, body = await dan.get_json(QUEUE)
    assert status == 200 and body["pending"] == []
    status, body = await dan.post_json(f"{QUEUE}/{rid}/approve", {"code": code})
    assert status == 404 and body["error"]["code"] == "unknown_request"
    # rita's own new device, invited by ada: carl sees only bob's
    _, other = await devices().login("rita")
    status, body = await w["carl"].get_json(QUEUE)
    assert [r["id"] for r in body["pending"]] == [rid]
    assert body["pending"][0]["invited_by_me"] and body["pending"][0]["capacity"] == "inviter"
    status, body = await w["carl"].post_json(f"{QUEUE}/{other['request_id']}/approve",
                                             {"code": other["code"]})
    assert status == 404
    # the waiting member's page names the inviter
    status, body = await w["laptop"].get_json("/login/pending")
    assert body["approvers"]["inviter"] == "carl"
    status, html = await w["laptop"].get("/login/pending")
    assert 'id="who-inviter"' in html and "carl" in html and 'id="who-reviewers"' in html
    status, body = await w["carl"].post_json(f"{QUEUE}/{rid}/approve", {"code": code})
    assert status == 200 and await w["laptop"].whoami() == "active"
    assert [(r["reviewer"], r["capacity"]) for r in await _ledger(node_pool)] == [
        ("carl", "inviter")]


async def test_waiting_admin_sees_no_reviewers(devices, node_pool):
    w = await _world(devices, node_pool)
    laptop = devices()
    await laptop.login("ada")
    status, body = await laptop.get_json("/login/pending")
    assert body["approvers"] == {"own_device": True, "admins": ["ada"], "reviewers": [],
                                 "inviter": None}
    status, html = await laptop.get("/login/pending")
    assert 'id="who-reviewers"' not in html
    status, html = await w["laptop"].get("/login/pending")
    assert 'id="who-reviewers"' in html and "rita" in html


async def test_reviewers_json_body_needs_csrf_too(devices, node_pool):
    w = await _world(devices, node_pool)
    rid = w["login"]["request_id"]
    async with w["rita"].session.post(f"{w['rita'].base}{QUEUE}/{rid}/approve",
                                      json={"code": w["login"]["code"]}, headers=JSON) as r:
        assert r.status == 403
    assert await w["laptop"].whoami() == "pending"


async def test_own_device_approval_without_a_code_is_a_400_not_a_500(devices, node_pool):
    w = await _world(devices, node_pool)
    status, body = await w["bob"].post_json("/auth/approve",
                                            {"request_id": w["login"]["request_id"]})
    assert status == 400 and body["error"]["code"] == "code_required"
    assert body["error"]["fields"] == {"code": "required"}
    assert await w["laptop"].whoami() == "pending"
