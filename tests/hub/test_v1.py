"""The v1 API as the original's clients speak it: the captured upload and download go
through it in both encodings; answers have the original's codes and fields."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import aiohttp
import pytest

from conformance_tests import v1wire as W
from hub import ingest as I
from hub import queries as Q
from hub import typedefs as T
from protocol.containers import from_targz, to_targz
from protocol.limits import DEFAULT_LIMITS
from protocol.signature import parse_signature
from service.ids import token_hash
from service.settings import Config
from tests.hub.conftest import PEER_TOKEN

WIRE = Path("/work/shared/interop/original-v1-wire")
CAPTURES = {"client-upload": "cf0a771f48cf9ca5", "hub-download": "cca47568854c109d"}


def capture(name: str) -> bytes:
    return (WIRE / f"{name}.tar.gz").read_bytes()


def key_of(archive: bytes) -> bytes:
    return parse_signature(from_targz(archive, original_hub=True).sig).public_key


def auth(token: str = PEER_TOKEN, key: bytes | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {token}"}
    if key is not None:
        h[W.PUBLIC_KEY_HEADER] = base64.b64encode(key).decode()
    return h


async def upload(client, archive: bytes, encoding: str, headers: dict[str, str],
                 peer: str = "alpha"):
    if encoding == "multipart":
        form = aiohttp.FormData()
        form.add_field("bundle", archive, filename="bundle.tar.gz",
                       content_type="application/gzip")
        return await client.post(f"/api/v1/sync/{peer}/bundle", data=form, headers=headers)
    return await client.post(f"/api/v1/sync/{peer}/bundle", data=archive,
                             headers={**headers, "Content-Type": "application/gzip"})


async def register(pool, name: str = "alpha", token: str = PEER_TOKEN,
                   key: bytes | None = None) -> None:
    from protocol.signature import key_id

    await Q.add_peer(pool, name, "node", token_hash(token))
    if key is not None:
        await Q.trust_key(pool, key_id(key), key_id(key), key, name)


async def records_of(client, origin: str) -> list[dict]:
    r = await client.get(f"/api/v2/records?origin={origin}&limit=500")
    assert r.status == 200
    return (await r.json())["records"]


@pytest.mark.parametrize("name", sorted(CAPTURES))
@pytest.mark.parametrize("encoding", ["multipart", "raw"])
async def test_captured_archive_is_stored_and_served_by_v2(hub_client, hub_pool, name,
                                                           encoding):
    archive = capture(name)
    key = key_of(archive)
    await register(hub_pool, key=key)
    r = await upload(hub_client, archive, encoding, auth(key=key))
    body = await r.json()
    assert r.status == 202, body
    assert set(W.ACCEPTED_FIELDS) <= set(body)
    expected = from_targz(archive, original_hub=True)
    assert body["peer"] == "alpha" and body["manifest_digest"] == expected.digest
    assert body["signed_at"] == parse_signature(expected.sig).signed_at
    assert body["stored_files"] == len(expected.to_files())
    assert body["stored_bytes"] == sum(len(v) for v in expected.to_files().values())
    assert body["auto_registered"] is False
    records = await records_of(hub_client, CAPTURES[name])
    assert records and {r["origin"] for r in records} == {CAPTURES[name]}
    # hub_metadata.json is no record and was not stored
    r = await hub_client.get("/api/v1/sync/alpha/bundle", headers=auth())
    assert r.status == 200
    assert r.headers["Content-Disposition"] == "attachment; filename=alpha_public_sync.tar.gz"
    assert r.headers[W.AUTO_HEADER] == "false"
    served = from_targz(await r.read())  # our download is strict tar.gz: no duplicates
    assert served.digest == expected.digest and W.HUB_METADATA not in served.to_files()
    # the same upload again (other encoding) is a no-op answered 202
    again = await upload(hub_client, archive, "raw" if encoding == "multipart" else
                         "multipart", auth(key=key))
    assert again.status == 202 and (await again.json())["status"] == "duplicate"


async def test_status_has_the_original_shape(hub_client, hub_pool):
    archive = capture("client-upload")
    key = key_of(archive)
    await register(hub_pool, key=key)
    r = await hub_client.get("/api/v1/sync/alpha/status", headers=auth())
    empty = await r.json()
    assert r.status == 200 and empty["has_bundle"] is False and empty["metadata"] is None
    assert (await upload(hub_client, archive, "multipart", auth(key=key))).status == 202
    status = await (await hub_client.get("/api/v1/sync/alpha/status", headers=auth())).json()
    assert set(W.STATUS_FIELDS) <= set(status) and set(status["metadata"]) == set(
        W.METADATA_FIELDS)
    bundle = from_targz(archive, original_hub=True)
    assert status["metadata"]["manifest_digest"] == bundle.digest
    assert status["metadata"]["signed_at"] == parse_signature(bundle.sig).signed_at
    # the files carrying invites and contact e-mails are withheld from the stored copy
    withheld = await hub_pool.fetchval(
        "SELECT withheld_count FROM hub_bundles WHERE digest = $1", bundle.digest)
    assert withheld > 0
    assert status["file_count"] == len(bundle.to_files()) - withheld


async def test_untrusted_key_is_400_peer_key_mismatch_and_nothing_published(hub_client,
                                                                            hub_pool):
    archive = capture("client-upload")
    await register(hub_pool)  # the peer exists, its key is not trusted
    r = await upload(hub_client, archive, "multipart", auth(key=key_of(archive)))
    body = await r.json()
    assert r.status == 400, body
    detail = body["detail"]
    assert detail["error"] == "peer_key_mismatch" and detail["peer"] == "alpha"
    assert detail["pending_id"] == "cf0a771f48cf9ca5" and detail["message"]
    assert await records_of(hub_client, "cf0a771f48cf9ca5") == []
    outcomes = await I.approve_key(hub_pool, detail["pending_id"], limits=DEFAULT_LIMITS)
    # approve_key ran outside the app: its NOTIFY moves the head the records cache is
    # keyed by; wait for it rather than race it (a cached empty answer came back once)
    stored = max(o.stored_seq or 0 for o in outcomes)
    assert stored
    await hub_client.server.app[T.broadcaster_key].wait_beyond(stored - 1, 30)
    assert await records_of(hub_client, "cf0a771f48cf9ca5")


def _tar(members: list[tuple[str, bytes | None]]) -> bytes:
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


@pytest.mark.parametrize("encoding", ["multipart", "raw"])
async def test_a_differing_duplicate_is_still_duplicate_path(hub_client, hub_pool, origin,
                                                             encoding):
    await register(hub_pool, key=origin.public_key)
    b = origin.many(1)
    files = b.to_files()
    path = next(p for p in files if p.startswith("requests/"))
    archive = _tar([*((p, d) for p, d in files.items()), (path, files[path] + b"evil")])
    r = await upload(hub_client, archive, encoding, auth(key=origin.public_key))
    body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "duplicate_path", body
    assert isinstance(body["detail"], str) and "duplicate_path" in body["detail"]
    assert await records_of(hub_client, origin.origin) == []


async def test_errors_have_the_original_shape(hub_client, hub_pool, origin):
    await register(hub_pool, key=origin.public_key)
    await register(hub_pool, "beta", "beta-token-0123456789")
    archive = to_targz(origin.many(1))
    cases = [
        (await upload(hub_client, archive, "multipart", {}), 401, "unauthorized"),
        (await upload(hub_client, archive, "multipart", auth("wrong-token-0123456789")), 401,
         "unauthorized"),
        # a real other peer's name with my token: not mine
        (await upload(hub_client, archive, "multipart", auth(), peer="beta"), 401,
         "unauthorized"),
        (await upload(hub_client, archive, "multipart", auth(), peer="nobody"), 404,
         "unknown_peer"),
        (await hub_client.get("/api/v1/sync/nobody/status", headers=auth()), 404,
         "unknown_peer"),
        (await upload(hub_client, b"not gzip at all", "raw", auth()), 400,
         "malformed_archive"),
        (await upload(hub_client, archive, "multipart",
                      auth(key=b"\x01" * 32)), 400, "public_key_mismatch"),
        (await hub_client.post("/api/v1/sync/alpha/bundle", data=b"{}",
                               headers={**auth(), "Content-Type": "application/json"}), 415,
         "unsupported_media_type"),
    ]
    for r, status, code in cases:
        body = await r.json()
        assert r.status == status and body["error"]["code"] == code, (status, code, body)
        assert isinstance(body["detail"], str) and body["detail"], body
    r = await hub_client.post("/api/v1/sync/alpha/bundle", data=b"--x\r\n",
                              headers={**auth(), "Content-Type": "multipart/form-data"})
    body = await r.json()  # no boundary: a precise 400, not a 500
    assert r.status == 400 and body["error"]["code"] == "malformed_multipart", body
    form = aiohttp.FormData()
    form.add_field("file", archive, filename="bundle.tar.gz", content_type="application/gzip")
    r = await hub_client.post("/api/v1/sync/alpha/bundle", data=form, headers=auth())
    body = await r.json()
    assert r.status == 422 and body["detail"][0]["loc"] == ["body", "bundle"], body
    assert await records_of(hub_client, origin.origin) == []


async def test_multipart_upload_is_capped_while_streaming(make_hub, hub_db_url, tmp_path,
                                                          origin):
    client = await make_hub(config=Config(
        {"WB_HUB_DATABASE_URL": hub_db_url, "WB_HUB_DATA_DIR": str(tmp_path),
         "WB_MAX_BUNDLE_BYTES": str(64 * 1024), "WB_HUB_VERIFY_PROCESSES": "0"},
        environ={}, dotenv=tmp_path / "no.env"))
    pool = client.server.app[T.pool_key]
    await register(pool, key=origin.public_key)

    async def huge():  # chunked: no Content-Length announces the size
        body, _ = W.multipart_body(b"\x1f\x8b" + b"\0" * (8 << 20), boundary="cap")
        for i in range(0, len(body), 1 << 16):
            yield body[i:i + (1 << 16)]

    r = await client.post("/api/v1/sync/alpha/bundle", data=huge(), headers={
        **auth(), "Content-Type": "multipart/form-data; boundary=cap"})
    body = await r.json()
    assert r.status == 413 and body["error"]["code"] == "bundle_too_large", body
    assert isinstance(body["detail"], str)


async def test_auto_registration_is_off_by_default(hub_client, origin):
    r = await upload(hub_client, to_targz(origin.many(1)), "multipart",
                     auth("newcomer-token-0123456789", origin.public_key), peer="newcomer")
    assert r.status == 404
    r = await hub_client.get("/api/v1/sync/newcomer/status",
                             headers=auth("newcomer-token-0123456789", origin.public_key))
    assert r.status == 404


async def test_auto_registered_peer_waits_pending_until_the_admin_approves(make_hub, origin):
    client = await make_hub(T.HubOptions(v1_auto_register=True))
    pool = client.server.app[T.pool_key]
    # even a key the hub already trusts publishes nothing through a pending peer
    await Q.add_peer(pool, "trusted", "hub", token_hash("t" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "trusted")
    token = "newcomer-token-0123456789"
    r = await client.get("/api/v1/sync/newcomer/bundle", headers=auth(token, origin.public_key))
    assert r.status == 404  # registered by this first pull, nothing stored for it
    peer = await Q.get_peer(pool, "newcomer")
    assert peer["status"] == "pending"
    r = await upload(client, to_targz(origin.many(2)), "multipart", auth(token, origin.public_key),
                     peer="newcomer")
    body = await r.json()
    assert r.status == 400 and body["detail"]["error"] == "peer_key_mismatch", body
    assert body["detail"]["pending_id"] == origin.origin
    assert await records_of(client, origin.origin) == []
    status = await (await client.get("/api/v1/sync/newcomer/status",
                                      headers=auth(token))).json()
    assert status["has_bundle"] is False and status["pending"] is True
    # the v2 API does not take a pending peer's token either
    r = await client.post("/api/v2/bundles", data=to_targz(origin.many(1)),
                          headers={**auth(token), "Content-Type": "application/gzip"})
    assert r.status == 403 and "approval" in (await r.json())["error"]["message"]
    outcomes = await I.approve_key(pool, origin.origin, limits=DEFAULT_LIMITS)
    assert (await Q.get_peer(pool, "newcomer"))["status"] == "active"
    # the records API answers from a cache keyed by the log head this process knows,
    # which the stored push's NOTIFY moves: wait for it rather than race it
    await client.server.app[T.broadcaster_key].wait_beyond(outcomes[0].stored_seq - 1, 30)
    assert len(await records_of(client, origin.origin)) == 2
    r = await client.get("/api/v1/sync/newcomer/bundle", headers=auth(token))
    assert r.status == 200


async def test_a_pending_peer_cannot_flood_the_queue(make_hub, origin):
    client = await make_hub(T.HubOptions(v1_auto_register=True, rate_per_minute=2))
    token = "newcomer-token-0123456789"
    codes = []
    for _ in range(3):
        r = await upload(client, to_targz(origin.many(1)), "multipart",
                         auth(token, origin.public_key), peer="newcomer")
        codes.append(r.status)
    assert codes == [400, 400, 429]
    pool = client.server.app[T.pool_key]
    assert await pool.fetchval("SELECT count(*) FROM hub_pending_bundles") == 2


async def test_auto_registration_needs_the_public_key_and_a_free_token(make_hub, origin):
    client = await make_hub(T.HubOptions(v1_auto_register=True))
    pool = client.server.app[T.pool_key]
    await register(pool, key=origin.public_key)
    r = await client.get("/api/v1/sync/newcomer/status", headers=auth("n" * 20))
    assert r.status == 404  # no X-WB-Public-Key: not registered
    # alpha's token under a new name: not a second registration of the same token
    r = await client.get("/api/v1/sync/newcomer/status", headers=auth(key=origin.public_key))
    assert r.status == 401
    r = await client.get("/api/v1/sync/Bad%20Name/status",
                         headers=auth("n" * 20, origin.public_key))
    assert r.status == 400
    assert await Q.get_peer(pool, "newcomer") is None
