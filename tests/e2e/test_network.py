"""The network end to end: one `wb hub serve` and three `wb serve` processes on loopback,
each with its own database and data directory, federating on their own (scheduler on:
push on change, live stream, periodic pull). Nothing here calls sync functions: the
test only writes to the nodes' databases through the request service and waits."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from node.requests import service as reqs
from ops.demo import NodeInfo, federate, hub_proc, node_proc, prepare_node
from service import db
from tests.factories import create_user

DEADLINE = 20.0


async def wait_for(what: str, predicate, limit: float = DEADLINE):
    deadline = time.monotonic() + limit
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def network(pg, tmp_path):
    from hub.app import MIGRATIONS as HUB_MIGRATIONS
    from node.app import MIGRATIONS

    hub_url = await pg.new_database(await pg.template("hub", HUB_MIGRATIONS))
    urls = [hub_url]
    nodes = []
    for name in ("alpha", "beta", "gamma"):
        url = await pg.new_database(await pg.template("node", MIGRATIONS))
        urls.append(url)
        nodes.append(NodeInfo(name, url, tmp_path / name))
    for n in nodes:
        await prepare_node(n)
    hub = hub_proc("hub", hub_url, tmp_path / "hub", log_path=tmp_path / "hub.log")
    await federate(hub_url, hub.url, nodes)
    procs = {"hub": hub}
    for n in nodes:
        procs[n.name] = node_proc(n.name, n.db_url, n.data_dir, sync_interval=2,
                                  log_path=tmp_path / f"{n.name}.log")
    pools = {n.name: await db.create_pool(n.db_url, max_size=3) for n in nodes}
    pools["hub"] = await db.create_pool(hub_url, max_size=2)
    try:
        for p in procs.values():
            p.start()
        await asyncio.gather(*(p.wait_ready() for p in procs.values()))
        yield {"procs": procs, "pools": pools, "nodes": {n.name: n for n in nodes},
               "dirs": {"hub": tmp_path / "hub", **{n.name: n.data_dir for n in nodes}}}
    finally:
        for p in procs.values():
            await asyncio.to_thread(p.stop)
        for pool in pools.values():
            await pool.close()


async def _remote_request(pool, origin: str, origin_id: str):
    return await pool.fetchrow("SELECT * FROM requests WHERE origin = $1 AND origin_id = $2",
                               origin, origin_id)


async def _scan_database(pool: asyncpg.Pool, needles: list[bytes]) -> list[str]:
    """Every row of every table as text (bytea as hex): which needles occur where."""
    tables = await pool.fetch(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    hits = []
    for t in tables:
        async with pool.acquire() as conn:
            rows = await conn.fetch(f'SELECT t::text AS v FROM "{t["schemaname"]}".'
                                    f'"{t["tablename"]}" t')
        for row in rows:
            text = row["v"].encode()
            for needle in needles:
                if needle in text or needle.hex().encode() in text:
                    hits.append(f"{t['tablename']}: {needle!r}")
    return hits


def _scan_files(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            try:
                data = path.read_bytes()
            except OSError:
                continue
            hits += [f"{path}: {n!r}" for n in needles if n in data]
    return hits


async def test_federation_end_to_end(network):
    pools, nodes, procs = network["pools"], network["nodes"], network["procs"]
    a, b, c = pools["alpha"], pools["beta"], pools["gamma"]
    origin_a = nodes["alpha"].origin
    marker = secrets.token_hex(6)
    secrets_of_a = [f"PRIVTITLE{marker}", f"PRIVBODY{marker}", f"privuser{marker}",
                    f"PRIVBIO{marker}", f"PRIVCOMMENT{marker}"]
    needles = [s.encode() for s in secrets_of_a]

    # A: a public member, a private member, private records and one public request
    ann = await create_user(a, "ann", scope="public")
    hidden = await create_user(a, secrets_of_a[2], scope="private")
    await a.execute("UPDATE users SET bio = $2 WHERE id = $1", hidden, secrets_of_a[3])
    ann_actor = reqs.Actor(ann, False, True)
    private = await reqs.create_request(a, reqs.Actor(hidden, False, True),
                                        title=secrets_of_a[0], description=secrets_of_a[1])
    await a.execute("INSERT INTO comments (id, request_id, created_by, body) "
                    "VALUES ('PC1', $1, $2, $3)", private["id"], ann, secrets_of_a[4])
    started = time.monotonic()
    req = await reqs.create_request(a, ann_actor, title="Need a ladder",
                                    description="for the gutters", sync_scope="public")

    # 1. the public request appears on B and C
    for pool in (b, c):
        await wait_for("A's request on B and C", lambda p=pool: _remote_request(
            p, origin_a, req["id"]))
    first_latency = time.monotonic() - started
    assert first_latency < 10

    # 2. a comment from B on A's request reaches A and C
    bob = await create_user(b, "bob", scope="public")
    bob_actor = reqs.Actor(bob, False, True)
    local_on_b = (await _remote_request(b, origin_a, req["id"]))["id"]
    comment = await reqs.post_comment(b, bob_actor, local_on_b, "I have one, come by")
    await reqs.set_scope(b, bob_actor, [("comment", comment["id"])], "public")

    async def comment_on(pool, request_id):
        return await pool.fetchval("SELECT body FROM comments WHERE origin_id = $1 "
                                   "AND request_id = $2 AND deleted_at IS NULL",
                                   comment["id"], request_id)
    assert await wait_for("B's comment on A", lambda: comment_on(a, req["id"])) == \
        "I have one, come by"
    local_on_c = (await _remote_request(c, origin_a, req["id"]))["id"]
    await wait_for("B's comment on C", lambda: comment_on(c, local_on_c))

    # 3. A makes the request private: it disappears from the hub, B and C
    await reqs.set_scope(a, reqs.Actor(ann, False, True), [("request", req["id"])], "private")

    async def gone(pool):
        row = await _remote_request(pool, origin_a, req["id"])
        return row["deleted_at"] is not None and row["title"] == ""
    for pool in (b, c):
        await wait_for("request gone from B and C", lambda p=pool: gone(p))

    async def hub_records(origin: str, entity: str) -> list[str]:
        async with aiohttp.ClientSession() as s, s.get(
                f"{procs['hub'].url}/api/v2/records",
                params={"origin": origin, "entity": entity, "limit": "500"}) as r:
            return [rec["id"] for rec in (await r.json())["records"]]
    assert req["id"] not in await hub_records(origin_a, "request")
    # B's comment on it follows (B tombstones its own comment on a vanished request)
    await wait_for("B's comment gone from C", lambda: c.fetchval(
        "SELECT deleted_at IS NOT NULL FROM comments WHERE origin_id = $1", comment["id"]))
    assert comment["id"] not in await hub_records(nodes["beta"].origin, "comment")

    # 4. C stops, misses several changes, restarts and catches up
    await asyncio.to_thread(procs["gamma"].stop)
    missed = [await reqs.create_request(a, ann_actor, title=f"Missed {i}",
                                        description="while C was down", sync_scope="public")
              for i in range(3)]
    await b.execute("UPDATE users SET bio = 'back from holiday' WHERE id = $1", bob)
    for r in missed:
        await wait_for("missed request on B", lambda r=r: _remote_request(b, origin_a, r["id"]))
    assert await _remote_request(c, origin_a, missed[0]["id"]) is None
    procs["gamma"].start()
    await procs["gamma"].wait_ready()
    for r in missed:
        await wait_for("C catches up", lambda r=r: _remote_request(c, origin_a, r["id"]))
    await wait_for("C has B's new bio", lambda: c.fetchval(
        "SELECT 1 FROM users WHERE origin_id = $1 AND bio = 'back from holiday'", bob))

    # the scheduler did it: push and stream jobs were logged on the nodes
    kinds = {r["kind"] for r in await a.fetch("SELECT DISTINCT kind FROM sync_jobs")}
    assert {"export", "push"} <= kinds
    assert await c.fetchval("SELECT count(*) FROM sync_jobs WHERE kind IN ('stream', 'pull') "
                            "AND records_applied > 0") > 0

    # 5. no byte of A's private records anywhere on the hub, B or C
    hits = []
    for name in ("hub", "beta", "gamma"):
        hits += await _scan_database(pools[name], needles)
        hits += _scan_files(network["dirs"][name], needles)
    assert hits == []
    # ... while the scan does find them where they live (A), so it would notice a leak
    assert len(await _scan_database(a, needles)) >= len(needles)
