"""The deterministic tools against a real database, through run_tool (audited)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from node.copilot import service as S
from ops.cli import root
from tests.factories import create_user
from tests.node.copilot.helpers import add_comment, add_request, community, ctx_of


async def test_triage_orders_by_need_and_suggests_helpers_within_two_hops(node_client,
                                                                          node_pool):
    app = node_client.server.app
    u = await community(node_pool)
    zed = await create_user(node_pool, "zed", invited_by=u["far"])  # 3 hops from bob
    r_old = await add_request(node_pool, u["bob"], "Ladder for roof repair",
                              "The gutter is blocked", age_days=5)
    r_new = await add_request(node_pool, u["cat"], "Need a ladder", "tall one", age_days=0)
    r_mid = await add_request(node_pool, u["ann"], "Groceries pickup", "milk and bread",
                              age_days=1)
    await add_comment(node_pool, r_mid, u["ann"], "still needed")
    r_helped = await add_request(node_pool, u["dan"], "Moving boxes", "saturday", age_days=10)
    await add_comment(node_pool, r_helped, u["bob"])
    r_done = await add_request(node_pool, u["admin"], "Borrow a ladder", "painting the shed",
                               status="completed")
    await add_comment(node_pool, r_done, u["cat"], "brought my ladder")
    await add_comment(node_pool, r_done, zed, "I have one too")
    r_dog = await add_request(node_pool, u["ann"], "Dog walking", "mornings",
                              status="completed")
    await add_comment(node_pool, r_dog, u["dan"])

    result = await S.run_tool(ctx_of(app, u["admin"]), "triage_requests", {})
    order = [r["id"] for r in result["requests"]]
    assert order == [r_old, r_new, r_mid, r_helped]
    first = result["requests"][0]
    assert first["reasons"] == ["waiting 5 days", "no replies", "no helper yet"]
    assert [h["username"] for h in first["suggested_helpers"]] == ["cat"]
    assert first["suggested_helpers"][0]["invite_hops"] == 2
    assert first["suggested_helpers"][0]["completed_similar"] == 1
    assert result["requests"][3]["reasons"] == ["waiting 10 days"]
    assert "contact_email" not in json.dumps(result, default=str)
    row = await node_pool.fetchrow("SELECT * FROM copilot_audit ORDER BY id DESC LIMIT 1")
    assert (row["tool"], row["success"], row["via"], row["admin_id"]) == (
        "triage_requests", True, "web", u["admin"])
    assert row["result_summary"] == "4 open requests"


async def test_suggest_scope_changes_with_reasons(node_client, node_pool):
    app = node_client.server.app
    u = await community(node_pool)
    leak = await add_request(node_pool, u["ann"], "Lift", "write to ann@example.org",
                             scope="public")
    ok_public = await add_request(node_pool, u["ann"], "Chairs", "need 12 chairs",
                                  scope="public")
    phone_comment = await add_comment(node_pool, ok_public, u["bob"], "call me 555-123-4567")
    await node_pool.execute("UPDATE comments SET sync_scope='public' WHERE id=$1",
                            phone_comment)
    share = await add_request(node_pool, u["bob"], "Coats", "Please share this widely!")
    await add_request(node_pool, u["bob"], "Boots", "share this, ring 555 987 6543")
    result = await S.run_tool(ctx_of(app, u["admin"]), "suggest_scope_changes", {})
    got = {(s["kind"], s["id"]): s for s in result["suggestions"]}
    assert set(got) == {("request", leak), ("comment", phone_comment), ("request", share)}
    assert got[("request", leak)]["suggested_scope"] == "private"
    assert "e-mail address" in got[("request", leak)]["reason"]
    assert "phone number" in got[("comment", phone_comment)]["reason"]
    assert got[("request", share)]["suggested_scope"] == "public"
    assert "example.org" not in json.dumps(result)


async def test_set_scope_and_create_invite_use_the_ui_services(node_client, node_pool):
    app = node_client.server.app
    u = await community(node_pool)
    rid = await add_request(node_pool, u["ann"], "Lift", "to the station")
    ctx = ctx_of(app, u["admin"])
    result = await S.run_tool(ctx, "set_scope", {"kind": "request", "id": rid,
                                                 "scope": "public"})
    assert result["changed"] == 1
    assert await node_pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1",
                                    rid) == "public"
    audit = await node_pool.fetchrow("SELECT * FROM audit_log WHERE action='scope.change'")
    assert audit["actor_id"] == u["admin"] and audit["target"] == f"request:{rid}"
    assert json.loads(audit["details"])["via"] == "copilot-web"

    with pytest.raises(S.ToolError) as err:
        await S.run_tool(ctx, "set_scope", {"kind": "request", "id": rid})
    assert err.value.code == "invalid_arguments"
    with pytest.raises(Exception) as err2:
        await S.run_tool(ctx, "set_scope", {"kind": "request", "id": "NOPE", "scope": "public"})
    assert err2.value.code == "request_not_found"

    invite = await S.run_tool(ctx, "create_invite", {"max_uses": 2, "gratitude": "thanks"})
    assert invite["link"].startswith("http://node.test/register/")
    row = await node_pool.fetchrow("SELECT * FROM invites WHERE id=$1", invite["invite_id"])
    assert row["created_by"] == u["admin"] and row["max_uses"] == 2
    audits = await node_pool.fetch("SELECT * FROM copilot_audit ORDER BY id")
    assert [(a["tool"], a["success"], a["error_code"]) for a in audits] == [
        ("set_scope", True, None), ("set_scope", False, "invalid_arguments"),
        ("set_scope", False, "request_not_found"), ("create_invite", True, None)]
    token = invite["link"].rsplit("/", 1)[1]
    assert token not in json.dumps([dict(a) for a in audits], default=str)


async def test_sync_preview_flags_contacts_and_writes_nothing(node_client, node_pool):
    app = node_client.server.app
    u = await community(node_pool)
    safe = await add_request(node_pool, u["ann"], "Chairs", "need 12 chairs", scope="public")
    ctx = ctx_of(app, u["admin"])
    result = await S.run_tool(ctx, "sync_preview", {})
    assert result["safe"] and result["counts"].get("request") == 1
    assert any(i["id"] == safe for i in result["items"])
    leak = await add_request(node_pool, u["ann"], "Lift", "text 555-123-4567",
                             scope="public")
    result = await S.run_tool(ctx, "sync_preview", {})
    assert not result["safe"]
    assert [(p["entity"], p["id"]) for p in result["problems"]] == [("request", leak)]
    assert await node_pool.fetchval("SELECT count(*) FROM sync_outbox") == 0
    assert await node_pool.fetchval(
        "SELECT count(*) FROM requests WHERE published") == 0


async def _wb(args, db_url, tmp_path):
    env = {"WB_DATABASE_URL": db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x"}
    return await asyncio.to_thread(CliRunner().invoke, root, args, env=env)


async def test_cli_tools_json_and_tokens(node_db_url, tmp_path):
    import asyncpg

    conn = await asyncpg.connect(node_db_url)
    try:
        admin = await create_user(conn, "root", admin=True)
        rid = await add_request(conn, admin, "Soup", "mail me: a@b.org", scope="public")
        r = await _wb(["copilot", "triage", "--json"], node_db_url, tmp_path)
        assert r.exit_code == 0, r.output
        assert [x["id"] for x in json.loads(r.stdout)["requests"]] == [rid]
        r = await _wb(["copilot", "suggest-scope", "--json"], node_db_url, tmp_path)
        assert json.loads(r.stdout)["suggestions"][0]["id"] == rid
        r = await _wb(["copilot", "sync-preview"], node_db_url, tmp_path)
        assert r.exit_code == 1 and "UNSAFE request:" + rid in r.stdout
        r = await _wb(["copilot", "set-scope", "request", rid, "private", "--json"],
                      node_db_url, tmp_path)
        assert r.exit_code == 0 and json.loads(r.stdout)["changed"] == 1
        r = await _wb(["copilot", "sync-preview", "--json"], node_db_url, tmp_path)
        assert r.exit_code == 0 and json.loads(r.stdout)["safe"] is True
        r = await _wb(["copilot", "create-invite", "--max-uses", "3"], node_db_url, tmp_path)
        assert r.exit_code == 0 and "/register/" in r.stdout
        r = await _wb(["copilot", "set-scope", "request", "NOPE", "public"], node_db_url,
                      tmp_path)
        assert r.exit_code == 1 and "request_not_found" in r.stderr
        vias = await conn.fetch("SELECT DISTINCT via, admin_id FROM copilot_audit")
        assert [(v["via"], v["admin_id"]) for v in vias] == [("cli", None)]

        r = await _wb(["copilot", "token", "create", "--admin", "nobody"], node_db_url,
                      tmp_path)
        assert r.exit_code == 1 and "unknown_admin" in r.stderr
        r = await _wb(["copilot", "token", "create", "--admin", "root", "--label", "ci"],
                      node_db_url, tmp_path)
        token = r.stdout.strip()
        assert r.exit_code == 0 and token.startswith("wbmcp_")
        stored = await conn.fetchrow("SELECT * FROM copilot_tokens")
        assert stored["token_hash"] != token and stored["admin_id"] == admin
        r = await _wb(["copilot", "token", "revoke", stored["id"]], node_db_url, tmp_path)
        assert r.exit_code == 0
        assert await conn.fetchval("SELECT revoked_at IS NOT NULL FROM copilot_tokens")
    finally:
        await conn.close()
