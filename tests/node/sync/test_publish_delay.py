"""The publishing grace period (WB_PUBLISH_DELAY): public changes wait, withdrawals don't.

Time is moved by backdating ``updated_at`` (which the change trigger ignores), never by
sleeping: a held change is "made" the given number of seconds ago.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from node import typedefs as T
from node.sync import queries as Q
from node.sync.export import export, preview
from node.sync.service import leaves_in_text
from protocol.containers import from_cbor
from tests.conftest import make_node_config
from tests.factories import create_user, sign_in
from tests.node.copilot.helpers import add_comment, add_request

DELAY = "120"


@pytest.fixture
async def app_client(aiohttp_client, node_db_url, tmp_path):
    from node.app import create_app

    config = make_node_config(node_db_url, tmp_path / "node", WB_PUBLISH_DELAY=DELAY,
                              ENABLE_COPILOT="true")
    return await aiohttp_client(create_app(config))


def _parts(client):
    return client.server.app[T.pool_key], client.server.app[T.config_key]


async def _age(pool, table, row_id, seconds):
    """Pretend the row's last change happened ``seconds`` ago."""
    await pool.execute(f"UPDATE {table} SET updated_at = now() - make_interval(secs => $2) "
                       "WHERE id = $1", row_id, float(seconds))


async def _exported_paths(pool) -> list[str]:
    paths = []
    for row in await pool.fetch("SELECT envelope FROM sync_outbox ORDER BY sequence"):
        bundle = from_cbor(bytes(row["envelope"]))
        paths += [p for p in bundle.files if not p.startswith("public_keys/")]
    return paths


async def _community(pool, config):
    owner = await create_user(pool, "owner", scope="public")
    admin = await create_user(pool, "admin", admin=True)
    other = await create_user(pool, "other")
    # Members themselves were made long ago and are already out.
    for uid in (owner, admin, other):
        await _age(pool, "users", uid, 3600)
    await export(pool, config)
    return owner, admin, other


@pytest.fixture
async def world(app_client):
    pool, config = _parts(app_client)
    owner, admin, other = await _community(pool, config)
    return app_client, pool, config, owner, admin, other


async def test_new_public_request_waits_then_leaves(world):
    client, pool, config, owner, admin, other = world
    seq = await pool.fetchval("SELECT sequence FROM node_sync_state")
    rid = await add_request(pool, owner, "Ladder", "call 415-555-0123", scope="public")

    res = await export(pool, config)
    assert res.sequence is None and res.record_count == 0
    assert [w.record.id for w in res.waiting] == [rid]
    assert 1 <= res.waiting[0].leaves_in_seconds <= 120
    assert await pool.fetchval("SELECT sequence FROM node_sync_state") == seq
    assert f"requests/{rid}.sync.txt" not in await _exported_paths(pool)
    assert await pool.fetchval("SELECT published FROM requests WHERE id = $1", rid) is False
    # A snapshot does not carry it either.
    snap, records = await preview(pool, config, snapshot=True)
    assert rid not in {r.id for r in records} and rid in {w.record.id for w in snap.waiting}

    await _age(pool, "requests", rid, 119)
    assert (await export(pool, config)).sequence is None
    await _age(pool, "requests", rid, 121)
    res = await export(pool, config)
    assert res.sequence == seq + 1 and res.waiting == []
    assert f"requests/{rid}.sync.txt" in await _exported_paths(pool)


async def test_withdrawn_during_the_wait_nothing_ever_leaves(world):
    client, pool, config, owner, admin, other = world
    seq = await pool.fetchval("SELECT sequence FROM node_sync_state")
    rid = await add_request(pool, owner, "Ladder", "roof", scope="public")
    cid = await add_comment(pool, rid, other, "me too")
    await pool.execute("UPDATE comments SET sync_scope = 'public' WHERE id = $1", cid)
    await pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = $1", rid)
    for _ in range(2):
        res = await export(pool, config)
        assert res.sequence is None and res.waiting == []
        await _age(pool, "requests", rid, 3600)
        await _age(pool, "comments", cid, 3600)
    assert await pool.fetchval("SELECT sequence FROM node_sync_state") == seq
    assert await _exported_paths(pool) == [p for p in await _exported_paths(pool)
                                           if rid not in p and cid not in p]
    assert not await Q.has_unexported_changes(pool, 120)


async def test_withdrawals_and_tombstones_never_wait(world):
    client, pool, config, owner, admin, other = world
    rid = await add_request(pool, owner, "Ladder", "roof", scope="public")
    await _age(pool, "requests", rid, 121)
    assert (await export(pool, config)).record_count == 1
    # Just now made private and, separately, a published one deleted: both leave at once.
    rid2 = await add_request(pool, owner, "Soup", "pot", scope="public")
    await _age(pool, "requests", rid2, 121)
    await export(pool, config)
    await pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = $1", rid)
    await pool.execute("UPDATE requests SET deleted_at = now() WHERE id = $1", rid2)
    assert await Q.has_unexported_changes(pool, 120)
    res = await export(pool, config)
    assert res.counts == {"request_tombstones": 2}
    assert res.waiting == []


async def test_edit_of_a_public_record_waits_and_comments_wait_for_their_request(world):
    client, pool, config, owner, admin, other = world
    rid = await add_request(pool, owner, "Ladder", "roof", scope="public")
    await _age(pool, "requests", rid, 121)
    await export(pool, config)
    await pool.execute("UPDATE requests SET description = 'now 415-555-0123' WHERE id = $1",
                       rid)
    res = await export(pool, config)
    assert res.sequence is None and [w.record.id for w in res.waiting] == [rid]
    holds = (await _holds(pool, config, requests=[rid]))[f"request:{rid}"]
    assert holds["published"] is True

    # A new request with a comment: the comment, even if older, waits for its request.
    rid2 = await add_request(pool, owner, "Soup", "pot", scope="public")
    cid = await add_comment(pool, rid2, other, "here")
    await pool.execute("UPDATE comments SET sync_scope = 'public' WHERE id = $1", cid)
    await _age(pool, "comments", cid, 3600)
    res = await export(pool, config)
    assert {w.record.id for w in res.waiting} == {rid, rid2, cid}
    await _age(pool, "requests", rid, 121)
    await _age(pool, "requests", rid2, 121)
    res = await export(pool, config)
    assert res.counts == {"request": 2, "comment": 1} and res.waiting == []


async def _holds(pool, config, **ids):
    from node.sync.service import publish_holds

    return await publish_holds(pool, config, **ids)


def test_leaves_in_text():
    assert leaves_in_text(100) == "1 min 40 s"
    assert leaves_in_text(120) == "2 min"
    assert leaves_in_text(40) == "40 s"
    assert leaves_in_text(0) == "0 s"


async def test_scheduler_exports_only_what_is_due(world):
    from node.sync.scheduling import export_if_changed

    client, pool, config, owner, admin, other = world
    app = client.server.app
    jobs = await pool.fetchval("SELECT count(*) FROM sync_jobs")
    rid = await add_request(pool, owner, "Ladder", "roof", scope="public")
    assert not await Q.has_unexported_changes(pool, 120)
    assert await export_if_changed(app) is None
    # Nothing ran: a held change does not make the watcher export twice a second.
    assert await pool.fetchval("SELECT count(*) FROM sync_jobs") == jobs
    await _age(pool, "requests", rid, 121)
    assert await Q.has_unexported_changes(pool, 120)
    seq = await export_if_changed(app)
    assert seq is not None
    assert f"requests/{rid}.sync.txt" in await _exported_paths(pool)


async def test_running_watcher_sends_withdrawals_at_once_and_holds_new_records(
        aiohttp_client, node_db_url, tmp_path):
    from node.app import create_app

    config = make_node_config(node_db_url, tmp_path / "node", WB_PUBLISH_DELAY=DELAY,
                              WB_SCHEDULER="true")
    client = await aiohttp_client(create_app(config))
    pool = client.server.app[T.pool_key]
    owner = await create_user(pool, "owner", scope="public")
    await _age(pool, "users", owner, 3600)
    out = await add_request(pool, owner, "Old", "x", scope="public")
    await _age(pool, "requests", out, 3600)
    await _until(pool, lambda paths: f"requests/{out}.sync.txt" in paths)

    held = await add_request(pool, owner, "New", "x", scope="public")
    await pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = $1", out)
    # The tombstone leaves by itself (the watcher), the new record does not.
    await _until(pool, lambda paths: paths.count(f"requests/{out}.sync.txt") == 2)
    assert f"requests/{held}.sync.txt" not in await _exported_paths(pool)
    await _age(pool, "requests", held, 121)
    await _until(pool, lambda paths: f"requests/{held}.sync.txt" in paths)


async def _until(pool, check, deadline=60.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        if check(await _exported_paths(pool)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not exported in time: {await _exported_paths(pool)}")


async def test_member_sees_leaves_in_and_undoes_without_js(world):
    client, pool, config, owner, admin, other = world
    seq = await pool.fetchval("SELECT sequence FROM node_sync_state")
    rid = await add_request(pool, owner, "Ladder", "roof", scope="public")
    await _age(pool, "requests", rid, 20)
    csrf = await sign_in(client, owner)
    page = await (await client.get(f"/requests/{rid}")).text()
    assert re.search(r"Leaves this node in <strong class=\"countdown\">1 min (40|3\d) s<", page)
    assert f'action="/requests/{rid}/scope"' in page and ">undo<" in page

    # /sync/public (admins) and the copilot's preview show what is waiting.
    await sign_in(client, admin)
    public = await (await client.get("/sync/public")).text()
    assert f"requests/{rid}.sync.txt" in public[public.index('id="waiting"'):]
    body = await (await client.get("/sync/public",
                                   headers={"Accept": "application/json"})).json()
    assert [w["id"] for w in body["waiting"]] == [rid] and body["next"]["records"] == 0
    page = await (await client.get(f"/requests/{rid}")).text()
    assert "Leaves this node in" in page  # the admin may undo too
    await sign_in(client, other)
    page = await (await client.get(f"/requests/{rid}")).text()
    assert "Leaves this node in" not in page  # not theirs to undo

    csrf = await sign_in(client, owner)
    r = await client.post(f"/requests/{rid}/scope",
                          data={"sync_scope": "private", "csrf_token": csrf},
                          allow_redirects=False)
    assert r.status == 303
    page = await (await client.get(f"/requests/{rid}")).text()
    assert "Leaves this node in" not in page and "private · stays here" in page
    await _age(pool, "requests", rid, 3600)
    await export(pool, config)
    assert await pool.fetchval("SELECT sequence FROM node_sync_state") == seq
    assert rid not in json.dumps(await _exported_paths(pool))


async def test_undo_with_js_returns_the_fragment_without_the_hold(world):
    client, pool, config, owner, admin, other = world
    rid = await add_request(pool, owner, "Ladder", "roof")
    csrf = await sign_in(client, owner)
    r = await client.post(f"/requests/{rid}/scope", data={"sync_scope": "public"},
                          headers={"Accept": "application/json", "X-CSRF-Token": csrf})
    body = await r.json()
    assert 'class="publish-hold' in body["html"] and "undo" in body["html"]
    r = await client.post(f"/requests/{rid}/scope", data={"sync_scope": "private"},
                          headers={"Accept": "application/json", "X-CSRF-Token": csrf})
    body = await r.json()
    assert "publish-hold" not in body["html"] and body["target"] == f"req-{rid}"


async def test_copilot_preview_flags_a_waiting_phone_number(world):
    from node.copilot import service as CS

    client, pool, config, owner, admin, other = world
    rid = await add_request(pool, owner, "Ladder", "call 415-555-0123", scope="public")
    ctx = CS.ToolContext(pool, config, None, "cli")
    result = await CS.run_tool(ctx, "sync_preview", {}, rate_limited=False)
    assert result["records"] == 0 and result["waiting_count"] == 1
    assert result["waiting"][0]["id"] == rid and result["safe"] is False
    assert result["problems"] == [{"entity": "request", "id": rid,
                                   "problem": "public request contains phone number",
                                   "fix": f"set_scope kind=request id={rid} scope=private",
                                   "waiting": True}]


async def test_scope_page_shows_waiting_profiles_and_undoes_only_that_one(world):
    client, pool, config, owner, admin, other = world
    seq = await pool.fetchval("SELECT sequence FROM node_sync_state")
    rid = await add_request(pool, other, "Ladder", "roof")
    csrf = await sign_in(client, other)
    r = await client.post("/sync/scope", data={"item": f"user:{other}", "sync_scope": "public",
                                               "csrf_token": csrf}, allow_redirects=False)
    assert r.status == 303
    page = await (await client.get("/sync/scope")).text()
    row = page[page.index(f'id="scope-user-{other}"'):]
    row = row[:row.index("</tr>")]
    assert "leaves in <strong" in row and f'name="undo" value="user:{other}"' in row
    # Undo with another record ticked: only the waiting one changes (to private).
    r = await client.post("/sync/scope", data={"item": f"request:{rid}", "undo": f"user:{other}",
                                               "sync_scope": "public", "csrf_token": csrf},
                          allow_redirects=False)
    assert r.status == 303
    assert await pool.fetchval("SELECT sync_scope FROM users WHERE id=$1", other) == "private"
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "private"
    # Someone else's waiting record cannot be undone by a member.
    await pool.execute("UPDATE users SET sync_scope = 'public' WHERE id = $1", admin)
    r = await client.post("/sync/scope", data={"undo": f"user:{admin}", "csrf_token": csrf},
                          allow_redirects=False)
    assert r.status == 403
    assert await pool.fetchval("SELECT sync_scope FROM users WHERE id=$1", admin) == "public"
    await pool.execute("UPDATE users SET sync_scope = 'private' WHERE id = $1", admin)
    await _age(pool, "users", other, 3600)
    await export(pool, config)
    assert await pool.fetchval("SELECT sequence FROM node_sync_state") == seq
