"""The admin's switch of SYNC_PUBLIC_SCOPE (#20, "sync exposure"): /sync/review's form, the
JSON API and ``wb sync public-scope MODE`` change the mode in force, audited; the setting
is the initial value and wins again only when it changes; lowering keeps what is public
public and lists it. Written from the hostile side: anonymous, member, unapproved device,
no CSRF token, bad values, two admins at once."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from node import typedefs as T
from node.publication import service as P
from node.sync.service import run_export
from ops.cli import root
from tests.conftest import make_node_config


@pytest.fixture
def node_config(node_db_url, tmp_path, request):
    mode = getattr(request, "param", "members")
    return make_node_config(node_db_url, tmp_path / "node", SYNC_PUBLIC_SCOPE=mode,
                            WB_PUBLISH_DELAY="0")


async def _mode(pool) -> str:
    return await pool.fetchval("SELECT mode FROM node_public_scope")


async def _audits(pool) -> list[dict]:
    rows = await pool.fetch("SELECT actor_id, ip, details FROM audit_log "
                            "WHERE action = 'sync.public_scope' ORDER BY id")
    return [dict(json.loads(r["details"]), actor_id=r["actor_id"], ip=r["ip"]) for r in rows]


async def _wb(args, node_config, mode=None):
    env = {"WB_DATABASE_URL": node_config["WB_DATABASE_URL"],
           "WB_DATA_DIR": node_config["WB_DATA_DIR"], "SESSION_SECRET": "x",
           "SYNC_PUBLIC_SCOPE": mode or node_config["SYNC_PUBLIC_SCOPE"],
           "WB_PUBLISH_DELAY": "0"}
    return await asyncio.to_thread(CliRunner().invoke, root, args, env=env)


async def _api(member, payload: dict):
    """The JSON API as a script calls it: a JSON body, the CSRF header, Accept JSON."""
    return await member.client.post("/sync/review/mode", json=payload,
                                    headers={"X-CSRF-Token": member.csrf,
                                             "Accept": "application/json"})


async def _public_request(member, title: str = "Ladder") -> str:
    r = await member.post("/requests", {"title": title, "description": "need a ladder",
                                        "sync_scope": "public", "confirm": "1"})
    assert r.status == 303, await r.text()
    return r.headers["Location"].rsplit("/", 1)[1]


async def test_anonymous_member_and_unapproved_device_cannot_switch(
        member_factory, aiohttp_client, node_client, pool):
    ann = await member_factory("ann")
    # an admin's account whose sign-in on this device is not approved yet
    half = await member_factory("boss", admin=True, status="pending")
    anonymous = await aiohttp_client(node_client.server)
    assert await _mode(pool) == "members"
    for who in (ann, half):
        r = await who.post("/sync/review/mode", {"mode": "off"}, json_reply=True)
        assert r.status in (401, 403), r.status
        r = await _api(who, {"mode": "off"})
        assert r.status in (401, 403), r.status
        r = await who.client.get("/sync/review", headers={"Accept": "application/json"})
        assert r.status in (401, 403)
    r = await ann.post("/sync/review/mode", {"mode": "off"}, json_reply=True)
    assert (await r.json())["error"]["code"] == "admin_only"  # the route policy
    r = await anonymous.post("/sync/review/mode", data={"mode": "off"},
                             headers={"Accept": "application/json"}, allow_redirects=False)
    assert r.status in (401, 403)
    r = await anonymous.post("/sync/review/mode", data={"mode": "off"}, allow_redirects=False)
    assert r.status in (303, 401, 403) and r.headers.get("Location", "/login").startswith(
        "/login")
    assert await _mode(pool) == "members" and await _audits(pool) == []


async def test_admin_switches_through_page_json_api_and_cli(member_factory, pool,
                                                            node_config):
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    # the page shows the three modes side by side, members in force, from the setting
    page = await (await boss.client.get("/sync/review")).text()
    assert 'action="/sync/review/mode"' in page
    for m in ("members", "admins", "off"):
        assert f'name="mode" value="{m}"' in page
    assert 'value="members" checked' in page and "From the node's setting" in page

    # page (plain form): members -> admins
    r = await boss.post("/sync/review/mode", {"mode": "admins"})
    assert r.status == 303 and r.headers["Location"] == "/sync/review?done=mode"
    assert await _mode(pool) == "admins"
    page = await (await boss.client.get("/sync/review?done=mode")).text()
    assert "SYNC_PUBLIC_SCOPE is admins now." in page and 'value="admins" checked' in page
    assert "Set by boss" in page and "setting says <code>members</code>" in page
    # the member's pages follow at once: "make public" asks an admin now
    home = await (await ann.client.get("/")).text()
    assert 'id="scope-review-note"' in home

    # JSON API: admins -> off, with the X-CSRF-Token header
    r = await _api(boss, {"mode": "off"})
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["mode"] == "off" and body["previous"] == "admins" and body["changed"]
    assert body["lowered"] and body["source"] == "admin" and body["changed_by"] == "boss"
    assert body["configured"] == "members"
    home = await (await ann.client.get("/")).text()
    assert 'id="scope-off-note"' in home and 'value="public"' not in home
    r = await ann.post("/requests", {"title": "x", "description": "y", "sync_scope": "public"},
                       json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "public_scope_off"
    # the sync control center shows the mode in force and links to the switch
    control = await (await boss.client.get("/admin/sync-control")).text()
    assert "SYNC_PUBLIC_SCOPE=off" in control and "/sync/review#public-scope-mode" in control
    # the review page's JSON says where the mode comes from
    r = await boss.client.get("/sync/review", headers={"Accept": "application/json"})
    body = await r.json()
    assert (body["mode"], body["source"], body["changed_by"]) == ("off", "admin", "boss")

    # CLI: off -> members (the same service; the operator has no user id)
    r = await _wb(["sync", "public-scope", "members", "--json"], node_config)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["mode"] == "members" and out["previous"] == "off" and out["changed"]
    assert await _mode(pool) == "members"
    r = await _wb(["sync", "public-scope"], node_config)
    assert r.exit_code == 0 and "SYNC_PUBLIC_SCOPE=members (set by an admin" in r.output
    # lowering from the CLI says what stays public
    await _public_request(ann)
    r = await _wb(["sync", "public-scope", "admins"], node_config)
    assert r.exit_code == 0 and "1 local record marked public." in r.output
    assert "They stay public until withdrawn: wb sync review withdraw-all." in r.output
    r = await _wb(["sync", "public-scope", "members"], node_config)
    assert r.exit_code == 0
    r = await _wb(["sync", "public-scope", "everyone"], node_config)
    assert r.exit_code == 2 and await _mode(pool) == "members"

    audits = await _audits(pool)
    assert [(a["from"], a["to"], a["via"], a["source"]) for a in audits] == [
        ("members", "admins", "web", "admin"), ("admins", "off", "web", "admin"),
        ("off", "members", "cli", "admin"), ("members", "admins", "cli", "admin"),
        ("admins", "members", "cli", "admin")]
    assert [a["actor_id"] for a in audits] == [boss.user_id, boss.user_id, None, None, None]
    assert audits[0]["ip"] == "127.0.0.1" and audits[1]["lowered"] and not audits[2]["lowered"]


async def test_lowering_keeps_public_records_public_and_lists_them(member_factory, pool,
                                                                   node_config):
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    out_there = await _public_request(ann, "Ladder")
    res = await run_export(pool, node_config)
    assert res.counts.get("request") == 1
    marked = await _public_request(ann, "Wheelbarrow")  # public, not exported yet

    # members -> admins through the page: redirected to the list of what is still public
    r = await boss.post("/sync/review/mode", {"mode": "admins"})
    assert r.status == 303
    assert r.headers["Location"] == "/sync/review?done=lowered&count=2#still-public"
    page = await (await boss.client.get(r.headers["Location"])).text()
    assert "2 records are still public: they stay public until withdrawn" in page
    assert "Ladder" in page and "Wheelbarrow" in page
    assert 'action="/sync/review/withdraw-all"' in page
    for rid in (out_there, marked):
        assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id = $1",
                                   rid) == "public"
    # under admins what was public keeps leaving (nothing silently withdrawn)
    res = await run_export(pool, node_config)
    assert res.counts.get("request") == 1  # the wheelbarrow

    # admins -> off through the JSON API: the answer lists them too
    r = await _api(boss, {"mode": "off"})
    body = await r.json()
    assert body["lowered"] and body["still_public"] == 2
    assert {x["id"] for x in body["still_public_records"]["request"]} == {out_there, marked}
    # still marked public; the export now carries only their tombstones
    assert await pool.fetchval("SELECT count(*) FROM requests WHERE sync_scope = 'public'"
                               ) == 2
    res = await run_export(pool, node_config)
    assert res.counts == {"request_tombstones": 2}

    # withdraw all from the page, then raising again publishes nothing
    r = await boss.post("/sync/review/withdraw-all")
    assert r.status == 303 and "count=2" in r.headers["Location"]
    r = await _api(boss, {"mode": "members"})
    assert (await r.json())["still_public"] == 0
    res = await run_export(pool, node_config)
    assert res.sequence is None


async def test_raising_from_off_through_the_switch_publishes_again(member_factory, pool,
                                                                   node_config):
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    rid = await _public_request(ann)
    await run_export(pool, node_config)
    await _api(boss, {"mode": "off"})
    assert (await run_export(pool, node_config)).counts == {"request_tombstones": 1}
    r = await boss.post("/sync/review/mode", {"mode": "members"})
    assert r.headers["Location"] == "/sync/review?done=mode"
    assert (await run_export(pool, node_config)).counts == {"request": 1}
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id = $1", rid) == "public"


async def test_csrf_less_posts_are_refused_and_change_nothing(member_factory, pool):
    boss = await member_factory("boss", admin=True)
    client = boss.client
    r = await client.post("/sync/review/mode", data={"mode": "off"}, allow_redirects=False)
    assert r.status == 403
    r = await client.post("/sync/review/mode", data={"mode": "off", "csrf_token": "forged"},
                          headers={"Accept": "application/json"}, allow_redirects=False)
    assert r.status == 403
    r = await client.post("/sync/review/mode", json={"mode": "off"},
                          headers={"Accept": "application/json"})
    assert r.status == 403
    r = await client.post("/sync/review/mode", json={"mode": "off"},
                          headers={"X-CSRF-Token": "forged"})
    assert r.status == 403
    assert await _mode(pool) == "members" and await _audits(pool) == []


@pytest.mark.parametrize("payload", [
    {"mode": "everyone"}, {"mode": ""}, {}, {"mode": 2}, {"mode": None}, {"mode": ["off"]},
    {"mode": "members; off"}])
async def test_a_bad_mode_is_400_and_changes_nothing(member_factory, pool, payload):
    boss = await member_factory("boss", admin=True)
    r = await _api(boss, payload)
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "invalid_public_scope"
    if all(isinstance(v, str) for v in payload.values()):  # the plain form too
        r = await boss.post("/sync/review/mode", payload, json_reply=True)
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_public_scope"
        r = await boss.post("/sync/review/mode", payload)
        assert r.status == 400 and "members, admins, off" in await r.text()
    assert await _mode(pool) == "members" and await _audits(pool) == []


async def test_a_malformed_json_body_is_400_and_changes_nothing(member_factory, pool):
    boss = await member_factory("boss", admin=True)
    for raw in (b'{"mode": "off"', b'["off"]', b'"off"'):
        r = await boss.client.post("/sync/review/mode", data=raw,
                                   headers={"X-CSRF-Token": boss.csrf,
                                            "Content-Type": "application/json",
                                            "Accept": "application/json"})
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json", raw
    assert await _mode(pool) == "members" and await _audits(pool) == []


def test_the_docs_put_the_three_modes_side_by_side():
    """docs/operator-guide.md explains how to decide when data can safely leave, with the
    three modes as columns of one table; docs/settings.md says how the setting and the
    admin's switch relate."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[3] / "docs"
    guide = (docs / "operator-guide.md").read_text()
    section = guide.split("## How to decide when data can safely leave", 1)[1].split("\n## ")[0]
    header = next(line for line in section.splitlines() if line.startswith("| |"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == [
        "`members` (default)", "`admins`", "`off`"]
    assert "/sync/review" in section and "wb sync public-scope MODE" in section
    settings = (docs / "settings.md").read_text()
    assert "## SYNC_PUBLIC_SCOPE: the setting and the admin's switch" in settings


async def test_choosing_the_mode_in_force_writes_nothing(member_factory, pool):
    boss = await member_factory("boss", admin=True)
    before = await pool.fetchrow("SELECT * FROM node_public_scope")
    r = await boss.post("/sync/review/mode", {"mode": "members"})
    assert r.headers["Location"] == "/sync/review?done=unchanged"
    r = await _api(boss, {"mode": "members"})
    assert (await r.json())["changed"] is False
    assert await pool.fetchrow("SELECT * FROM node_public_scope") == before
    assert await _audits(pool) == []


async def test_the_setting_is_the_initial_value_and_wins_only_when_it_changes(
        member_factory, pool, node_config):
    boss = await member_factory("boss", admin=True)
    await _api(boss, {"mode": "off"})
    # a restart (or any CLI command) with the same setting keeps the admin's choice
    out = await P.apply_mode(pool, node_config)
    assert out["mode"] == "off" and not out["changed"] and out["source"] == "admin"
    r = await _wb(["sync", "review", "list", "--json"], node_config)
    assert r.exit_code == 0 and await _mode(pool) == "off"
    assert len(await _audits(pool)) == 1
    # the operator changes the setting: it wins, audited as coming from the setting
    admins = make_node_config(node_config["WB_DATABASE_URL"], node_config.path("WB_DATA_DIR"),
                              SYNC_PUBLIC_SCOPE="admins")
    out = await P.apply_mode(pool, admins)
    assert out["mode"] == "admins" and out["changed"] and out["source"] == "setting"
    last = (await _audits(pool))[-1]
    assert (last["from"], last["to"], last["source"], last["actor_id"]) == (
        "off", "admins", "setting", None)
    # and from then on the admin may switch again, which again survives restarts
    await _api(boss, {"mode": "members"})
    assert (await P.apply_mode(pool, admins))["mode"] == "members"


async def test_two_admins_at_once_leave_a_consistent_audit_chain(member_factory, pool):
    ann = await member_factory("ann", admin=True)
    boss = await member_factory("boss", admin=True)
    results = await asyncio.gather(
        _api(ann, {"mode": "off"}),
        _api(boss, {"mode": "admins"}))
    assert [r.status for r in results] == [200, 200]
    audits = await _audits(pool)
    assert audits[0]["from"] == "members"
    if len(audits) == 2:
        assert audits[1]["from"] == audits[0]["to"]
    assert await _mode(pool) == audits[-1]["to"]


@pytest.mark.parametrize("node_config", ["off"], indirect=True)
async def test_a_node_started_off_can_be_raised_by_an_admin(member_factory, pool):
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    r = await ann.post("/requests", {"title": "x", "description": "y", "sync_scope": "public"},
                       json_reply=True)
    assert r.status == 403
    r = await boss.post("/sync/review/mode", {"mode": "members"})
    assert r.status == 303 and await _mode(pool) == "members"
    rid = await _public_request(ann)
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id = $1", rid) == "public"


async def _outcome(pool, rid: str) -> str:
    scope = await pool.fetchval("SELECT sync_scope FROM requests WHERE id = $1", rid)
    asked = await pool.fetchval("SELECT count(*) FROM publication_requests WHERE record_id = $1 "
                                "AND status = 'pending'", rid)
    return "public" if scope == "public" else ("requested" if asked else "private")


@pytest.mark.parametrize("node_config", ["members", "admins", "off"], indirect=True)
async def test_the_four_paths_agree_in_every_mode(member_factory, pool, node_config):
    """Making a record public through the page, the JSON API, the CLI and the copilot tool:
    for the same kind of actor every path ends the same way, in each mode."""
    from node.copilot import service as copilot

    mode = node_config["SYNC_PUBLIC_SCOPE"]
    ann = await member_factory("ann")
    boss = await member_factory("boss", admin=True)
    app = ann.client.server.app
    rids = {}
    for path in ("m-page", "m-json", "a-page", "a-json", "a-cli", "a-copilot"):
        r = await ann.post("/requests", {"title": path, "description": "x"})
        rids[path] = r.headers["Location"].rsplit("/", 1)[1]

    async def page(who, rid):
        r = await who.post(f"/requests/{rid}/scope", {"sync_scope": "public", "confirm": "1"})
        return r.status

    async def api(who, rid):
        r = await who.post("/sync/scope", {"item": [f"request:{rid}"],
                                           "sync_scope": "public"}, json_reply=True)
        return r.status

    statuses = {"m-page": await page(ann, rids["m-page"]),
                "m-json": await api(ann, rids["m-json"]),
                "a-page": await page(boss, rids["a-page"]),
                "a-json": await api(boss, rids["a-json"])}
    r = await _wb(["copilot", "set-scope", "request", rids["a-cli"], "public", "--json"],
                  node_config)
    statuses["a-cli"] = r.exit_code
    ctx = copilot.ToolContext(app[T.pool_key], app[T.config_key], boss.user_id, "web")
    try:
        await copilot.run_tool(ctx, "set_scope", {"kind": "request", "id": rids["a-copilot"],
                                                  "scope": "public"}, rate_limited=False)
        statuses["a-copilot"] = 0
    except Exception as exc:  # noqa: BLE001 - the refusal is the outcome compared
        statuses["a-copilot"] = getattr(exc, "code", repr(exc))
    outcomes = {p: await _outcome(pool, rid) for p, rid in rids.items()}
    member = {"members": "public", "admins": "requested", "off": "private"}[mode]
    admin = {"members": "public", "admins": "public", "off": "private"}[mode]
    assert outcomes == {"m-page": member, "m-json": member, "a-page": admin,
                        "a-json": admin, "a-cli": admin, "a-copilot": admin}, statuses
    if mode == "off":  # refused everywhere, with the same code
        assert statuses["m-page"] == statuses["a-page"] == 403
        assert statuses["m-json"] == statuses["a-json"] == 403
        assert statuses["a-cli"] == 1 and statuses["a-copilot"] == "public_scope_off"
    else:
        assert statuses["a-cli"] == 0 and statuses["a-copilot"] == 0
