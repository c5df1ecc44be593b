"""Hub key revocation: a leaked key's bundles are refused and nothing re-trusts it."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from hub import queries as Q
from ops.cli import root
from protocol.rotation import make_key_record
from protocol.signature import key_id, public_key_from_seed
from tests.hub.helpers import TS, seed
from tests.hub.test_ingest import push


def _announce(origin, new_seed: bytes, previous_key_id: str):
    return make_key_record(origin=origin.origin, instance=origin.instance,
                           new_public_key=public_key_from_seed(new_seed),
                           previous_key_id=previous_key_id, revision=1, updated_at=TS)


async def _counts(pool) -> tuple:
    return (await pool.fetchval("SELECT count(*) FROM hub_bundles"),
            await pool.fetchval("SELECT count(*) FROM hub_pending_bundles"),
            sorted(r["key_id"] for r in await pool.fetch(
                "SELECT key_id FROM hub_trusted_keys")))


async def test_revoked_key_is_refused_and_not_retrusted_by_rotation(hub_client, hub_pool,
                                                                    peer, origin):
    new_seed = seed(301)
    new_id = key_id(public_key_from_seed(new_seed))
    r = await push(hub_client, peer, origin.bundle([_announce(origin, new_seed, origin.origin)]))
    assert r.status == 201, await r.text()

    assert await Q.revoke_key(hub_pool, origin.origin, origin.origin, "cli:op") is None

    before = await _counts(hub_pool)
    assert before[2] == [new_id]
    # the leaked key signs a bundle: 403 revoked_key, nothing stored or parked
    r = await push(hub_client, peer, origin.bundle([origin.request()], advance=False))
    assert r.status == 403
    assert (await r.json())["error"]["code"] == "revoked_key"
    assert await _counts(hub_pool) == before
    # the still trusted successor announces the revoked key: it stays untrusted
    r = await push(hub_client, peer, origin.bundle([_announce(origin, origin.seed, new_id)],
                                                   signer=new_seed))
    assert r.status == 201, await r.text()
    assert (await _counts(hub_pool))[2] == [new_id]
    r = await push(hub_client, peer, origin.bundle([origin.request()], advance=False))
    assert r.status == 403
    # the successor keeps working
    r = await push(hub_client, peer, origin.bundle([origin.request()], signer=new_seed))
    assert r.status == 201, await r.text()
    # explicit trust (peer registration, approval) does not bring it back either
    await Q.trust_key(hub_pool, origin.origin, origin.origin, origin.public_key, "alpha")
    assert not await Q.is_trusted(hub_pool, origin.origin, origin.origin)
    row = await hub_pool.fetchrow("SELECT * FROM hub_key_revocations")
    assert (row["origin"], row["key_id"], row["actor"]) == (origin.origin, origin.origin,
                                                            "cli:op")


async def test_wb_hub_keys_revoke_and_list(hub_client, hub_pool, hub_db_url, peer, origin,
                                           tmp_path):
    env = {"WB_HUB_DATABASE_URL": hub_db_url, "WB_HUB_DATA_DIR": str(tmp_path)}

    def cli(*args: str):
        return CliRunner().invoke(root, ["hub", *args], env=env, catch_exceptions=False)

    def go():
        out = {}
        out["own_unknown"] = cli("keys", "revoke", "0123456789abcdef", origin.origin)
        out["key_unknown"] = cli("keys", "revoke", origin.origin, "0123456789abcdef")
        out["invalid"] = cli("keys", "revoke", origin.origin, "nope")
        out["ok"] = cli("keys", "revoke", origin.origin, origin.origin)
        out["again"] = cli("keys", "revoke", origin.origin, origin.origin)
        out["list"] = cli("keys", "list")
        out["pin_revoked"] = cli("peers", "add", "beta", "--token", "another-token-0123456789",
                                 "--public-key", origin.public_b64)
        return out

    out = await asyncio.to_thread(go)
    assert out["own_unknown"].exit_code != 0
    assert "knows no origin" in out["own_unknown"].output
    assert out["key_unknown"].exit_code != 0
    assert "neither trusted nor pending" in out["key_unknown"].output
    assert out["invalid"].exit_code != 0 and "16-hex" in out["invalid"].output
    assert out["ok"].exit_code == 0, out["ok"].output
    assert out["again"].exit_code != 0 and "already revoked" in out["again"].output
    assert f"{origin.origin} origin={origin.origin} revoked" in out["list"].output
    assert "no pending keys" in out["list"].output
    # registering a peer with the revoked key fails whole, instead of claiming trust
    assert out["pin_revoked"].exit_code != 0
    assert "is revoked" in out["pin_revoked"].output
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_peers WHERE name = 'beta'") == 0
    r = await push(hub_client, peer, origin.many(1))
    assert r.status == 403 and (await r.json())["error"]["code"] == "revoked_key"
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_bundles") == 0
