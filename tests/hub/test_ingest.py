from __future__ import annotations

import asyncio
import base64
import gzip

import pytest

from hub import queries as Q
from protocol.bundle import Bundle
from protocol.containers import from_cbor, to_targz
from protocol.verify import verify_bundle
from tests.hub.helpers import Origin, cbor_headers, envelope, seed

# both ways of storing the index rows (``tests/hub/conftest.py``)
pytestmark = pytest.mark.usefixtures("both_stagings")


async def push(client, token, b: Bundle | bytes, **headers):
    data = b if isinstance(b, bytes) else envelope(b)
    h = cbor_headers(token)
    h.update(headers)
    return await client.post("/api/v2/bundles", data=data, headers=h)


async def test_happy_path_stores_indexes_and_logs(hub_client, hub_pool, peer, origin):
    b = origin.many(3)
    r = await push(hub_client, peer, b)
    body = await r.json()
    assert r.status == 201, body
    assert body == {"status": "stored", "digest": b.digest, "origin": origin.origin,
                    "sequence": 1, "hub_seq": 1, "accepted": 3, "withheld": 0}
    stored = await hub_pool.fetchval("SELECT container FROM hub_bundles WHERE digest = $1",
                                     b.digest)
    assert bytes(stored) == envelope(b)  # exact bytes kept
    r = await hub_client.get("/api/v2/records?entity=request")
    records = (await r.json())["records"]
    assert len(records) == 3 and all(x["origin"] == origin.origin for x in records)
    r = await hub_client.get("/api/v2/origins")
    o = (await r.json())["origins"][0]
    assert o["last_sequence"] == 1 and o["last_digest"] == b.digest
    assert o["keys"][0]["key_id"] == origin.origin


async def test_targz_push_accepted(hub_client, peer, origin):
    b = origin.many(2)
    r = await hub_client.post("/api/v2/bundles", data=to_targz(b), headers={
        "Content-Type": "application/gzip", "Authorization": f"Bearer {peer}"})
    assert r.status == 201, await r.text()
    assert (await r.json())["accepted"] == 2


async def test_duplicate_is_idempotent(hub_client, hub_pool, peer, origin):
    b = origin.many(2)
    first = await (await push(hub_client, peer, b)).json()
    r = await push(hub_client, peer, b)
    again = await r.json()
    assert r.status == 200
    assert again["status"] == "duplicate"
    assert {k: v for k, v in again.items() if k != "status"} == \
        {k: v for k, v in first.items() if k != "status"}
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 1


async def test_concurrent_duplicates_make_one_log_entry(hub_client, hub_pool, peer, origin):
    b = origin.many(5)
    answers = await asyncio.gather(*[push(hub_client, peer, b) for _ in range(6)])
    statuses = sorted(a.status for a in answers)
    assert statuses == [200] * 5 + [201]
    seqs = {(await a.json())["hub_seq"] for a in answers}
    assert seqs == {1}
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 1


async def test_equivocation_rejected_and_recorded(hub_client, hub_pool, peer, origin):
    b1 = origin.many(1)
    assert (await push(hub_client, peer, b1)).status == 201
    twin = Origin(origin.seed)  # same key, a second history
    b2 = twin.bundle([twin.request(title="Other")])
    r = await push(hub_client, peer, b2)
    body = await r.json()
    assert r.status == 409 and body["error"]["code"] == "equivocation"
    row = await hub_pool.fetchrow("SELECT * FROM hub_equivocations")
    assert row["kept_digest"] == b1.digest and row["rejected_digest"] == b2.digest
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 1


async def push_public_and_secret(client, token, origin):
    """A bundle of one public and one private record, pushed: the bundle, both records,
    the answer's status and body."""
    public = origin.request("PUB1", title="Public one")
    secret = origin.request("SECRET1", title="Secret title", body="secret body",
                            scope="private")
    b = origin.bundle([public, secret])
    r = await push(client, token, b)
    return b, public, secret, r.status, await r.json()


async def test_private_records_never_stored_indexed_or_forwarded(hub_client, hub_pool, peer,
                                                                 origin):
    b, public, secret, status, body = await push_public_and_secret(hub_client, peer, origin)
    assert status == 201, body
    assert body["accepted"] == 1 and body["withheld"] == 1
    stored = bytes(await hub_pool.fetchval("SELECT container FROM hub_bundles"))
    assert b"Secret title" not in stored and b"secret body" not in stored
    kept = from_cbor(stored)
    assert kept.manifest == b.manifest and kept.sig == b.sig
    assert set(kept.files) == {public.path}
    v = verify_bundle(kept)  # the forwarded bundle still verifies: withheld, not missing
    assert v.withheld == [secret.path]
    for path in ("/api/v2/records", "/api/v2/records?q=Secret", "/api/v2/bundles?since=0",
                 "/", "/api/v2/origins"):
        text = await (await hub_client.get(path)).text()
        assert "Secret title" not in text and "SECRET1" not in text
        assert base64.b64encode(b"Secret").decode()[:6] not in text or path != "/"
    listing = await (await hub_client.get("/api/v2/bundles?since=0")).json()
    forwarded = from_cbor(base64.b64decode(listing["entries"][0]["bundle"]))
    assert secret.path not in forwarded.files


async def test_an_unknown_key_never_waits_for_nor_takes_the_origins_lock(
        hub_client, hub_pool, peer, origin):
    """A bundle claiming a trusted origin, signed by a key the hub does not know and
    carrying a tombstone (which would take the origin's lock exclusively), is parked at
    once while another push holds that lock: an unknown key cannot make an origin's
    pushes wait, nor wait for them."""
    lock = f"wb-hub-origin:{origin.origin}"
    async with hub_pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock(hashtext($1))", lock)
        try:
            b = origin.bundle([origin.tombstone("request", "R1", 2)], signer=seed(98),
                              advance=False)
            r = await asyncio.wait_for(push(hub_client, peer, b), 20)
            body = await r.json()
            assert r.status == 202 and body["status"] == "pending", body
        finally:
            await holder.execute("SELECT pg_advisory_unlock(hashtext($1))", lock)


async def test_unknown_key_parks_bundle_then_approval_replays(hub_client, hub_pool, peer):
    stranger = Origin(seed(99))
    b = stranger.many(2)
    r = await push(hub_client, peer, b)
    body = await r.json()
    assert r.status == 202 and body["status"] == "pending"
    assert body["key_id"] == stranger.origin
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 0
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_records") == 0
    from hub.ingest import approve_key
    from protocol.limits import DEFAULT_LIMITS

    outcomes = await approve_key(hub_pool, stranger.origin, limits=DEFAULT_LIMITS)
    assert [o.result for o in outcomes] == ["stored"]  # the view answers it as 201
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_records") == 2
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_pending_bundles") == 0
    assert await Q.is_trusted(hub_pool, stranger.origin, stranger.origin)


async def test_newer_revision_wins_and_tombstone_forgets(hub_client, hub_pool, peer, origin):
    await push(hub_client, peer, origin.bundle([origin.request("X1", revision=2,
                                                               title="v2")]))
    await push(hub_client, peer, origin.bundle([origin.request("X1", revision=1,
                                                               title="old")]))
    title = await hub_pool.fetchval("SELECT title FROM hub_records WHERE id = 'X1'")
    assert title == "v2"
    await push(hub_client, peer, origin.bundle([origin.tombstone("request", "X1", 3)]))
    row = await hub_pool.fetchrow("SELECT deleted, body, title FROM hub_records "
                                  "WHERE id = 'X1'")
    assert row["deleted"] and row["body"] == "" and row["title"] is None
    await push(hub_client, peer, origin.bundle([origin.request("X1", revision=2,
                                                               title="v2")]))
    assert (await (await hub_client.get("/api/v2/records")).json())["records"] == []


async def test_first_revisions_published_again_fall_back_to_the_upsert(hub_client, hub_pool,
                                                                        peer, origin):
    """Big bundles COPY their first revisions straight into the index; one already
    indexed (the same record in another bundle) must not fail the push: it is stored
    again through the upsert, where the revision already indexed wins."""
    first = origin.bundle([origin.request("X1", title="one"), origin.request("X2", title="two")])
    assert (await push(hub_client, peer, first)).status == 201
    again = origin.bundle([origin.request("X1", title="one again"),
                           origin.request("X2", revision=2, title="two v2"),
                           origin.request("X3", title="three")])
    r = await push(hub_client, peer, again)
    assert r.status == 201 and (await r.json())["accepted"] == 3
    rows = await hub_pool.fetch(
        """SELECT r.id, r.revision, r.title, coalesce(r.digest, b.digest) AS digest
             FROM hub_records r LEFT JOIN hub_bundles b ON b.id = r.bundle ORDER BY r.id""")
    assert [(x["id"], x["revision"], x["title"]) for x in rows] == \
        [("X1", 1, "one"), ("X2", 2, "two v2"), ("X3", 1, "three")]
    assert [x["digest"] for x in rows] == [first.digest, again.digest, again.digest]


async def test_rejections_have_stable_codes(hub_client, hub_pool, peer, origin):
    # wrong token
    r = await push(hub_client, "not-a-token", origin.many(1, ))
    assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    origin.sequence, origin.previous = 0, None
    # garbage
    r = await push(hub_client, peer, b"\x00garbage")
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "unknown_container"  # not a CBOR map
    r = await push(hub_client, peer, gzip.compress(b"not a tar"),
                   **{"Content-Type": "application/gzip"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "malformed_archive"
    # forged signature: another key's signature with this origin's manifest
    b = origin.many(1, )
    forged = Bundle(b.manifest, origin.bundle([], signer=seed(5), advance=False).sig,
                    b.files, b.keys)
    r = await push(hub_client, peer, forged)
    assert r.status == 400
    assert (await r.json())["error"]["code"] in ("manifest_digest_mismatch", "bad_signature")
    # extra unlisted file
    extra = dict(b.files)
    extra["requests/EXTRA.sync.txt"] = b.files[next(iter(b.files))]
    r = await push(hub_client, peer, Bundle(b.manifest, b.sig, extra, b.keys))
    assert r.status == 400 and (await r.json())["error"]["code"] == "unlisted_file"
    # tampered file
    path = next(iter(b.files))
    r = await push(hub_client, peer, Bundle(b.manifest, b.sig,
                                            {path: b.files[path] + b"x"}, b.keys))
    assert r.status == 400 and (await r.json())["error"]["code"] == "digest_mismatch"
    # unsupported media type
    r = await push(hub_client, peer, envelope(b), **{"Content-Type": "text/plain"})
    assert r.status == 415 and (await r.json())["error"]["code"] == "unsupported_media_type"
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_bundles") == 0
    codes = {r["code"] for r in await Q.ingest_errors(hub_pool)}
    assert {"unlisted_file", "digest_mismatch", "malformed_archive"} <= codes


async def test_oversized_upload_refused(make_hub, hub_db_url, tmp_path, origin):
    from hub import typedefs as T
    from service.ids import token_hash
    from service.settings import Config

    config = Config({"WB_HUB_DATABASE_URL": hub_db_url, "WB_HUB_DATA_DIR": str(tmp_path),
                     "WB_MAX_BUNDLE_BYTES": "20000",
                     "WB_HUB_VERIFY_PROCESSES": "0"}, environ={}, dotenv=tmp_path / "no.env")
    client = await make_hub(config=config)
    assert client.server.app[T.limits_key].max_bundle_bytes == 20_000
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("x" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    b = origin.bundle([origin.request(body="x" * 5000) for _ in range(10)])
    r = await push(client, "x" * 20, b)
    assert r.status == 413 and (await r.json())["error"]["code"] == "bundle_too_large"
    assert await pool.fetchval("SELECT count(*) FROM hub_bundles") == 0


async def test_rate_limit(make_hub, origin):
    from hub import typedefs as T
    from service.ids import token_hash

    client = await make_hub(T.HubOptions(rate_per_minute=2, verify_processes=0))
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("y" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    assert (await push(client, "y" * 20, origin.many(1))).status == 201
    assert (await push(client, "y" * 20, origin.many(1))).status == 201
    r = await push(client, "y" * 20, origin.many(1))
    assert r.status == 429 and r.headers["Retry-After"] == "60"
    assert (await r.json())["error"]["code"] == "rate_limited"


async def test_chain_gap_reported(hub_client, peer, origin):
    await push(hub_client, peer, origin.many(1))
    origin.sequence = 3
    await push(hub_client, peer, origin.many(1))
    o = (await (await hub_client.get("/api/v2/origins")).json())["origins"][0]
    assert o["gaps"] == [[2, 3]] and o["last_sequence"] == 4


async def test_verifier_processes_report_rejections_and_keep_working(make_hub, origin):
    """With verification in a process pool, a rejected push answers its stable code and
    the pool stays usable for the next push."""
    from hub import typedefs as T
    from service.ids import token_hash

    client = await make_hub(T.HubOptions(verify_processes=1, inline_verify_bytes=0))
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("v" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    b = origin.many(2)
    path = next(iter(b.files))
    for _ in range(2):
        r = await push(client, "v" * 20, Bundle(b.manifest, b.sig,
                                                {path: b.files[path] + b"x"}, b.keys))
        body = await r.json()
        assert r.status == 400 and body["error"]["code"] == "digest_mismatch"
        assert body["error"]["path"] == path
    r = await push(client, "v" * 20, b)
    assert r.status == 201 and (await r.json())["accepted"] == 2


async def test_a_connection_found_closed_at_the_first_query_is_stored_on_a_fresh_one(
        hub_client, hub_pool, peer, origin, monkeypatch):
    """asyncpg hands out a pooled connection the server closed while it idled when it
    has read the server's last message but not the end: the first query then fails with
    InternalClientError (an ingest process after its backends were terminated, on a
    loaded machine). The push is stored anyway, once, not answered 500."""
    import asyncpg

    real = Q.store_bundle
    calls = []

    async def closed_once(conn, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise asyncpg.exceptions.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress")
        return await real(conn, **kwargs)

    monkeypatch.setattr(Q, "store_bundle", closed_once)
    b = origin.many(2)
    r = await push(hub_client, peer, b)
    assert r.status == 201, await r.text()
    assert len(calls) == 2
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_bundles WHERE digest = $1",
                                   b.digest) == 1
