"""Pushes verified AND stored in the hub's ingest processes (hub.ingest_pool).

The other hub tests verify in threads and store in the test's own process; here a real
process pool does both, on its own connections, and the answers, the refusals (with
their extras), privacy, a SIGKILL in the middle of a transaction and a stopped database
are checked from the HTTP side and in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal

import pytest

from hub import ingest as I
from hub import queries as Q
from hub import typedefs as T
from hub.app import create_app
from hub.ingest_pool import IngestPool, WorkerSetup
from protocol.bundle import Bundle
from protocol.containers import CBOR_MEDIA_TYPE, decode_frame, from_cbor
from protocol.limits import DEFAULT_LIMITS
from service import outage
from service.ids import token_hash
from tests.hub.conftest import PEER_TOKEN, make_hub_config
from tests.hub.helpers import Origin, envelope, seed, until
from tests.hub.test_ingest import push, push_public_and_secret
from tests.ops.test_outage import StoppableServer

# no prune job: its first run (at start, in a task) takes the hub_state row lock, and on a
# slow machine it came while a test held that lock and counted the lock's waiters
PROCESSES = T.HubOptions(verify_processes=1, inline_verify_bytes=0, prune_interval=0)


@pytest.fixture
async def proc_hub(make_hub, origin):
    client = await make_hub(PROCESSES)
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash(PEER_TOKEN))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    assert client.server.app[T.executor_key].stores
    return client


async def lock_waiters(pool, event: str | None = None) -> int:
    """Sessions of the test's own database waiting on a lock (of ``event``, e.g.
    'advisory', when given); pg_stat_activity is the whole server's."""
    return await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND ($1::text IS NULL OR wait_event = $1) AND datname = current_database()", event)


async def waiters_are(pool, n: int, event: str | None = None) -> bool:
    return await lock_waiters(pool, event) == n


async def counts(pool) -> tuple[int, int, int, int]:
    return tuple([await pool.fetchval(f"SELECT count(*) FROM {t}") for t in  # noqa: S608
                  ("hub_bundles", "hub_records", "hub_log", "hub_log_pending")])


async def test_processes_store_and_answer_as_the_hub_itself(proc_hub, origin):
    pool = proc_hub.server.app[T.pool_key]
    b, public, _, status, body = await push_public_and_secret(proc_hub, PEER_TOKEN, origin)
    assert status == 201, body
    assert (body["status"], body["accepted"], body["withheld"], body["hub_seq"]) == \
        ("stored", 1, 1, 1)
    stored = bytes(await pool.fetchval("SELECT container FROM hub_bundles"))
    assert b"Secret title" not in stored and set(from_cbor(stored).files) == {public.path}
    listing = await (await proc_hub.get("/api/v2/records")).json()
    assert [i["id"] for i in listing["records"]] == ["PUB1"]
    assert await counts(pool) == (1, 1, 1, 0)
    # the same bytes again: a duplicate, answered with the stored copy's counts
    again = await push(proc_hub, PEER_TOKEN, b)
    assert again.status == 200 and (await again.json())["status"] == "duplicate"
    # the same sequence with other content: refused with the kept digest (a refusal's
    # extra crosses the process boundary)
    twin = Origin(origin.seed)
    r = await push(proc_hub, PEER_TOKEN, twin.bundle([twin.request(title="Other")]))
    body = await r.json()
    assert r.status == 409 and body["error"]["code"] == "equivocation"
    assert body["error"]["kept_digest"] == b.digest
    # an unknown key: parked by the process, nothing indexed
    stranger = Origin(seed(99))
    r = await push(proc_hub, PEER_TOKEN, stranger.many(2))
    assert r.status == 202 and (await r.json())["status"] == "pending"
    assert await pool.fetchval("SELECT count(*) FROM hub_pending_bundles") == 1
    assert await counts(pool) == (1, 1, 1, 0)
    # a forged file: the protocol's code and path, nothing written
    good = origin.many(2)
    path = next(iter(good.files))
    forged = Bundle(good.manifest, good.sig, {path: good.files[path] + b"x"}, good.keys)
    r = await push(proc_hub, PEER_TOKEN, forged)
    body = await r.json()
    assert r.status == 400 and (body["error"]["code"], body["error"]["path"]) == \
        ("digest_mismatch", path)
    assert await counts(pool) == (1, 1, 1, 0)


async def test_stream_subscribers_hear_of_a_push_stored_by_a_process(proc_hub, origin):
    ws = await proc_hub.ws_connect("/api/v2/stream?since=0")
    assert decode_frame((await asyncio.wait_for(ws.receive(), 10)).data).op == "info"
    b = origin.many(3)
    r = await push(proc_hub, PEER_TOKEN, b)
    assert r.status == 201
    got = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
    assert (got.op, got.seq, got.digest) == ("bundle", (await r.json())["hub_seq"], b.digest)
    await ws.close()


async def test_a_process_killed_inside_its_transaction_leaves_nothing(proc_hub, origin):
    """SIGKILL while the push's transaction waits on a lock: 503 with a stable code,
    no row of it anywhere, and the next push is stored by a fresh process."""
    app = proc_hub.server.app
    pool = app[T.pool_key]
    b = origin.many(5)
    async with pool.acquire() as blocker:
        # every push takes its origin's lock (shared); hold it exclusively
        await blocker.execute("SELECT pg_advisory_lock(hashtext('wb-hub-origin:' || $1))",
                              origin.origin)
        task = asyncio.ensure_future(push(proc_hub, PEER_TOKEN, b))
        await until(lambda: waiters_are(pool, 1, "advisory"), "the push on the lock", 30)
        (pid,) = app[T.executor_key].pids()  # the one ingest process
        os.kill(pid, signal.SIGKILL)
        r = await asyncio.wait_for(task, 30)
        await blocker.execute("SELECT pg_advisory_unlock_all()")
    body = await r.json()
    assert r.status == 503 and body["error"]["code"] == "verifier_unavailable"
    # the killed backend's transaction is rolled back
    await until(lambda: waiters_are(pool, 0, "advisory"), "the killed backend's end", 30)
    assert await counts(pool) == (0, 0, 0, 0)
    r = await push(proc_hub, PEER_TOKEN, b)
    assert r.status == 201 and (await r.json())["accepted"] == 5
    assert await counts(pool) == (1, 5, 1, 0)


async def test_a_dying_process_fails_only_the_push_it_held(make_hub, origin):
    """Two processes, each holding a push (both waiting on their origin's lock): SIGKILL
    of one answers its push 503 and nothing else; the other process's push is stored.
    (A ``concurrent.futures`` pool breaks as a whole: both would have failed.)"""
    client = await make_hub(T.HubOptions(verify_processes=2, inline_verify_bytes=0))
    app = client.server.app
    pool = app[T.pool_key]
    other = Origin(seed(7))
    await Q.add_peer(pool, "alpha", "node", token_hash(PEER_TOKEN))
    for o in (origin, other):
        await Q.trust_key(pool, o.origin, o.origin, o.public_key, "alpha")
    assert len(app[T.executor_key].pids()) == 2  # both started (warm)
    first, second = origin.many(3), other.many(4)
    async with pool.acquire() as blocker:
        for o in (origin, other):
            await blocker.execute("SELECT pg_advisory_lock(hashtext('wb-hub-origin:' || $1))",
                                  o.origin)
        tasks = [asyncio.ensure_future(push(client, PEER_TOKEN, b)) for b in (first, second)]
        # one push in each process
        await until(lambda: waiters_are(pool, 2, "advisory"), "both pushes on locks", 30)
        victim = app[T.executor_key].pids()[0]
        os.kill(victim, signal.SIGKILL)
        # (its backend learns of the death once it has the lock: then it rolls back)
        await blocker.execute("SELECT pg_advisory_unlock_all()")
        answers = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    codes = sorted([r.status for r in answers])
    assert codes == [201, 503]
    failed = next(r for r in answers if r.status == 503)
    assert (await failed.json())["error"]["code"] == "verifier_unavailable"
    kept = next(b for b, r in zip((first, second), answers, strict=True) if r.status == 201)
    assert await pool.fetchval("SELECT array_agg(digest) FROM hub_bundles") == [kept.digest]
    assert await pool.fetchval("SELECT count(*) FROM hub_records") == len(kept.files)
    # the pool is whole again at the next push: the lost one's content is stored now
    lost = second if kept is first else first
    r = await push(client, PEER_TOKEN, lost)
    assert r.status == 201, await r.text()
    assert victim not in app[T.executor_key].pids()
    assert len(app[T.executor_key].pids()) == 2


async def test_a_process_killed_between_its_commit_and_its_log_entry(proc_hub, origin):
    """The push committed, then the process died waiting to log it (the log's row lock
    held here): 503, and the hub logs the orphan at once, so the retry is a duplicate
    with its sequence and stream subscribers get it without waiting for another push."""
    app = proc_hub.server.app
    pool = app[T.pool_key]
    b = origin.many(4)
    async with pool.acquire() as blocker:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT last_seq FROM hub_state WHERE id = 1 FOR UPDATE")
        task = asyncio.ensure_future(push(proc_hub, PEER_TOKEN, b))
        async def committed_and_waiting() -> tuple[int, int] | None:
            pair = (await pool.fetchval("SELECT count(*) FROM hub_log_pending"),
                    await lock_waiters(pool))
            return pair if all(pair) else None

        # committed, its log entry waits for us
        assert await until(committed_and_waiting, "the commit and the log's lock", 30) == \
            (1, 1)
        (pid,) = app[T.executor_key].pids()
        os.kill(pid, signal.SIGKILL)
        await tx.rollback()
    r = await asyncio.wait_for(task, 30)
    assert r.status == 503 and (await r.json())["error"]["code"] == "verifier_unavailable"
    assert await counts(pool) == (1, 4, 1, 0)  # logged by the hub when it heard of the death
    again = await push(proc_hub, PEER_TOKEN, b)
    body = await again.json()
    assert again.status == 200 and (body["status"], body["hub_seq"]) == ("duplicate", 1)


async def test_connections_closed_while_the_processes_idle_are_replaced(proc_hub, origin):
    """A server-side close between two pushes (a restart, an idle timeout): the next push
    must not get the dead connection."""
    pool = proc_hub.server.app[T.pool_key]
    assert (await push(proc_hub, PEER_TOKEN, origin.many(2))).status == 201
    async with pool.acquire() as conn:
        mine = await conn.fetchval("SELECT pg_backend_pid()")
        others = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> $1 AND backend_type = 'client backend'", mine)
        assert len(others) >= 2  # the process's own, and the hub's
        await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid",
                           [r["pid"] for r in others])
        async def all_gone() -> bool:
            return not await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])",
                [r["pid"] for r in others])

        await until(all_gone, "the terminated backends' end", 30)
    for _ in range(2):  # (both of the process's connections were dead)
        r = await push(proc_hub, PEER_TOKEN, origin.many(2))
        assert r.status == 201, await r.text()
    assert await pool.fetchval("SELECT count(*) FROM hub_records") == 6


async def test_a_stopped_database_is_an_outage_for_the_processes_too(aiohttp_client,
                                                                     tmp_path, origin):
    """The processes' own connections: a stopped database comes back to the hub as an
    error the outage gate knows (503 while it is away), and they reconnect after."""
    server = StoppableServer()
    try:
        config = make_hub_config(server.url, tmp_path / "hub")
        client = await aiohttp_client(create_app(config, PROCESSES))
        app = client.server.app
        await Q.add_peer(app[T.pool_key], "alpha", "node", token_hash(PEER_TOKEN))
        await Q.trust_key(app[T.pool_key], origin.origin, origin.origin, origin.public_key,
                          "alpha")
        assert (await push(client, PEER_TOKEN, origin.many(2))).status == 201
        await asyncio.to_thread(server.stop)
        processes = app[T.executor_key]
        with pytest.raises(outage.SUSPECT):
            await processes.ingest(envelope(origin.many(2)), CBOR_MEDIA_TYPE, DEFAULT_LIMITS,
                                   "alpha", 0)
        await asyncio.to_thread(server.start)
        for _ in range(300):  # the gate (tripped by the background workers) sees it back
            if (await client.get("/readyz")).status == 200:
                break
            await asyncio.sleep(0.1)
        r = await push(client, PEER_TOKEN, origin.many(2))
        assert r.status == 201, await r.text()
        assert await app[T.pool_key].fetchval("SELECT count(*) FROM hub_records") == 4
        await client.close()
    finally:
        await asyncio.to_thread(server.close)


async def test_verifying_only_without_a_database(origin):
    """A pool without a database URL verifies and leaves storing to the caller."""
    pool = IngestPool(1, WorkerSetup(owner=os.getpid()))
    try:
        assert not pool.stores
        checked = await pool.run(envelope(origin.many(3)), CBOR_MEDIA_TYPE, DEFAULT_LIMITS)
        assert checked.origin == origin.origin and len(checked.columns[0]) == 3
    finally:
        await pool.close()


async def test_closing_gives_the_answers_owed_then_takes_no_call(origin):
    """close() while a call is in flight: the process answers it before it leaves (the
    caller never waits forever); a call after close() is refused and starts nothing."""
    before = set(multiprocessing.active_children())
    pool = IngestPool(1, WorkerSetup(owner=os.getpid()))
    data = envelope(origin.many(3))
    await pool.warm()
    checked, _ = await asyncio.wait_for(
        asyncio.gather(pool.run(data, CBOR_MEDIA_TYPE, DEFAULT_LIMITS), pool.close()), 30)
    assert checked.origin == origin.origin and len(checked.columns[0]) == 3
    assert pool.pids() == [] and set(multiprocessing.active_children()) == before
    with pytest.raises(I.Refused) as refused:
        await pool.run(data, CBOR_MEDIA_TYPE, DEFAULT_LIMITS)
    assert refused.value.code == "verifier_unavailable"
    assert pool.pids() == [] and set(multiprocessing.active_children()) == before


@pytest.mark.parametrize("turns", [0, 1, 3, 10, 40])
async def test_a_caller_cancelled_while_its_process_starts_leaves_nothing(origin, turns):
    """A push whose client goes away while the pool starts its process (the cancel lands
    anywhere in the start, by the number of loop turns): the next call still works, and
    after close() no process of the pool is left."""
    before = set(multiprocessing.active_children())
    pool = IngestPool(1, WorkerSetup(owner=os.getpid()))
    data = envelope(origin.many(2))
    try:
        first = asyncio.ensure_future(pool.run(data, CBOR_MEDIA_TYPE, DEFAULT_LIMITS))
        for _ in range(turns):
            await asyncio.sleep(0)
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        checked = await asyncio.wait_for(pool.run(data, CBOR_MEDIA_TYPE, DEFAULT_LIMITS), 30)
        assert len(checked.columns[0]) == 2 and len(pool.pids()) == 1
    finally:
        await asyncio.wait_for(pool.close(), 30)
    assert set(multiprocessing.active_children()) == before


async def test_a_process_that_cannot_start_is_a_503_not_a_500(origin, monkeypatch):
    """Whatever stops a process from starting (no fork, a forkserver gone), the push gets
    ``verifier_unavailable`` (a 503 to retry), not an unexpected error (a 500)."""
    pool = IngestPool(1, WorkerSetup(owner=os.getpid()))

    def broken(self):  # noqa: ANN001, ANN202
        raise EOFError("unexpected EOF")  # what a crashed forkserver raised

    monkeypatch.setattr(IngestPool, "_spawn", broken)
    try:
        with pytest.raises(I.Refused) as refused:
            await pool.run(envelope(origin.many(1)), CBOR_MEDIA_TYPE, DEFAULT_LIMITS)
        assert refused.value.code == "verifier_unavailable" and pool.pids() == []
    finally:
        await pool.close()


def test_an_ingest_process_collects_garbage_less_often():
    """The process freezes what it imported and collects its young generation every
    GC_THRESHOLD objects (a 1,000-record push no longer triggers collections)."""
    import gc

    from hub import ingest_pool

    before = gc.get_threshold()
    try:
        ingest_pool._collect_less()
        assert gc.get_threshold() == (ingest_pool.GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
