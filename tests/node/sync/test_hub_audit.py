"""Nodes auditing their hub's transparency log: a hub that omits an acknowledged bundle,
forks its log for two subscribers or rewrites history after a prune is caught with
evidence; an honest hub never is (random ingest, prune and restart sequences)."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import queries as HQ
from hub import queries_tlog as TQ
from hub import tlog as HT
from hub import typedefs as HTD
from hub.app import create_app
from hub.retention import prune
from node.sync import audit as A
from node.sync import peers as P
from node.sync import transport as TR
from node.sync.identity import load_or_create_key
from node.sync.service import run_export
from protocol import tlog as L
from service.ids import token_hash
from tests.factories import create_user
from tests.hub.conftest import make_hub_config

TOKENS = {"alpha": "alpha-token-0123456789", "beta": "beta-token-0123456789"}


@pytest.fixture
async def hubbed(nodes, hub_db_url, aiohttp_client, tmp_path):
    """Both nodes on one real hub; alpha's key is trusted there."""
    a, b = nodes
    config = make_hub_config(hub_db_url, tmp_path / "hub")

    async def start():
        client = await aiohttp_client(create_app(config))
        return client

    hub = await start()
    pool = hub.server.app[HTD.pool_key]
    url = str(hub.make_url("")).rstrip("/")
    for n in (a, b):
        await HQ.add_peer(pool, n.name, "node", token_hash(TOKENS[n.name]))
        await P.add_peer(n.pool, "hub", "hub", url, token=TOKENS[n.name],
                         pins=[a.origin] if n is b else None)
    await HQ.trust_key(pool, a.origin, a.origin, load_or_create_key(a.config).public_key,
                       "alpha")
    for n in (a, b):
        n.config._values["WB_SYNC_AUDIT_DELAY"] = "0"  # noqa: SLF001 - no waiting in tests
    return a, b, hub, pool, start


async def _chain(a, n: int, first: int = 1) -> None:
    """n chain links of node ``a``, each adding one public request."""
    user = await a.pool.fetchval("SELECT id FROM users WHERE username = 'ann'") \
        or await create_user(a.pool, "ann", scope="public")
    for i in range(first, first + n):
        await a.pool.execute(
            "INSERT INTO requests (id, title, description, created_by, sync_scope) "
            "VALUES ($1, $2, 'x', $3, 'public')", f"R{i}", f"Request {i}", user)
        await run_export(a.pool, a.config)


async def _facts(pool) -> list[tuple[int, str, int | None, str]]:
    rows = await pool.fetch("SELECT entry FROM hub_tlog_leaves ORDER BY idx")
    return [(f.hub_seq, f.origin, f.sequence, f.digest)
            for f in (L.parse_leaf(bytes(r["entry"])) for r in rows)]


async def forge(hub, pool, facts) -> bytes:
    """What a dishonest operator can do with its own database and key: rebuild the tree
    from other leaves and sign it."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM hub_tlog_hashes; DELETE FROM hub_tlog_leaves; "
                           "DELETE FROM hub_tlog_cosignatures; "
                           "DELETE FROM hub_tlog_checkpoints; UPDATE hub_tlog_state "
                           "SET size = 0, frontier = '', last_hub_seq = 0")
        if facts:
            await TQ._write(conn, await TQ.state(conn), facts)  # noqa: SLF001
    row = await HT.checkpoint_now(pool, hub.server.app[HT.signer_key])
    return bytes(row["note"])


async def test_honest_hub_push_pull_audit_has_no_incident(hubbed):
    a, b, hub, pool, _ = hubbed
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "hub")
    await TR.pull(b.pool, b.config, "hub")  # the pull ends with an audit
    [ra] = await A.audit(a.pool, a.config, "hub")
    assert (ra.incidents, ra.size, ra.included, ra.error) == ([], 3, 3, None)
    [rb] = await A.audit(b.pool, b.config, "hub")
    assert rb.incidents == [] and rb.size == 3
    assert await b.pool.fetchval("SELECT count(*) FROM sync_hub_acks WHERE flagged_at "
                                 "IS NOT NULL") == 0


async def test_hub_that_omits_an_acknowledged_bundle_is_caught(hubbed):
    a, b, hub, pool, _ = hubbed
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "hub")
    facts = await _facts(pool)
    await forge(hub, pool, facts[:1] + facts[2:])  # drops hub_seq 2 from its log
    [r] = await A.audit(a.pool, a.config, "hub")
    [inc] = r.incidents
    assert inc["kind"] == "omission" and inc["evidence"]["hub_seq"] == 2
    assert inc["evidence"]["acknowledged"]["digest"] == facts[1][3]
    L.verify_checkpoint(inc["evidence"]["checkpoint"].encode(),
                        L.parse_verifier(inc["evidence"]["verifier"]))
    # recorded once, not again at the next audit
    [r2] = await A.audit(a.pool, a.config, "hub")
    assert r2.incidents == []
    assert await a.pool.fetchval("SELECT count(*) FROM sync_hub_incidents") == 1


async def test_hub_that_hides_a_logged_entry_from_a_pull_is_caught(hubbed, aiohttp_client):
    from aiohttp import web

    a, b, hub, pool, _ = hubbed
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "hub")
    real = str(hub.make_url("")).rstrip("/")
    # a front that drops hub_seq 2 from the bundle listing and passes the rest through
    session = hub.session

    async def proxy(request: web.Request) -> web.StreamResponse:
        async with session.request(request.method, real + request.path_qs,
                                   headers={k: v for k, v in request.headers.items()
                                            if k.lower() in ("authorization", "accept")},
                                   data=await request.read()) as r:
            body = await r.read()
            if request.path == "/api/v2/bundles" and request.method == "GET":
                page = json.loads(body)
                page["entries"] = [e for e in page["entries"] if e["seq"] != 2]
                body = json.dumps(page).encode()
            return web.Response(body=body, status=r.status,
                                content_type=r.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    front = await aiohttp_client(app)
    await b.pool.execute("UPDATE sync_peers SET location = $1",
                         str(front.make_url("")).rstrip("/"))
    await TR.pull(b.pool, b.config, "hub")
    [inc] = [i for i in await A.incidents(b.pool)]
    assert inc["kind"] == "omission"
    evidence = json.loads(inc["evidence"])
    assert evidence["hub_seq"] == 2 and L.parse_leaf(
        __import__("base64").b64decode(evidence["leaf"])).digest == (await _facts(pool))[1][3]


async def test_fork_for_two_subscribers_is_caught_by_gossip(hubbed):
    a, b, hub, pool, _ = hubbed
    await _chain(a, 4)
    await TR.push(a.pool, a.config, "hub")
    [ra] = await A.audit(a.pool, a.config, "hub")
    assert ra.incidents == [] and ra.size == 4
    facts = await _facts(pool)
    # beta is shown another history of the same size
    other = facts[:2] + [(3, facts[3][1], facts[3][2], facts[3][3]),
                         (4, facts[2][1], facts[2][2], facts[2][3])]
    await forge(hub, pool, other)
    await b.pool.execute("DELETE FROM sync_hub_acks")  # beta pushed nothing
    [rb] = await A.audit(b.pool, b.config, "hub")
    assert rb.incidents == [] and rb.size == 4  # beta alone cannot tell
    # beta tells alpha what it saw: the two signed checkpoints disagree
    [ra] = await A.audit(a.pool, a.config, "hub", notes=[rb.checkpoint.encode()])
    forks = [i for i in ra.incidents if i["kind"] == "fork"]
    assert forks, ra.incidents
    ev = forks[0]["evidence"]
    key = L.parse_verifier(ev["verifier"])
    cp_a, _ = L.verify_checkpoint(ev["checkpoint_a"].encode(), key)
    cp_b, _ = L.verify_checkpoint(ev["checkpoint_b"].encode(), key)
    assert cp_a.size == cp_b.size == 4 and cp_a.root != cp_b.root


async def test_history_rewritten_after_a_prune_is_caught(hubbed):
    a, b, hub, pool, _ = hubbed
    await _chain(a, 4)
    await TR.push(a.pool, a.config, "hub")
    await TR.pull(b.pool, b.config, "hub")
    assert (await prune(pool, before_seq=3)).entries == 2
    facts = await _facts(pool)
    # the pruned entry 1 is rewritten (its bundle is gone, who would notice?)
    await forge(hub, pool, [(1, facts[0][1], facts[0][2], "sha256:" + "0" * 64)] + facts[1:])
    [rb] = await A.audit(b.pool, b.config, "hub")
    [inc] = [i for i in rb.incidents if i["kind"] == "fork"]
    assert inc["evidence"]["checkpoint_a"] != inc["evidence"]["checkpoint_b"]


OPS = st.lists(st.one_of(
    st.tuples(st.just("push"), st.integers(1, 3)),
    st.tuples(st.just("pull"), st.just(0)),
    st.tuples(st.just("prune"), st.integers(0, 12)),
    st.tuples(st.just("audit"), st.just(0)),
    st.tuples(st.just("gossip"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0))), min_size=1, max_size=10)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_honest_hub_never_raises_an_incident(pg, ops) -> None:
    """Random pushes, pulls, prunes, audits, checkpoint gossip between the two nodes and
    hub restarts on an honest hub: no incident, and every acknowledged push ends up
    proven included."""
    import tempfile
    from pathlib import Path

    from aiohttp.test_utils import TestClient, TestServer

    from hub.app import MIGRATIONS
    from tests.node.sync.conftest import _make_node

    async def scenario(tmp: Path) -> None:
        a, a_url = await _make_node(pg, tmp, "alpha")
        b, b_url = await _make_node(pg, tmp, "beta")
        hub_url = await pg.new_database(await pg.template("hub", MIGRATIONS))
        config = make_hub_config(hub_url, tmp / "hub")
        clients: list[TestClient] = []

        async def start() -> TestClient:
            client = TestClient(TestServer(create_app(config)))
            await client.start_server()
            clients.append(client)
            return client

        try:
            hub = await start()
            pool = hub.server.app[HTD.pool_key]
            url = str(hub.make_url("")).rstrip("/")
            for n in (a, b):
                await HQ.add_peer(pool, n.name, "node", token_hash(TOKENS[n.name]))
                await P.add_peer(n.pool, "hub", "hub", url, token=TOKENS[n.name],
                                 pins=[a.origin] if n is b else None)
                n.config._values["WB_SYNC_AUDIT_DELAY"] = "0"  # noqa: SLF001
            await HQ.trust_key(pool, a.origin, a.origin,
                               load_or_create_key(a.config).public_key, "alpha")
            made = 0
            for op, arg in ops:
                if op == "push":
                    await _chain(a, arg, first=made + 1)
                    made += arg
                    await TR.push(a.pool, a.config, "hub")
                elif op == "pull":
                    await TR.pull(b.pool, b.config, "hub")
                elif op == "prune":
                    await prune(pool, before_seq=arg)
                    pruned = (await HQ.log_state(pool))[1]
                    await b.pool.execute("UPDATE sync_peers SET cursor = greatest(cursor, "
                                         "$1::bigint)", pruned)
                elif op == "restart":
                    await clients.pop(0).close()  # the process stops, another starts
                    hub = await start()
                    pool = hub.server.app[HTD.pool_key]
                    for n in (a, b):
                        await n.pool.execute("UPDATE sync_peers SET location = $1",
                                             str(hub.make_url("")).rstrip("/"))
                elif op == "gossip":  # each node checks the other's newest checkpoint
                    for n, other in ((a, b), (b, a)):
                        note = await other.pool.fetchval("SELECT note FROM sync_hub_logs")
                        if note is None or await n.pool.fetchval(
                                "SELECT note FROM sync_hub_logs") is None:
                            continue
                        r = await A.check_checkpoint(
                            n.pool, await P.get_peer(n.pool, "hub"), hub.session,
                            bytes(note), policy=A.Policy(), adopt=False,
                            source=f"http://{other.name}.test")
                        assert r.incidents == [] and r.error is None, (ops, r.as_json())
                else:
                    for n in (a, b):
                        for r in await A.audit(n.pool, n.config, "hub"):
                            assert r.incidents == [], (ops, r.incidents)
            for n in (a, b):
                for r in await A.audit(n.pool, n.config, "hub"):
                    assert r.incidents == [] and r.error is None, (ops, r.as_json())
            assert await a.pool.fetchval("SELECT count(*) FROM sync_hub_acks WHERE "
                                         "included_at IS NULL") == 0
        finally:
            for client in clients:
                await client.close()
            for n, u in ((a, a_url), (b, b_url)):
                await n.pool.close()
                await pg.drop(u)
            await pg.drop(hub_url)

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(scenario(Path(tmp)))


def test_wb_sync_audit_cli_refuses_a_gossip_note_without_a_hub() -> None:
    from ops.cli import root

    result = CliRunner().invoke(root, ["sync", "audit", "--checkpoint", __file__])
    assert result.exit_code == 2 and "--checkpoint needs the HUB" in result.output


async def test_witness_cosigns_only_consistent_checkpoints_and_nodes_require_quorum(
        hubbed, pg, tmp_path, aiohttp_client):
    from hub.app import MIGRATIONS

    a, b, hub, pool, _ = hubbed
    signer = hub.server.app[HT.signer_key]
    wconfig = make_hub_config(await pg.new_database(await pg.template("hub", MIGRATIONS)),
                              tmp_path / "witness")
    wconfig._values.update(WB_HUB_URL="http://witness.test",  # noqa: SLF001
                           WB_HUB_WITNESS_LOGS=signer.verifier.text())
    witness = await aiohttp_client(create_app(wconfig))
    wurl = str(witness.make_url("")).rstrip("/")
    wkey = L.parse_verifier(await (await witness.get("/tlog/witness/key")).text())
    assert wkey.name == "witness.test/log/witness" and wkey.alg == L.ALG_COSIGNATURE_V1
    cp = hub.server.app[HT.checkpointer_key]
    # the test ticks the log's job itself: the hub's own tick (every 2 s) landing between
    # the push and the first audit cosigned size 3 early (seen under load)
    await cp.stop()
    cp.witnesses = [wurl]
    # the node trusts only checkpoints the witness cosigned
    a.config._values.update(WB_SYNC_WITNESSES=wkey.text(),  # noqa: SLF001
                            WB_SYNC_WITNESS_QUORUM="1")
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "hub")
    [r] = await A.audit(a.pool, a.config, "hub")  # signs size 3, not cosigned yet
    assert r.size == 0 and "0 of the 1 witness cosignatures" in r.error
    await cp.tick()  # the log's job sends size 3 to the witness
    note = await (await hub.get("/tlog/checkpoint")).read()
    assert L.count_cosignatures(L.parse_note(note), [wkey]) == 1
    [r] = await A.audit(a.pool, a.config, "hub")
    assert r.error is None and r.size == 3 and r.included == 3
    # the operator rewrites history: the witness refuses to cosign it
    facts = await _facts(pool)
    forged = await forge(hub, pool, facts[1:] + [(4, facts[0][1], facts[0][2],
                                                  "sha256:" + "1" * 64)])
    await cp.tick()
    assert await pool.fetchval("SELECT count(*) FROM hub_tlog_cosignatures") == 0
    wpool = witness.server.app[HTD.pool_key]
    assert await wpool.fetchval("SELECT size FROM hub_witness_logs") == 3
    body = b"old 3\n\n" + forged
    assert (await witness.post("/tlog/witness/add-checkpoint", data=body)).status == 422
    r409 = await witness.post("/tlog/witness/add-checkpoint", data=b"old 1\n\n" + forged)
    assert r409.status == 409 and (await r409.text()).strip() == "3"
    assert r409.content_type == "text/x.tlog.size"
    assert (await witness.post("/tlog/witness/add-checkpoint",
                               data=b"old 3\n\n" + forged.replace(b"\n3\n", b"\n5\n"))
            ).status == 403
    assert (await witness.post("/tlog/witness/add-checkpoint", data=b"garbage")).status == 400
    assert (await witness.post("/tlog/witness/add-checkpoint",
                               data=b"old 3\n" + b"A" * 70_000 + b"\n\n" + forged)).status == 413
    stranger = L.Checkpoint("other.example/log", 1, b"\0" * 32).body()
    note_other = L.Note(stranger, (L.sign_note(stranger, "other.example/log",
                                               b"\x03" * 32),)).encode()
    assert (await witness.post("/tlog/witness/add-checkpoint",
                               data=b"old 0\n\n" + note_other)).status == 404
    # the node keeps the cosigned view, and the hub's signature on the other tree is
    # evidence of a fork all the same
    [r] = await A.audit(a.pool, a.config, "hub")
    assert [i["kind"] for i in r.incidents] == ["fork"] and "cosignatures" in r.error
    assert await a.pool.fetchval("SELECT size FROM sync_hub_logs") == 3


async def test_a_stream_that_skips_a_logged_entry_is_caught(hubbed, node_client,
                                                            aiohttp_client):
    """A hub front whose stream leaves out hub_seq 2 (and passes /tlog through)."""
    import aiohttp
    from aiohttp import web

    from node import typedefs as NT
    from node.sync.scheduling import _stream_once, runtime
    from protocol.containers import Frame, encode_frame, from_cbor

    a, b, hub, pool, _ = hubbed
    await _chain(a, 3)
    await TR.push(a.pool, a.config, "hub")
    rows = {r["seq"]: r for r in await HQ.log_after(pool, 0, 10)}

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(encode_frame(Frame(op="info", seq=0)))
        for seq in (1, 3):
            await ws.send_bytes(encode_frame(Frame(
                op="bundle", seq=seq, digest=rows[seq]["digest"], origin=rows[seq]["origin"],
                bundle=from_cbor(bytes(rows[seq]["container"])))))
        await ws.close()
        return ws

    front = await stream_front(aiohttp_client, hub, stream)
    napp = node_client.server.app
    npool = napp[NT.pool_key]
    await P.add_peer(npool, "hub", "hub", str(front.make_url("")).rstrip("/"))
    rt = runtime(napp)
    rt.ws_client = aiohttp.ClientSession()
    try:
        await _stream_once(napp, "hub", {"frames": 0})
    finally:
        await rt.ws_client.close()
    assert [r["hub_seq"] for r in await npool.fetch(
        "SELECT hub_seq FROM sync_hub_acks ORDER BY 1")] == [2]
    napp[NT.config_key]._values["WB_SYNC_AUDIT_DELAY"] = "0"  # noqa: SLF001
    [r] = await A.audit(npool, napp[NT.config_key], "hub")
    assert [i["kind"] for i in r.incidents] == ["omission"]
    assert r.incidents[0]["evidence"]["hub_seq"] == 2


async def test_control_center_shows_the_incident_with_both_signed_checkpoints(
        hubbed, node_client):
    """The admin page (no JavaScript needed: <details>) and its JSON carry the evidence;
    members never see it."""
    from node import typedefs as NT
    from tests.factories import create_user, sign_in

    a, b, hub, pool, _ = hubbed
    napp = node_client.server.app
    npool = napp[NT.pool_key]
    await P.add_peer(npool, "hub", "hub", str(hub.make_url("")).rstrip("/"))
    await _chain(a, 2)
    await TR.push(a.pool, a.config, "hub")
    [r] = await A.audit(npool, napp[NT.config_key], "hub")
    assert r.size == 2 and r.incidents == []
    facts = await _facts(pool)
    await forge(hub, pool, facts[::-1])  # same size, another order: another root
    [r] = await A.audit(npool, napp[NT.config_key], "hub")
    [inc] = r.incidents
    member = await create_user(npool, "mia")
    await sign_in(node_client, member)
    assert (await node_client.get("/admin/sync-control")).status == 403
    admin = await create_user(npool, "root", admin=True)
    await sign_in(node_client, admin)
    html = await (await node_client.get("/admin/sync-control")).text()
    assert "Hub incident" in html and "(fork)" in html
    for note in (inc["evidence"]["checkpoint_a"], inc["evidence"]["checkpoint_b"]):
        assert note.split("\n\n")[1].split(" ")[2].strip() in html  # each signature shown
    body = await (await node_client.get("/admin/sync-control",
                                        headers={"Accept": "application/json"})).json()
    [shown] = body["hub_incidents"]
    assert shown["kind"] == "fork" and shown["evidence"] == inc["evidence"]
    assert body["hub_checkpoints"][0]["size"] == 2


async def test_wb_sync_audit_prints_the_evidence_and_exits_1(hubbed, monkeypatch, tmp_path):
    from ops.cli import root

    a, b, hub, pool, _ = hubbed
    monkeypatch.setenv("WB_DATABASE_URL", a.config["WB_DATABASE_URL"])
    monkeypatch.setenv("WB_DATA_DIR", a.config["WB_DATA_DIR"])
    monkeypatch.setenv("SITE_URL", a.config["SITE_URL"])
    monkeypatch.setenv("WB_SYNC_AUDIT_DELAY", "0")
    monkeypatch.chdir(tmp_path)

    async def wb(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, root, list(args))

    await _chain(a, 2)
    await TR.push(a.pool, a.config, "hub")
    result = await wb("sync", "audit", "hub")
    assert result.exit_code == 0, result.output
    assert "hub: checkpoint size 2, 2 push(es) proven included, 0 waiting" in result.output
    facts = await _facts(pool)
    other = await forge(hub, pool, facts[::-1])
    # a gossiped checkpoint (what another node was shown) is checked against ours
    note_file = tmp_path / "seen-by-beta.txt"
    note_file.write_bytes(other)
    result = await wb("sync", "audit", "hub", "--checkpoint", str(note_file), "--json")
    assert result.exit_code == 1
    [report] = json.loads(result.output)["reports"]
    assert [i["kind"] for i in report["incidents"]] == ["fork"]
    assert report["incidents"][0]["evidence"]["checkpoint_b"].encode() == other
    result = await wb("sync", "audit")
    assert result.exit_code == 1 and "INCIDENT fork" in result.output
    assert other.decode().split("\n")[2] in result.output  # the conflicting root
    result = await wb("sync", "audit", "nope")
    assert result.exit_code == 1 and "nope" in result.output


async def stream_front(aiohttp_client, hub, stream):
    """A lying hub in front of the real one: ``stream`` answers /api/v2/stream, and
    /tlog/... passes through to the real hub (its checkpoints and proofs)."""
    from aiohttp import web

    real = str(hub.make_url("")).rstrip("/")

    async def tlog(request: web.Request) -> web.Response:
        async with hub.session.get(real + request.path_qs) as r:
            return web.Response(body=await r.read(), status=r.status,
                                content_type=r.content_type)

    app = web.Application()
    app.router.add_get("/api/v2/stream", stream)
    app.router.add_get("/tlog/{tail:.*}", tlog)
    return await aiohttp_client(app)
