"""Pinned requests (#23): only admins pin, at most WB_PINNED_REQUESTS_LIMIT running pins
(also when two admins race for the last slot), ended pins drop out, bad input is a precise
400 with nothing written, and a pin's note never leaves the node."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
from click.testing import CliRunner

from node import typedefs as T
from node.errors import AppError
from node.pins import service as PS
from node.requests.service import Actor
from node.sync.service import run_export
from ops.cli import root
from protocol.containers import to_targz
from service.ids import ulid

MARKER = "PIN-PRIVATE-MARKER-4d2"


async def _request(pool, owner: str, title: str, *, scope: str = "public",
                   status: str = "open") -> str:
    rid = ulid()
    await pool.execute("INSERT INTO requests (id, title, description, created_by, sync_scope, "
                       "status) VALUES ($1, $2, 'body', $3, $4, $5)",
                       rid, title, owner, scope, status)
    return rid


async def _pins(pool) -> list[tuple[str, int]]:
    rows = await pool.fetch("SELECT request_id, position FROM request_pins ORDER BY position")
    return [(r["request_id"], r["position"]) for r in rows]


async def test_only_admins_pin_and_members_only_read(member_factory, pool, aiohttp_client,
                                                     node_client):
    admin = await member_factory("ada", admin=True)
    member = await member_factory("mel")
    waiting = await member_factory("wes", status="pending")
    rid = await _request(pool, member.user_id, "Ladder")

    # anonymous, with a CSRF token of its own
    anon = await aiohttp_client(node_client.server)
    token = (await (await anon.get("/api/csrf")).json())["csrf_token"]
    for client, csrf in ((anon, token), (waiting.client, waiting.csrf),
                         (member.client, member.csrf)):
        for path in (f"/requests/{rid}/pin", "/admin/pins"):
            r = await client.post(path, data={"csrf_token": csrf, "request_id": rid},
                                  headers={"Accept": "application/json"},
                                  allow_redirects=False)
            assert r.status in (401, 403), (path, r.status)
        r = await client.get("/admin/pins", headers={"Accept": "application/json"},
                             allow_redirects=False)
        assert r.status in (401, 403)
    assert await _pins(pool) == []
    for client in (anon, waiting.client):
        r = await client.get("/api/pins", headers={"Accept": "application/json"},
                             allow_redirects=False)
        assert r.status in (401, 403)

    r = await admin.post(f"/requests/{rid}/pin", {"position": "2", "note": "this week"})
    assert r.status == 303 and r.headers["Location"] == "/admin/pins?done=pinned"
    assert await _pins(pool) == [(rid, 2)]
    r = await member.client.get("/api/pins")
    assert r.status == 200
    body = await r.json()
    assert [p["request_id"] for p in body["pins"]] == [rid]
    assert body["pins"][0]["note"] == "this week"
    # a member cannot unpin either
    r = await member.post(f"/requests/{rid}/unpin", json_reply=True)
    assert r.status == 403
    assert await _pins(pool) == [(rid, 2)]
    # an unapproved device sees no pinned block on its start page
    html = await (await waiting.client.get("/")).text()
    assert "Ladder" not in html


async def test_limit_order_end_date_and_completed_requests(member_factory, pool):
    admin = await member_factory("ada", admin=True)
    member = await member_factory("mel")
    ids = [await _request(pool, member.user_id, f"Need {n}") for n in "ABCD"]
    for position, rid in zip((3, 1, 2), ids[:3], strict=True):
        r = await admin.post(f"/requests/{rid}/pin", {"position": str(position)},
                             json_reply=True)
        assert r.status == 200, await r.text()
    r = await admin.post(f"/requests/{ids[3]}/pin", {"position": "1"}, json_reply=True)
    assert r.status == 409 and (await r.json())["error"]["code"] == "pin_limit_reached"
    # the form answers the admin page with the message, nothing written
    r = await admin.post(f"/requests/{ids[3]}/pin", {"position": "1"})
    assert r.status == 409 and "pin_limit_reached" in await r.text()
    assert len(await _pins(pool)) == 3
    # re-pinning a pinned request (a new order) is not a fourth pin
    r = await admin.post(f"/requests/{ids[0]}/pin", {"position": "4"}, json_reply=True)
    assert r.status == 200

    html = await (await member.client.get("/")).text()
    start = html.index('class="pinned"')
    block = html[start:html.index("</section>", start)]
    assert re.findall(r"Need [A-D]", block) == ["Need B", "Need C", "Need A"]

    # completing a request drops it from the block; an ended pin frees its slot
    await pool.execute("UPDATE requests SET status = 'completed' WHERE id = $1", ids[1])
    await pool.execute("UPDATE request_pins SET ends_at = now() - interval '1 second' "
                       "WHERE request_id = $1", ids[2])
    body = await (await member.client.get("/api/pins")).json()
    assert [p["request_id"] for p in body["pins"]] == [ids[0]]
    r = await admin.post(f"/requests/{ids[3]}/pin", {"position": "1"}, json_reply=True)
    assert r.status == 200
    body = await (await admin.client.get("/admin/pins",
                                         headers={"Accept": "application/json"})).json()
    assert {p["request_id"]: p["running"] for p in body["pins"]}[ids[2]] is False


@pytest.mark.parametrize("form, code", [
    ({"position": "0"}, "invalid_position"), ({"position": "first"}, "invalid_position"),
    ({"ends_at": "2001-01-01"}, "ends_at_past"), ({"ends_at": "soon"}, "invalid_ends_at"),
    ({"note": "x" * 121}, "note_too_long"),
])
async def test_bad_input_is_a_precise_400_and_writes_nothing(member_factory, pool, form, code):
    admin = await member_factory("ada", admin=True)
    rid = await _request(pool, admin.user_id, "Soup")
    r = await admin.post(f"/requests/{rid}/pin", form, json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == code
    assert await _pins(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'request.pin'") == 0


async def test_pending_deleted_or_unknown_requests_cannot_be_pinned(member_factory, pool):
    admin = await member_factory("ada", admin=True)
    pending = await _request(pool, admin.user_id, "Wait", status="pending")
    done = await _request(pool, admin.user_id, "Done", status="completed")
    for rid, status in ((pending, 409), (done, 409), ("NOPE", 404)):
        r = await admin.post(f"/requests/{rid}/pin", {}, json_reply=True)
        assert r.status == status, (rid, await r.text())
    r = await admin.post("/requests/NOPE/unpin", {}, json_reply=True)
    assert r.status == 404 and (await r.json())["error"]["code"] == "pin_not_found"
    assert await _pins(pool) == []


async def test_two_admins_racing_for_the_last_slot_get_one_pin(pool):
    """Admin A is mid-way through pinning (slot counted, row written, not committed) when
    admin B pins another request: B must wait for A and then be refused."""
    from node.pins import queries as PQ

    for uid in ("A", "B"):
        await pool.execute("INSERT INTO users (id, username, is_admin) VALUES ($1, $1, true)",
                           uid)
    ids = [await _request(pool, "A", f"Race {n}") for n in range(2)]
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await PQ.lock(conn)
        assert await PQ.count_active(conn) == 0
        await PQ.upsert(conn, request_id=ids[0], position=1, note="", ends_at=None,
                        pinned_by="A")
        b = asyncio.ensure_future(PS.pin(pool, Actor("B", True, True), ids[1], limit=1))
        deadline = asyncio.get_running_loop().time() + 30
        while not b.done():
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()")
            if waiting:
                break
            assert asyncio.get_running_loop().time() < deadline, "B neither waited nor ended"
            await asyncio.sleep(0.01)
        await tx.commit()
    with pytest.raises(AppError) as err:
        await b
    assert err.value.code == "pin_limit_reached"
    assert await _pins(pool) == [(ids[0], 1)]


async def test_a_pin_note_never_leaves_the_node(member_factory, pool, node_client):
    admin = await member_factory("ada", admin=True)
    await pool.execute("UPDATE users SET sync_scope = 'public' WHERE id = $1", admin.user_id)
    rid = await _request(pool, admin.user_id, "Public ladder")
    ends = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    r = await admin.post(f"/requests/{rid}/pin", {"note": MARKER, "ends_at": ends},
                         json_reply=True)
    assert r.status == 200
    app = node_client.server.app
    res = await run_export(pool, app[T.config_key], snapshot=True)
    assert res.record_count >= 1  # the request itself is exported...
    blob = res.envelope + to_targz(res.bundle)
    assert b"Public ladder" in blob and MARKER.encode() not in blob
    # ...and so is nothing of its pin, in the bundle or the public feed
    feed = await (await node_client.get("/feeds/requests.atom")).read()
    assert b"Public ladder" in feed and MARKER.encode() not in feed
    # the pin lives in a table without change tracking
    cols = await pool.fetch("SELECT column_name FROM information_schema.columns "
                            "WHERE table_name = 'request_pins'")
    assert "change_seq" not in {c["column_name"] for c in cols}


async def test_cli_add_list_remove(node_db_url, tmp_path, pool):
    uid = ulid()
    await pool.execute("INSERT INTO users (id, username) VALUES ($1, 'ann')", uid)
    rid = await _request(pool, uid, "Firewood")
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "n"),
           "SESSION_SECRET": "x", "WB_PINNED_REQUESTS_LIMIT": "1"}

    def wb(*args):
        return CliRunner().invoke(root, list(args), env=env)

    r = await asyncio.to_thread(wb, "pins", "add", rid, "--note", "winter", "--json")
    assert r.exit_code == 0, r.output
    other = await _request(pool, uid, "Kindling")
    r = await asyncio.to_thread(wb, "pins", "add", other)
    assert r.exit_code == 1 and "pin_limit_reached" in r.output
    r = await asyncio.to_thread(wb, "pins", "list")
    assert r.exit_code == 0 and rid in r.output and "Firewood" in r.output
    r = await asyncio.to_thread(wb, "pins", "remove", rid)
    assert r.exit_code == 0
    assert await _pins(pool) == []
    r = await asyncio.to_thread(wb, "pins", "remove", rid)
    assert r.exit_code == 1 and "pin_not_found" in r.output
