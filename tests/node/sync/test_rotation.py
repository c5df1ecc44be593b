"""Key rotation: the node hands signing to a new key, peers and hubs follow it."""

from __future__ import annotations

import hashlib
import stat

import pytest

from hub import queries as HQ
from keys import load_signing_key
from node.sync import peers as P
from node.sync import rotation as R
from node.sync import transport as TR
from node.sync.identity import key_path, load_or_create_key
from node.sync.replay import replay_trusted_pending
from node.sync.service import run_export, run_import
from protocol.bundle import build_bundle
from protocol.containers import from_cbor
from protocol.rotation import make_key_record
from protocol.signature import key_id, public_key_from_seed, verify_signature
from service.ids import token_hash
from tests.factories import create_user, sign_in


async def _public_request(pool, rid: str, user: str, title: str) -> None:
    await pool.execute(
        "INSERT INTO requests (id, title, description, created_by, sync_scope) "
        "VALUES ($1, $2, 'details', $3, 'public')", rid, title, user)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _signer_of(pool, sequence: int) -> str:
    env = await pool.fetchval("SELECT envelope FROM sync_outbox WHERE sequence = $1", sequence)
    return verify_signature(from_cbor(bytes(env)).sig, from_cbor(bytes(env)).manifest).key_id


async def test_rotation_end_to_end_between_two_nodes_over_a_directory(nodes, tmp_path):
    a, b = nodes
    shared = tmp_path / "shared"
    await P.add_peer(a.pool, "drop", "dir", str(shared))
    await P.add_peer(b.pool, "drop", "dir", str(shared), pins=[a.origin])
    ann = await create_user(a.pool, "ann", scope="public")
    await _public_request(a.pool, "R1", ann, "Before the rotation")
    await run_export(a.pool, a.config)
    old = load_or_create_key(a.config)

    res = await R.rotate_key(a.pool, a.config)

    assert res.origin == a.origin and res.previous_key_id == old.key_id == a.origin
    new = load_or_create_key(a.config)
    assert new.key_id == res.key_id != old.key_id
    path = key_path(a.config)
    assert _mode(path) == 0o600
    retired = path.with_name(f"node.key.retired-{old.key_id}")
    assert str(retired) == res.retired_file and _mode(retired) == 0o600
    assert load_signing_key(retired).key_id == old.key_id
    assert not path.with_name("node.next.key").exists()
    # the announcement is chain link #2, signed by the OLD key, carrying the key record
    assert res.sequence == 2 and await _signer_of(a.pool, 2) == old.key_id
    announcement = from_cbor(bytes(await a.pool.fetchval(
        "SELECT envelope FROM sync_outbox WHERE sequence = 2")))
    [(kpath, krec)] = [(p, d) for p, d in announcement.files.items()]
    assert kpath == f"keys/{new.key_id}.sync.txt" or new.key_id in kpath
    assert f"Previous-Key-ID: {old.key_id}".encode() in krec
    # later bundles: new key, same origin
    await _public_request(a.pool, "R2", ann, "After the rotation")
    after = await run_export(a.pool, a.config)
    assert after.sequence == 3 and after.origin == a.origin
    assert await _signer_of(a.pool, 3) == new.key_id

    await TR.push(a.pool, a.config, "drop")
    out = await TR.pull(b.pool, b.config, "drop")

    assert out.errors == []
    assert [i["result"] for i in out.imported] == ["applied"] * 3
    assert await b.pool.fetchval("SELECT count(*) FROM sync_pending") == 0
    row = await b.pool.fetchrow(
        "SELECT source, public_key, announced_by FROM sync_trusted_keys "
        "WHERE origin = $1 AND key_id = $2", a.origin, new.key_id)
    assert row["source"] == "rotation" and bytes(row["public_key"]) == new.public_key
    assert row["announced_by"] == old.key_id
    assert await b.pool.fetchval(
        "SELECT title FROM requests WHERE origin = $1 AND origin_id = 'R2'",
        a.origin) == "After the rotation"
    # B's own origin/key bookkeeping is untouched; A's trusted row is for A's origin only
    assert await b.pool.fetchval(
        "SELECT count(*) FROM sync_trusted_keys WHERE key_id = $1 AND origin <> $2",
        new.key_id, a.origin) == 0


async def test_forged_announcement_makes_no_key_trusted(nodes):
    a, b = nodes
    await P.pin_key(b.pool, a.origin)
    forger_seed = hashlib.sha256(b"forger").digest()
    forger_id = key_id(public_key_from_seed(forger_seed))
    evil_pub = public_key_from_seed(hashlib.sha256(b"evil next key").digest())
    evil_id = key_id(evil_pub)
    now = "2026-01-02T03:04:05Z"

    def announce(signer_seed: bytes, previous_key_id: str, sequence: int):
        rec = make_key_record(origin=a.origin, instance="http://alpha.test",
                              new_public_key=evil_pub, previous_key_id=previous_key_id,
                              revision=1, updated_at=now, valid_from=now)
        return build_bundle([rec], seed=signer_seed, origin=a.origin,
                            instance="http://alpha.test", sequence=sequence,
                            previous=None if sequence == 1 else "ab" * 32,
                            kind="delta", created_at=now, signed_at=now)

    # signed by an unknown key claiming to follow itself: queued, nothing trusted
    [res] = await run_import(b.pool, b.config, [announce(forger_seed, forger_id, 1)])
    assert res.result == "pending"
    # signed by the unknown key but naming A's trusted key as the one it replaces
    [res] = await run_import(b.pool, b.config, [announce(forger_seed, a.origin, 2)])
    assert res.result == "pending"
    trusted = {r["key_id"] for r in await b.pool.fetch(
        "SELECT key_id FROM sync_trusted_keys WHERE origin = $1", a.origin)}
    assert trusted == {a.origin}
    # even force-applied (approved=True skips the trust check), an untrusted signer's
    # key record trusts nothing
    from node.sync.importer import import_bundle

    res = await import_bundle(b.pool, announce(forger_seed, forger_id, 3),
                              our_origin=b.origin, approved=True)
    assert res.result == "applied"
    assert await b.pool.fetchval(
        "SELECT count(*) FROM sync_trusted_keys WHERE key_id = ANY($1::text[])",
        [evil_id, forger_id]) == 0


async def test_bundle_signed_by_new_key_before_the_announcement_is_released_by_it(nodes):
    a, b = nodes
    await P.pin_key(b.pool, a.origin)
    ann = await create_user(a.pool, "ann", scope="public")
    await run_export(a.pool, a.config)
    res = await R.rotate_key(a.pool, a.config)
    await _public_request(a.pool, "R9", ann, "Signed by the new key")
    later = await run_export(a.pool, a.config)
    first = from_cbor(bytes(await a.pool.fetchval(
        "SELECT envelope FROM sync_outbox WHERE sequence = 1")))
    announcement = from_cbor(bytes(await a.pool.fetchval(
        "SELECT envelope FROM sync_outbox WHERE sequence = $1", res.sequence)))
    [r1, r3] = await run_import(b.pool, b.config, [first, later.bundle])
    assert (r1.result, r3.result) == ("applied", "pending")  # new key unknown yet
    await run_import(b.pool, b.config, [announcement])
    replayed = await replay_trusted_pending(b.pool, b.origin)
    assert [r.result for r in replayed] == ["applied"]
    assert await b.pool.fetchval("SELECT count(*) FROM sync_pending") == 0
    assert await b.pool.fetchval(
        "SELECT count(*) FROM requests WHERE origin = $1 AND origin_id = 'R9'", a.origin) == 1


async def test_interrupted_rotation_is_finished_not_repeated(nodes, monkeypatch):
    a, _ = nodes
    old = load_or_create_key(a.config)
    real_switch = R._switch_files

    def crash(config, old_key_id):
        raise OSError("power cut")

    monkeypatch.setattr(R, "_switch_files", crash)
    with pytest.raises(OSError):
        await R.rotate_key(a.pool, a.config)
    # committed announcement, files not switched yet: still signing with the old key
    assert load_or_create_key(a.config).key_id == old.key_id
    assert key_path(a.config).with_name("node.next.key").exists()
    monkeypatch.setattr(R, "_switch_files", real_switch)
    res = await R.rotate_key(a.pool, a.config)
    assert res.resumed and res.sequence == 1
    assert load_or_create_key(a.config).key_id == res.key_id != old.key_id
    assert await a.pool.fetchval("SELECT count(*) FROM sync_outbox") == 1
    assert [r["key_id"] for r in await R.key_history(a.pool)] == [old.key_id, res.key_id]


async def test_failed_announcement_leaves_no_next_key(nodes, monkeypatch):
    a, _ = nodes
    old = load_or_create_key(a.config)

    async def broken(*args, **kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(R.Q, "store_outbox", broken)
    with pytest.raises(RuntimeError):
        await R.rotate_key(a.pool, a.config)
    assert not key_path(a.config).with_name("node.next.key").exists()
    assert load_or_create_key(a.config).key_id == old.key_id
    assert await a.pool.fetchval("SELECT count(*) FROM node_keys") == 0


async def test_rotate_button_is_admin_only_with_csrf_and_confirmation(node_client, node_pool,
                                                                      node_config):
    from node.sync.service import our_origin

    origin = await our_origin(node_pool, node_config)
    member = await create_user(node_pool, "mia")
    await sign_in(node_client, member)
    r = await node_client.post("/admin/sync-control/rotate-key", data={"confirm": "rotate"})
    assert r.status == 403
    admin = await create_user(node_pool, "root", admin=True)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post("/admin/sync-control/rotate-key", data={"confirm": "rotate"})
    assert r.status == 403  # no CSRF token
    r = await node_client.post("/admin/sync-control/rotate-key",
                               data={"csrf_token": csrf, "confirm": "no"},
                               headers={"Accept": "application/json"})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "confirmation_required"
    assert load_or_create_key(node_config).key_id == origin
    r = await node_client.post("/admin/sync-control/rotate-key",
                               data={"csrf_token": csrf, "confirm": "rotate"},
                               allow_redirects=False)
    assert r.status == 303
    new_id = load_or_create_key(node_config).key_id
    assert new_id != origin
    body = await (await node_client.get("/admin/sync-control",
                                        headers={"Accept": "application/json"})).json()
    assert body["origin"] == origin and body["key_id"] == new_id
    assert [k["key_id"] for k in body["keys"]] == [origin, new_id]
    page = await (await node_client.get("/admin/sync-control")).text()
    assert f"node.key.retired-{origin}" in page
    assert await node_pool.fetchval(
        "SELECT result FROM sync_jobs WHERE kind = 'rotate'") == "ok"


async def test_hub_follows_the_rotation(nodes, hub_db_url, aiohttp_client, tmp_path):
    """A hub that trusts the node's first key trusts the announced key and stores the
    bundles signed by it without parking them."""
    from hub import typedefs as HT
    from hub.app import create_app
    from tests.hub.conftest import make_hub_config

    a, _ = nodes
    hub = await aiohttp_client(create_app(make_hub_config(hub_db_url, tmp_path / "hub")))
    hub_pool = hub.server.app[HT.pool_key]
    token = "rotation-peer-token-0123456789"  # noqa: S105
    old = load_or_create_key(a.config)
    await HQ.add_peer(hub_pool, "alpha", "node", token_hash(token))
    await HQ.trust_key(hub_pool, a.origin, old.key_id, old.public_key, "alpha")
    await P.add_peer(a.pool, "hub", "hub", str(hub.make_url("")).rstrip("/"), token=token)
    ann = await create_user(a.pool, "ann", scope="public")
    await _public_request(a.pool, "R1", ann, "Before")
    await run_export(a.pool, a.config)
    res = await R.rotate_key(a.pool, a.config)
    await _public_request(a.pool, "R2", ann, "After")
    await run_export(a.pool, a.config)

    out = await TR.push(a.pool, a.config, "hub")

    assert out.bundles == 3
    keys = {r["key_id"] for r in await hub_pool.fetch(
        "SELECT key_id FROM hub_trusted_keys WHERE origin = $1", a.origin)}
    assert keys == {old.key_id, res.key_id}
    assert await hub_pool.fetchval(
        "SELECT count(*) FROM hub_bundles WHERE origin = $1", a.origin) == 3
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_pending_bundles") == 0


async def test_wb_keys_rotate_and_status_from_the_command_line(node_db_url, tmp_path,
                                                               monkeypatch):
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

    first = json.loads((await wb("sync", "status", "--json")).output)
    result = await wb("keys", "rotate", "--json")
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.output)
    assert rotated["origin"] == first["origin"] == rotated["previous_key_id"]
    result = await wb("sync", "status")
    assert result.exit_code == 0, result.output
    assert f"signing key {rotated['key_id']} (1 rotation)" in result.output
    assert f"origin {first['origin']}, chain at #1" in result.output
    result = await wb("sync", "rotate-key", "--yes")
    assert result.exit_code == 0, result.output
    assert f"{rotated['key_id']} -> " in result.output
