from __future__ import annotations

import asyncio
import base64

import aiohttp

from hub import typedefs as T
from protocol.containers import decode_frame, from_cbor
from tests.hub.conftest import make_hub_config
from tests.hub.helpers import Origin, cbor_headers, envelope, seed
from tests.hub.test_ingest import push


async def read_all(client, since=0, limit=7, **params):
    """Page the log to the end; return the digests in order."""
    out = []
    while True:
        q = "&".join(f"{k}={v}" for k, v in params.items())
        r = await client.get(f"/api/v2/bundles?since={since}&limit={limit}&{q}")
        body = await r.json()
        assert r.status == 200, body
        out.extend(body["entries"])
        if body["next"] == since:
            return out
        since = body["next"]


async def test_cursor_paging_under_concurrent_ingest_never_skips(hub_client, hub_pool, peer):
    origins = [Origin(seed(10 + i)) for i in range(4)]
    from hub import queries as Q

    for o in origins:
        await Q.trust_key(hub_pool, o.origin, o.origin, o.public_key, "alpha")
    seen: list[int] = []
    done = asyncio.Event()

    async def reader():
        since = 0
        while True:
            finished = done.is_set()
            r = await hub_client.get(f"/api/v2/bundles?since={since}&limit=3")
            body = await r.json()
            for e in body["entries"]:
                seen.append(e["seq"])
            since = body["next"]
            if finished and not body["entries"]:
                return
            await asyncio.sleep(0)

    async def writer(o: Origin):
        for _ in range(8):
            r = await push(hub_client, peer, o.many(20))
            assert r.status == 201

    task = asyncio.create_task(reader())
    await asyncio.gather(*[writer(o) for o in origins])
    done.set()
    await task
    assert seen == list(range(1, 33))  # every entry once, in order, none skipped
    assert await hub_pool.fetchval("SELECT max(seq) FROM hub_log") == 32


async def test_cursor_errors(hub_client, hub_pool, peer, origin):
    await push(hub_client, peer, origin.many(1))
    r = await hub_client.get("/api/v2/bundles?since=5")
    assert r.status == 400 and (await r.json())["error"]["code"] == "future_cursor"
    await hub_pool.execute("UPDATE hub_state SET pruned_through = 1")
    r = await hub_client.get("/api/v2/bundles?since=0")
    assert r.status == 410 and (await r.json())["error"]["code"] == "outdated_cursor"
    r = await hub_client.get("/api/v2/bundles?since=-1")
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_cursor"


async def test_listing_filters_and_cbor(hub_client, hub_pool, peer, origin):
    from hub import queries as Q

    other = Origin(seed(3))
    await Q.trust_key(hub_pool, other.origin, other.origin, other.public_key, "alpha")
    await push(hub_client, peer, origin.many(1))
    await push(hub_client, peer, other.many(1))
    await push(hub_client, peer, origin.many(1))
    mine = await read_all(hub_client, limit=1, origin=origin.origin)
    assert [e["seq"] for e in mine] == [1, 3]
    b = from_cbor(base64.b64decode(mine[0]["bundle"]))
    assert b.digest == mine[0]["digest"]
    r = await hub_client.get("/api/v2/bundles?since=1", headers={"Accept": "application/cbor"})
    import cbor2

    value = cbor2.loads(await r.read())
    assert value["head"] == 3 and [e["seq"] for e in value["entries"]] == [2, 3]
    assert from_cbor(value["entries"][0]["bundle"]).digest == value["entries"][0]["digest"]


async def next_frame(ws):
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.BINARY, msg
    return decode_frame(msg.data)


async def test_stream_replay_then_live_without_gap_or_duplicate(hub_client, peer, origin):
    for _ in range(3):
        await push(hub_client, peer, origin.many(2))
    ws = await hub_client.ws_connect("/api/v2/stream?since=1")
    info = await next_frame(ws)
    assert info.op == "info" and info.seq == 1
    got = [(await next_frame(ws)).seq for _ in range(2)]
    assert got == [2, 3]

    # pushes racing with the seam
    async def more():
        for _ in range(4):
            await push(hub_client, peer, origin.many(1))

    task = asyncio.create_task(more())
    frames = [await next_frame(ws) for _ in range(4)]
    await task
    assert [f.seq for f in frames] == [4, 5, 6, 7]
    assert all(f.op == "bundle" and f.bundle is not None for f in frames)
    assert frames[0].bundle.digest == frames[0].digest
    await ws.close()


async def test_stream_cursor_errors_are_frames(hub_client, peer, origin):
    ws = await hub_client.ws_connect("/api/v2/stream?since=9")
    f = await next_frame(ws)
    assert f.op == "error" and f.code == "future_cursor"
    msg = await ws.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_slow_consumer_gets_error_frame_and_is_dropped(make_hub, origin):
    from hub import queries as Q
    from service.ids import token_hash

    client = await make_hub(T.HubOptions(stream_send_timeout=0.2, stream_max_lag=3,
                                           verify_processes=0))
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("z" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    ws = await client.ws_connect("/api/v2/stream?since=0", max_msg_size=0)
    assert (await next_frame(ws)).op == "info"
    # big bundles and a consumer that does not read: the socket fills up
    big = "x" * 60_000
    for _ in range(120):
        assert (await push(client, "z" * 20, origin.bundle(
            [origin.request(body=big) for _ in range(4)]))).status == 201
    last = None
    while True:
        msg = await asyncio.wait_for(ws.receive(), 20)
        if msg.type != aiohttp.WSMsgType.BINARY:
            break
        last = decode_frame(msg.data)
        if last.op == "error":
            break
    assert last is not None and last.op == "error" and last.code == "consumer_too_slow"
    assert 0 <= last.seq < 120
    assert client.server.app[T.broadcaster_key].subscribers == 0 or not ws.closed


async def test_two_hub_processes_share_one_database(make_hub, hub_config, hub_db_url, tmp_path,
                                                    origin):
    """A bundle ingested through hub A reaches a stream subscriber of hub B (NOTIFY)."""
    from hub import queries as Q
    from service.ids import token_hash

    a = await make_hub()
    b = await make_hub(config=make_hub_config(hub_db_url, tmp_path / "hub-b"))
    pool = a.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("w" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    ws = await b.ws_connect("/api/v2/stream")
    assert (await next_frame(ws)).op == "info"
    bundle = origin.many(2)
    r = await a.post("/api/v2/bundles", data=envelope(bundle), headers=cbor_headers("w" * 20))
    assert r.status == 201
    # well under the 5 s head poll: only NOTIFY can wake hub B this fast
    f = decode_frame((await asyncio.wait_for(ws.receive(), 3)).data)
    assert f.op == "bundle" and f.digest == bundle.digest and f.seq == 1
    await ws.close()


async def test_a_stopping_hub_closes_its_live_streams(hub_client):
    """A stream's handler returns only when the stream is closed: the hub closes its live
    streams ("going away") as it stops, where it waited aiohttp's shutdown timeout (60 s)
    for subscribers that never close (a `wb hub serve` with nodes on its stream took that
    long to exit on SIGTERM)."""
    ws = await hub_client.ws_connect("/api/v2/stream")
    assert (await next_frame(ws)).op == "info"
    async with asyncio.timeout(10):
        stopping = asyncio.create_task(hub_client.server.close())
        msg = await ws.receive()  # the subscriber reads on, as a node does
        await stopping
    assert msg.type == aiohttp.WSMsgType.CLOSE, msg
    assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
