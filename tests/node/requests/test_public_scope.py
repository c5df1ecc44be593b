"""SYNC_PUBLIC_SCOPE (#20): members / admins / off through the page, the JSON API, the CLI
and the copilot tool, which all go through one service function; lowering the mode is
audited and never silently keeps publishing."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from node import typedefs as T
from node.copilot import service as copilot
from node.errors import AppError
from node.publication import service as P
from node.sync.service import run_export
from ops.cli import root
from tests.conftest import make_node_config


@pytest.fixture
def node_config(node_db_url, tmp_path, request):
    mode = getattr(request, "param", "members")
    return make_node_config(node_db_url, tmp_path / "node", SYNC_PUBLIC_SCOPE=mode)


def _mode(mode: str):
    return pytest.mark.parametrize("node_config", [mode], indirect=True)


async def _post_request(member, scope: str = "private") -> str:
    r = await member.post("/requests", {"title": "Ladder", "description": "need a ladder",
                                        "sync_scope": scope})
    assert r.status == 303, await r.text()
    return r.headers["Location"].rsplit("/", 1)[1]


async def _scope(pool, table: str, rid: str) -> str:
    return await pool.fetchval(f"SELECT sync_scope FROM {table} WHERE id = $1", rid)  # noqa: S608


async def _wb(args, node_config, tmp_path, mode):
    env = {"WB_DATABASE_URL": node_config["WB_DATABASE_URL"],
           "WB_DATA_DIR": node_config["WB_DATA_DIR"], "SESSION_SECRET": "x",
           "SYNC_PUBLIC_SCOPE": mode, "WB_PUBLISH_DELAY": "0"}
    return await asyncio.to_thread(CliRunner().invoke, root, args, env=env)


async def _tool(app, admin_id, kind, rid, scope):
    ctx = copilot.ToolContext(app[T.pool_key], app[T.config_key], admin_id, "web")
    return await copilot.run_tool(ctx, "set_scope", {"kind": kind, "id": rid, "scope": scope},
                                  rate_limited=False)


async def test_members_mode_is_todays_behaviour(member_factory, pool):
    ann = await member_factory("ann")
    rid = await _post_request(ann, "public")
    assert await _scope(pool, "requests", rid) == "public"
    assert await pool.fetchval("SELECT count(*) FROM publication_requests") == 0
    res = await run_export(pool, ann.client.server.app[T.config_key])
    assert res.counts.get("request") == 1


@_mode("admins")
async def test_admins_mode_member_asks_and_nothing_leaves_before_approval(
        member_factory, pool, node_config, tmp_path):
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    app = ann.client.server.app
    # page: the button says it asks; the record stays private; a request waits
    rid = await _post_request(ann)
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert "Ask to make public" in page
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "public"})
    assert r.status == 200  # a plain form asks once on a confirmation page (nothing changes)
    assert await _scope(pool, "requests", rid) == "private"
    assert not await pool.fetchval("SELECT count(*) FROM publication_requests")
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "public", "confirm": "1"})
    assert r.status == 303 and r.headers["Location"].endswith("?publication=requested")
    assert await _scope(pool, "requests", rid) == "private"
    # asking twice files no second request
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "public"}, json_reply=True)
    assert (await r.json())["publication_requested"] is True
    assert await pool.fetchval("SELECT count(*) FROM publication_requests") == 1
    # creation with public is a request too, and the JSON API of the bulk page
    rid2 = await _post_request(ann, "public")
    assert await _scope(pool, "requests", rid2) == "private"
    r = await ann.post("/sync/scope", {"item": [f"user:{ann.user_id}"], "sync_scope": "public"},
                       json_reply=True)
    assert await r.json() == {"changed": 0, "requested": [f"user:{ann.user_id}"]}
    # account settings go through the same gate
    r = await ann.post("/settings/account", {"display_name": "Ann", "scope": "public"})
    assert r.headers["Location"].endswith("saved=account-review")
    assert await _scope(pool, "users", ann.user_id) == "private"
    # nothing leaves before approval
    res = await run_export(pool, app[T.config_key])
    assert not res.counts.get("request") and not res.counts.get("user")

    # a member cannot review, even with a valid CSRF token of their own
    pid = await pool.fetchval("SELECT id FROM publication_requests WHERE record_id = $1", rid)
    r = await ann.post(f"/sync/review/{pid}/approve", json_reply=True)
    assert r.status == 403 and await _scope(pool, "requests", rid) == "private"
    r = await ann.client.get("/sync/review", headers={"Accept": "application/json"})
    assert r.status == 403

    # the review page lists it; the admin approves through the page
    r = await boss.client.get("/sync/review", headers={"Accept": "application/json"})
    body = await r.json()
    assert body["mode"] == "admins" and {q["record_id"] for q in body["requests"]} == {
        rid, rid2, ann.user_id}
    r = await boss.post(f"/sync/review/{pid}/approve")
    assert r.status == 303 and await _scope(pool, "requests", rid) == "public"
    r = await boss.post(f"/sync/review/{pid}/approve", json_reply=True)
    assert r.status == 409 and (await r.json())["error"]["code"] == "publication_request_decided"
    r = await boss.post("/sync/review/nope/decline", json_reply=True)
    assert r.status == 404
    res = await run_export(pool, app[T.config_key])
    assert res.counts.get("request") == 1

    # the CLI lists and declines; the record stays private
    r = await _wb(["sync", "review", "list", "--json"], node_config, tmp_path, "admins")
    assert r.exit_code == 0, r.output
    waiting = {q["record_id"]: q["id"] for q in json.loads(r.output)["requests"]}
    assert set(waiting) == {rid2, ann.user_id}
    r = await _wb(["sync", "review", "decline", waiting[rid2], "--note", "has an address"],
                  node_config, tmp_path, "admins")
    assert r.exit_code == 0, r.output
    assert await _scope(pool, "requests", rid2) == "private"
    r = await _wb(["sync", "review", "approve", waiting[ann.user_id], "--json"],
                  node_config, tmp_path, "admins")
    assert r.exit_code == 0 and json.loads(r.output)["status"] == "approved"
    assert await _scope(pool, "users", ann.user_id) == "public"
    actions = [a for (a,) in await pool.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'publication.%' ORDER BY id")]
    assert actions.count("publication.request") == 3
    assert "publication.approved" in actions and "publication.declined" in actions

    # an admin's own change (page, CLI, copilot tool) applies directly
    assert (await _tool(app, boss.user_id, "request", rid2, "public"))["changed"] == 1
    r = await _wb(["copilot", "set-scope", "request", rid2, "private", "--json"],
                  node_config, tmp_path, "admins")
    assert r.exit_code == 0 and json.loads(r.output)["changed"] == 1


@_mode("off")
async def test_off_mode_refuses_public_on_all_four_paths(member_factory, pool, node_config,
                                                         tmp_path):
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    app = ann.client.server.app
    rid = await _post_request(ann)
    # the UI says why the option is missing
    page = await (await ann.client.get("/")).text()
    assert "SYNC_PUBLIC_SCOPE=off" in page and 'value="public"' not in page
    settings = await (await ann.client.get("/settings/account")).text()
    assert "SYNC_PUBLIC_SCOPE=off" in settings
    # page
    r = await boss.post(f"/requests/{rid}/scope", {"sync_scope": "public"})
    assert r.status == 403
    # JSON API
    r = await ann.post("/sync/scope", {"item": [f"request:{rid}"], "sync_scope": "public"},
                       json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "public_scope_off"
    r = await ann.post("/requests", {"title": "x", "description": "y", "sync_scope": "public"},
                       json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "public_scope_off"
    # copilot tool
    with pytest.raises(AppError) as exc:
        await _tool(app, boss.user_id, "request", rid, "public")
    assert exc.value.code == "public_scope_off"
    # CLI
    r = await _wb(["copilot", "set-scope", "request", rid, "public"], node_config, tmp_path,
                  "off")
    assert r.exit_code == 1 and "public_scope_off" in r.output
    assert await _scope(pool, "requests", rid) == "private"
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'scope.change'"
                               ) == 0
    # making private still works
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "private"}, json_reply=True)
    assert r.status == 200


async def test_lowering_is_audited_tombstones_what_was_out_and_withdraw_all(
        member_factory, pool, node_config):
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    rid = await _post_request(ann, "public")
    await ann.post("/settings/account", {"display_name": "Ann", "scope": "public"})
    res = await run_export(pool, node_config)
    assert res.counts.get("request") == 1 and res.counts.get("user") == 1
    rid_late = await _post_request(ann, "public")  # marked public, never out yet

    off = make_node_config(node_config["WB_DATABASE_URL"], node_config.path("WB_DATA_DIR"),
                           SYNC_PUBLIC_SCOPE="off")
    out = await P.apply_mode(pool, off)
    assert out["changed"] and out["previous"] == "members" and out["still_public"] == 3
    row = await pool.fetchrow("SELECT details FROM audit_log WHERE action = "
                              "'sync.public_scope'")
    details = json.loads(row["details"])
    assert details["from"] == "members" and details["to"] == "off" and details["lowered"]
    # applying the same mode again is not a change
    assert (await P.apply_mode(pool, off))["changed"] is False

    # off: the next export carries only tombstones for what was out there
    res = await run_export(pool, off)
    assert res.counts == {"request_tombstones": 1, "user_tombstones": 1}
    res = await run_export(pool, off)
    assert res.sequence is None  # nothing more leaves
    # the admin sees what is still marked public, and withdraws it all
    r = await boss.client.get("/sync/review", headers={"Accept": "application/json"})
    body = await r.json()
    assert {x["id"] for x in body["still_public"]["request"]} == {rid, rid_late}
    r = await ann.post("/sync/review/withdraw-all", json_reply=True)
    assert r.status == 403
    r = await boss.post("/sync/review/withdraw-all", json_reply=True)
    assert await r.json() == {"withdrawn": 3}
    assert await _scope(pool, "requests", rid_late) == "private"
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = "
                               "'sync.withdraw_all'") == 1


async def test_raising_from_off_publishes_what_is_public_again(member_factory, pool,
                                                               node_config):
    ann = await member_factory("ann")
    rid = await _post_request(ann, "public")
    await run_export(pool, node_config)
    cfg = {m: make_node_config(node_config["WB_DATABASE_URL"],
                               node_config.path("WB_DATA_DIR"), SYNC_PUBLIC_SCOPE=m)
           for m in ("off", "admins")}
    await P.apply_mode(pool, cfg["off"])
    assert (await run_export(pool, cfg["off"])).counts == {"request_tombstones": 1}
    out = await P.apply_mode(pool, cfg["admins"])
    assert out["changed"] and out["still_public"] == 1
    res = await run_export(pool, cfg["admins"])
    assert res.counts == {"request": 1}
    assert await _scope(pool, "requests", rid) == "public"


async def test_a_bad_mode_is_a_clean_cli_error(node_config, tmp_path):
    r = await _wb(["sync", "public-scope"], node_config, tmp_path, "everyone")
    assert r.exit_code == 1 and "SYNC_PUBLIC_SCOPE must be one of" in r.output
    r = await _wb(["sync", "public-scope", "--json"], node_config, tmp_path, "admins")
    assert r.exit_code == 0 and json.loads(r.output)["mode"] == "admins"
