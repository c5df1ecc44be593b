"""Issue 14, attack 4: withdrawn content must not leave again through old outbox bundles.

A record made private, a comment deleted: every stored ``sync_outbox`` bundle holding them
is scrubbed in the withdrawing transaction (file withheld, signed manifest intact), so a
directory peer or a hub peer added LATER receives no withdrawn byte."""

from __future__ import annotations

import secrets

import pytest

from node.requests import service as S
from node.sync import peers as P
from node.sync import transport as TR
from node.sync.outbox_scrub import scrub_outbox_now
from node.sync.service import run_export
from protocol.containers import from_cbor
from protocol.records import parse_record
from protocol.verify import verify_bundle
from service.ids import token_hash
from tests.factories import create_user

PRIVATE_LATER = b"MADE-PRIVATE-LATER-31ad"
DELETED_LATER = b"DELETED-LATER-8e77"
SQL_LATER = b"WITHDRAWN-BY-SQL-5c02"
STAYS = b"STAYS-PUBLIC-0a4f"


async def _outbox(pool) -> list:
    return await pool.fetch("SELECT sequence, digest, envelope FROM sync_outbox "
                            "ORDER BY sequence")


def _verifies(envelope: bytes, origin: str) -> tuple[str, list[str]]:
    vb = verify_bundle(from_cbor(envelope), trust=lambda o, k: o == origin)
    return vb.digest, vb.withheld


async def _seed_and_export(a) -> str:
    pool = a.pool
    uid = await create_user(pool, "pat", scope="public")
    for rid, text in (("R1", PRIVATE_LATER), ("R2", STAYS), ("R3", SQL_LATER)):
        await pool.execute(
            "INSERT INTO requests (id, title, description, created_by, sync_scope) "
            "VALUES ($1, $2, $2, $3, 'public')", rid, text.decode(), uid)
    await pool.execute("INSERT INTO comments (id, request_id, created_by, body, sync_scope) "
                       "VALUES ('C1', 'R2', $1, $2, 'public')", uid, DELETED_LATER.decode())
    res = await run_export(pool, a.config)
    assert res.sequence == 1
    [row] = await _outbox(pool)
    for marker in (PRIVATE_LATER, DELETED_LATER, SQL_LATER, STAYS):
        assert marker in bytes(row["envelope"])
    return uid


async def test_withdrawing_scrubs_stored_bundles_in_the_same_transaction(nodes):
    a, _ = nodes
    await _seed_and_export(a)
    [before] = await _outbox(a.pool)

    # a scope change that fails half-way changes nothing, the outbox included
    with pytest.raises(Exception, match="No such request"):
        await S.set_scope(a.pool, S.Actor.cli(), [("request", "R1"), ("request", "NOPE")],
                          "private")
    [same] = await _outbox(a.pool)
    assert bytes(same["envelope"]) == bytes(before["envelope"])

    await S.set_scope(a.pool, S.Actor.cli(), [("request", "R1")], "private")
    await S.moderate_comment(a.pool, S.Actor.cli(), "C1", delete=True)
    [after] = await _outbox(a.pool)  # no export, no push happened in between
    data = bytes(after["envelope"])
    assert PRIVATE_LATER not in data and DELETED_LATER not in data and STAYS in data
    digest, withheld = _verifies(data, a.origin)
    assert digest == before["digest"] == after["digest"]  # the same signed link
    assert sorted(withheld) == ["comments/C1.sync.txt", "requests/R1.sync.txt"]
    rows = await a.pool.fetch("SELECT path, scrubbed_through FROM sync_outbox_withdrawn "
                              "ORDER BY path")
    assert [tuple(r) for r in rows] == [("comments/C1.sync.txt", 1),
                                        ("requests/R1.sync.txt", 1)]

    # an export that read the record before the withdrawal committed stores a stale
    # bundle after the scrub: the next scrub (every push runs one) catches it too
    await a.pool.execute(
        "INSERT INTO sync_outbox (sequence, digest, kind, record_count, envelope) "
        "VALUES (2, 'stale-export', 'delta', 4, $1)", bytes(before["envelope"]))
    assert await scrub_outbox_now(a.pool) == 1
    stale = await a.pool.fetchval("SELECT envelope FROM sync_outbox WHERE sequence = 2")
    assert PRIVATE_LATER not in bytes(stale) and STAYS in bytes(stale)
    assert await scrub_outbox_now(a.pool) == 0  # nothing left to do


async def test_tombstones_are_never_withheld_and_republishing_is_not_scrubbed(nodes,
                                                                              tmp_path):
    a, _ = nodes
    await _seed_and_export(a)
    # withdrawn outside the pages, then exported BEFORE any scrub ran
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R3'")
    await run_export(a.pool, a.config)
    await scrub_outbox_now(a.pool)
    first, second = await _outbox(a.pool)
    assert SQL_LATER not in bytes(first["envelope"])
    tomb = from_cbor(bytes(second["envelope"])).files["requests/R3.sync.txt"]
    assert parse_record(tomb).deleted  # peers still learn to forget it
    # made public again: the queue forgets it and the new bundle carries it
    await a.pool.execute("UPDATE requests SET sync_scope = 'public' WHERE id = 'R3'")
    assert await a.pool.fetchval("SELECT count(*) FROM sync_outbox_withdrawn") == 0
    await run_export(a.pool, a.config)
    await P.add_peer(a.pool, "late", "dir", str(tmp_path / "late"))
    await TR.push(a.pool, a.config, "late")
    newest = sorted((tmp_path / "late").iterdir())[-1].read_bytes()
    assert SQL_LATER in newest


async def _withdraw_everything(a) -> None:
    await S.set_scope(a.pool, S.Actor.cli(), [("request", "R1")], "private")
    await S.moderate_comment(a.pool, S.Actor.cli(), "C1", delete=True)
    await run_export(a.pool, a.config)  # the tombstones: bundle 2
    # a withdrawal made outside the pages (CLI, copilot, plain SQL) is queued by the
    # trigger and scrubbed before any bundle leaves
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R3'")
    assert await a.pool.fetchval("SELECT scrubbed_through FROM sync_outbox_withdrawn "
                                 "WHERE path = 'requests/R3.sync.txt'") == 0


async def test_a_directory_peer_added_later_receives_no_withdrawn_byte(nodes, tmp_path):
    a, _ = nodes
    await _seed_and_export(a)
    await _withdraw_everything(a)
    target = tmp_path / "late-peer"
    await P.add_peer(a.pool, "late", "dir", str(target))
    out = await TR.push(a.pool, a.config, "late")
    assert out.bundles == 2
    files = sorted(target.iterdir())
    assert len(files) == 2
    for f in files:
        data = f.read_bytes()
        for marker in (PRIVATE_LATER, DELETED_LATER, SQL_LATER):
            assert marker not in data, (f.name, marker)
        _verifies(data, a.origin)
    assert STAYS in files[0].read_bytes()


async def test_a_hub_peer_added_later_receives_no_withdrawn_byte(nodes, hub_db_url,
                                                                 aiohttp_client, tmp_path):
    from hub import queries as HQ
    from hub import typedefs as HT
    from hub.app import create_app
    from node.sync.identity import load_or_create_key
    from tests.hub.conftest import make_hub_config

    a, _ = nodes
    await _seed_and_export(a)
    await _withdraw_everything(a)
    hub = await aiohttp_client(create_app(make_hub_config(hub_db_url, tmp_path / "hub")))
    hub_pool = hub.server.app[HT.pool_key]
    token = secrets.token_urlsafe(16)
    key = load_or_create_key(a.config)
    await HQ.add_peer(hub_pool, "alpha", "node", token_hash(token))
    await HQ.trust_key(hub_pool, a.origin, key.key_id, key.public_key, "alpha")
    await P.add_peer(a.pool, "hub", "hub", str(hub.make_url("")).rstrip("/"), token=token)
    out = await TR.push(a.pool, a.config, "hub")
    assert out.bundles == 2
    stored = await hub_pool.fetch("SELECT container FROM hub_bundles WHERE origin = $1",
                                  a.origin)
    assert len(stored) == 2
    index = await hub_pool.fetch("SELECT body FROM hub_records")
    everything = b"".join(bytes(r["container"]) for r in stored) + "".join(
        r["body"] or "" for r in index).encode()
    for marker in (PRIVATE_LATER, DELETED_LATER, SQL_LATER):
        assert marker not in everything, marker
    assert STAYS in everything
    r = await hub.get("/api/v2/records")
    text = (await r.text()).encode()
    assert PRIVATE_LATER not in text and SQL_LATER not in text
