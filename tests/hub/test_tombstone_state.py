"""Tombstones are state: a withdrawn record never comes back, whatever the order.

The attacks of issue 15: a tombstone that arrives before its record; an old, validly
signed bundle re-posted by another peer after the tombstone's bundle was pruned; any
interleaving and duplication of an origin's bundles with prunes in between. Checked on
everything a reader can get: the log (``/api/v2/bundles``), the stream, the records API
and the database of a subscriber that imports what it pulls.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from dataclasses import dataclass, field

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import queries as Q
from node.sync.importer import import_bundle
from protocol.containers import decode_frame, from_cbor
from service import db
from service.ids import token_hash
from tests.hub.helpers import Origin, cbor_headers, envelope

# both ways of storing the index rows (``tests/hub/conftest.py``)
pytestmark = pytest.mark.usefixtures("both_stagings")

PEERS = {"alpha": "alpha-token-0123456789abcdef", "beta": "beta-token-0123456789abcdef"}
NODE_ORIGIN = "00000000000000ff"  # the subscriber's own origin (never pushed here)
_seeds = itertools.count(1000)


@pytest.fixture
async def world(hub_client, hub_pool, pg):
    from node.app import MIGRATIONS

    for name, token in PEERS.items():
        await Q.add_peer(hub_pool, name, "node", token_hash(token))
    url = await pg.new_database(await pg.template("node", MIGRATIONS))
    node = await db.create_pool(url, max_size=2)
    yield hub_client, hub_pool, node
    await node.close()
    await pg.drop(url)


def secret(origin: Origin, rid: str, rev: int) -> str:
    return f"withdrawable {origin.origin} {rid} r{rev}"


@dataclass
class History:
    """An origin's signed bundles and, per record, each revision's body."""

    origin: Origin
    bundles: list = field(default_factory=list)
    dead: list[dict[str, int]] = field(default_factory=list)  # per bundle: rid -> rev

    @classmethod
    def build(cls, plan: list[list[tuple[int, bool]]]) -> History:
        h = cls(Origin(hashlib.sha256(f"tomb-{next(_seeds)}".encode()).digest()))
        o = h.origin
        revs: dict[str, int] = {}
        for ops in plan:
            records, dead = [], {}
            for n, delete in dict(ops).items():  # one op per record and bundle
                rid = f"R{n}"
                rev = revs[rid] = revs.get(rid, 0) + 1
                if delete:
                    records.append(o.tombstone("request", rid, rev))
                    dead[rid] = rev
                else:
                    text = secret(o, rid, rev)
                    records.append(o.request(rid, revision=rev, title=text, body=text))
            h.bundles.append(o.bundle(records))
            h.dead.append(dead)
        return h

    def withdrawn(self, pushed: set[int]) -> list[bytes]:
        """Every body the hub has been told is withdrawn (by the bundles pushed so far)."""
        top: dict[str, int] = {}
        for i in pushed:
            for rid, rev in self.dead[i].items():
                top[rid] = max(top.get(rid, 0), rev)
        return [secret(self.origin, rid, r).encode()
                for rid, rev in top.items() for r in range(1, rev + 1)]


async def push(client, peer: str, bundle) -> int:
    r = await client.post("/api/v2/bundles", data=envelope(bundle),
                          headers=cbor_headers(PEERS[peer]))
    assert r.status in (200, 201), await r.text()
    return r.status


class Subscriber:
    """A node that pulls the hub's log and imports every bundle into its database."""

    def __init__(self, client, node) -> None:
        self.client, self.node, self.cursor = client, node, 0

    async def catch_up(self, withdrawn: list[bytes]) -> None:
        while True:
            r = await self.client.get(f"/api/v2/bundles?since={self.cursor}&limit=50",
                                      headers={"Accept": "application/cbor"})
            assert r.status == 200, await r.text()
            page = cbor2.loads(await r.read())
            for entry in page["entries"]:
                leaked = [w for w in withdrawn if w in entry["bundle"]]
                assert not leaked, f"log seq {entry['seq']} serves {leaked[0]!r}"
                await import_bundle(self.node, from_cbor(entry["bundle"]),
                                    our_origin=NODE_ORIGIN, peer="hub")
            self.cursor = page["next"]
            if self.cursor >= page["head"]:
                return


async def trust(hub_pool, node, origin: Origin) -> None:
    await Q.trust_key(hub_pool, origin.origin, origin.origin, origin.public_key, "alpha")
    await node.execute(
        "INSERT INTO sync_trusted_keys (origin, key_id, public_key, source) "
        "VALUES ($1, $1, $2, 'pinned')", origin.origin, origin.public_key)


async def assert_nothing_serves(client, hub_pool, node, h: History, withdrawn: list[bytes]):
    o = h.origin.origin
    pruned = (await Q.log_state(hub_pool))[1]
    r = await client.get(f"/api/v2/bundles?since={pruned}&limit=500&origin={o}",
                         headers={"Accept": "application/cbor"})
    entries = cbor2.loads(await r.read())["entries"]
    log_bytes = b"".join(e["bundle"] for e in entries)
    r = await client.get(f"/api/v2/records?origin={o}&limit=500")
    assert r.status == 200
    api_bytes = await r.read()
    last = max([pruned, *(e["seq"] for e in entries)])  # the origin's newest entry
    stream_bytes = b""
    async with client.ws_connect(f"/api/v2/stream?since={pruned}&origin={o}") as ws:
        seen = pruned
        while seen < last:
            frame = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
            assert frame.op != "error", frame
            seen = max(seen, frame.seq or 0)
            if frame.op == "bundle":
                stream_bytes += b"".join(frame.bundle.files.values())
    rows = await node.fetch(
        "SELECT title || ' ' || description AS t FROM requests WHERE origin = $1", o)
    stored = "\n".join(r["t"] for r in rows).encode()
    stored_hub = b"".join(bytes(r["container"]) for r in await hub_pool.fetch(
        "SELECT container FROM hub_bundles WHERE origin = $1", o))
    for w in withdrawn:
        assert w not in log_bytes, f"log serves {w!r}"
        assert w not in api_bytes, f"records API serves {w!r}"
        assert w not in stream_bytes, f"stream serves {w!r}"
        assert w not in stored, f"subscriber stored {w!r}"
        assert w not in stored_hub, f"hub keeps {w!r} in a bundle"


async def test_tombstone_first_then_record_is_withheld(world):
    client, hub_pool, node = world
    h = History.build([[(1, False)], [(1, True)]])
    await trust(hub_pool, node, h.origin)
    sub = Subscriber(client, node)
    assert await push(client, "alpha", h.bundles[1]) == 201  # the tombstone, sequence 2
    withdrawn = h.withdrawn({1})
    await sub.catch_up(withdrawn)
    assert await push(client, "alpha", h.bundles[0]) == 201  # the record, sequence 1
    await sub.catch_up(withdrawn)
    await assert_nothing_serves(client, hub_pool, node, h, withdrawn)
    # the late bundle is still logged (its chain stays whole), with the record withheld
    row = await hub_pool.fetchrow("SELECT withheld_count, record_count, paths FROM "
                                  "hub_bundles WHERE digest = $1", h.bundles[0].digest)
    assert (row["withheld_count"], row["record_count"], row["paths"]) == (1, 0, [])


async def test_replay_by_another_peer_after_prune_is_withheld(world):
    client, hub_pool, node = world
    h = History.build([[(1, False)], [(2, False)], [(1, True)], [(2, False)]])
    await trust(hub_pool, node, h.origin)
    sub = Subscriber(client, node)
    for b in h.bundles:
        assert await push(client, "alpha", b) == 201
    withdrawn = h.withdrawn({0, 1, 2, 3})
    await sub.catch_up(withdrawn)
    head = (await Q.log_state(hub_pool))[0]
    async with hub_pool.acquire() as conn:  # released: the app's pool.close() waited 10 s
        pruned = await Q.prune_log(conn, before_seq=head + 1)
    assert pruned.bundles == 3  # the tombstone's bundle is gone; the latest one stays
    assert await hub_pool.fetchval(
        "SELECT revision FROM hub_tombstones WHERE origin = $1 AND id = 'R1'",
        h.origin.origin) == 2
    # beta re-posts the origin's first bundle, still validly signed: accepted as new ...
    assert await push(client, "beta", h.bundles[0]) == 201
    await sub.catch_up(withdrawn)
    # ... and serves no byte of the withdrawn record
    await assert_nothing_serves(client, hub_pool, node, h, withdrawn)


async def test_revival_with_a_higher_revision_is_served(world):
    client, hub_pool, node = world
    h = History.build([[(1, False)], [(1, True)], [(1, False)]])
    await trust(hub_pool, node, h.origin)
    sub = Subscriber(client, node)
    for i in (2, 1, 0):  # newest first
        await push(client, "alpha", h.bundles[i])
    withdrawn = h.withdrawn({0, 1, 2})
    await sub.catch_up(withdrawn)
    await assert_nothing_serves(client, hub_pool, node, h, withdrawn)
    revived = secret(h.origin, "R1", 3).encode()
    r = await client.get(f"/api/v2/records?origin={h.origin.origin}")
    assert revived in await r.read()
    assert await node.fetchval("SELECT description FROM requests WHERE origin = $1",
                               h.origin.origin) == revived.decode()


# one op per record per bundle: (record number, is a tombstone)
_bundle = st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=3)
# a step: push bundle i (by a peer), or prune the whole log
_step = st.one_of(st.tuples(st.just("push"), st.integers(0, 4),
                            st.sampled_from(sorted(PEERS))),
                  st.tuples(st.just("prune"), st.just(0), st.just("")))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(plan=st.lists(_bundle, min_size=2, max_size=5),
       steps=st.lists(_step, min_size=1, max_size=12))
async def test_no_withdrawn_body_is_ever_served(world, plan, steps):
    client, hub_pool, node = world
    h = History.build(plan)  # a fresh origin per example: examples share the hub
    await trust(hub_pool, node, h.origin)
    sub = Subscriber(client, node)
    sub.cursor = (await Q.log_state(hub_pool))[0]
    pushed: set[int] = set()
    for op, i, peer in steps:
        if op == "prune":
            async with hub_pool.acquire() as conn:
                await Q.prune_log(conn, before_seq=(await Q.log_state(conn))[0] + 1)
            continue
        i %= len(h.bundles)
        await push(client, peer, h.bundles[i])
        pushed.add(i)
        await sub.catch_up(h.withdrawn(pushed))
    await assert_nothing_serves(client, hub_pool, node, h, h.withdrawn(pushed))


async def test_node_import_refuses_a_record_its_tombstone_preceded(world):
    """The node keeps tombstones as state too, whoever relays the bundles (no hub)."""
    _, hub_pool, node = world
    h = History.build([[(1, False), (2, False)], [(1, True)], [(2, True)]])
    await trust(hub_pool, node, h.origin)
    o = h.origin.origin
    for i in (1, 2, 0):  # both tombstones first, then the bundle with both records
        await import_bundle(node, h.bundles[i], our_origin=NODE_ORIGIN, peer="relay")
    assert await node.fetchval("SELECT count(*) FROM requests WHERE origin = $1", o) == 0
    assert await node.fetch(
        "SELECT origin_id, revision FROM sync_tombstones WHERE origin = $1 ORDER BY 1",
        o) == [("R1", 2), ("R2", 2)]


async def test_tombstone_and_its_record_pushed_at_once_never_leave_the_body(world):
    """The record and its tombstone race in concurrent transactions (two peers at the
    same moment): whichever commits first, the stored copy never keeps the body."""
    client, hub_pool, node = world
    histories = [History.build([[(1, False), (2, False)], [(1, True)]]) for _ in range(12)]
    for h in histories:
        await trust(hub_pool, node, h.origin)
    await asyncio.gather(*(push(client, peer, h.bundles[i]) for h in histories
                           for i, peer in ((1, "alpha"), (0, "beta"))))
    for h in histories:
        await assert_nothing_serves(client, hub_pool, node, h, h.withdrawn({0, 1}))
        kept = secret(h.origin, "R2", 1).encode()  # the other record is untouched
        stored = b"".join(bytes(r["container"]) for r in await hub_pool.fetch(
            "SELECT container FROM hub_bundles WHERE origin = $1", h.origin.origin))
        assert kept in stored
