"""Log retention: pruning keeps each origin's latest bundle and cursor semantics."""

from __future__ import annotations

import asyncio

from hub import queries as Q
from hub import typedefs as T
from hub.retention import Pruner, prune
from tests.hub.helpers import Origin, seed
from tests.hub.test_cli import run
from tests.hub.test_ingest import push


async def _log(client, since):
    r = await client.get(f"/api/v2/bundles?since={since}")
    return r.status, await r.json()


async def test_prune_before_seq_keeps_latest_bundle_and_answers_outdated(
        hub_client, hub_pool, peer, origin):
    other = Origin(seed(7))
    await Q.trust_key(hub_pool, other.origin, other.origin, other.public_key, "alpha")
    for _ in range(3):
        assert (await push(hub_client, peer, origin.many(2))).status == 201  # seq 1-3
    assert (await push(hub_client, peer, other.many(1))).status == 201     # seq 4
    result = await prune(hub_pool, before_seq=4)
    # entries 1 and 2 go; 3 is the latest bundle of origin's chain and stays stored
    assert (result.pruned_through, result.entries, result.bundles) == (3, 2, 2)
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_bundles") == 2
    status, body = await _log(hub_client, 2)
    assert status == 410 and body["error"]["code"] == "outdated_cursor"
    status, body = await _log(hub_client, 3)
    assert status == 200 and [e["seq"] for e in body["entries"]] == [4]
    # the index is current state: records of pruned bundles stay searchable
    recs = (await (await hub_client.get("/api/v2/records?limit=50")).json())["records"]
    assert len(recs) == 7
    # the pruned part of the chain is not reported as a gap
    origins = (await (await hub_client.get("/api/v2/origins")).json())["origins"]
    assert all(o["gaps"] == [] for o in origins)
    wk = await (await hub_client.get("/.well-known/whiteballoon-hub")).json()
    assert wk["oldest_retained"] == 4
    # pruning again to the same point changes nothing; a later ingest continues the log
    assert (await prune(hub_pool, before_seq=4)).entries == 0
    assert (await push(hub_client, peer, origin.many(1))).status == 201
    status, body = await _log(hub_client, 3)
    assert [e["seq"] for e in body["entries"]] == [4, 5]


async def test_stream_below_retention_gets_outdated_cursor(hub_client, hub_pool, peer, origin):
    from protocol.containers import decode_frame

    for _ in range(3):
        await push(hub_client, peer, origin.many(1))
    await prune(hub_pool, before_seq=3)
    ws = await hub_client.ws_connect("/api/v2/stream?since=1")
    frame = decode_frame((await ws.receive()).data)
    assert frame.op == "error" and frame.code == "outdated_cursor"
    await ws.close()


async def test_pruner_prunes_by_age_only_when_retention_is_on(make_hub, hub_config, origin):
    from service.ids import token_hash

    client = await make_hub(T.HubOptions(retention_days=30, prune_interval=3600,
                                          verify_processes=0))
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("p" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    for _ in range(3):
        assert (await push(client, "p" * 20, origin.many(1))).status == 201
    await pool.execute("UPDATE hub_log SET committed_at = now() - interval '40 days' "
                       "WHERE seq <= 2")
    assert not Pruner(pool, T.HubOptions(retention_days=0)).enabled
    result = await Pruner(pool, T.HubOptions(retention_days=30)).run_once()
    assert (result.pruned_through, result.entries) == (2, 2)
    assert (await Q.log_state(pool))[1] == 2


async def test_push_subscriber_below_retention_records_outdated_cursor(
        hub_client, hub_pool, peer, origin):
    from hub.api import subscribe

    sub = await subscribe(hub_pool, "alpha", {"mode": "push",
                                              "inbox_url": "http://127.0.0.1:9/inbox"})
    await hub_pool.execute("UPDATE hub_subscriptions SET next_attempt_at = now() "
                           "+ interval '1 hour'")  # keep the worker off it meanwhile
    for _ in range(3):
        await push(hub_client, peer, origin.many(1))
    await prune(hub_pool, before_seq=3)
    delivery = hub_client.server.app[T.delivery_key]
    row = await hub_pool.fetchrow("SELECT * FROM hub_subscriptions WHERE id = $1", sub["id"])
    await delivery._deliver(row)
    row = await hub_pool.fetchrow("SELECT cursor, last_error FROM hub_subscriptions "
                                  "WHERE id = $1", sub["id"])
    assert row["cursor"] == 0 and row["last_error"].startswith("outdated_cursor")


async def test_cli_prune(hub_db_url, tmp_path, hub_pool, hub_client, peer, origin):
    for _ in range(2):
        await push(hub_client, peer, origin.many(1))
    r = await asyncio.to_thread(run, ["prune", "--before-seq", "2"], hub_db_url, tmp_path)
    assert r.exit_code == 0 and "pruned 1 log entries" in r.output
    assert (await Q.log_state(hub_pool))[1] == 1
    r = await asyncio.to_thread(run, ["prune", "--days", "0"], hub_db_url, tmp_path)
    assert r.exit_code != 0 and "retention is off" in r.output
