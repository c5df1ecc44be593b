from __future__ import annotations

import hashlib

from node.sync import peers as P
from protocol.bundle import Bundle, build_bundle
from protocol.containers import CBOR_MEDIA_TYPE, to_cbor
from protocol.records import make_record
from protocol.signature import key_id, public_key_from_seed

SEED = hashlib.sha256(b"inbox origin").digest()
ORIGIN = key_id(public_key_from_seed(SEED))


def _bundle() -> Bundle:
    rec = make_record("request", {"ID": "R9", "Origin": ORIGIN, "Instance": "http://x.test",
                                  "Revision": 3, "Updated-At": "2026-01-01T00:00:00Z",
                                  "Title": "From the hub", "Status": "open",
                                  "Created-By": f"{ORIGIN}/U1"}, "hello")
    return build_bundle([rec], seed=SEED, origin=ORIGIN, instance="http://x.test", sequence=1,
                        previous=None, kind="delta", created_at="2026-01-01T00:00:00Z",
                        signed_at="2026-01-01T00:00:00Z")


async def test_inbox_requires_hub_token_and_verifies(node_client, node_pool):
    await P.add_peer(node_pool, "hub", "hub", "http://hub.test", inbox_token="s3cret-token",
                     pins=[ORIGIN])
    body = to_cbor(_bundle())
    r = await node_client.post("/sync/inbox", data=body,
                               headers={"Content-Type": CBOR_MEDIA_TYPE})
    assert r.status == 401
    auth = {"Authorization": "Bearer s3cret-token", "Content-Type": CBOR_MEDIA_TYPE,
            "Accept": "application/json"}
    b = _bundle()
    forged = Bundle(b.manifest, b.sig, {**b.files, "requests/X.sync.txt": b"x"}, b.keys)
    r = await node_client.post("/sync/inbox", data=to_cbor(forged), headers=auth)
    assert r.status == 400 and (await r.json())["error"]["code"] == "unlisted_file"
    assert await node_pool.fetchval("SELECT count(*) FROM requests") == 0
    r = await node_client.post("/sync/inbox", data=body, headers=auth)
    assert r.status == 201, await r.text()
    assert await node_pool.fetchval("SELECT title FROM requests WHERE origin = $1",
                                    ORIGIN) == "From the hub"
    r = await node_client.post("/sync/inbox", data=body, headers=auth)
    assert r.status == 200 and (await r.json())["result"] == "duplicate"
    metrics = await (await node_client.get("/metrics")).text()
    assert 'wb_sync_jobs_total{kind="inbox",result="ok"} 1.0' in metrics
