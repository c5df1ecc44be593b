from __future__ import annotations

import asyncio

from aiohttp import web

from hub import queries as Q
from hub import typedefs as T
from hub.delivery import Delivery, backoff
from protocol.containers import from_cbor
from service.ids import token_hash
from tests.hub.helpers import Origin, cbor_headers, envelope, seed

FAST = T.HubOptions(backoff_base=0.05, backoff_max=0.2, circuit_failures=1000,
                    delivery_batch=25, delivery_timeout=2.0, rate_per_minute=100_000,
                    verify_processes=0)


class Inbox:
    """A subscriber's inbox on a real loopback server; can be switched off."""

    def __init__(self) -> None:
        self.digests: list[str] = []
        self.up = True
        self.tokens: set[str] = set()
        self.changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if not self.up:
            return web.Response(status=503)
        self.tokens.add(request.headers.get("Authorization", ""))
        b = from_cbor(await request.read())
        assert b.digest == request.headers["X-WB-Digest"]
        self.digests.append(b.digest)
        self.changed.set()
        return web.json_response({"status": "stored"}, status=201)

    async def wait_for(self, n: int, limit: float = 30) -> None:
        async def loop():
            while len(self.digests) < n:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), limit)


async def setup_hub(make_hub, aiohttp_server, options=FAST):
    client = await make_hub(options)
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("a" * 20))
    await Q.add_peer(pool, "sub", "node", token_hash("s" * 20))
    return client, pool


async def start_inbox(aiohttp_server) -> tuple[Inbox, str]:
    inbox = Inbox()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/inbox", inbox.handle)
    server = await aiohttp_server(app)
    return inbox, str(server.make_url("/inbox"))


async def test_offline_subscriber_catches_up_without_loss_or_duplicates(make_hub, aiohttp_server):
    client, pool = await setup_hub(make_hub, aiohttp_server)
    origins = [Origin(seed(40 + i)) for i in range(4)]
    for o in origins:
        await Q.trust_key(pool, o.origin, o.origin, o.public_key, "alpha")
    inbox, url = await start_inbox(aiohttp_server)
    await Q.add_subscription(pool, sub_id="S1", peer_name="sub", mode="push", inbox_url=url,
                             inbox_token="inbox-secret", origins=None, entities=None, cursor=0)
    inbox.up = False  # offline while 1,000 bundles arrive

    async def writer(o: Origin) -> list[str]:
        digests = []
        for _ in range(250):
            b = o.many(1)
            r = await client.post("/api/v2/bundles", data=envelope(b),
                                  headers=cbor_headers("a" * 20))
            assert r.status == 201
            digests.append(b.digest)
        return digests

    expected = [d for ds in await asyncio.gather(*[writer(o) for o in origins]) for d in ds]
    row = await pool.fetchrow("SELECT cursor, failures FROM hub_subscriptions")
    assert row["cursor"] < 1000 and row["failures"] >= 1
    inbox.up = True
    await pool.execute("UPDATE hub_subscriptions SET next_attempt_at = now()")
    client.server.app[T.delivery_key].wake()
    await inbox.wait_for(1000, limit=120)
    await asyncio.sleep(0)
    assert len(inbox.digests) == 1000
    assert len(set(inbox.digests)) == 1000  # zero duplicates
    assert set(inbox.digests) == set(expected)  # zero loss
    log_order = [r["digest"] for r in await pool.fetch("SELECT digest FROM hub_log ORDER BY seq")]
    assert inbox.digests == log_order  # delivered in hub order
    assert inbox.tokens == {"Bearer inbox-secret"}
    # The inbox has every bundle before the last batch's cursor update commits: wait for it.
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        row = await pool.fetchrow("SELECT cursor, failures, delivered FROM hub_subscriptions")
        if row["cursor"] == 1000 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.02)
    assert row["cursor"] == 1000 and row["failures"] == 0 and row["delivered"] == 1000


async def test_dead_subscriber_does_not_slow_others(make_hub, aiohttp_server):
    client, pool = await setup_hub(make_hub, aiohttp_server)
    o = Origin(seed(50))
    await Q.trust_key(pool, o.origin, o.origin, o.public_key, "alpha")
    inbox, url = await start_inbox(aiohttp_server)
    await Q.add_subscription(pool, sub_id="DEAD", peer_name="sub", mode="push",
                             inbox_url="http://127.0.0.1:9/nowhere", inbox_token=None,
                             origins=None, entities=None, cursor=0)
    await Q.add_subscription(pool, sub_id="LIVE", peer_name="sub", mode="push", inbox_url=url,
                             inbox_token=None, origins=None, entities=None, cursor=0)
    for _ in range(5):
        b = o.many(1)
        r = await client.post("/api/v2/bundles", data=envelope(b), headers=cbor_headers("a" * 20))
        assert r.status == 201
    await inbox.wait_for(5, limit=10)
    for _ in range(100):  # the dead inbox's first refusal is recorded concurrently
        if await pool.fetchval("SELECT failures FROM hub_subscriptions WHERE id = 'DEAD'"):
            break
        await asyncio.sleep(0.02)
    dead = await pool.fetchrow("SELECT cursor, failures, last_error FROM hub_subscriptions "
                               "WHERE id = 'DEAD'")
    assert dead["cursor"] == 0 and dead["failures"] >= 1 and dead["last_error"]


async def test_never_echo_to_sender_and_filters(make_hub, aiohttp_server):
    client, pool = await setup_hub(make_hub, aiohttp_server)
    a, b = Origin(seed(60)), Origin(seed(61))
    for o in (a, b):
        await Q.trust_key(pool, o.origin, o.origin, o.public_key, "alpha")
        await Q.trust_key(pool, o.origin, o.origin, o.public_key, "sub")
    inbox, url = await start_inbox(aiohttp_server)
    await Q.add_subscription(pool, sub_id="S", peer_name="sub", mode="push", inbox_url=url,
                             inbox_token=None, origins=[a.origin], entities=None, cursor=0)
    from_sub = a.many(1)  # pushed by the subscriber itself: never echoed back
    await client.post("/api/v2/bundles", data=envelope(from_sub), headers=cbor_headers("s" * 20))
    other_origin = b.many(1)  # filtered out
    await client.post("/api/v2/bundles", data=envelope(other_origin),
                      headers=cbor_headers("a" * 20))
    wanted = a.many(1)
    await client.post("/api/v2/bundles", data=envelope(wanted), headers=cbor_headers("a" * 20))
    await inbox.wait_for(1)
    for _ in range(50):
        if (await pool.fetchval("SELECT cursor FROM hub_subscriptions")) == 3:
            break
        await asyncio.sleep(0.05)
    assert inbox.digests == [wanted.digest]
    assert await pool.fetchval("SELECT cursor FROM hub_subscriptions") == 3


async def test_hub_to_hub_keeps_signatures_and_stops_loops(make_hub, aiohttp_server, hub_db_url,
                                                           pg, tmp_path):
    """Hub A pushes to hub B's ingest; B pushes back to A: the bundle is stored once in
    each hub (dedupe by digest), never echoed to its sender."""
    from tests.hub.conftest import make_hub_config

    b_url = await pg.new_database(await pg.template("hub", __import__("hub.app").app.MIGRATIONS))
    hub_a, pool_a = await setup_hub(make_hub, aiohttp_server)
    hub_b = await make_hub(FAST, config=make_hub_config(b_url, tmp_path / "b"))
    pool_b = hub_b.server.app[T.pool_key]
    o = Origin(seed(70))
    # A trusts the origin and knows B as a hub peer; B the same for A
    await Q.trust_key(pool_a, o.origin, o.origin, o.public_key, "alpha")
    await Q.add_peer(pool_a, "hub-b", "hub", token_hash("b" * 20))
    await Q.add_peer(pool_b, "hub-a", "hub", token_hash("c" * 20))
    await Q.trust_key(pool_b, o.origin, o.origin, o.public_key, "hub-a")
    await Q.add_subscription(pool_a, sub_id="AtoB", peer_name="hub-b", mode="push",
                             inbox_url=str(hub_b.make_url("/api/v2/bundles")),
                             inbox_token="c" * 20, origins=None, entities=None, cursor=0)
    await Q.add_subscription(pool_b, sub_id="BtoA", peer_name="hub-a", mode="push",
                             inbox_url=str(hub_a.make_url("/api/v2/bundles")),
                             inbox_token="b" * 20, origins=None, entities=None, cursor=0)
    bundle = o.many(3)
    r = await hub_a.post("/api/v2/bundles", data=envelope(bundle), headers=cbor_headers("a" * 20))
    assert r.status == 201
    for _ in range(200):
        if await pool_b.fetchval("SELECT count(*) FROM hub_log") == 1:
            break
        await asyncio.sleep(0.05)
    row = await pool_b.fetchrow("SELECT digest, received_from, hops FROM hub_log")
    assert row["digest"] == bundle.digest and row["received_from"] == "hub-a"
    assert row["hops"] == 1
    stored = from_cbor(bytes(await pool_b.fetchval("SELECT container FROM hub_bundles")))
    assert stored.sig == bundle.sig and stored.manifest == bundle.manifest
    for _ in range(100):
        if await pool_b.fetchval("SELECT cursor FROM hub_subscriptions") == 1:
            break
        await asyncio.sleep(0.05)
    assert await pool_b.fetchval("SELECT cursor FROM hub_subscriptions") == 1
    assert await pool_a.fetchval("SELECT count(*) FROM hub_log") == 1
    assert await pool_a.fetchval("SELECT pushes FROM hub_peers WHERE name = 'hub-b'") == 0
    await pg.drop(b_url)


def test_backoff_grows_with_jitter_and_caps():
    o = T.HubOptions(backoff_base=1.0, backoff_max=60.0, circuit_failures=5, circuit_pause=300)
    assert 0.5 <= backoff(1, o) <= 1.0
    assert 4.0 <= backoff(4, o) <= 8.0
    assert 240 <= backoff(5, o) <= 360  # circuit open
    delays = {backoff(2, o) for _ in range(20)}
    assert len(delays) > 1


async def test_hub_follows_upstream_stream_from_its_cursor(make_hub, pg, tmp_path):
    """Hub B follows hub A's public stream: bundles already in A and new ones arrive in
    B with their signatures, recorded as received from A, the cursor kept in B."""
    from hub.app import MIGRATIONS
    from tests.hub.conftest import make_hub_config

    hub_a, pool_a = await setup_hub(make_hub, None)
    o = Origin(seed(80))
    await Q.trust_key(pool_a, o.origin, o.origin, o.public_key, "alpha")
    first = o.many(2)
    r = await hub_a.post("/api/v2/bundles", data=envelope(first), headers=cbor_headers("a" * 20))
    assert r.status == 201

    b_url = await pg.new_database(await pg.template("hub", MIGRATIONS))
    import asyncpg

    conn = await asyncpg.connect(b_url)
    try:
        await Q.add_peer(conn, "hub-a", "hub", token_hash("q" * 20))
        await Q.trust_key(conn, o.origin, o.origin, o.public_key, None)
        await Q.add_upstream(conn, "hub-a", str(hub_a.make_url("")).rstrip("/"), 0)
    finally:
        await conn.close()
    hub_b = await make_hub(FAST, config=make_hub_config(b_url, tmp_path / "b"))
    pool_b = hub_b.server.app[T.pool_key]
    ws = await hub_b.ws_connect("/api/v2/stream?since=0")
    from protocol.containers import decode_frame

    assert decode_frame((await asyncio.wait_for(ws.receive(), 10)).data).op == "info"
    got = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
    assert got.digest == first.digest
    second = o.many(1)
    r = await hub_a.post("/api/v2/bundles", data=envelope(second), headers=cbor_headers("a" * 20))
    assert r.status == 201
    got = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
    assert got.digest == second.digest and got.bundle.sig == second.sig
    await ws.close()
    rows = await pool_b.fetch("SELECT received_from FROM hub_log ORDER BY seq")
    assert [r["received_from"] for r in rows] == ["hub-a", "hub-a"]
    for _ in range(100):  # the cursor is saved right after the bundle commits
        if await pool_b.fetchval("SELECT cursor FROM hub_upstreams") == 2:
            break
        await asyncio.sleep(0.02)
    assert await pool_b.fetchval("SELECT cursor FROM hub_upstreams") == 2
    await hub_b.close()
    await pg.drop(b_url)


async def test_no_claim_per_push_without_subscriptions_yet_a_new_one_is_served_at_once(
        make_hub, aiohttp_server, monkeypatch):
    """With no push subscription at the last tick, pushes do not each ask the database for
    due subscriptions; one created through the API is served at the next push, not at the
    next tick (here an hour away)."""
    monkeypatch.setattr(Delivery, "TICK", 3600.0)
    claims = []
    real_claim = Q.claim_subscriptions

    async def counting_claim(*args, **kwargs):
        claims.append(1)
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(Q, "claim_subscriptions", counting_claim)
    client, pool = await setup_hub(make_hub, aiohttp_server)
    o = Origin(seed(70))
    await Q.trust_key(pool, o.origin, o.origin, o.public_key, "alpha")
    delivery = client.server.app[T.delivery_key]
    await delivery.look()  # the tick's look: nothing to deliver to
    for _ in range(5):
        r = await client.post("/api/v2/bundles", data=envelope(o.many(1)),
                              headers=cbor_headers("a" * 20))
        assert r.status == 201
    await asyncio.sleep(0)
    assert claims == []

    inbox, url = await start_inbox(aiohttp_server)
    r = await client.post("/api/v2/subscriptions", json={"mode": "push", "inbox_url": url},
                          headers={"Authorization": "Bearer " + "s" * 20})
    assert r.status == 201
    b = o.many(1)
    r = await client.post("/api/v2/bundles", data=envelope(b), headers=cbor_headers("a" * 20))
    assert r.status == 201
    await inbox.wait_for(6)  # the five before it too: the subscription's cursor was 0
    assert b.digest in inbox.digests and claims


async def test_a_steady_stream_of_pushes_still_looks_once_a_tick(
        make_hub, aiohttp_server, monkeypatch):
    """Pushes that wake the worker more often than once a tick never let a quiet tick
    pass: the look for subscriptions goes by the clock, so a hub without any still skips
    the claim query, and one added by another process (straight into the database) is
    served once a tick has passed on the clock."""
    monkeypatch.setattr(Delivery, "TICK", 3600.0)
    claims, looks = [], asyncio.Queue()
    real_claim, real_look = Q.claim_subscriptions, Delivery.look

    async def counting_claim(*args, **kwargs):
        claims.append(1)
        return await real_claim(*args, **kwargs)

    async def counting_look(self):
        await real_look(self)
        looks.put_nowait(self._idle)

    monkeypatch.setattr(Q, "claim_subscriptions", counting_claim)
    monkeypatch.setattr(Delivery, "look", counting_look)
    client, pool = await setup_hub(make_hub, aiohttp_server)
    delivery = client.server.app[T.delivery_key]
    now = [1000.0]
    delivery._clock = lambda: now[0]
    o = Origin(seed(71))
    await Q.trust_key(pool, o.origin, o.origin, o.public_key, "alpha")
    for _ in range(5):
        r = await client.post("/api/v2/bundles", data=envelope(o.many(1)),
                              headers=cbor_headers("a" * 20))
        assert r.status == 201
    # the first wake looked (none before it) and found nothing; the tick is an hour
    assert await asyncio.wait_for(looks.get(), 10) is True
    assert claims == [] and looks.empty()

    inbox, url = await start_inbox(aiohttp_server)
    await Q.add_subscription(pool, sub_id="S9", peer_name="sub", mode="push", inbox_url=url,
                             inbox_token="t", origins=None, entities=None, cursor=0)
    now[0] += 3600.0
    b = o.many(1)
    r = await client.post("/api/v2/bundles", data=envelope(b), headers=cbor_headers("a" * 20))
    assert r.status == 201
    assert await asyncio.wait_for(looks.get(), 10) is False
    await inbox.wait_for(6)
    assert b.digest in inbox.digests and claims
