"""The node's stream client asks for the hub's signed checkpoints (``checkpoints=1``) and
checks each one: kept when consistent, a fork or a bad note becomes an incident."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json

import aiohttp
import pytest
from aiohttp import web

from hub import tlog as HT
from node import typedefs as NT
from node.sync import audit as A
from node.sync import peers as P
from node.sync import transport as TR
from node.sync.scheduling import _stream_once, runtime
from protocol import tlog as L
from protocol.containers import Frame, encode_frame
from tests.node.sync import test_hub_audit as THA

hubbed = THA.hubbed  # the fixture: two nodes on one real hub
_chain = THA._chain


async def _follow(napp, name: str = "hub") -> None:
    rt = runtime(napp)
    rt.ws_client = aiohttp.ClientSession()
    try:
        await _stream_once(napp, name, {"frames": 0})
    finally:
        await rt.ws_client.close()


async def test_streamed_checkpoints_from_a_real_hub_are_checked_and_kept(
        hubbed, node_client):
    """Against the real hub: the stream's checkpoint covering what it sent is kept (one
    consistency check later, it moves forward); no incident."""
    a, b, hub, pool, _ = hubbed
    napp = node_client.server.app
    npool = napp[NT.pool_key]
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "hub")
    await P.add_peer(npool, "hub", "hub", str(hub.make_url("")).rstrip("/"))
    key = hub.server.app[HT.signer_key].verifier
    seen: list[int] = []
    real = A.check_streamed
    checked = asyncio.Condition()

    async def spy(pool, config, peer, session, note):
        report = await real(pool, config, peer, session, note)
        async with checked:
            seen.append(L.verify_checkpoint(note, key)[0].size)
            checked.notify_all()
        return report

    async def shown(size: int) -> None:
        async with checked:
            await checked.wait_for(lambda: size in seen)

    mp = pytest.MonkeyPatch()
    mp.setattr(A, "check_streamed", spy)
    follow = asyncio.create_task(_follow(napp))
    try:
        await asyncio.wait_for(shown(3), 20)
        await _chain(a, 1, first=4)
        await TR.push(a.pool, a.config, "hub")  # live: its checkpoint follows by itself
        await asyncio.wait_for(shown(4), 20)
    finally:
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        mp.undo()
    # (a size-0 checkpoint may come first, signed when the hub started)
    assert seen[-2:] == [3, 4] and seen == sorted(seen)
    assert await npool.fetchval("SELECT size FROM sync_hub_logs") == 4
    assert await A.incidents(npool) == []


async def test_a_streamed_fork_or_a_bad_note_is_an_incident(
        hubbed, node_client, aiohttp_client):
    """A hub whose stream shows this node another tree than its /tlog URLs (signed with
    its own key), then a note it did not sign."""
    a, b, hub, pool, _ = hubbed
    napp = node_client.server.app
    npool = napp[NT.pool_key]
    await _chain(a, 2)
    await TR.push(a.pool, a.config, "hub")
    signer = hub.server.app[HT.signer_key]
    honest = await (await hub.get("/tlog/checkpoint")).read()
    forked = signer.sign(2, b"\x42" * 32)  # same size, another root: a fork
    name, sig = honest.split(b"\n")[-2].rsplit(b" ", 1)
    raw = base64.b64decode(sig)
    unsigned = honest.replace(sig, base64.b64encode(raw[:4] + bytes(64)))  # key hash kept

    async def stream(request: web.Request) -> web.WebSocketResponse:
        assert request.query["checkpoints"] == "1"
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(encode_frame(Frame(op="info", seq=2)))
        for note in (honest, forked, unsigned):
            await ws.send_bytes(encode_frame(Frame(op="info", seq=2, code="checkpoint",
                                                   message=note.decode())))
        await ws.close()
        return ws

    front = await THA.stream_front(aiohttp_client, hub, stream)
    await P.add_peer(npool, "hub", "hub", str(front.make_url("")).rstrip("/"),
                     api="v2")
    await npool.execute("UPDATE sync_peers SET cursor = 2")
    await _follow(napp)
    kinds = [(r["kind"], json.loads(r["evidence"])) for r in await A.incidents(npool)]
    assert sorted(k for k, _ in kinds) == ["bad_checkpoint", "fork"]
    fork = next(ev for k, ev in kinds if k == "fork")
    assert fork["checkpoint_a"].encode() == honest and fork["checkpoint_b"].encode() == forked
    # the node kept the honest view
    assert bytes(await npool.fetchval("SELECT note FROM sync_hub_logs")) == honest
