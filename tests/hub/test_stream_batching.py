"""Stream wake-ups are batched under a stream of pushes (#26): subscribers are woken at
most once per ``WB_HUB_STREAM_BATCH_MS`` and get what was logged meanwhile in one write,
while a push after a quiet spell goes out at once. Every frame still arrives, in order."""

from __future__ import annotations

import asyncio

from hub import queries as Q
from hub import typedefs as T
from hub.stream import Broadcaster
from tests.hub.helpers import Origin, seed
from tests.hub.test_ingest import push
from tests.hub.test_stream_load import TOKEN, collect, setup_peer


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_push_after_a_quiet_spell_wakes_the_streams_at_once():
    bc = Broadcaster(None, "", 16, batch_seconds=3600)  # type: ignore[arg-type]
    waiter = asyncio.create_task(bc.wait_beyond(0, 30))
    await settle()
    assert not waiter.done()
    bc.advance(1)
    await asyncio.wait_for(waiter, 10)  # not an hour: nothing woke them in the last hour
    assert bc.wakes == 1


async def test_entries_logged_right_after_a_wake_up_go_out_together_once_the_batch_is_up():
    bc = Broadcaster(None, "", 16, batch_seconds=0.05)  # type: ignore[arg-type]
    bc.advance(1)
    assert bc.wakes == 1
    waiter = asyncio.create_task(bc.wait_beyond(1, 30))
    await settle()
    for seq in (2, 3, 4):
        bc.advance(seq)
    await settle()
    assert not waiter.done() and bc.wakes == 1 and bc.head == 4  # due, not yet woken
    await asyncio.wait_for(waiter, 10)
    assert bc.wakes == 2  # one wake-up for the three entries


async def test_without_batching_every_entry_wakes_the_streams():
    bc = Broadcaster(None, "", 16, batch_seconds=0)  # type: ignore[arg-type]
    for seq in (1, 2, 3):
        bc.advance(seq)
    assert bc.wakes == 3
    bc.advance(3)  # not past the head: nothing to wake for
    assert bc.wakes == 3


async def test_stopping_wakes_every_stream_and_drops_a_due_wake_up():
    bc = Broadcaster(None, "", 16, batch_seconds=3600)  # type: ignore[arg-type]
    bc.advance(1)
    waiter = asyncio.create_task(bc.wait_beyond(1, 30))
    await settle()
    bc.advance(2)  # due in an hour
    await settle()
    assert not waiter.done()
    await bc.stop()
    await asyncio.wait_for(waiter, 10)
    assert bc._late_wake is None


async def test_every_frame_arrives_in_order_under_batched_wake_ups(make_hub):
    origin = Origin(seed(11))
    client = await make_hub(T.HubOptions(verify_processes=0, stream_batch_ms=200))
    await setup_peer(client, origin)
    bc = client.server.app[T.broadcaster_key]
    await pushes_reach_every_subscriber(client, origin, subscribers=3, pushes=30)
    assert bc.wakes < 30  # thirty entries, fewer wake-ups


async def pushes_reach_every_subscriber(client, origin: Origin, *, subscribers: int,
                                        pushes: int) -> None:
    """Live subscribers get every pushed bundle, in order."""
    streams = [await client.ws_connect("/api/v2/stream", max_msg_size=0)
               for _ in range(subscribers)]
    for ws in streams:
        assert (await ws.receive()).type.name == "BINARY"  # the info frame
    readers = [asyncio.create_task(collect(ws, pushes)) for ws in streams]
    for _ in range(pushes):
        assert (await push(client, TOKEN, origin.many(1))).status == 201
    for frames in await asyncio.wait_for(asyncio.gather(*readers), 60):
        assert [f.seq for f in frames if f.op == "bundle"] == list(range(1, pushes + 1))
    for ws in streams:
        await ws.close()


async def test_streams_are_woken_once_the_new_entries_are_cached(make_hub):
    """One fill for all subscribers, before they are woken: none of them queues behind
    another's fill (a task step per subscriber and wake-up, for nothing)."""
    origin = Origin(seed(12))
    client = await make_hub(T.HubOptions(verify_processes=0, stream_batch_ms=0))
    await setup_peer(client, origin)
    bc = client.server.app[T.broadcaster_key]
    await pushes_reach_every_subscriber(client, origin, subscribers=20, pushes=5)
    assert bc.fill_waits == 0


async def test_subscribers_behind_the_cache_share_their_reads_of_the_log(make_hub,
                                                                        monkeypatch):
    """Subscribers replaying from the same cursor beyond the frame cache share one query
    per step: each reading the same entries and bundles on its own is how a hub that
    fell behind once overloaded its database for good (bench_mixed, two workers)."""
    origin = Origin(seed(13))
    client = await make_hub(T.HubOptions(verify_processes=0, stream_cache_entries=2))
    await setup_peer(client, origin)
    for _ in range(12):
        assert (await push(client, TOKEN, origin.many(1))).status == 201
    bc = client.server.app[T.broadcaster_key]
    gate, real = asyncio.Event(), Q.log_after

    async def gated(*args, **kwargs):  # every subscriber asks before any is answered
        if "upto" in kwargs:  # the reads behind the cache (not the cache's own fill)
            await gate.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(Q, "log_after", gated)
    subscribers = [await client.ws_connect("/api/v2/stream?since=0", max_msg_size=0)
                   for _ in range(10)]
    readers = [asyncio.create_task(collect(ws, 12)) for ws in subscribers]
    async with asyncio.timeout(30):  # all ten wait for the one (gated) query
        while bc.catchup_reads < 10:  # noqa: ASYNC110 - a counter, not an event
            await asyncio.sleep(0.01)
    gate.set()
    for got in await asyncio.wait_for(asyncio.gather(*readers), 60):
        assert [f.seq for f in got if f.op == "bundle"] == list(range(1, 13))
    assert bc.catchup_reads == 10 and bc.log_reads == 1  # ten answers, one query
    for ws in subscribers:
        await ws.close()
