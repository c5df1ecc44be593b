"""Pushes first: anonymous public reads wait while a push is being handled (bounded),
peers' reads never do. Issue 26: an unpaced reader took the CPU the pushes needed."""

from __future__ import annotations

import asyncio

from hub import typedefs as T

PUBLIC_READS = ("/api/v2/records", "/", "/feed.atom")


async def until(predicate) -> None:
    """Yield to the loop until ``predicate()`` holds (the gate's counter is what shows a
    read waiting; the callers bound this with wait_for)."""
    while not predicate():  # noqa: ASYNC110 - a counter, not an event, is observable
        await asyncio.sleep(0)


async def test_public_reads_wait_for_the_push_in_flight(make_hub):
    client = await make_hub(T.HubOptions(verify_processes=0, read_defer_ms=3_600_000))
    gate = client.server.app[T.writes_first_key]
    with gate.writing():  # a push being handled
        reads = [asyncio.create_task(client.get(path)) for path in PUBLIC_READS]
        await asyncio.wait_for(until(lambda: gate.deferred == len(PUBLIC_READS)), 30)
        assert not any(r.done() for r in reads)
    answers = await asyncio.wait_for(asyncio.gather(*reads), 30)
    assert [a.status for a in answers] == [200] * len(PUBLIC_READS)


async def test_a_read_waits_no_longer_than_the_deferral(make_hub):
    client = await make_hub(T.HubOptions(verify_processes=0, read_defer_ms=20))
    gate = client.server.app[T.writes_first_key]
    with gate.writing():  # a push that never ends
        r = await asyncio.wait_for(client.get("/api/v2/records"), 30)
        assert r.status == 200 and gate.deferred == 1


async def test_peers_reads_and_idle_hubs_never_wait(make_hub):
    client = await make_hub(T.HubOptions(verify_processes=0, read_defer_ms=3_600_000))
    gate = client.server.app[T.writes_first_key]
    with gate.writing():
        for path in ("/api/v2/bundles?since=0", "/api/v2/origins", "/readyz"):
            assert (await asyncio.wait_for(client.get(path), 30)).status == 200
        ws = await client.ws_connect("/api/v2/stream")
        assert (await asyncio.wait_for(ws.receive(), 30)).type.name == "BINARY"
        await ws.close()
    assert gate.deferred == 0
    assert (await client.get("/api/v2/records")).status == 200  # no push: no wait
    assert gate.deferred == 0
    off = await make_hub(T.HubOptions(verify_processes=0, read_defer_ms=0))
    with off.server.app[T.writes_first_key].writing():
        assert (await asyncio.wait_for(off.get("/api/v2/records"), 30)).status == 200
    assert off.server.app[T.writes_first_key].deferred == 0


async def test_reads_that_waited_together_go_on_together_and_share_one_query(make_hub):
    """The waiting reads are one group with one deadline: released at once, they see one
    log head, and the records API computes their answer once (under a closed-loop reader
    every read used to end its wait at its own moment, at its own head, and ran its own
    query)."""
    client = await make_hub(T.HubOptions(verify_processes=0, read_defer_ms=3_600_000))
    app = client.server.app
    gate, cache = app[T.writes_first_key], app[T.records_cache_key]
    with gate.writing():
        reads = [asyncio.create_task(client.get("/api/v2/records?limit=7")) for _ in range(12)]
        await asyncio.wait_for(until(lambda: gate.deferred == 12), 30)
        assert gate.releases == 0 and not any(r.done() for r in reads)
    answers = await asyncio.wait_for(asyncio.gather(*reads), 30)
    assert [a.status for a in answers] == [200] * 12
    assert len({await a.read() for a in answers}) == 1
    assert gate.releases == 1 and cache.computed == 1


async def test_the_group_deadline_releases_every_waiting_read_at_once(make_hub):
    # long enough for all eight to be waiting when it ends, on a loaded machine too
    client = await make_hub(T.HubOptions(verify_processes=0, read_defer_ms=1500))
    app = client.server.app
    gate, cache = app[T.writes_first_key], app[T.records_cache_key]
    with gate.writing():  # a push that outlasts the deferral
        answers = await asyncio.wait_for(asyncio.gather(
            *[client.get("/api/v2/records?limit=3") for _ in range(8)]), 30)
        assert [a.status for a in answers] == [200] * 8
        assert gate.deferred == 8 and gate.releases == 1 and cache.computed == 1
        # the next read to wait starts a new group, with a new deadline
        assert (await asyncio.wait_for(client.get("/api/v2/records?limit=3"), 30)).status == 200
        assert gate.deferred == 9 and gate.releases == 2
