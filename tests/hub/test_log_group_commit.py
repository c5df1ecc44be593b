"""Group commit of the log: a push commits its bundle with a pending row, and one short
transaction gives the next sequences to every pending push at once.

The hostile side: a hub killed between the push's commit and its sequencing (the bundle
is stored, the log does not have it), a duplicate of such a push, two hub processes
sequencing each other's pushes, and a reader paging while all that happens. The log must
stay gap-free and in commit order, and every acknowledged ``hub_seq`` must be the log
entry of the acknowledged digest.
"""

from __future__ import annotations

import asyncio

import pytest

from hub import ingest as I
from hub import typedefs as T
from protocol.containers import CBOR_MEDIA_TYPE
from protocol.limits import DEFAULT_LIMITS
from tests.hub.conftest import PEER_TOKEN
from tests.hub.helpers import envelope
from tests.hub.test_ingest import push


class Killed(Exception):
    """The process died right after the push's transaction committed."""


async def store_then_die(pool, monkeypatch, data: bytes) -> str:
    """Store ``data`` as a push would, then stop before its sequencing."""
    async def die(_pool, _digest):
        raise Killed

    checked = I.check(data, CBOR_MEDIA_TYPE, DEFAULT_LIMITS)
    with monkeypatch.context() as m:
        m.setattr(I, "sequence", die)
        with pytest.raises(Killed):
            await I.store(pool, checked, data, peer="alpha", hops=0)
    return checked.digest


async def log_of(pool) -> list[tuple[int, str]]:
    return [(r["seq"], r["digest"]) for r in
            await pool.fetch("SELECT seq, digest FROM hub_log ORDER BY seq")]


async def test_a_push_left_unlogged_is_logged_before_the_next_one(hub_client, hub_pool, peer,
                                                                  origin, monkeypatch):
    lost = await store_then_die(hub_pool, monkeypatch, envelope(origin.many(2)))
    assert await log_of(hub_pool) == []
    r = await push(hub_client, peer, origin.many(1))
    body = await r.json()
    assert r.status == 201 and body["hub_seq"] == 2
    assert await log_of(hub_pool) == [(1, lost), (2, body["digest"])]
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log_pending") == 0
    # the tlog has a leaf for each, in log order
    assert [r["hub_seq"] for r in await hub_pool.fetch(
        "SELECT hub_seq FROM hub_tlog_leaves ORDER BY idx")] == [1, 2]


async def test_a_restarted_hub_logs_what_a_killed_one_left(make_hub, hub_pool, peer, origin,
                                                           monkeypatch):
    lost = await store_then_die(hub_pool, monkeypatch, envelope(origin.many(1)))
    second = await make_hub()  # a new process on the same database
    assert await log_of(second.server.app[T.pool_key]) == [(1, lost)]
    r = await second.get("/api/v2/bundles?since=0")
    assert [e["digest"] for e in (await r.json())["entries"]] == [lost]


async def test_the_retry_of_a_push_left_unlogged_gets_its_sequence(hub_client, hub_pool, peer,
                                                                   origin, monkeypatch):
    data = envelope(origin.many(3))
    lost = await store_then_die(hub_pool, monkeypatch, data)
    r = await push(hub_client, peer, data)  # the peer never got an answer: it retries
    body = await r.json()
    assert r.status == 200 and body["status"] == "duplicate", body
    assert body["digest"] == lost and body["hub_seq"] == 1 and body["accepted"] == 3
    assert await log_of(hub_pool) == [(1, lost)]


async def test_two_processes_sequence_each_others_pushes_without_gap(make_hub, hub_pool, peer,
                                                                     origin):
    """Pushes to two hub processes on one database, all at once, while a reader pages
    the log: one entry per push, 1..N, each answer naming its own entry."""
    first = await make_hub()
    second = await make_hub()
    bundles = [envelope(origin.many(1)) for _ in range(40)]
    seen: list[int] = []
    stop = asyncio.Event()

    async def reader() -> None:
        since = 0
        while not stop.is_set() or since < 40:
            r = await first.get(f"/api/v2/bundles?since={since}&limit=5")
            body = await r.json()
            seen.extend(e["seq"] for e in body["entries"])
            since = body["next"]
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    answers = await asyncio.gather(*[
        push(first if i % 2 else second, PEER_TOKEN, data) for i, data in enumerate(bundles)])
    stop.set()
    await asyncio.wait_for(task, 30)
    bodies = [await a.json() for a in answers]
    assert {a.status for a in answers} == {201}
    log = dict((d, s) for s, d in await log_of(hub_pool))
    assert sorted(log.values()) == list(range(1, 41))
    assert all(log[b["digest"]] == b["hub_seq"] for b in bodies)
    assert seen == list(range(1, 41))  # never a skip, never a repeat, in order


async def origin_row(pool, origin: str) -> tuple | None:
    row = await pool.fetchrow(
        "SELECT last_sequence, last_digest, bundles, records, instance FROM hub_origins "
        "WHERE origin = $1", origin)
    return None if row is None else tuple(row)


async def test_pushes_logged_together_count_for_their_origin_and_peer_as_one_by_one(
        hub_client, hub_pool, peer, origin, monkeypatch):
    """An origin's row and its peer's push counter come with the log entries: pushes
    logged by one sequencing (here two left by killed processes, then a push) count as
    if logged one after another, whatever order their sequences arrived in: the newest
    sequence and its digest win, every bundle and record counts once."""
    _, two, three = origin.many(1), origin.many(1), origin.many(1)
    four, five, six = origin.many(4), origin.many(2), origin.many(1)
    d5 = await store_then_die(hub_pool, monkeypatch, envelope(five))
    await store_then_die(hub_pool, monkeypatch, envelope(three))
    # stored, not yet logged: not yet counted either
    assert await origin_row(hub_pool, origin.origin) is None
    assert await hub_pool.fetchval("SELECT pushes FROM hub_peers WHERE name = 'alpha'") == 0
    r = await push(hub_client, peer, four)
    assert r.status == 201 and (await r.json())["hub_seq"] == 3
    assert await origin_row(hub_pool, origin.origin) == (5, d5, 3, 7, origin.instance)
    assert await hub_pool.fetchval("SELECT pushes FROM hub_peers WHERE name = 'alpha'") == 3
    # the next one on its own: a higher sequence takes over, a lower one would not
    r = await push(hub_client, peer, six)
    assert r.status == 201
    assert await origin_row(hub_pool, origin.origin) == (6, six.digest, 4, 8, origin.instance)
    r = await push(hub_client, peer, two)
    assert r.status == 201
    assert await origin_row(hub_pool, origin.origin) == (6, six.digest, 5, 9, origin.instance)
    assert await hub_pool.fetchval("SELECT pushes FROM hub_peers WHERE name = 'alpha'") == 5
