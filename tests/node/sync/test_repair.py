"""`wb sync repair` (#20): each kind of sync state is damaged on purpose, then repair
must report it (dry run changes nothing) and restore it."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from node.profiles import invite_map
from node.sync import peers as P
from node.sync import revocation as RV
from node.sync import transport as TR
from node.sync.identity import load_or_create_key
from node.sync.repair import repair
from node.sync.service import run_export
from ops.cli import root
from protocol.containers import from_cbor
from tests.factories import create_user


async def _chain(a, n: int) -> str:
    user = await create_user(a.pool, "ann", scope="public")
    for i in range(1, n + 1):
        await a.pool.execute(
            "INSERT INTO requests (id, title, description, created_by, sync_scope) "
            "VALUES ($1, $2, 'x', $3, 'public')", f"R{i}", f"Request {i}", user)
        await run_export(a.pool, a.config)
    return user


async def _outbox(pool) -> dict[int, bytes]:
    return {r["sequence"]: bytes(r["envelope"]) for r in await pool.fetch(
        "SELECT sequence, envelope FROM sync_outbox")}


def _kinds(report, status=None) -> list[str]:
    return [f.kind for f in report.findings if status is None or f.status == status]


async def _wb(node, *args):
    env = {"WB_DATABASE_URL": node.config["WB_DATABASE_URL"],
           "WB_DATA_DIR": node.config["WB_DATA_DIR"], "SESSION_SECRET": "x",
           "SITE_URL": node.config["SITE_URL"]}
    return await asyncio.to_thread(CliRunner().invoke, root, ["sync", "repair", *args],
                                   env=env)


async def test_deleted_and_corrupted_outbox_bundles_are_restored_byte_for_byte(nodes,
                                                                               tmp_path):
    a, _b = nodes
    shared = tmp_path / "shared"
    await P.add_peer(a.pool, "drop", "dir", str(shared))
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "drop")
    original = await _outbox(a.pool)
    await a.pool.execute("DELETE FROM sync_outbox WHERE sequence = 2")
    await a.pool.execute("UPDATE sync_outbox SET envelope = 'garbage'::bytea "
                         "WHERE sequence = 3")

    dry = await repair(a.pool, a.config, dry_run=True)
    assert _kinds(dry, "would_fix") == ["outbox_missing", "outbox_corrupt"]
    r = await _wb(a, "--dry-run", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["dry_run"] is True
    assert [f["status"] for f in json.loads(r.output)["findings"]] == ["would_fix"] * 2
    r = await _wb(a, "--dry-run")  # plain language
    assert r.exit_code == 0 and "bundle #2 is missing" in r.output, r.output
    assert set(await _outbox(a.pool)) == {1, 3}  # nothing changed

    r = await _wb(a, "--json")
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert [f["kind"] for f in body["findings"]] == ["outbox_missing", "outbox_corrupt"]
    assert all(f["status"] == "fixed" for f in body["findings"])
    assert await _outbox(a.pool) == original
    again = await repair(a.pool, a.config)
    assert again.findings == []


async def test_an_outbox_bundle_with_no_copy_anywhere_is_reported_not_invented(nodes):
    a, _b = nodes
    await _chain(a, 2)
    await a.pool.execute("DELETE FROM sync_outbox WHERE sequence = 1")
    r = await _wb(a, "--json")
    assert r.exit_code == 2
    [finding] = json.loads(r.output)["findings"]
    assert finding["kind"] == "outbox_missing" and finding["status"] == "not_fixed"
    assert "snapshot" in finding["text"]
    assert await a.pool.fetchval("SELECT count(*) FROM sync_outbox") == 1


async def test_a_withdrawn_record_still_live_out_there_gets_its_tombstone(nodes):
    a, _b = nodes
    await _chain(a, 1)
    # made private, but the flags were damaged so the export believes it already withdrew
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R1'")
    await a.pool.execute("UPDATE requests SET published = false, "
                         "published_revision = revision WHERE id = 'R1'")
    assert (await run_export(a.pool, a.config)).sequence is None  # the leak, unrepaired
    report = await repair(a.pool, a.config)
    assert _kinds(report) == ["publication_state"]
    res = await run_export(a.pool, a.config)
    assert res.counts == {"request_tombstones": 1}


async def test_a_killed_import_and_a_queued_bundle_are_fetched_and_applied(nodes, tmp_path):
    a, b = nodes
    shared = tmp_path / "shared"
    await P.add_peer(a.pool, "drop", "dir", str(shared))
    await P.add_peer(b.pool, "drop", "dir", str(shared), pins=[a.origin])
    await _chain(a, 4)
    await TR.push(a.pool, a.config, "drop")
    await TR.pull(b.pool, b.config, "drop")
    # import #2 was killed before it committed: nothing of it is there, no gap recorded
    await b.pool.execute("DELETE FROM requests WHERE origin = $1 AND origin_id = 'R2'",
                         a.origin)
    await b.pool.execute("DELETE FROM sync_received WHERE origin = $1 AND sequence = 2",
                         a.origin)
    await b.pool.execute("DELETE FROM sync_gaps")
    # #4 sits in the queue although a's key is trusted (say, approved by hand)
    await b.pool.execute("DELETE FROM requests WHERE origin = $1 AND origin_id = 'R4'",
                         a.origin)
    await b.pool.execute("DELETE FROM sync_received WHERE origin = $1 AND sequence = 4",
                         a.origin)
    four = (await _outbox(a.pool))[4]
    bundle = from_cbor(four)
    key = load_or_create_key(a.config)
    await b.pool.execute(
        "INSERT INTO sync_pending (id, digest, origin, key_id, public_key, sequence, "
        "record_count, envelope, peer) VALUES ('p4', $1, $2, $3, $4, 4, 1, $5, 'drop')",
        bundle.digest, a.origin, key.key_id, key.public_key, four)

    dry = await repair(b.pool, b.config, dry_run=True)
    assert sorted(_kinds(dry, "would_fix")) == ["pending_trusted", "received_gap"]
    assert await b.pool.fetchval("SELECT count(*) FROM sync_gaps") == 0

    report = await repair(b.pool, b.config, peer="drop")
    assert sorted(_kinds(report, "fixed")) == ["pending_trusted", "received_gap"], \
        report.text()
    titles = {r["origin_id"] for r in await b.pool.fetch(
        "SELECT origin_id FROM requests WHERE origin = $1", a.origin)}
    assert titles == {"R1", "R2", "R3", "R4"}
    assert await b.pool.fetchval("SELECT count(*) FROM sync_pending") == 0
    assert await b.pool.fetchval("SELECT count(*) FROM sync_gaps") == 0
    r = await _wb(b, "--peer", "nobody")
    assert r.exit_code == 1 and "unknown_peer" in r.output


async def test_a_corrupted_invite_map_row_is_dropped_and_recomputed(nodes):
    a, _b = nodes
    boss = await create_user(a.pool, "boss", admin=True)
    kid = await create_user(a.pool, "kid", invited_by=boss)
    await create_user(a.pool, "grandkid", invited_by=kid)
    good = await invite_map.get_map(a.pool, viewer_id=boss, is_admin=True, depth=2)
    await a.pool.execute("UPDATE invite_map_cache SET nodes = '[]'::jsonb")
    bad = await invite_map.get_map(a.pool, viewer_id=boss, is_admin=True, depth=2)
    assert bad["nodes"] == [] != good["nodes"]  # the damage is served as it stands
    report = await repair(a.pool, a.config)
    assert _kinds(report, "fixed") == ["invite_map_cache"]
    fresh = await invite_map.get_map(a.pool, viewer_id=boss, is_admin=True, depth=2)
    assert fresh["nodes"] == good["nodes"] and not fresh["cached"]


async def test_rows_from_a_revoked_key_are_listed_and_dropped_on_request(nodes, tmp_path):
    a, b = nodes
    shared = tmp_path / "shared"
    await P.add_peer(a.pool, "drop", "dir", str(shared))
    await P.add_peer(b.pool, "drop", "dir", str(shared), pins=[a.origin])
    await _chain(a, 2)
    await TR.push(a.pool, a.config, "drop")
    await TR.pull(b.pool, b.config, "drop")
    key = load_or_create_key(a.config)
    own = load_or_create_key(b.config)
    await RV.revoke_key(b.pool, a.origin, key.key_id, own_key_id=own.key_id, actor="test")
    report = await repair(b.pool, b.config)
    assert [(f.kind, f.status) for f in report.findings] == [("revoked_origin",
                                                              "needs_operator")]
    assert "2 requests" in report.findings[0].text
    live = "SELECT count(*) FROM requests WHERE origin = $1 AND deleted_at IS NULL"
    assert await b.pool.fetchval(live, a.origin) == 2
    r = await _wb(b)  # plain language, exit status 2: something needs the operator
    assert r.exit_code == 2 and "--drop-revoked" in r.output, r.output
    r = await _wb(b, "--drop-revoked", "--json")
    assert r.exit_code == 0, r.output
    assert [(f["kind"], f["status"]) for f in json.loads(r.output)["findings"]] == [
        ("revoked_origin", "fixed")]
    assert await b.pool.fetchval(live, a.origin) == 0


async def test_the_control_center_shows_the_report_and_its_repair_button_fixes(
        aiohttp_client, node_client):
    from node import typedefs as T
    from tests.factories import sign_in

    pool = node_client.server.app[T.pool_key]
    boss = await create_user(pool, "boss", admin=True)
    kid = await create_user(pool, "kid", invited_by=boss)
    await create_user(pool, "grandkid", invited_by=kid)
    csrf = await sign_in(node_client, boss)
    await invite_map.get_map(pool, viewer_id=boss, is_admin=True, depth=2)
    await pool.execute("UPDATE invite_map_cache SET nodes = '[]'::jsonb")

    page = await (await node_client.get("/admin/sync-control")).text()
    assert 'action="/admin/sync-control/repair"' in page and ">Repair</button>" in page
    r = await node_client.get("/admin/sync-control/repair",
                              headers={"Accept": "application/json"})
    body = await r.json()
    assert body["dry_run"] and [f["status"] for f in body["findings"]] == ["would_fix"]
    html = await (await node_client.get("/admin/sync-control/repair")).text()
    assert "invite map" in html and "would fix" in html

    member = await aiohttp_client(node_client.server)
    member_csrf = await sign_in(member, kid)
    r = await member.post("/admin/sync-control/repair", data={"csrf_token": member_csrf},
                          headers={"Accept": "application/json"})
    assert r.status == 403
    assert await pool.fetchval("SELECT nodes::text FROM invite_map_cache") == "[]"

    r = await node_client.post("/admin/sync-control/repair", data={"csrf_token": csrf},
                               headers={"Accept": "application/json"})
    body = await r.json()
    assert not body["dry_run"] and [f["status"] for f in body["findings"]] == ["fixed"]
    assert await pool.fetchval("SELECT count(*) FROM invite_map_cache") == 0
    r = await node_client.post("/admin/sync-control/repair",
                               data={"csrf_token": csrf, "peer": "nobody"},
                               headers={"Accept": "application/json"})
    assert r.status == 404 and (await r.json())["error"]["code"] == "unknown_peer"


async def test_repair_after_a_withdrawal_keeps_the_tombstone_due(nodes):
    """A page withdraws a record and scrubs it from the stored bundles at once; until the
    next export it is live out there. Repair must not read the withheld file as "never
    sent" and clear the flag: that would leave the record live at every peer forever."""
    from node.sync.outbox_scrub import scrub_outbox_now

    a, _b = nodes
    await _chain(a, 1)
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R1'")
    assert await scrub_outbox_now(a.pool) == 1
    report = await repair(a.pool, a.config)
    assert report.findings == [], report.text()
    res = await run_export(a.pool, a.config)
    assert res.counts == {"request_tombstones": 1}


async def test_a_restored_bundle_does_not_bring_a_withdrawn_record_back(nodes, tmp_path):
    """Restoring #1 byte for byte from a peer's copy would put back a record withdrawn
    since; repair withholds it again before any peer can pull it."""
    from node.sync.outbox_scrub import scrub_outbox_now
    from protocol.verify import verify_bundle

    a, _b = nodes
    shared = tmp_path / "shared"
    await P.add_peer(a.pool, "drop", "dir", str(shared))
    await _chain(a, 2)
    await TR.push(a.pool, a.config, "drop")  # the peer keeps #1 with R1 in it
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R1'")
    await scrub_outbox_now(a.pool)
    await a.pool.execute("DELETE FROM sync_outbox WHERE sequence = 1")

    dry = await repair(a.pool, a.config, dry_run=True)
    assert _kinds(dry, "would_fix") == ["outbox_missing"]
    report = await repair(a.pool, a.config)
    assert _kinds(report, "fixed") == ["outbox_missing", "outbox_withdrawn"], report.text()
    one = from_cbor((await _outbox(a.pool))[1])
    assert "requests/R1.sync.txt" not in one.files
    vb = verify_bundle(one, trust=lambda _o, _k: True)
    assert vb.withheld == ["requests/R1.sync.txt"]  # the signature still holds
    again = await repair(a.pool, a.config)
    assert again.findings == [], again.text()
    assert (await run_export(a.pool, a.config)).counts == {"request_tombstones": 1}


async def test_a_stale_head_digest_is_fixed_and_a_chain_break_is_listed(nodes):
    a, b = nodes
    await _chain(a, 2)
    head = await a.pool.fetchval("SELECT last_digest FROM node_sync_state")
    await a.pool.execute("UPDATE node_sync_state SET last_digest = $1", "ab" * 32)
    dry = await repair(a.pool, a.config, dry_run=True)
    assert [(f.kind, f.status) for f in dry.findings] == [("outbox_chain", "would_fix")]
    assert await a.pool.fetchval("SELECT last_digest FROM node_sync_state") == "ab" * 32
    report = await repair(a.pool, a.config)
    assert [(f.kind, f.status) for f in report.findings] == [("outbox_chain", "fixed")]
    assert await a.pool.fetchval("SELECT last_digest FROM node_sync_state") == head

    # another origin rewrote its chain: listed for the operator, nothing changed
    await b.pool.execute(
        "INSERT INTO sync_chain_breaks (origin, sequence, previous, expected, digest, peer) "
        "VALUES ($1, 3, $2, $3, $4, 'drop')", a.origin, "cd" * 32, "ef" * 32, "01" * 32)
    r = await _wb(b, "--json")
    assert r.exit_code == 2, r.output
    [finding] = json.loads(r.output)["findings"]
    assert finding["kind"] == "chain_break" and finding["status"] == "needs_operator"
    assert await b.pool.fetchval("SELECT count(*) FROM sync_chain_breaks") == 1


async def test_a_damaged_scrub_index_is_rebuilt_and_the_withdrawn_record_withheld(nodes):
    """The scrub finds bundles through their path index (derived data): an index that
    lost an entry let a withdrawn record stay in the outbox."""
    from node.sync.outbox_scrub import scrub_outbox_now

    a, _b = nodes
    await _chain(a, 2)
    await scrub_outbox_now(a.pool)  # indexes nothing yet: nothing is withdrawn
    await a.pool.execute("UPDATE sync_outbox SET paths = '{}'")  # the damage
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R1'")
    await scrub_outbox_now(a.pool)
    assert "requests/R1.sync.txt" in from_cbor((await _outbox(a.pool))[1]).files  # missed

    dry = await repair(a.pool, a.config, dry_run=True)
    assert sorted(_kinds(dry, "would_fix")) == ["outbox_index", "outbox_index",
                                                "outbox_withdrawn"]
    report = await repair(a.pool, a.config)
    assert sorted(_kinds(report, "fixed")) == ["outbox_index", "outbox_index",
                                               "outbox_withdrawn"], report.text()
    assert "requests/R1.sync.txt" not in from_cbor((await _outbox(a.pool))[1]).files
    assert (await repair(a.pool, a.config)).findings == []
    assert (await run_export(a.pool, a.config)).counts == {"request_tombstones": 1}
