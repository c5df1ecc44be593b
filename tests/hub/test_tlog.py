"""The hub's transparency log: what a node or another hub can check, and from the side
of a client that asks wrongly."""

from __future__ import annotations

import base64
import os
import stat

from hub import queries as Q
from hub import tlog as HT
from hub import typedefs as T
from hub.retention import prune
from protocol import tlog as L
from tests.hub.helpers import Origin
from tests.hub.test_ingest import push
from tests.protocol.test_tlog import naive_root


async def _checkpoint(client) -> tuple[L.Checkpoint, bytes, L.NoteVerifier]:
    key = L.parse_verifier(await (await client.get("/tlog/key")).text())
    r = await client.get("/tlog/checkpoint")
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    note = await r.read()
    cp, _ = L.verify_checkpoint(note, key)
    return cp, note, key


async def _leaves(pool) -> list[bytes]:
    rows = await pool.fetch(
        "SELECT l.seq, l.origin, b.sequence, l.digest FROM hub_log l "
        "JOIN hub_bundles b USING (digest) ORDER BY l.seq")
    return [L.leaf_entry(r["seq"], r["origin"], r["sequence"], r["digest"]) for r in rows]


def _h(items: list[str]) -> list[bytes]:
    return [base64.b64decode(x) for x in items]


async def test_checkpoint_proofs_and_tiles_describe_exactly_the_log(
        hub_client, hub_pool, peer, origin, hub_config):
    empty, _, key = await _checkpoint(hub_client)
    assert (empty.size, empty.root, empty.origin) == (0, L.EMPTY_ROOT, "hub.test/log")
    for _ in range(5):
        assert (await push(hub_client, peer, origin.many(1))).status == 201
    cp5, note5, _ = await _checkpoint(hub_client)
    leaves = await _leaves(hub_pool)
    assert cp5.size == 5 and cp5.root == naive_root(leaves)
    for _ in range(4):
        assert (await push(hub_client, peer, origin.many(1))).status == 201
    cp9, _, _ = await _checkpoint(hub_client)
    leaves = await _leaves(hub_pool)
    assert cp9.size == 9 and cp9.root == naive_root(leaves)
    # inclusion by hub_seq and by origin+sequence, against the newest and an older size
    for hub_seq in range(1, 10):
        body = await (await hub_client.get(f"/tlog/proof/inclusion?hub_seq={hub_seq}")).json()
        leaf = base64.b64decode(body["leaf"])
        assert L.parse_leaf(leaf).hub_seq == hub_seq
        L.verify_inclusion(L.leaf_hash(leaf), body["leaf_index"], 9, _h(body["proof"]),
                           cp9.root)
    body = await (await hub_client.get(
        f"/tlog/proof/inclusion?origin={origin.origin}&sequence=2&size=5")).json()
    assert body["tree_size"] == 5 and body["checkpoint"].encode() == note5
    L.verify_inclusion(L.leaf_hash(base64.b64decode(body["leaf"])), body["leaf_index"], 5,
                       _h(body["proof"]), cp5.root)
    r = await hub_client.get(f"/tlog/proof/inclusion?origin={origin.origin}&sequence=8&size=5")
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_yet_in_checkpoint"
    # consistency 5 -> 9, and the old signed checkpoint is served for the evidence
    body = await (await hub_client.get("/tlog/proof/consistency?old=5")).json()
    L.verify_consistency(5, cp5.root, 9, cp9.root, _h(body["proof"]))
    assert body["old_checkpoint"].encode() == note5
    assert await (await hub_client.get("/tlog/checkpoints/5")).read() == note5
    # tiles: the level-0 partial tile is the leaf hashes, the entry bundle the leaves
    tile = await (await hub_client.get("/tlog/tile/0/000.p/9")).read()
    assert tile == b"".join(L.leaf_hash(e) for e in leaves)
    entries = await (await hub_client.get("/tlog/tile/entries/000.p/9")).read()
    assert L.split_entry_bundle(entries) == leaves
    assert (await hub_client.get("/tlog/tile/0/000.p/10")).status == 404
    assert (await hub_client.get("/tlog/tile/0/000")).status == 404
    # the log key is a 0600 file in the data dir
    mode = stat.S_IMODE(os.stat(hub_config.path("WB_HUB_DATA_DIR") / "log.key").st_mode)
    assert mode == 0o600
    assert key.public_key == hub_client.server.app[HT.signer_key].public_key


async def test_pruning_never_changes_a_leaf(hub_client, hub_pool, peer, origin):
    for _ in range(6):
        assert (await push(hub_client, peer, origin.many(1))).status == 201
    before, _, _ = await _checkpoint(hub_client)
    leaves = await _leaves(hub_pool)
    result = await prune(hub_pool, before_seq=5)
    assert result.entries == 4
    assert (await push(hub_client, peer, origin.many(1))).status == 201
    after, _, _ = await _checkpoint(hub_client)
    assert after.size == 7
    body = await (await hub_client.get(f"/tlog/proof/consistency?old={before.size}")).json()
    L.verify_consistency(before.size, before.root, 7, after.root, _h(body["proof"]))
    # a pruned entry still has its proof: the leaf outlives the bundle
    body = await (await hub_client.get("/tlog/proof/inclusion?hub_seq=1")).json()
    assert base64.b64decode(body["leaf"]) == leaves[0]
    L.verify_inclusion(L.leaf_hash(leaves[0]), 0, 7, _h(body["proof"]), after.root)


async def test_a_log_older_than_the_tree_is_caught_up_on_start(
        make_hub, hub_config, peer, origin):
    first = await make_hub()
    pool = first.server.app[T.pool_key]
    for _ in range(3):
        assert (await push(first, peer, origin.many(1))).status == 201
    # as if the hub ran before migration 0007: no tree, no checkpoints
    await pool.execute("DELETE FROM hub_tlog_hashes; DELETE FROM hub_tlog_leaves; "
                       "DELETE FROM hub_tlog_checkpoints; "
                       "UPDATE hub_tlog_state SET size = 0, frontier = '', last_hub_seq = 0")
    second = await make_hub()
    cp, _, _ = await _checkpoint(second)
    assert cp.size == 3 and cp.root == naive_root(await _leaves(pool))
    # and an ingest on a tree behind the log appends the missing entries first
    await pool.execute("DELETE FROM hub_tlog_hashes; DELETE FROM hub_tlog_leaves; "
                       "UPDATE hub_tlog_state SET size = 0, frontier = '', last_hub_seq = 0")
    assert (await push(second, peer, origin.many(1))).status == 201
    assert [r["hub_seq"] for r in await pool.fetch(
        "SELECT hub_seq FROM hub_tlog_leaves ORDER BY idx")] == [1, 2, 3, 4]
    # the ingest appended only leaves: the next checkpoint hashes them and signs
    assert await pool.fetchval("SELECT size FROM hub_tlog_state") == 0
    cp, _, _ = await _checkpoint(second)
    assert cp.size == 4 and cp.root == naive_root(await _leaves(pool))
    state = await pool.fetchrow("SELECT size, last_hub_seq FROM hub_tlog_state")
    assert (state["size"], state["last_hub_seq"]) == (4, 4)


async def test_bad_proof_requests_are_precise_4xx(hub_client, peer, origin):
    assert (await push(hub_client, peer, origin.many(1))).status == 201
    await _checkpoint(hub_client)
    for query, status, code in [
            ("inclusion", 400, "invalid_proof_request"),
            ("inclusion?hub_seq=-1", 400, "invalid_proof_request"),
            ("inclusion?hub_seq=99", 404, "not_in_log"),
            ("inclusion?origin=x", 400, "invalid_proof_request"),
            ("inclusion?hub_seq=1&size=7", 404, "unknown_tree_size"),
            ("inclusion?hub_seq=1&size=99999999999999999999", 400, "invalid_proof_request"),
            ("consistency", 400, "invalid_proof_request"),
            ("consistency?old=2", 400, "invalid_proof_request"),
            ("consistency?old=abc", 400, "invalid_proof_request")]:
        r = await hub_client.get(f"/tlog/proof/{query}")
        assert r.status == status, query
        assert (await r.json())["error"]["code"] == code, query
    for path in ("tile/0/1", "tile/x/000", "tile/0/000.p/0", "tile/entries/../../etc"):
        assert (await hub_client.get(f"/tlog/{path}")).status == 404, path
    assert (await hub_client.get("/tlog/checkpoints/abc")).status == 404


async def test_equivocation_and_duplicates_add_no_leaf(hub_client, hub_pool, peer, origin):
    b = origin.many(1)
    assert (await push(hub_client, peer, b)).status == 201
    assert (await push(hub_client, peer, b)).status == 200
    twin = Origin(origin.seed)  # same key, a second history
    assert (await push(hub_client, peer, twin.bundle([twin.request(title="Other")]))).status \
        == 409
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_tlog_leaves") == 1
    assert (await _checkpoint(hub_client))[0].size == 1
    assert (await Q.log_state(hub_pool))[0] == 1


async def test_stream_with_checkpoints_shows_a_signed_size_covering_every_frame(
        make_hub, hub_config, peer, origin):
    import asyncio

    import aiohttp

    from protocol.containers import decode_frame

    client = await make_hub()
    for _ in range(2):
        assert (await push(client, peer, origin.many(1))).status == 201
    key = L.parse_verifier(await (await client.get("/tlog/key")).text())
    ws = await client.ws_connect("/api/v2/stream?since=0&checkpoints=1")

    async def frame():
        msg = await asyncio.wait_for(ws.receive(), 10)
        assert msg.type == aiohttp.WSMsgType.BINARY
        return decode_frame(msg.data)

    assert (await frame()).op == "info"
    seen: list[int] = []
    covered = 0
    pushed = False
    while covered < 3:
        f = await frame()
        if f.op == "info":
            assert f.code == "checkpoint"
            cp, _ = L.verify_checkpoint(f.message.encode(), key)
            covered = cp.size
            continue
        seen.append(f.seq)
        if len(seen) == 2 and not pushed:  # a live entry: its checkpoint follows by itself
            pushed = True
            assert (await push(client, peer, origin.many(1))).status == 201
    assert seen == [1, 2, 3]
    await ws.close()
    # without ?checkpoints=1 the stream is unchanged: no checkpoint frames at all
    ws = await client.ws_connect("/api/v2/stream?since=0")
    frames = [await frame() for _ in range(4)]
    assert [f.op for f in frames] == ["info", "bundle", "bundle", "bundle"]
    await ws.close()


async def test_the_witness_endpoint_is_rate_limited_per_address(make_hub, hub_config):
    """A flood of cosigning requests gets 429 before the body is read or a signature is
    checked; within the limit the witness answers as usual (here 404: not a log it
    witnesses). The limit is WB_HUB_WITNESS_RATE_PER_MINUTE."""
    client = await make_hub(T.HubOptions.from_config(hub_config,
                                                     witness_rate_per_minute=3))
    stranger = L.Checkpoint("other.example/log", 1, b"\0" * 32).body()
    note = L.Note(stranger, (L.sign_note(stranger, "other.example/log",
                                         b"\x03" * 32),)).encode()
    statuses = [(await client.post("/tlog/witness/add-checkpoint",
                                   data=b"old 0\n\n" + note)).status for _ in range(5)]
    assert statuses == [404, 404, 404, 429, 429]
    r = await client.post("/tlog/witness/add-checkpoint", data=b"garbage")
    assert r.status == 429 and r.headers["Retry-After"] == "60"
    # other routes are not counted against it
    assert (await client.get("/tlog/witness/key")).status == 200
    assert T.HubOptions().witness_rate_per_minute == 60  # the documented default


async def test_concurrent_ingest_and_checkpoints_build_one_tree_in_commit_order(
        hub_client, hub_pool, peer, origin):
    """The ingest transaction appends only the leaf; the checkpoint job hashes the leaves
    later. Pushes committing side by side while checkpoints are signed meanwhile: the
    leaves follow hub_seq with no gap or duplicate, the final tree is the log's, and every
    checkpoint signed on the way is a prefix of it (consistency proofs verify)."""
    import asyncio

    bundles = [origin.many(1) for _ in range(16)]
    signer = hub_client.server.app[HT.signer_key]
    done = asyncio.Event()
    sizes: set[int] = set()

    async def sign_meanwhile() -> None:
        while not done.is_set():
            sizes.add((await HT.checkpoint_now(hub_pool, signer))["size"])
            await asyncio.sleep(0)

    signing = asyncio.create_task(sign_meanwhile())
    answers = await asyncio.gather(*(push(hub_client, peer, b) for b in bundles))
    done.set()
    await signing
    assert sorted(r.status for r in answers) == [201] * 16
    rows = await hub_pool.fetch("SELECT idx, hub_seq FROM hub_tlog_leaves ORDER BY idx")
    assert [(r["idx"], r["hub_seq"]) for r in rows] == [(i, i + 1) for i in range(16)]
    final, _, _ = await _checkpoint(hub_client)
    assert final.size == 16 and final.root == naive_root(await _leaves(hub_pool))
    for size in sorted(sizes - {0, 16}):
        old = L.parse_checkpoint(L.parse_note(await (await hub_client.get(
            f"/tlog/checkpoints/{size}")).read()).text)
        body = await (await hub_client.get(f"/tlog/proof/consistency?old={size}")).json()
        L.verify_consistency(size, old.root, 16, final.root, _h(body["proof"]))
