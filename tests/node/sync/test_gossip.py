"""Checkpoint gossip: a hub that shows node A and node B two different histories (a split
view) is caught by the nodes' scheduled gossip, with both signed checkpoints as evidence;
an honest hub never raises an incident, whatever its two subscribers were shown."""

from __future__ import annotations

import base64
import json

import pytest
from aiohttp import web

from node.app import create_app as create_node
from node.scheduler import jobs_key, run_job
from node.sync import audit as A
from node.sync import gossip as G
from node.sync import peers as P
from node.sync import transport as TR
from protocol import tlog as L
from tests.node.sync import test_hub_audit as THA

SEED = b"\x07" * 32
LOG = "fork.example/log"

hubbed = THA.hubbed  # the fixture: two nodes on one real hub
_chain = THA._chain


def _entries(tag: str, n: int, first: int = 1) -> list[bytes]:
    return [L.leaf_entry(i, "8b775313d9991ae0", i, "sha256:" + (tag * 64)[:64])
            for i in range(first, first + n)]


class View:
    """One history the fake hub shows: its leaves, stored hashes and signed notes."""

    def __init__(self, entries: list[bytes]) -> None:
        self.stored: dict[tuple[int, int], bytes] = {}
        frontier: list[bytes] = []
        self.notes: dict[int, bytes] = {}
        for i, e in enumerate(entries):
            rows, frontier = L.append_stored(i, frontier, L.leaf_hash(e))
            self.stored.update({(lv, ix): h for lv, ix, h in rows})
            self.notes[i + 1] = self._sign(i + 1, L.frontier_root(frontier))
        self.size = len(entries)

    @staticmethod
    def _sign(size: int, root: bytes) -> bytes:
        body = L.Checkpoint(LOG, size, root).body()
        return L.Note(body, (L.sign_note(body, LOG, SEED),)).encode()


def fake_hub(views: dict[str, View]) -> web.Application:
    """A hub on loopback that answers /<view>/tlog/... from one of several histories, all
    signed with the same log key: what a hub that forks its log for its subscribers
    does (an honest one has one view, or views that are prefixes of each other)."""
    from nacl.signing import SigningKey

    key = L.verifier_for(LOG, bytes(SigningKey(SEED).verify_key))

    async def tlog(request: web.Request) -> web.Response:
        view = views[request.match_info["view"]]
        what = request.match_info["what"]
        if what == "key":
            return web.Response(text=key.text() + "\n")
        if what == "checkpoint":
            return web.Response(body=view.notes[view.size], content_type="text/plain")
        if what == "proof/consistency":
            old, size = int(request.query["old"]), int(request.query["size"])
            if size not in view.notes or old > size:
                return web.json_response({"error": {"code": "unknown_tree_size"}},
                                         status=404)
            proof = L.consistency_proof(L.reader_of(view.stored), old, size)
            return web.json_response({"old": old, "tree_size": size,
                                      "proof": [base64.b64encode(h).decode()
                                                for h in proof]})
        return web.json_response({"error": {"code": "not_in_log"}}, status=404)

    app = web.Application()
    app["asked"] = []
    app.router.add_get("/{view}/tlog/{what:.+}", tlog)

    @web.middleware
    async def count(request: web.Request, handler):
        app["asked"].append(request.path)
        return await handler(request)

    app.middlewares.append(count)
    return app


@pytest.fixture
async def two_nodes(nodes, aiohttp_client):
    """Node A and node B as running apps (their /sync/checkpoints on loopback), each told
    of the other in WB_SYNC_GOSSIP_PEERS."""
    a, b = nodes
    ca = await aiohttp_client(create_node(a.config))
    cb = await aiohttp_client(create_node(b.config))
    for n, other in ((a, cb), (b, ca)):
        n.config._values["WB_SYNC_GOSSIP_PEERS"] = str(other.make_url("")).rstrip("/")  # noqa: SLF001
    return (a, ca), (b, cb)


async def _gossip(client) -> str:
    app = client.server.app
    return await run_job(app, app[jobs_key][G.JOB_ID])


async def _watch(two_nodes, hub, views: dict[str, str]) -> None:
    """Each node's hub peer points at its view of the (fake) hub; each audits it once."""
    for (n, _), name in zip(two_nodes, ("a", "b"), strict=True):
        await P.add_peer(n.pool, "hub", "hub", str(hub.make_url(f"/{views[name]}")).rstrip("/"))
        [r] = await A.audit(n.pool, n.config, "hub")
        assert r.incidents == [] and r.error is None, r.as_json()


async def test_a_split_view_is_caught_by_scheduled_gossip_with_both_notes(
        two_nodes, aiohttp_client):
    (a, ca), (b, cb) = two_nodes
    # the hub shows A five entries and B four that share only the first two
    views = {"a": View(_entries("a", 5)),
             "b": View(_entries("a", 2) + _entries("b", 2, first=3))}
    hub = await aiohttp_client(fake_hub(views))
    await _watch(two_nodes, hub, {"a": "a", "b": "b"})
    # the gossip job is scheduled on its own (WB_SYNC_GOSSIP_INTERVAL, default 300 s)
    job = ca.server.app[jobs_key][G.JOB_ID]
    assert job.interval == 300.0
    # each node's own audit sees nothing wrong: each view is consistent in itself
    for n in (a, b):
        [r] = await A.audit(n.pool, n.config, "hub")
        assert r.incidents == []
    # one round of gossip on each side: both find the fork
    assert "1 incident(s)" in await _gossip(ca)
    assert "1 incident(s)" in await _gossip(cb)
    key = L.parse_verifier((await (await hub.get("/a/tlog/key")).text()).strip())
    for n, own, other, source in ((a, "a", "b", cb), (b, "b", "a", ca)):
        [inc] = await A.incidents(n.pool)
        assert inc["kind"] == "fork"
        ev = json.loads(inc["evidence"])
        # the two signed notes: each verifies with the hub's key alone, and they disagree
        cp_a, _ = L.verify_checkpoint(ev["checkpoint_a"].encode(), key)
        cp_b, _ = L.verify_checkpoint(ev["checkpoint_b"].encode(), key)
        assert ev["checkpoint_a"].encode() == views[own].notes[views[own].size]
        assert ev["checkpoint_b"].encode() == views[other].notes[views[other].size]
        assert ev["gossip_source"] == str(source.make_url("")).rstrip("/")
        assert (cp_a.size, cp_b.size) in ((5, 4), (4, 5))
        # nothing adopted from gossip: the node keeps what its hub showed it
        assert await n.pool.fetchval("SELECT size FROM sync_hub_logs") == views[own].size
    # the sync control center shows the incident (both notes) and the gossip exchange
    source_b = str(cb.make_url("")).rstrip("/")
    body = await _control_json(ca, a)
    assert [i["kind"] for i in body["hub_incidents"]] == ["fork"]
    assert body["gossip"][0]["notes"] == 1 and body["gossip"][0]["error"] is None
    html = await (await ca.get("/admin/sync-control")).text()  # works without JavaScript
    assert f"Gossip with <code>{source_b}</code>: 1 checkpoint(s)" in html
    assert f"Told by the node <code>{source_b}</code>" in html and "(fork)" in html
    # the same notes are not checked (nor recorded) again
    assert "checked 0" in await _gossip(ca)
    assert await a.pool.fetchval("SELECT count(*) FROM sync_hub_incidents") == 1


async def test_same_size_split_view_is_caught_too(two_nodes, aiohttp_client):
    (a, ca), (b, cb) = two_nodes
    views = {"a": View(_entries("a", 3)), "b": View(_entries("c", 3))}
    hub = await aiohttp_client(fake_hub(views))
    await _watch(two_nodes, hub, {"a": "a", "b": "b"})
    assert "1 incident(s)" in await _gossip(cb)
    [inc] = await A.incidents(b.pool)
    assert inc["kind"] == "fork" and "size 3 with different roots" in inc["message"]


async def test_an_honest_hub_shown_at_two_sizes_raises_no_incident(two_nodes,
                                                                    aiohttp_client):
    """B is simply behind A (a prefix of the same history): consistent both ways."""
    (a, ca), (b, cb) = two_nodes
    full = View(_entries("a", 9))
    views = {"a": full, "b": View(_entries("a", 6))}
    hub = await aiohttp_client(fake_hub(views))
    await _watch(two_nodes, hub, {"a": "a", "b": "b"})
    # B's view of size 6 must be provable from A's hub view too: the same hub signed it
    full.notes.update(views["b"].notes)
    views["b"].notes.update(full.notes)
    views["b"].stored.update(full.stored)
    for client in (ca, cb, ca, cb):
        result = await _gossip(client)
        assert "incident" not in result and "unreachable" not in result, result
    for n in (a, b):
        assert await A.incidents(n.pool) == []


async def test_honest_real_hub_and_gossip_never_raise_an_incident(
        hubbed, aiohttp_client):
    a, b, hub, pool, _ = hubbed
    ca = await aiohttp_client(create_node(a.config))
    cb = await aiohttp_client(create_node(b.config))
    a.config._values["WB_SYNC_GOSSIP_PEERS"] = str(cb.make_url("")).rstrip("/")  # noqa: SLF001
    b.config._values["WB_SYNC_GOSSIP_PEERS"] = str(ca.make_url("")).rstrip("/")  # noqa: SLF001
    for rounds in range(3):
        await _chain(a, 2, first=rounds * 2 + 1)
        await TR.push(a.pool, a.config, "hub")
        await TR.pull(a.pool, a.config, "hub")  # a pull ends with the audit
        if rounds != 1:  # B sometimes lags behind
            await TR.pull(b.pool, b.config, "hub")
        for client in (ca, cb):
            result = await _gossip(client)
            assert result.startswith("ok:") and "incident" not in result, result
    for n in (a, b):
        assert await A.incidents(n.pool) == []
    for n in (a, b):  # each checked the other's notes (and recorded them)
        assert await n.pool.fetchval("SELECT count(*) FROM sync_hub_gossip") == 1


async def test_the_checkpoints_endpoint_serves_only_public_signed_notes(two_nodes,
                                                                       aiohttp_client):
    (a, ca), _ = two_nodes
    views = {"a": View(_entries("a", 2)), "b": View(_entries("a", 2))}
    hub = await aiohttp_client(fake_hub(views))
    await P.add_peer(a.pool, "hub", "hub", str(hub.make_url("/a")).rstrip("/"),
                     token="secret-hub-token-0123456789")
    await A.audit(a.pool, a.config, "hub")
    r = await ca.get("/sync/checkpoints")  # anonymous
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    text = await r.text()
    [item] = json.loads(text)["checkpoints"]
    assert item["note"].encode() == views["a"].notes[2] and item["log"] == LOG
    for secret in ("secret-hub-token", "hub.make_url", str(hub.make_url("/a")), '"hub"'):
        assert secret not in text
    # with gossip off the node neither asks nor answers
    a.config._values["WB_SYNC_GOSSIP_INTERVAL"] = "0"  # noqa: SLF001
    r = await ca.get("/sync/checkpoints", headers={"Accept": "application/json"})
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_a_lying_or_broken_gossip_source_proves_nothing(two_nodes, aiohttp_client):
    """Notes not signed by our hub's key, junk, huge answers and dead nodes: never an
    incident, never adopted; the exchange's error is kept for the control center."""
    (a, ca), _ = two_nodes
    views = {"a": View(_entries("a", 3))}
    hub = await aiohttp_client(fake_hub(views))
    await P.add_peer(a.pool, "hub", "hub", str(hub.make_url("/a")).rstrip("/"))
    await A.audit(a.pool, a.config, "hub")
    other_body = L.Checkpoint(LOG, 3, b"\x09" * 32).body()
    forged = L.Note(other_body, (L.sign_note(other_body, LOG, b"\x08" * 32),)).encode()
    answers = {
        "/forged": {"checkpoints": [{"note": forged.decode()}]},
        "/junk": {"checkpoints": "nope"},
        "/big": {"checkpoints": [{"note": "x" * (G.MAX_ANSWER + 10)}]},
    }

    async def serve(request: web.Request) -> web.Response:
        return web.json_response(answers[request.path.removesuffix(G.PATH)])

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    liar = await aiohttp_client(app)
    dead = "http://127.0.0.1:9"
    a.config._values["WB_SYNC_GOSSIP_PEERS"] = ",".join(  # noqa: SLF001
        [str(liar.make_url(p)) for p in answers] + [dead])
    result = await _gossip(ca)
    assert "checked 0" in result and "3 unreachable" in result, result
    assert await A.incidents(a.pool) == []
    assert await a.pool.fetchval("SELECT size FROM sync_hub_logs") == 3
    errors = {r["source"]: r["error"] for r in await G.source_states(a.pool)}
    assert errors[str(liar.make_url("/forged"))] is None  # answered; nothing matched
    assert "not a checkpoint list" in errors[str(liar.make_url("/junk"))]
    assert "larger than" in errors[str(liar.make_url("/big"))]
    assert "unreachable" in errors[dead]


async def test_trusted_origins_instances_are_asked_without_configuration(nodes):
    a, b = nodes
    await a.pool.execute(
        "INSERT INTO sync_trusted_keys (origin, key_id, source) VALUES ($1, $1, 'pinned'), "
        "('1111111111111111', '1111111111111111', 'approved')", b.origin)
    for origin, instance in ((b.origin, "http://beta.test/"), ("1111111111111111", None),
                             ("2222222222222222", "http://stranger.test")):
        await a.pool.execute(
            "INSERT INTO sync_received (origin, sequence, digest, kind, schema_version, "
            "key_id, instance, record_count) VALUES ($1, 1, $2, 'full', 2, $1, $3, 0)",
            origin, f"sha256:{origin}", instance)
    a.config._values["WB_SYNC_GOSSIP_PEERS"] = "http://friend.test, ftp://x"  # noqa: SLF001
    # configured first; an untrusted origin's instance is never asked; ourselves neither
    assert await G.sources(a.pool, a.config) == ["http://friend.test", "http://beta.test"]


async def _control_json(client, n) -> dict:
    from tests.factories import create_user, sign_in

    admin = await create_user(n.pool, "root", admin=True)
    await sign_in(client, admin)
    r = await client.get("/admin/sync-control", headers={"Accept": "application/json"})
    assert r.status == 200
    return await r.json()


async def test_a_source_cannot_make_us_flood_the_hub_with_proof_requests(
        two_nodes, aiohttp_client):
    """A node that answers with every old checkpoint of our hub: only its newest one is
    checked (one consistency proof per hub and source per round), and only once."""
    (a, ca), _ = two_nodes
    view = View(_entries("a", 9))
    hub_app = fake_hub({"a": view})
    hub = await aiohttp_client(hub_app)
    await P.add_peer(a.pool, "hub", "hub", str(hub.make_url("/a")).rstrip("/"))
    view.size = 4  # the hub showed us size 4 at our audit; it has signed up to 9
    await A.audit(a.pool, a.config, "hub")
    view.size = 9

    async def serve(request: web.Request) -> web.Response:
        return web.json_response({"checkpoints": [
            {"note": view.notes[n].decode()} for n in range(1, 10)]})

    app = web.Application()
    app.router.add_get(G.PATH, serve)
    chatty = await aiohttp_client(app)
    a.config._values["WB_SYNC_GOSSIP_PEERS"] = str(chatty.make_url(""))  # noqa: SLF001
    hub_app["asked"].clear()
    assert "checked 1" in await _gossip(ca)
    assert [p for p in hub_app["asked"] if "consistency" in p] == ["/a/tlog/proof/consistency"]
    assert await G.source_states(a.pool) and await A.incidents(a.pool) == []
    hub_app["asked"].clear()
    assert "checked 0" in await _gossip(ca)  # the same newest note: not asked again
    assert hub_app["asked"] == []
