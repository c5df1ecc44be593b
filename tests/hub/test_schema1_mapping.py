"""Schema 1 at the hub maps exactly like node import (issue 15, item 2).

The original implementation's own bundles (/work/shared/interop) are pushed to a hub
with their keys trusted, and imported by a node. Then every row of every hub table and
every answer of the hub's API is searched: no invite content and no contact email
anywhere; comments carry their own headers; the hub indexes exactly the records the
node stores.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import cbor2
import pytest

from hub import queries as Q
from node.sync.importer import import_bundle
from protocol.containers import decode_frame, from_cbor, from_targz, to_cbor
from protocol.errors import ProtocolError
from protocol.signature import parse_public_key_file
from protocol.verify import peek_origin, verify_bundle
from service import db
from service.bundle_io import read_bundle
from service.ids import token_hash
from tests.hub.helpers import cbor_headers

INTEROP = Path("/work/shared/interop")
TOKEN = "schema1-peer-token-0123456789"
NODE = "00000000000000ff"  # the importing node's own origin
#: what the originals carry that must never be published: contact emails and invite text
#: (an empty ``Contact-Email:`` header in a relayed file holds no address)
NEEDLES = [b"aadmin@example.org", b"obob@example.org", b"Gratitude",
           b"Suggested-Username", b"Max-Uses", b"Auto-Approve", b"welcome\n"]


def originals():
    yield read_bundle(INTEROP / "original-v1")
    for name in ("client-upload", "hub-download"):
        data = (INTEROP / "original-v1-wire" / f"{name}.tar.gz").read_bytes()
        yield from_targz(data, original_hub=True)


@pytest.fixture
async def ingested(hub_client, hub_pool, pg):
    from node.app import MIGRATIONS

    await Q.add_peer(hub_pool, "original", "node", token_hash(TOKEN))
    url = await pg.new_database(await pg.template("node", MIGRATIONS))
    node = await db.create_pool(url, max_size=2)
    origins = []
    for bundle in originals():
        origin, key_id = peek_origin(bundle)
        key = bundle.keys[key_id]
        await Q.trust_key(hub_pool, origin, key_id, parse_public_key_file(key, key_id),
                          "original")
        r = await hub_client.post("/api/v2/bundles", data=to_cbor(bundle),
                                  headers=cbor_headers(TOKEN))
        if r.status != 201:
            # refused: the node refuses it too, with the same code (one mapping)
            code = (await r.json())["error"]["code"]
            with pytest.raises(ProtocolError) as refused:
                await import_bundle(node, bundle, our_origin=NODE, approved=True)
            assert refused.value.code == code and r.status == 400
            continue
        origins.append(origin)
        assert (await import_bundle(node, bundle, our_origin=NODE,
                                    approved=True)).result == "applied"
    assert len(origins) >= 2  # original-v1 and the client upload
    yield hub_client, hub_pool, node, origins
    await node.close()
    await pg.drop(url)


def leaks(blob: bytes) -> list[bytes]:
    return [n for n in NEEDLES if n in blob]


def flatten(value) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:  # a stored envelope: search its files, not only its CBOR framing
            b = from_cbor(data)
            return data + b"".join(b.files.values())
        except Exception:  # noqa: BLE001 - not an envelope
            return data
    if isinstance(value, list | tuple):
        return b"\n".join(flatten(v) for v in value)
    return str(value).encode()


async def test_no_table_holds_an_invite_or_a_contact_email(ingested):
    _, hub_pool, _, _ = ingested
    tables = [r["table_name"] for r in await hub_pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE' ORDER BY 1")]
    assert "hub_records" in tables and "hub_bundles" in tables
    scanned = 0
    for table in tables:
        for row in await hub_pool.fetch(f'SELECT * FROM "{table}"'):  # noqa: S608
            for column, value in row.items():
                found = leaks(flatten(value))
                assert not found, f"{table}.{column} holds {found}"
                scanned += 1
    assert scanned > 50
    assert await hub_pool.fetchval(
        "SELECT count(*) FROM hub_records WHERE entity = 'invite'") == 0
    # the files that carried them are withheld from the stored copies (they still verify)
    # (the original hub's download carries neither, so only the others lose files)
    withheld = 0
    for row in await hub_pool.fetch("SELECT container, withheld_count FROM hub_bundles"):
        v = verify_bundle(from_cbor(bytes(row["container"])), trust=lambda o, k: True)
        assert row["withheld_count"] == len(v.withheld)
        withheld += len(v.withheld)
    assert withheld >= 2


async def test_no_api_answer_holds_an_invite_or_a_contact_email(ingested):
    client, hub_pool, _, origins = ingested
    answers: dict[str, bytes] = {}
    for path in ("/api/v2/bundles?since=0", "/api/v2/records?limit=500",
                 "/api/v2/records?entity=invite", "/api/v2/records?q=example.org",
                 "/api/v2/origins", "/", "/.well-known/whiteballoon-hub",
                 "/api/v1/sync/original/bundle", "/api/v1/sync/original/status"):
        r = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status == 200, (path, r.status)
        answers[path] = await r.read()
    r = await client.get("/api/v2/bundles?since=0", headers={"Accept": "application/cbor"})
    answers["log (cbor)"] = b"".join(flatten(e["bundle"])
                                     for e in cbor2.loads(await r.read())["entries"])
    page = json.loads(answers["/api/v2/bundles?since=0"])
    answers["log (json, decoded)"] = b"".join(
        flatten(base64.b64decode(e["bundle"])) for e in page["entries"])
    answers["v1 pull (decoded)"] = b"".join(
        from_targz(answers["/api/v1/sync/original/bundle"]).files.values())
    frames = b""
    head = (await Q.log_state(hub_pool))[0]
    async with client.ws_connect("/api/v2/stream?since=0") as ws:
        seen = 0
        while seen < head:
            frame = decode_frame((await asyncio.wait_for(ws.receive(), 10)).data)
            seen = max(seen, frame.seq or 0)
            if frame.op == "bundle":
                frames += b"".join(frame.bundle.files.values())
    answers["stream"] = frames
    for name, body in answers.items():
        assert not leaks(body), f"{name} serves {leaks(body)}"
    assert json.loads(answers["/api/v2/records?entity=invite"])["records"] == []
    assert len(page["entries"]) == len(origins)


async def test_comments_carry_their_own_headers(ingested):
    client, _, _, origins = ingested
    r = await client.get(f"/api/v2/records?origin={origins[0]}&entity=comment")
    comments = (await r.json())["records"]
    assert {c["id"] for c in comments} == {"1", "2", "3"}
    for c in comments:
        h = c["headers"]
        assert h["Entity"] == "comment" and h["ID"] == c["id"], c
        assert h["Request"] in (f"{origins[0]}/1", f"{origins[0]}/2"), c
        assert h["Created-By"].startswith(f"{origins[0]}/"), c
        assert "Title" not in h and "Status" not in h and "Contact-Email" not in h, c
    r = await client.get(f"/api/v2/records?origin={origins[0]}&entity=request")
    requests = (await r.json())["records"]
    assert requests and all("Contact-Email" not in q["headers"] for q in requests)


async def test_hub_index_holds_exactly_what_node_import_stores(ingested):
    _, hub_pool, node, origins = ingested
    hub = {(r["origin"], r["entity"], r["id"]) for r in await hub_pool.fetch(
        "SELECT origin, entity, id FROM hub_records WHERE NOT deleted")}
    stored = set()
    for table, entity in (("users", "user"), ("requests", "request"),
                          ("comments", "comment")):
        for r in await node.fetch(f"SELECT origin, origin_id FROM {table} "  # noqa: S608
                                  "WHERE origin = ANY($1)", origins):
            stored.add((r["origin"], entity, r["origin_id"]))
    assert hub == stored and len(hub) >= 10
    assert await node.fetchval(
        "SELECT count(*) FROM users WHERE origin = ANY($1) AND contact_email IS NOT NULL",
        origins) == 0
    assert await node.fetchval("SELECT count(*) FROM invites") == 0
