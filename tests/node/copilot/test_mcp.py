"""/mcp: the official MCP Python client lists and calls every tool over streamable HTTP."""

from __future__ import annotations

import json

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from node import typedefs as T
from node.copilot import service as S
from tests.node.copilot.helpers import add_comment, add_request, community, enable

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}}


async def _setup(client):
    pool = client.server.app[T.pool_key]
    u = await community(pool)
    await enable(pool, u["admin"])
    _, token = await S.create_token(pool, "admin", "test")
    return pool, u, token


@pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")
async def test_official_client_lists_and_calls_every_tool(copilot_client):
    pool, u, token = await _setup(copilot_client)
    rid = await add_request(pool, u["bob"], "Ladder", "call 555-123-4567", scope="public")
    done = await add_request(pool, u["ann"], "Ladder loan", "painting", status="completed")
    await add_comment(pool, done, u["cat"])
    url = str(copilot_client.make_url("/mcp"))
    headers = {"Authorization": f"Bearer {token}"}
    async with streamablehttp_client(url, headers=headers) as (read, write, _), \
            ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.serverInfo.name == "whiteballoon-copilot"
        listed = await session.list_tools()
        names = {t.name for t in listed.tools}
        assert names == set(S.TOOLS)
        by_name = {t.name: t for t in listed.tools}
        assert by_name["set_scope"].annotations.readOnlyHint is False
        assert by_name["triage_requests"].annotations.readOnlyHint is True
        assert by_name["set_scope"].inputSchema["required"] == ["kind", "id", "scope"]

        results = {}
        for name, args in [("triage_requests", {"limit": 5}),
                           ("suggest_scope_changes", {}),
                           ("sync_preview", {}),
                           ("set_scope", {"kind": "request", "id": rid, "scope": "private"}),
                           ("create_invite", {"max_uses": 1})]:
            res = await session.call_tool(name, args)
            assert res.isError is False, res.content
            results[name] = json.loads(res.content[0].text)
            assert res.structuredContent == results[name]
        assert results["triage_requests"]["requests"][0]["id"] == rid
        assert results["triage_requests"]["requests"][0]["suggested_helpers"][0][
            "username"] == "cat"
        assert results["suggest_scope_changes"]["suggestions"][0]["id"] == rid
        assert results["sync_preview"]["safe"] is False
        assert results["set_scope"]["changed"] == 1
        assert "/register/" in results["create_invite"]["link"]

        bad = await session.call_tool("set_scope", {"kind": "planet", "id": rid,
                                                    "scope": "public"})
        assert bad.isError is True and "invalid_arguments" in bad.content[0].text

    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "private"
    rows = await pool.fetch("SELECT tool, success, via, admin_id FROM copilot_audit ORDER BY id")
    assert [r["tool"] for r in rows] == ["triage_requests", "suggest_scope_changes",
                                         "sync_preview", "set_scope", "create_invite",
                                         "set_scope"]
    assert {(r["via"], r["admin_id"]) for r in rows} == {("mcp", u["admin"])}
    assert [r["success"] for r in rows][-1] is False


async def _post(client, body, token=None, accept="application/json, text/event-stream",
                **headers):
    h = {"Accept": accept, "Content-Type": "application/json", **headers}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return await client.post("/mcp", data=json.dumps(body), headers=h)


async def test_auth_errors_sse_and_protocol_edges(copilot_client):
    pool, u, token = await _setup(copilot_client)
    r = await _post(copilot_client, INIT)
    assert r.status == 401 and (await r.json())["error"]["code"] == "mcp_token_required"
    r = await _post(copilot_client, INIT, "wbmcp_wrong")
    assert r.status == 401 and (await r.json())["error"]["code"] == "mcp_token_invalid"
    r = await _post(copilot_client, INIT, token, Origin="https://evil.example")
    assert r.status == 403 and (await r.json())["error"]["code"] == "mcp_origin_refused"

    r = await _post(copilot_client, INIT, token, accept="text/event-stream")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    text = await r.text()
    assert text.startswith("event: message\ndata: ")
    assert json.loads(text.split("data: ", 1)[1])["result"]["protocolVersion"] == "2025-06-18"

    r = await _post(copilot_client, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                    token)
    assert r.status == 202
    r = await _post(copilot_client, {"jsonrpc": "2.0", "id": 2, "method": "nope"}, token)
    assert (await r.json())["error"]["code"] == -32601
    r = await _post(copilot_client, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                     "params": {"name": "drop_tables", "arguments": {}}}, token)
    assert (await r.json())["error"]["code"] == -32602
    r = await copilot_client.post("/mcp", data="{not json",
                                  headers={"Authorization": f"Bearer {token}"})
    assert r.status == 400 and (await r.json())["error"]["code"] == -32700
    r = await _post(copilot_client, [INIT], token)
    assert r.status == 400 and (await r.json())["error"]["code"] == -32600
    r = await _post(copilot_client, INIT, token, **{"Mcp-Protocol-Version": "1999-01-01"})
    assert r.status == 400
    r = await copilot_client.get("/mcp", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 405
    refused = await pool.fetchrow("SELECT * FROM copilot_audit WHERE tool = 'drop_tables'")
    assert refused["success"] is False and refused["error_code"] == "unknown_tool"

    # A token stops working as soon as its admin is no longer an admin.
    await pool.execute("UPDATE users SET is_admin = false WHERE id = $1", u["admin"])
    r = await _post(copilot_client, INIT, token)
    assert r.status == 401


async def test_disabled_copilot_refuses_mcp_at_once(copilot_client):
    pool, u, token = await _setup(copilot_client)
    r = await _post(copilot_client, INIT, token)
    assert r.status == 200
    await pool.execute("UPDATE copilot_settings SET enabled = false")
    r = await _post(copilot_client, INIT, token)
    assert r.status == 403 and (await r.json())["error"]["code"] == "copilot_disabled"
