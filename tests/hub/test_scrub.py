"""A record made private or deleted leaves no earlier copy in the hub's log."""

from __future__ import annotations

import asyncio

import pytest

from hub import typedefs as T
from protocol.containers import decode_frame, from_cbor
from protocol.verify import verify_bundle
from tests.hub.test_ingest import push

# both ways of storing the index rows (``tests/hub/conftest.py``)
pytestmark = pytest.mark.usefixtures("both_stagings")


async def test_tombstone_scrubs_earlier_copies_from_the_log(hub_client, hub_pool, peer, origin):
    secret = "Ride to the clinic at 12 Elm Street"
    first = origin.bundle([origin.request("X1", title=secret, body=secret),
                           origin.request("X2", title="stays", body="stays public")])
    assert (await push(hub_client, peer, first)).status == 201
    again = origin.bundle([origin.request("X1", revision=2, title=secret, body=secret)])
    assert (await push(hub_client, peer, again)).status == 201
    assert (await push(hub_client, peer,
                       origin.bundle([origin.tombstone("request", "X1", 3)]))).status == 201

    # Nothing the hub stores or serves still holds the record's text ...
    stored = await hub_pool.fetch("SELECT container FROM hub_bundles")
    assert all(secret.encode() not in bytes(r["container"]) for r in stored)
    r = await hub_client.get("/api/v2/bundles?since=0&limit=10",
                             headers={"Accept": "application/cbor"})
    assert r.status == 200
    assert secret.encode() not in await r.read()

    # ... every scrubbed bundle still verifies, with the record listed as withheld,
    # and the other record of the first bundle is untouched.
    bundles = [from_cbor(bytes(r["container"])) for r in stored]
    verified = {b.digest: verify_bundle(b) for b in bundles}
    assert verified[first.digest].withheld == ["requests/X1.sync.txt"]
    assert [p for p, _ in verified[first.digest].records] == ["requests/X2.sync.txt"]
    assert verified[again.digest].withheld == ["requests/X1.sync.txt"]

    # A stream replaying from the start sees the scrubbed bundles too.
    frames = []
    async with hub_client.ws_connect("/api/v2/stream?since=0") as ws:
        while len([f for f in frames if f.op == "bundle"]) < 3:
            msg = await asyncio.wait_for(ws.receive(), 10)
            frames.append(decode_frame(msg.data))
    bundle_frames = [f for f in frames if f.op == "bundle"]
    assert [f.digest for f in bundle_frames][:2] == [first.digest, again.digest]
    for f in bundle_frames:
        assert all(secret.encode() not in data for data in f.bundle.files.values())


async def test_cached_stream_frames_are_dropped_when_scrubbed(hub_client, hub_pool, peer,
                                                               origin):
    secret = "private after all"
    async with hub_client.ws_connect("/api/v2/stream?since=0") as ws:
        first = origin.bundle([origin.request("X9", title=secret, body=secret)])
        assert (await push(hub_client, peer, first)).status == 201
        while True:  # the live frame is now in the broadcaster's cache
            frame = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
            if frame.op == "bundle":
                break
        await push(hub_client, peer, origin.bundle([origin.tombstone("request", "X9", 2)]))
    bc = hub_client.server.app[T.broadcaster_key]
    for _ in range(100):  # the NOTIFY round trip is asynchronous; bounded wait
        if all(e.digest != first.digest for e in bc._cache.values()):
            break
        await asyncio.sleep(0.05)
    async with hub_client.ws_connect("/api/v2/stream?since=0") as ws:
        frame = None
        while frame is None or frame.op != "bundle":
            frame = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
    assert frame.digest == first.digest
    assert "requests/X9.sync.txt" not in frame.bundle.files
