"""Key claims are explicit: peer B pushes a bundle signed for origin A with a new key.

The pending key is marked as claiming a foreign origin in `wb hub keys list` and on the
dashboard, and approving it needs `--for-origin A` (or the confirmation box in the page);
without it nothing is trusted and nothing is logged.
"""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from hub import queries as Q
from hub import typedefs as T
from service.cli import root
from service.ids import token_hash
from tests.hub.helpers import Origin, cbor_headers, envelope, seed
from tests.hub.test_public import admin_login

ALPHA, BETA = "alpha-token-0123456789ab", "beta-token-0123456789abc"


async def setup(hub_client, hub_pool):
    a, b, c = Origin(seed(601)), Origin(seed(602)), Origin(seed(603))
    await Q.add_peer(hub_pool, "alpha", "node", token_hash(ALPHA))
    await Q.add_peer(hub_pool, "beta", "node", token_hash(BETA))
    await Q.trust_key(hub_pool, a.origin, a.origin, a.public_key, "alpha")
    await Q.trust_key(hub_pool, b.origin, b.origin, b.public_key, "beta")
    return a, b, c


async def push(client, token, bundle) -> int:
    r = await client.post("/api/v2/bundles", data=envelope(bundle), headers=cbor_headers(token))
    return r.status


def cli(hub_client, tmp_path, *args):
    env = {"WB_HUB_DATABASE_URL": str(hub_client.server.app[T.database_url_key]),
           "WB_HUB_DATA_DIR": str(tmp_path / "cli")}
    return CliRunner().invoke(root, ["hub", "keys", *args], env=env, catch_exceptions=False)


async def test_foreign_claim_is_marked_and_needs_for_origin(hub_client, hub_pool, tmp_path):
    a, b, c = await setup(hub_client, hub_pool)
    forged_seed, rotated_seed = seed(610), seed(611)
    forged = Origin(forged_seed).origin
    rotated = Origin(rotated_seed).origin
    # B signs a bundle FOR ORIGIN A with B's own new key: authentic signature, foreign claim
    assert await push(hub_client, BETA, a.bundle([a.request("HIJACK", title="as A")],
                                                  signer=forged_seed, advance=False)) == 202
    # A itself signs with a new key: a claim on its own origin
    assert await push(hub_client, ALPHA, a.bundle([a.request("MINE")],
                                                  signer=rotated_seed)) == 202
    # B relays a brand-new origin C whose key is its own first key: self-certifying
    assert await push(hub_client, BETA, c.bundle([c.request("NEW")])) == 202
    claims = {r["key_id"]: r["foreign_claim"] for r in await Q.pending_keys(hub_pool)}
    assert claims == {forged: True, rotated: False, c.origin: False}

    listed = (await asyncio.to_thread(cli, hub_client, tmp_path, "list")).output
    marks = [line for line in listed.splitlines() if "CLAIMS ORIGIN" in line]
    assert len(marks) == 1 and a.origin in marks[0] and "beta" in marks[0]
    assert f"--for-origin {a.origin}" in marks[0]

    # approving without naming the origin (or naming another) is refused, nothing written
    r = await asyncio.to_thread(cli, hub_client, tmp_path, "approve", forged)
    assert r.exit_code != 0 and "origin_claim_unconfirmed" in r.output
    r = await asyncio.to_thread(cli, hub_client, tmp_path, "approve", forged,
                                "--for-origin", b.origin)
    assert r.exit_code != 0 and "not_found" in r.output
    assert not await Q.is_trusted(hub_pool, a.origin, forged)
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 0

    # own-origin and self-certifying keys need no confirmation
    r = await asyncio.to_thread(cli, hub_client, tmp_path, "approve", rotated)
    assert r.exit_code == 0, r.output
    r = await asyncio.to_thread(cli, hub_client, tmp_path, "approve", c.origin)
    assert r.exit_code == 0, r.output

    # the operator who means it names the origin
    r = await asyncio.to_thread(cli, hub_client, tmp_path, "approve", forged,
                                "--for-origin", a.origin)
    assert r.exit_code == 0, r.output
    assert await Q.is_trusted(hub_pool, a.origin, forged)


async def test_dashboard_marks_the_claim_and_needs_the_confirmation(hub_client, hub_pool):
    a, _, _ = await setup(hub_client, hub_pool)
    forged_seed = seed(620)
    forged = Origin(forged_seed).origin
    assert await push(hub_client, BETA, a.bundle([a.request("HIJACK")],
                                                  signer=forged_seed)) == 202
    csrf = await admin_login(hub_client, hub_pool)
    page = await (await hub_client.get("/admin")).text()
    assert f"Claims origin {a.origin}, not an origin of peer beta" in page
    assert f'name="for_origin" value="{a.origin}" required' in page
    # the box not ticked (a forged or careless post): refused with a stable code
    r = await hub_client.post(f"/admin/keys/{forged}/approve", data={"csrf_token": csrf},
                              headers={"Accept": "application/json"}, allow_redirects=False)
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "origin_claim_unconfirmed"
    assert not await Q.is_trusted(hub_pool, a.origin, forged)
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 0
    r = await hub_client.post(f"/admin/keys/{forged}/approve",
                              data={"csrf_token": csrf, "for_origin": a.origin},
                              allow_redirects=False)
    assert r.status == 303
    assert await Q.is_trusted(hub_pool, a.origin, forged)
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 1
