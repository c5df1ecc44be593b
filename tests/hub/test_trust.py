from __future__ import annotations

from hub import queries as Q
from protocol.rotation import make_key_record
from protocol.signature import key_id, public_key_from_seed
from tests.hub.helpers import TS, seed
from tests.hub.test_ingest import push


async def test_key_rotation_record_makes_successor_trusted(hub_client, hub_pool, peer, origin):
    new_seed = seed(300)
    new_pub = public_key_from_seed(new_seed)
    announce = make_key_record(origin=origin.origin, instance=origin.instance,
                               new_public_key=new_pub, previous_key_id=origin.origin,
                               revision=1, updated_at=TS)
    assert (await push(hub_client, peer, origin.bundle([announce]))).status == 201
    assert await Q.is_trusted(hub_pool, origin.origin, key_id(new_pub))
    # the next bundle, signed by the new key for the same origin, is stored directly
    r = await push(hub_client, peer, origin.bundle([origin.request()], signer=new_seed))
    assert r.status == 201, await r.text()


async def test_subscription_api_is_per_peer(hub_client, hub_pool, peer):
    h = {"Authorization": f"Bearer {peer}"}
    r = await hub_client.post("/api/v2/subscriptions", json={"mode": "push"}, headers=h)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_subscription"
    r = await hub_client.post("/api/v2/subscriptions", headers=h, json={
        "mode": "push", "inbox_url": "https://node.example/inbox", "entities": ["request"]})
    assert r.status == 201
    sub = await r.json()
    listing = await (await hub_client.get("/api/v2/subscriptions", headers=h)).json()
    assert [s["id"] for s in listing["subscriptions"]] == [sub["id"]]
    assert listing["subscriptions"][0]["entities"] == ["request"]
    r = await hub_client.get("/api/v2/subscriptions")
    assert r.status == 401
    r = await hub_client.delete(f"/api/v2/subscriptions/{sub['id']}", headers=h)
    assert r.status == 200
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_subscriptions") == 0


async def test_stream_filters_by_origin(hub_client, hub_pool, peer, origin):
    import asyncio

    from protocol.containers import decode_frame
    from tests.hub.helpers import Origin

    other = Origin(seed(301))
    await Q.trust_key(hub_pool, other.origin, other.origin, other.public_key, "alpha")
    await push(hub_client, peer, other.many(1))
    await push(hub_client, peer, origin.many(1))
    ws = await hub_client.ws_connect(f"/api/v2/stream?since=0&origin={origin.origin}")
    frames = [decode_frame((await asyncio.wait_for(ws.receive(), 10)).data) for _ in range(2)]
    assert frames[0].op == "info"
    assert frames[1].seq == 2 and frames[1].origin == origin.origin
    await push(hub_client, peer, other.many(1))
    await push(hub_client, peer, origin.many(1))
    f = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
    assert f.seq == 4 and f.origin == origin.origin
    await ws.close()
