"""One limits object: a bundle between the old 8 MiB app limit and 32 MiB reaches a push
subscriber, and a subscriber that refuses a bundle as too large (413) keeps the
subscription failing visibly instead of skipping the bundle for good.

Real parts: a hub and a node, each a real app on a loopback server with its own
PostgreSQL database; the hub pushes to the node's real ``/sync/inbox``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub import queries as Q
from hub import typedefs as T
from node import typedefs as NT
from node.app import create_app as create_node
from node.sync import peers as P
from node.sync.transport import pull
from protocol.containers import CBOR_MEDIA_TYPE
from protocol.limits import MiB
from service.cli import root
from service.ids import token_hash
from tests.conftest import make_node_config
from tests.hub.helpers import Origin, cbor_headers, envelope, seed, until

PUSHER = "p" * 24
INBOX = "inbox-token-0123456789"
SLOW = T.HubOptions(backoff_base=0.05, backoff_max=0.2, circuit_failures=1000,
                    delivery_timeout=120.0, rate_per_minute=100_000)


def nine_mib(o: Origin):
    """A 9 MiB bundle: 40 records of 240,000 bytes (each under the 256 KiB record limit)."""
    b = o.bundle([o.request(f"BIG{i:02d}", title=f"Big {i}", body="x" * 240_000)
                  for i in range(40)])
    assert 9 * MiB < b.total_bytes < 10 * MiB
    return b


async def start(make_hub, aiohttp_client, node_db_url: str, tmp_path: Path,
                node_limit: int | None = None):
    hub = await make_hub(SLOW)
    pool = hub.server.app[T.pool_key]
    o = Origin(seed(915))
    await Q.add_peer(pool, "alpha", "node", token_hash(PUSHER))
    await Q.add_peer(pool, "sub", "node", token_hash("s" * 24))
    await Q.trust_key(pool, o.origin, o.origin, o.public_key, "alpha")
    extra = {"WB_MAX_BUNDLE_BYTES": str(node_limit)} if node_limit else {}
    config = make_node_config(node_db_url, tmp_path / "node", **extra)
    node = await aiohttp_client(create_node(config))
    node_pool = node.server.app[NT.pool_key]
    await P.add_peer(node_pool, "hub", "hub", str(hub.make_url("")).rstrip("/"),
                     inbox_token=INBOX, pins=[o.origin])
    await Q.add_subscription(pool, sub_id="SUB", peer_name="sub", mode="push",
                             inbox_url=str(node.make_url("/sync/inbox")), inbox_token=INBOX,
                             origins=None, entities=None, cursor=0)
    return hub, pool, node, node_pool, o, config


async def test_nine_mib_bundle_reaches_a_push_subscriber(make_hub, aiohttp_client,
                                                          node_db_url, tmp_path):
    hub, pool, node, node_pool, o, _ = await start(make_hub, aiohttp_client, node_db_url,
                                                   tmp_path)
    b = nine_mib(o)
    r = await hub.post("/api/v2/bundles", data=envelope(b), headers=cbor_headers(PUSHER))
    assert r.status == 201, await r.text()
    hub.server.app[T.delivery_key].wake()
    await until(lambda: node_pool.fetchval(
        "SELECT count(*) = 40 FROM requests WHERE origin = $1", o.origin), "the import")
    sub = await until(lambda: pool.fetchrow(
        "SELECT cursor, failures, delivered, last_error FROM hub_subscriptions "
        "WHERE cursor >= 1"), "the cursor")
    assert (sub["failures"], sub["delivered"], sub["last_error"]) == (0, 1, None)


async def test_inbox_refuses_by_content_length_before_reading(make_hub, aiohttp_client,
                                                              node_db_url, tmp_path):
    _, _, node, node_pool, o, _ = await start(make_hub, aiohttp_client, node_db_url,
                                              tmp_path, node_limit=1 * MiB)
    # HTML asked for, JSON answered: the inbox is a machine endpoint
    headers = {"Authorization": f"Bearer {INBOX}", "Content-Type": CBOR_MEDIA_TYPE,
               "Accept": "text/html"}
    r = await node.post("/sync/inbox", data=envelope(nine_mib(o)), headers=headers)
    assert r.status == 413 and r.content_type == "application/json"
    assert (await r.json())["error"]["code"] == "bundle_too_large"
    # no Content-Length (chunked): refused at the first chunk past the limit, as JSON
    async def chunks():
        for _ in range(128):  # 8 MiB in all (the bound adds framing room per file)
            yield b"\0" * 65536

    r = await node.post("/sync/inbox", data=chunks(), headers=headers)
    assert r.status == 413 and (await r.json())["error"]["code"] == "bundle_too_large"
    r = await node.post("/sync/inbox", data=b"\xa0", headers={**headers,
                                                             "Authorization": "Bearer no"})
    assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    r = await node.post("/sync/inbox", data=b"not cbor", headers=headers)
    assert r.status == 400 and r.content_type == "application/json"
    assert await node_pool.fetchval("SELECT count(*) FROM requests") == 0


async def test_a_413_is_a_visible_delivery_failure_not_a_skip(make_hub, aiohttp_client,
                                                              node_db_url, tmp_path):
    hub, pool, node, node_pool, o, config = await start(
        make_hub, aiohttp_client, node_db_url, tmp_path, node_limit=8 * MiB)
    small = o.bundle([o.request("SMALL", title="small one")])
    b = nine_mib(o)
    for bundle in (small, b):
        r = await hub.post("/api/v2/bundles", data=envelope(bundle),
                           headers=cbor_headers(PUSHER))
        assert r.status == 201, await r.text()
    hub.server.app[T.delivery_key].wake()
    sub = await until(lambda: pool.fetchrow(
        "SELECT cursor, failures, last_error FROM hub_subscriptions WHERE failures >= 2"),
        "repeated failures")
    # the small bundle went through; the big one holds the cursor, with its reason
    assert sub["cursor"] == 1
    assert sub["last_error"].startswith("bundle_too_large: the inbox refused hub seq 2")
    assert await node_pool.fetchval("SELECT count(*) FROM requests WHERE origin = $1",
                                    o.origin) == 1

    # the reason is on the dashboard and in `wb hub subscriptions list`
    from tests.hub.test_public import admin_login

    await admin_login(hub, pool)
    page = await (await hub.get("/admin")).text()
    assert "bundle_too_large: the inbox refused hub seq 2" in page
    env = {"WB_HUB_DATABASE_URL": str(hub.server.app[T.database_url_key]),
           "WB_HUB_DATA_DIR": str(tmp_path / "hubcli")}
    out = await asyncio.to_thread(lambda: CliRunner().invoke(
        root, ["hub", "subscriptions", "list"], env=env, catch_exceptions=False).output)
    assert "SUB sub push" in out and "cursor=1" in out and "bundle_too_large" in out

    # the bundle is still in the log: the subscriber fetches it by pull (with room for it)
    await hub.server.app[T.delivery_key].stop()
    bigger = make_node_config(config["WB_DATABASE_URL"], tmp_path / "node",
                              WB_MAX_BUNDLE_BYTES=str(32 * MiB))
    result = await pull(node_pool, bigger, "hub")
    assert not result.errors, result.errors
    assert await node_pool.fetchval("SELECT count(*) FROM requests WHERE origin = $1",
                                    o.origin) == 41
    # the node's own limits object is the one built from its settings
    assert node.server.app[NT.limits_key].max_bundle_bytes == 8 * MiB


def test_one_setting_builds_the_limits_and_the_old_hub_name_still_counts(tmp_path):
    from service.limits import limits_from_config
    from service.settings import Config

    def limits(env):
        return limits_from_config(Config(environ=env, dotenv=tmp_path / "no.env"))

    assert limits({}).max_bundle_bytes == 32 * MiB
    assert limits({"WB_MAX_BUNDLE_BYTES": "1000"}).max_bundle_bytes == 1000
    # an operator's value under the old name is not silently dropped by the upgrade ...
    assert limits({"WB_HUB_MAX_BUNDLE_BYTES": "2000"}).max_bundle_bytes == 2000
    # ... and the new name wins when both are set
    assert limits({"WB_HUB_MAX_BUNDLE_BYTES": "2000",
                   "WB_MAX_BUNDLE_BYTES": "3000"}).max_bundle_bytes == 3000
    with pytest.raises(ValueError, match="WB_MAX_BUNDLE_BYTES must be positive"):
        limits({"WB_MAX_BUNDLE_BYTES": "0"})
