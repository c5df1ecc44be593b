"""Gaps in an origin's chain are fetched from peers; Previous is checked."""

from __future__ import annotations

from hub import queries as HQ
from node.sync import gaps as G
from node.sync import peers as P
from node.sync import transport as TR
from node.sync.identity import load_or_create_key
from node.sync.service import run_export, run_import
from protocol.bundle import build_bundle
from protocol.containers import from_cbor
from protocol.records import make_record
from service.ids import token_hash
from tests.factories import create_user


async def _chain(a, n: int) -> list:
    """n chain links of node ``a``, each adding one public request R<i>."""
    user = await create_user(a.pool, "ann", scope="public")
    for i in range(1, n + 1):
        await a.pool.execute(
            "INSERT INTO requests (id, title, description, created_by, sync_scope) "
            "VALUES ($1, $2, 'x', $3, 'public')", f"R{i}", f"Request {i}", user)
        await run_export(a.pool, a.config)
    rows = await a.pool.fetch("SELECT envelope FROM sync_outbox ORDER BY sequence")
    return [from_cbor(bytes(r["envelope"])) for r in rows]


async def _titles(pool, origin: str) -> set[str]:
    return {r["origin_id"] for r in await pool.fetch(
        "SELECT origin_id FROM requests WHERE origin = $1", origin)}


async def test_directory_gap_is_filled_when_the_file_shows_up(nodes, tmp_path):
    a, b = nodes
    shared = tmp_path / "shared"
    await P.add_peer(a.pool, "drop", "dir", str(shared))
    await P.add_peer(b.pool, "drop", "dir", str(shared), pins=[a.origin])
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "drop")
    second = shared / f"{a.origin}-{2:010d}.cbor"
    hidden = tmp_path / "hidden.cbor"
    second.rename(hidden)

    await TR.pull(b.pool, b.config, "drop")
    assert [r["sequence"] for r in await b.pool.fetch("SELECT sequence FROM sync_gaps")] == [2]
    assert await _titles(b.pool, a.origin) == {"R1", "R3"}

    hidden.rename(second)
    # the file was marked consumed (e.g. an import rolled back after the listing): the
    # gap pass still finds it by name
    await b.pool.execute("UPDATE sync_peers SET seen = array_append(seen, $1)", second.name)
    out = await TR.pull(b.pool, b.config, "drop", fetch_all_gaps=True)
    assert [i["sequence"] for i in out.imported] == [2]
    assert await b.pool.fetchval("SELECT count(*) FROM sync_gaps") == 0
    assert await _titles(b.pool, a.origin) == {"R1", "R2", "R3"}
    assert await b.pool.fetchval("SELECT count(*) FROM sync_chain_breaks") == 0


async def test_hub_gap_is_fetched_by_origin_and_cleared(nodes, hub_db_url, aiohttp_client,
                                                        tmp_path):
    from hub import typedefs as HT
    from hub.app import create_app
    from tests.hub.conftest import make_hub_config

    a, b = nodes
    hub = await aiohttp_client(create_app(make_hub_config(hub_db_url, tmp_path / "hub")))
    hub_pool = hub.server.app[HT.pool_key]
    url = str(hub.make_url("")).rstrip("/")
    key = load_or_create_key(a.config)
    await HQ.add_peer(hub_pool, "alpha", "node", token_hash("alpha-token-0123456789"))
    await HQ.add_peer(hub_pool, "beta", "node", token_hash("beta-token-0123456789"))
    await HQ.trust_key(hub_pool, a.origin, a.origin, key.public_key, "alpha")
    await P.add_peer(a.pool, "hub", "hub", url, token="alpha-token-0123456789")
    await P.add_peer(b.pool, "hub", "hub", url, token="beta-token-0123456789",
                     pins=[a.origin])
    bundles = await _chain(a, 4)
    await TR.push(a.pool, a.config, "hub")
    head = await hub_pool.fetchval("SELECT max(seq) FROM hub_log")
    # B got 1 and 4 some other way (inbox, a directory...) and its cursor is at the head,
    # so a plain pull brings nothing: only the gap pass can find 2 and 3
    await run_import(b.pool, b.config, [bundles[0], bundles[3]])
    assert [r["sequence"] for r in await b.pool.fetch(
        "SELECT sequence FROM sync_gaps ORDER BY 1")] == [2, 3]
    await b.pool.execute("UPDATE sync_peers SET cursor = $1", head)

    out = await TR.pull(b.pool, b.config, "hub")

    assert out.errors == []
    assert sorted(i["sequence"] for i in out.imported) == [2, 3]
    assert await b.pool.fetchval("SELECT count(*) FROM sync_gaps") == 0
    assert await _titles(b.pool, a.origin) == {"R1", "R2", "R3", "R4"}


async def test_gap_the_hub_lacks_backs_off(nodes, hub_db_url, aiohttp_client, tmp_path):
    from hub.app import create_app
    from tests.hub.conftest import make_hub_config

    a, b = nodes
    hub = await aiohttp_client(create_app(make_hub_config(hub_db_url, tmp_path / "hub")))
    await P.add_peer(b.pool, "hub", "hub", str(hub.make_url("")).rstrip("/"))
    await P.pin_key(b.pool, a.origin)
    bundles = await _chain(a, 3)
    await run_import(b.pool, b.config, [bundles[0], bundles[2]])  # 2 is missing

    await TR.pull(b.pool, b.config, "hub")

    row = await b.pool.fetchrow("SELECT attempts, last_attempt_at FROM sync_gaps")
    assert row["attempts"] == 1 and row["last_attempt_at"] is not None
    assert await G.due_gaps(b.pool) == {}  # not asked again on the next pull
    assert await G.due_gaps(b.pool, force=True) == {a.origin: [2]}
    await b.pool.execute("UPDATE sync_gaps SET last_attempt_at = now() - interval '3 minutes'")
    assert await G.due_gaps(b.pool) == {a.origin: [2]}  # 1 attempt: waits 2 minutes


async def test_previous_that_does_not_match_the_predecessor_is_a_chain_break(nodes):
    a, b = nodes
    await P.pin_key(b.pool, a.origin)
    bundles = await _chain(a, 2)
    key = load_or_create_key(a.config)
    now = "2026-01-02T03:04:05Z"

    def link(sequence: int, previous: str, rid: str):
        rec = make_record("request", {
            "ID": rid, "Origin": a.origin, "Instance": "http://alpha.test", "Revision": 1,
            "Updated-At": now, "Sync-Scope": "public", "Title": rid, "Status": "open",
            "Created-By": f"{a.origin}/U1"}, "x")
        return build_bundle([rec], seed=key.seed, origin=a.origin,
                            instance="http://alpha.test", sequence=sequence,
                            previous=previous, kind="delta", created_at=now, signed_at=now)

    # predecessor held, Previous names something else
    await run_import(b.pool, b.config, [bundles[0], bundles[1]])
    bad3 = link(3, "cd" * 32, "X3")
    [res] = await run_import(b.pool, b.config, [bad3])
    assert res.result == "applied"  # recorded for the operator, not refused
    row = await b.pool.fetchrow("SELECT * FROM sync_chain_breaks")
    assert (row["origin"], row["sequence"], row["previous"], row["expected"],
            row["digest"]) == (a.origin, 3, "cd" * 32, bundles[1].digest, bad3.digest)
    # successor held first, then a predecessor it does not name
    ok5 = link(5, "ef" * 32, "X5")
    await run_import(b.pool, b.config, [ok5])
    four = link(4, bad3.digest, "X4")
    await run_import(b.pool, b.config, [four])
    row = await b.pool.fetchrow("SELECT * FROM sync_chain_breaks WHERE sequence = 5")
    assert (row["previous"], row["expected"], row["digest"]) == ("ef" * 32, four.digest,
                                                                 ok5.digest)
    # a consistent link records nothing
    six = link(6, ok5.digest, "X6")
    await run_import(b.pool, b.config, [six])
    assert await b.pool.fetchval("SELECT count(*) FROM sync_chain_breaks") == 2
    assert {r["sequence"] for r in await G.chain_breaks(b.pool)} == {3, 5}
