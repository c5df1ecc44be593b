"""The admin assistant end to end against a fake chat-completions gateway on loopback."""

from __future__ import annotations

import json

import pytest

from node import typedefs as T
from tests.factories import create_user, sign_in
from tests.node.copilot.fake_gateway import answer, tool_calls
from tests.node.copilot.helpers import (
    add_request,
    community,
    enable,
    gateway_settings,
    signed_in_admin,
)


@pytest.fixture
def copilot_overrides(gateway):
    return gateway_settings(gateway)


async def _send(client, csrf, text):
    return await client.post("/admin/copilot", data={"message": text, "csrf_token": csrf},
                             allow_redirects=False)


async def test_whole_loop_tools_proposal_refusal_confirm_feedback(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    rid = await add_request(pool, u["bob"], "Ladder", "roof", age_days=3)
    gateway.script = [
        tool_calls(("triage_requests", {"limit": 5}),
                   ("set_scope", {"kind": "request", "id": rid, "scope": "public"}),
                   ("delete_all_members", {})),
        answer("Bob's ladder request waits longest; I proposed making it public."),
    ]
    r = await _send(copilot_client, csrf, "Who needs help? I'm boss@example.org, 555-123-4567")
    assert r.status == 303, await r.text()

    first, second = gateway.calls
    assert first["auth"] == "Bearer env-key" and first["body"]["model"] == "test-model"
    assert {t["function"]["name"] for t in first["body"]["tools"]} == {
        "triage_requests", "suggest_scope_changes", "set_scope", "create_invite",
        "sync_preview"}
    sent = first["body"]["messages"][-1]["content"]
    assert "example.org" not in sent and "[email]" in sent and "[phone]" in sent
    tool_msgs = {m["tool_call_id"]: json.loads(m["content"])
                 for m in second["body"]["messages"] if m["role"] == "tool"}
    assert tool_msgs["call_0"]["requests"][0]["id"] == rid
    assert tool_msgs["call_1"]["status"] == "proposed"
    assert tool_msgs["call_2"]["error"] == "tool_not_allowed"
    # Nothing changed yet: the mutating call only became a proposal.
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "private"

    page = await (await copilot_client.get("/admin/copilot")).text()
    assert "waits longest" in page and "Confirm" in page and "boss@example.org" not in page

    audit = await pool.fetch("SELECT * FROM copilot_audit ORDER BY id")
    assert [(a["tool"], a["success"], a["error_code"]) for a in audit] == [
        ("triage_requests", True, None), ("set_scope", True, "proposed"),
        ("delete_all_members", False, "tool_not_allowed"), ("chat", True, None)]
    chat = audit[-1]
    assert "[email]" in chat["prompt"] and "example.org" not in chat["prompt"]
    assert "waits longest" in chat["response"] and chat["admin_id"] == u["admin"]

    proposal = await pool.fetchval("SELECT id FROM copilot_proposals")
    r = await copilot_client.post(f"/admin/copilot/proposals/{proposal}/confirm",
                                  data={"csrf_token": csrf})
    assert r.status == 200 and "Confirmed set_scope" in await r.text()
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "public"
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action='scope.change' AND actor_id=$1",
        u["admin"]) == 1
    r = await copilot_client.post(f"/admin/copilot/proposals/{proposal}/confirm",
                                  data={"csrf_token": csrf})
    assert r.status == 404
    r = await copilot_client.post(f"/admin/copilot/proposals/{proposal}/confirm")
    assert r.status == 403  # CSRF

    answer_id = await pool.fetchval(
        "SELECT id FROM copilot_messages WHERE role='assistant'")
    r = await copilot_client.post(f"/admin/copilot/feedback/{answer_id}",
                                  data={"csrf_token": csrf, "value": "down"},
                                  allow_redirects=False)
    assert r.status == 303
    assert await pool.fetchval("SELECT feedback FROM copilot_messages WHERE id=$1",
                               answer_id) == -1
    assert await pool.fetchval("SELECT feedback FROM copilot_audit WHERE tool='chat'") == -1

    # The next turn carries the conversation (scrubbed) from the database.
    gateway.script = [answer("You're welcome.")]
    assert (await _send(copilot_client, csrf, "thanks")).status == 303
    roles = [m["role"] for m in gateway.calls[-1]["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


async def test_invite_proposal_shows_link_once(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    gateway.script = [tool_calls(("create_invite", {"max_uses": 2})), answer("Proposed.")]
    assert (await _send(copilot_client, csrf, "invite my neighbour")).status == 303
    assert await pool.fetchval("SELECT count(*) FROM invites") == 0
    proposal = await pool.fetchval("SELECT id FROM copilot_proposals")
    r = await copilot_client.post(f"/admin/copilot/proposals/{proposal}/confirm",
                                  data={"csrf_token": csrf})
    text = await r.text()
    assert r.status == 200 and "http://node.test/register/" in text
    assert await pool.fetchval("SELECT max_uses FROM invites") == 2
    later = await (await copilot_client.get("/admin/copilot")).text()
    assert "/register/" not in later.replace("/register/[token]", "")


@pytest.mark.parametrize("step,code", [(500, "gateway_error"), ("garbage", "gateway_malformed"),
                                       ({"choices": []}, "gateway_malformed"),
                                       ({"choices": [{"message": {"content": ""}}]},
                                        "gateway_malformed"),
                                       ("hang", "gateway_timeout")])
async def test_gateway_failures_are_reported_audited_and_change_nothing(
        copilot_client, gateway, step, code):
    pool, u, csrf = await signed_in_admin(copilot_client)
    copilot_client.server.app[T.extras_key]["copilot_timeout"] = 0.5
    gateway.script = [step]
    r = await copilot_client.post("/admin/copilot", data={"message": "hi", "csrf_token": csrf},
                                  headers={"Accept": "application/json"})
    assert r.status == 502
    assert (await r.json())["error"]["code"] == code
    assert await pool.fetchval("SELECT count(*) FROM copilot_messages") == 0
    row = await pool.fetchrow("SELECT * FROM copilot_audit")
    assert (row["tool"], row["success"], row["error_code"]) == ("chat", False, code)


async def test_bad_tool_arguments_and_loops_are_contained(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    gateway.script = [tool_calls(("triage_requests", {"limit": "lots"})),
                      answer("Sorry.")]
    assert (await _send(copilot_client, csrf, "triage")).status == 303
    tool_msg = [m for m in gateway.calls[1]["body"]["messages"] if m["role"] == "tool"][0]
    assert json.loads(tool_msg["content"])["error"] == "invalid_arguments"
    gateway.script = [tool_calls(("sync_preview", {}))] * 4
    r = await _send(copilot_client, csrf, "loop forever")
    assert r.status == 502 and "gateway_loop" in await r.text()


async def test_dedalus_key_check_switch_and_rate_limit(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    r = await copilot_client.post("/admin/dedalus/key",
                                  data={"api_key": "bad-key", "csrf_token": csrf})
    assert r.status == 400 and "gateway_key_rejected" in await r.text()
    assert await pool.fetchval("SELECT api_key FROM copilot_settings") is None
    r = await copilot_client.post("/admin/dedalus/key",
                                  data={"api_key": "good-key", "csrf_token": csrf})
    assert r.status == 200 and "2 models" in await r.text()
    row = await pool.fetchrow("SELECT * FROM copilot_settings")
    assert row["api_key"] == "good-key" and row["key_verified_at"] is not None
    page = await (await copilot_client.get("/admin/dedalus")).text()
    assert "good-key" not in page and "verify_key" in page

    gateway.script = [answer("ok")]
    assert (await _send(copilot_client, csrf, "hello")).status == 303
    assert gateway.calls[-1]["auth"] == "Bearer good-key"

    r = await copilot_client.post("/admin/dedalus/disable", data={"csrf_token": csrf})
    assert r.status == 200
    r = await copilot_client.get("/admin/copilot", headers={"Accept": "application/json"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "copilot_disabled"
    assert (await _send(copilot_client, csrf, "hello")).status == 403
    r = await copilot_client.post("/admin/dedalus/enable", data={"csrf_token": csrf})
    assert r.status == 200

    # COPILOT_RATE_PER_MINUTE=5: one turn above was counted; four more, then refused.
    gateway.script = [answer("ok")] * 10
    for _ in range(4):
        assert (await _send(copilot_client, csrf, "again")).status == 303
    r = await _send(copilot_client, csrf, "again")
    assert r.status == 429 and "rate_limited" in await r.text()


async def test_members_cannot_use_the_copilot(copilot_client):
    pool = copilot_client.server.app[T.pool_key]
    member = await create_user(pool, "mem")
    await enable(pool)
    csrf = await sign_in(copilot_client, member)
    for path in ("/admin/copilot", "/admin/dedalus"):
        r = await copilot_client.get(path, headers={"Accept": "application/json"})
        assert r.status == 403 and (await r.json())["error"]["code"] == "admin_only"
    r = await copilot_client.post("/admin/dedalus/enable", data={"csrf_token": csrf})
    assert r.status == 403


async def test_node_works_without_the_copilot(node_client):
    """ENABLE_COPILOT unset: every copilot route is off, even if the DB switch is on."""
    pool = node_client.server.app[T.pool_key]
    u = await community(pool)
    await enable(pool, u["admin"])
    await sign_in(node_client, u["admin"])
    from node.copilot import service as S

    _, token = await S.create_token(pool, "admin")
    for method, path in [("GET", "/admin/copilot"), ("POST", "/admin/copilot"),
                         ("GET", "/admin/dedalus"), ("POST", "/admin/dedalus/enable"),
                         ("POST", "/mcp")]:
        r = await node_client.request(method, path, headers={
            "Accept": "application/json", "Authorization": f"Bearer {token}",
            "X-CSRF-Token": "x"})
        if path == "/mcp" or method == "GET":
            assert r.status == 404, path
            assert (await r.json())["error"]["code"] == "copilot_unavailable", path
        else:
            assert r.status in (403, 404), path  # CSRF may answer first; never a change
    assert await pool.fetchval("SELECT count(*) FROM copilot_audit") == 0
    rid = await add_request(pool, u["ann"], "Soup", "please")
    r = await node_client.get(f"/requests/{rid}")
    assert r.status == 200 and "Soup" in await r.text()
    r = await node_client.get("/admin")
    assert r.status == 200
