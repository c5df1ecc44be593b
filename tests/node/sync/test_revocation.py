"""Key revocation: a leaked key of another origin is never trusted again here."""

from __future__ import annotations

import hashlib

import pytest

from node.sync import peers as P
from node.sync import revocation as RV
from node.sync.importer import SyncError, import_bundle
from node.sync.service import run_import
from protocol.bundle import build_bundle
from protocol.records import make_record
from protocol.rotation import make_key_record
from protocol.signature import key_id, public_key_from_seed

TS = "2026-01-02T03:04:05Z"
LEAKED = hashlib.sha256(b"leaked first key").digest()
NEXT = hashlib.sha256(b"legit next key").digest()
ORIGIN = key_id(public_key_from_seed(LEAKED))
NEXT_ID = key_id(public_key_from_seed(NEXT))
INSTANCE = "http://remote.test"


def _bundle(records, seed: bytes, sequence: int):
    return build_bundle(records, seed=seed, origin=ORIGIN, instance=INSTANCE,
                        sequence=sequence, previous=None if sequence == 1 else "ab" * 32,
                        kind="delta", created_at=TS, signed_at=TS)


def _announce(new_seed: bytes, previous_key_id: str, signer: bytes, sequence: int):
    rec = make_key_record(origin=ORIGIN, instance=INSTANCE,
                          new_public_key=public_key_from_seed(new_seed),
                          previous_key_id=previous_key_id, revision=1, updated_at=TS,
                          valid_from=TS)
    return _bundle([rec], signer, sequence)


def _user(uid: str, name: str):
    return make_record("user", {"ID": uid, "Origin": ORIGIN, "Instance": INSTANCE,
                                "Revision": 1, "Updated-At": TS, "Sync-Scope": "public",
                                "Username": name, "Created-At": TS}, "")


async def _state(pool) -> tuple:
    return (await pool.fetchval("SELECT count(*) FROM users WHERE origin = $1", ORIGIN),
            await pool.fetchval("SELECT count(*) FROM sync_received"),
            await pool.fetchval("SELECT count(*) FROM sync_pending"),
            sorted(r["key_id"] for r in await pool.fetch(
                "SELECT key_id FROM sync_trusted_keys WHERE origin = $1", ORIGIN)))


async def _trusted_rotation(node) -> None:
    """The node trusts ORIGIN's first (later leaked) key and its legit successor."""
    await P.pin_key(node.pool, ORIGIN)
    [res] = await run_import(node.pool, node.config, [_announce(NEXT, ORIGIN, LEAKED, 1)])
    assert res.result == "applied"


async def test_revoked_key_bundles_are_refused_and_change_nothing(nodes):
    _, b = nodes
    await _trusted_rotation(b)
    assert (await _state(b.pool))[3] == sorted([ORIGIN, NEXT_ID])

    out = await RV.revoke_key(b.pool, ORIGIN, ORIGIN, own_key_id=b.origin, actor="cli:op")

    assert out["was_trusted"] and out["source"] == "pinned"
    before = await _state(b.pool)
    assert before[3] == [NEXT_ID]
    row = await b.pool.fetchrow("SELECT * FROM sync_key_revocations")
    assert (row["origin"], row["key_id"], row["actor"]) == (ORIGIN, ORIGIN, "cli:op")
    audit = await b.pool.fetchrow(
        "SELECT target, details FROM audit_log WHERE action = 'sync.key_revoked'")
    assert audit["target"] == f"{ORIGIN}:{ORIGIN}"
    # whoever holds the leaked key signs a bundle: refused, nothing written or queued
    forged = _bundle([_user("U1", "mallory")], LEAKED, 2)
    with pytest.raises(SyncError) as err:
        await run_import(b.pool, b.config, [forged])
    assert err.value.code == "revoked_key"
    with pytest.raises(SyncError) as err:
        await import_bundle(b.pool, forged, our_origin=b.origin, approved=True)
    assert err.value.code == "revoked_key"
    assert await _state(b.pool) == before
    assert await b.pool.fetchval(
        "SELECT error_code FROM sync_jobs ORDER BY id DESC LIMIT 1") == "revoked_key"
    # the leaked key announcing a key of its own trusts nothing either
    evil = hashlib.sha256(b"evil key").digest()
    with pytest.raises(SyncError):
        await run_import(b.pool, b.config, [_announce(evil, ORIGIN, LEAKED, 3)])
    assert await _state(b.pool) == before
    # the legit successor still works
    [res] = await run_import(b.pool, b.config, [_bundle([_user("U2", "ann")], NEXT, 4)])
    assert res.result == "applied"


async def test_rotation_by_a_trusted_key_does_not_retrust_a_revoked_key(nodes):
    _, b = nodes
    await _trusted_rotation(b)
    await RV.revoke_key(b.pool, ORIGIN, ORIGIN, own_key_id=b.origin, actor="cli")

    [res] = await run_import(b.pool, b.config, [_announce(LEAKED, NEXT_ID, NEXT, 2)])

    assert res.result == "applied"  # the bundle itself is fine; its announcement is not
    assert (await _state(b.pool))[3] == [NEXT_ID]
    with pytest.raises(SyncError) as err:
        await run_import(b.pool, b.config, [_bundle([_user("U3", "x")], LEAKED, 3)])
    assert err.value.code == "revoked_key"
    # pinning it is refused until the revocation is removed
    with pytest.raises(SyncError) as err:
        await P.pin_key(b.pool, ORIGIN, ORIGIN)
    assert err.value.code == "revoked_key"
    await RV.unrevoke_key(b.pool, ORIGIN, ORIGIN, actor="cli")
    assert (await _state(b.pool))[3] == [NEXT_ID]  # unrevoking trusts nothing by itself
    await P.pin_key(b.pool, ORIGIN, ORIGIN)
    assert (await _state(b.pool))[3] == sorted([ORIGIN, NEXT_ID])


async def test_revoking_a_pending_key_drops_its_queue_and_refuses_approval(nodes):
    _, b = nodes
    await P.pin_key(b.pool, ORIGIN)
    stranger = hashlib.sha256(b"stranger").digest()
    stranger_id = key_id(public_key_from_seed(stranger))
    [res] = await run_import(b.pool, b.config, [_bundle([_user("U9", "s")], stranger, 1)])
    assert res.result == "pending"

    out = await RV.revoke_key(b.pool, ORIGIN, stranger_id, own_key_id=b.origin, actor="cli")

    assert out == {"origin": ORIGIN, "key_id": stranger_id, "actor": "cli",
                   "was_trusted": False, "source": None, "pending_dropped": 1}
    assert await b.pool.fetchval("SELECT count(*) FROM sync_pending") == 0
    with pytest.raises(SyncError) as err:
        await run_import(b.pool, b.config, [_bundle([_user("U9", "s")], stranger, 1)])
    assert err.value.code == "revoked_key"
    assert await b.pool.fetchval("SELECT count(*) FROM sync_pending") == 0


async def test_wb_sync_keys_revoke_list_and_errors(node_db_url, tmp_path, monkeypatch):
    import asyncio
    import json

    from click.testing import CliRunner

    from ops.cli import root

    monkeypatch.setenv("WB_DATABASE_URL", node_db_url)
    monkeypatch.setenv("WB_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("SITE_URL", "https://example.org")
    monkeypatch.chdir(tmp_path)

    async def wb(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, root, list(args))

    own = json.loads((await wb("sync", "status", "--json")).output)
    r = await wb("sync", "peers", "add", "drop", "--dir", str(tmp_path / "d"),
                 "--pin", ORIGIN)
    assert r.exit_code == 0, r.output

    r = await wb("sync", "keys", "revoke", own["origin"], own["key_id"], "--yes")
    assert r.exit_code != 0 and "own_key" in r.output
    r = await wb("sync", "keys", "revoke", "0123456789abcdef", ORIGIN, "--yes")
    assert r.exit_code != 0 and "unknown_origin" in r.output
    r = await wb("sync", "keys", "revoke", ORIGIN, "0123456789abcdef", "--yes")
    assert r.exit_code != 0 and "unknown_key" in r.output
    r = await wb("sync", "keys", "revoke", ORIGIN, "not-a-key", "--yes")
    assert r.exit_code != 0 and "invalid_key_id" in r.output
    r = await wb("sync", "keys", "revoke", ORIGIN, ORIGIN)  # no --yes, answer no
    assert r.exit_code != 0
    r = await wb("sync", "keys", "list", ORIGIN, "--json")
    assert [k["status"] for k in json.loads(r.output)] == ["trusted"]

    r = await wb("sync", "keys", "revoke", ORIGIN, ORIGIN, "--yes")
    assert r.exit_code == 0, r.output
    assert f"Revoked key {ORIGIN} of origin {ORIGIN}" in r.output
    r = await wb("sync", "keys", "list", ORIGIN)
    assert r.exit_code == 0 and f"{ORIGIN} {ORIGIN} revoked" in r.output
    r = await wb("sync", "keys", "revoke", ORIGIN, ORIGIN, "--yes")
    assert r.exit_code != 0 and "already_revoked" in r.output
    r = await wb("sync", "peers", "add", "again", "--dir", str(tmp_path / "e"),
                 "--pin", ORIGIN)
    assert r.exit_code != 0 and "revoked_key" in r.output
    r = await wb("sync", "keys", "unrevoke", ORIGIN, ORIGIN)
    assert r.exit_code == 0, r.output
    r = await wb("sync", "keys", "unrevoke", ORIGIN, ORIGIN)
    assert r.exit_code != 0 and "not_revoked" in r.output
