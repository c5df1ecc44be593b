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


def test_offers_exactly_the_versions_of_the_sdk_in_use_newest_first():
    import mcp.types
    from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS

    from node.copilot import mcp as M

    assert M.SUPPORTED_VERSIONS[0] == mcp.types.LATEST_PROTOCOL_VERSION
    assert set(M.SUPPORTED_VERSIONS) == set(SUPPORTED_PROTOCOL_VERSIONS)
    assert list(M.SUPPORTED_VERSIONS) == sorted(M.SUPPORTED_VERSIONS, reverse=True)


def _sdk_versions():
    from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS

    return list(SUPPORTED_PROTOCOL_VERSIONS)


@pytest.mark.filterwarnings("ignore:Use `streamable_http_client`:DeprecationWarning")
@pytest.mark.parametrize("version", _sdk_versions())
async def test_official_client_negotiates_each_version_it_offers(copilot_client, monkeypatch,
                                                                 version):
    import mcp.types

    pool, u, token = await _setup(copilot_client)
    rid = await add_request(pool, u["bob"], "Ladder", "roof")
    # The SDK client asks for mcp.types.LATEST_PROTOCOL_VERSION; ask for each in turn.
    monkeypatch.setattr(mcp.types, "LATEST_PROTOCOL_VERSION", version)
    url = str(copilot_client.make_url("/mcp"))
    async with streamablehttp_client(url, headers={"Authorization": f"Bearer {token}"}) \
            as (read, write, _), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.protocolVersion == version
        assert {t.name for t in (await session.list_tools()).tools} == set(S.TOOLS)
        res = await session.call_tool("triage_requests", {"limit": 5})
        assert res.isError is False
        assert json.loads(res.content[0].text)["requests"][0]["id"] == rid


async def test_null_or_odd_ids_are_refused_and_run_nothing(copilot_client):
    pool, u, token = await _setup(copilot_client)
    call = {"jsonrpc": "2.0", "method": "tools/call",
            "params": {"name": "create_invite", "arguments": {}}}
    for bad_id in (None, True, 1.5, {"a": 1}, [1]):
        r = await _post(copilot_client, {**call, "id": bad_id}, token)
        assert r.status == 400, bad_id
        body = await r.json()
        assert body["error"]["code"] == -32600 and body["id"] is None
    assert await pool.fetchval("SELECT count(*) FROM invites") == 0
    assert await pool.fetchval("SELECT count(*) FROM copilot_audit") == 0
    r = await _post(copilot_client, {"jsonrpc": "2.0", "id": "a-string", "method": "ping"},
                    token)
    assert (await r.json()) == {"jsonrpc": "2.0", "id": "a-string", "result": {}}


async def test_batches_only_for_2025_03_26_clients(copilot_client):
    pool, u, token = await _setup(copilot_client)
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
             {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": "two", "method": "ping"},
             {"jsonrpc": "2.0", "id": None, "method": "ping"},
             {"jsonrpc": "2.0", "id": 3, "method": "nope"}]
    r = await _post(copilot_client, batch, token)  # no version header: a 2025-03-26 client
    assert r.status == 200
    answers = await r.json()
    assert [a["id"] for a in answers] == [1, "two", None, 3]
    assert len(answers[0]["result"]["tools"]) == len(S.TOOLS)
    assert answers[1]["result"] == {} and answers[2]["error"]["code"] == -32600
    assert answers[3]["error"]["code"] == -32601
    r = await _post(copilot_client, batch, token, **{"Mcp-Protocol-Version": "2025-03-26"})
    assert r.status == 200 and len(await r.json()) == 4
    for version in ("2025-06-18", "2025-11-25"):
        r = await _post(copilot_client, batch, token, **{"Mcp-Protocol-Version": version})
        assert r.status == 400 and (await r.json())["error"]["code"] == -32600
    for bad in ([], [{"jsonrpc": "2.0", "id": 1, "method": "ping"}] * 51):
        r = await _post(copilot_client, bad, token)
        assert r.status == 400 and (await r.json())["error"]["code"] == -32600
    r = await _post(copilot_client, [{"jsonrpc": "2.0", "method": "notifications/x"}], token)
    assert r.status == 202 and await r.read() == b""
    r = await _post(copilot_client, [{"jsonrpc": "2.0", "id": 9, "method": "ping"}], token,
                    accept="text/event-stream")
    text = await r.text()
    assert json.loads(text.split("data: ", 1)[1]) == [{"jsonrpc": "2.0", "id": 9, "result": {}}]


async def test_get_and_delete_answer_json_405_with_allow(copilot_client):
    pool, u, token = await _setup(copilot_client)
    for method in ("GET", "DELETE"):
        r = await copilot_client.request(method, "/mcp", headers={
            "Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
        assert r.status == 405 and r.headers["Allow"] == "POST"
        assert r.content_type == "application/json"
        assert (await r.json())["error"]["code"] == "method_not_allowed"


async def test_no_cookie_on_any_mcp_response(copilot_client):
    pool, u, token = await _setup(copilot_client)
    copilot_client.session.cookie_jar.clear()
    answers = [await _post(copilot_client, INIT, token),
               await _post(copilot_client, INIT),
               await _post(copilot_client, {"jsonrpc": "2.0", "method": "n"}, token),
               await _post(copilot_client, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
                           token),
               await copilot_client.get("/mcp", headers={"Authorization": f"Bearer {token}"}),
               await copilot_client.delete("/mcp")]
    assert [r.status for r in answers] == [200, 401, 202, 200, 405, 405]
    for r in answers:
        assert "Set-Cookie" not in r.headers, r.headers
    assert len(copilot_client.session.cookie_jar) == 0
    # An ordinary page still hands out its CSRF cookie.
    r = await copilot_client.get("/api/csrf")
    assert "Set-Cookie" in r.headers


@pytest.mark.parametrize("origin,allowed", [
    ("http://node.test", True), ("http://node.test:80", True), ("HTTP://NODE.TEST", True),
    ("http://localhost:9999", False), ("http://127.0.0.1", False), ("null", False),
    ("https://node.test", False), ("http://node.test:8080", False),
    ("http://node.test.evil.example", False), ("http://evil.example/http://node.test", False),
    ("http://[::1", False), ("", False)])
async def test_origin_must_be_exactly_the_sites(copilot_client, origin, allowed):
    pool, u, token = await _setup(copilot_client)
    r = await _post(copilot_client, INIT, token, Origin=origin)
    if allowed:
        assert r.status == 200, origin
    else:
        assert r.status == 403 and (await r.json())["error"]["code"] == "mcp_origin_refused"
