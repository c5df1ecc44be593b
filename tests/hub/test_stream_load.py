"""The live stream under load (#26): the hub's own delays never cut off a prompt subscriber,
and the frame cache does not wait for the connection pool that ingest and readers share."""

from __future__ import annotations

import asyncio

import aiohttp

from hub import queries as Q
from hub import typedefs as T
from protocol.containers import (
    Frame,
    decode_frame,
    encode_bundle_frame,
    encode_frame,
    from_cbor,
    to_cbor,
)
from service.ids import token_hash
from tests.hub.helpers import Origin, seed
from tests.hub.test_ingest import push

TOKEN = "s" * 24


async def setup_peer(client, origin: Origin) -> None:
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash(TOKEN))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")


async def collect(ws, want: int, deadline: float = 30.0) -> list[Frame]:
    """Frames after the info frame until ``want`` bundle frames or an error frame."""
    frames: list[Frame] = []
    async with asyncio.timeout(deadline):
        while sum(f.op == "bundle" for f in frames) < want:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            frames.append(decode_frame(msg.data))
            if frames[-1].op == "error":
                break
    return frames


async def test_prompt_subscriber_is_not_cut_off_for_the_hubs_own_lag(make_hub):
    """The original cut off at multiples of 100: after a batch of 100 frames the head had
    moved more than ``stream_max_lag`` past the cursor while the subscriber had read every
    frame it was sent. Here the hub's fill is held up while 105 bundles land."""
    origin = Origin(seed(7))
    client = await make_hub(T.HubOptions(stream_max_lag=3, verify_processes=0))
    await setup_peer(client, origin)
    bc = client.server.app[T.broadcaster_key]
    ws = await client.ws_connect("/api/v2/stream", max_msg_size=0)
    info = decode_frame((await ws.receive()).data)
    assert info.op == "info" and info.seq == 0
    reader = asyncio.create_task(collect(ws, 105))
    async with bc._fill_lock:  # the hub is busy: nothing new is fetched meanwhile
        for _ in range(105):
            assert (await push(client, TOKEN, origin.many(1))).status == 201
        assert bc.head == 105
    frames = await reader
    assert [f.op for f in frames if f.op != "bundle"] == []
    assert [f.seq for f in frames] == list(range(1, 106))
    await ws.close()


async def test_frames_flow_while_every_pool_connection_is_busy(make_hub, hub_config):
    """Two hub processes on one database; every connection of A's shared pool is held
    (as by ingest transactions). A bundle pushed to B still reaches A's subscriber."""
    origin = Origin(seed(8))
    a = await make_hub()
    b = await make_hub(config=hub_config)
    await setup_peer(b, origin)
    ws = await a.ws_connect("/api/v2/stream", max_msg_size=0)
    assert decode_frame((await ws.receive()).data).op == "info"
    pool = a.server.app[T.pool_key]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        pushed = [origin.many(1) for _ in range(3)]
        for bundle in pushed:
            assert (await push(b, TOKEN, bundle)).status == 201
        frames = await collect(ws, 3)
        assert [(f.op, f.seq, f.digest) for f in frames] == [
            ("bundle", i + 1, bundle.digest) for i, bundle in enumerate(pushed)]
        assert frames[0].bundle is not None and frames[0].bundle.digest == pushed[0].digest
        # the records API does not queue behind them either
        r = await a.get("/api/v2/records")
        assert r.status == 200 and len((await r.json())["records"]) == 3
    finally:
        for conn in held:
            await pool.release(conn)
        await ws.close()


async def test_frames_flow_after_the_fill_connection_is_terminated(make_hub):
    origin = Origin(seed(11))
    client = await make_hub(T.HubOptions(verify_processes=0))
    await setup_peer(client, origin)
    bc = client.server.app[T.broadcaster_key]
    pool = client.server.app[T.pool_key]
    ws = await client.ws_connect("/api/v2/stream", max_msg_size=0)
    assert decode_frame((await ws.receive()).data).op == "info"
    assert (await push(client, TOKEN, origin.many(1))).status == 201
    assert [f.seq for f in await collect(ws, 1)] == [1]
    assert await pool.fetchval("SELECT pg_terminate_backend($1)",
                               bc._fetch_conn.get_server_pid())
    for _ in range(2):
        assert (await push(client, TOKEN, origin.many(1))).status == 201
    assert [(f.op, f.seq) for f in await collect(ws, 2)] == [("bundle", 2), ("bundle", 3)]
    await ws.close()


def test_spliced_frame_equals_the_encoded_frame():
    origin = Origin(seed(10))
    for n, seq in ((1, 0), (3, 23), (5, 24), (2, 70_000), (1, 2**40)):
        bundle = origin.many(n)
        env = to_cbor(bundle)
        assert encode_bundle_frame(seq, bundle.digest, origin.origin, env) == encode_frame(
            Frame(op="bundle", seq=seq, digest=bundle.digest, origin=origin.origin,
                  bundle=from_cbor(env)))


async def test_stream_refuses_per_subscriber_compression(make_hub):
    """A subscriber offering permessage-deflate gets the shared frame as it is: deflating
    it for one subscriber costs the hub ~5 ms of CPU per frame (a cheap way to spend the
    hub's CPU from outside)."""
    client = await make_hub(T.HubOptions(verify_processes=0))
    ws = await client.ws_connect("/api/v2/stream", compress=15, max_msg_size=0)
    assert decode_frame((await ws.receive()).data).op == "info"
    assert ws.compress == 0
    assert "Sec-WebSocket-Extensions" not in ws._response.headers
    await ws.close()
