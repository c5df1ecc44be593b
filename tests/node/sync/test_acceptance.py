"""Acceptance: the original implementation's sync failures cannot happen here."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from node.sync import importer as I
from node.sync import peers as P
from node.sync import transport as T
from node.sync.service import run_export, run_import
from protocol.bundle import Bundle, build_bundle
from protocol.errors import ProtocolError
from protocol.records import make_record
from service.bundle_io import read_bundle
from tests.factories import create_user

ORIGINAL_V1 = Path("/work/shared/interop/original-v1")
V1_KEY = "ec2609150b8fe2ae"


async def _public_request(pool, rid: str, user: str, title: str = "Need a ladder") -> None:
    await pool.execute(
        "INSERT INTO requests (id, title, description, created_by, sync_scope) "
        "VALUES ($1, $2, 'details', $3, 'public')", rid, title, user)


async def _table_counts(pool) -> tuple:
    return tuple([await pool.fetchval(f"SELECT count(*) FROM {t}")
                  for t in ("users", "requests", "comments", "sync_received")])


async def test_forged_file_added_to_signed_bundle_is_rejected_and_nothing_written(nodes):
    a, b = nodes
    ann = await create_user(a.pool, "ann", scope="public")
    await _public_request(a.pool, "R1", ann)
    res = await run_export(a.pool, a.config)
    await P.pin_key(b.pool, a.origin)
    forged = make_record("request", {
        "ID": "EVIL", "Origin": a.origin, "Instance": "http://alpha.test", "Revision": 1,
        "Updated-At": "2026-01-01T00:00:00Z", "Title": "Send money", "Status": "open",
        "Created-By": f"{a.origin}/{ann}"}, "forged")
    from protocol.records import render_record
    bad = Bundle(res.bundle.manifest, res.bundle.sig,
                 {**res.bundle.files, forged.path: render_record(forged)}, res.bundle.keys)
    before = await _table_counts(b.pool)
    with pytest.raises(ProtocolError) as err:
        await run_import(b.pool, b.config, [bad])
    assert err.value.code == "unlisted_file"
    # a listed file whose bytes were changed is refused too
    path = next(iter(res.bundle.files))
    tampered = Bundle(res.bundle.manifest, res.bundle.sig,
                      {**res.bundle.files, path: res.bundle.files[path] + b"x"}, res.bundle.keys)
    with pytest.raises(ProtocolError) as err:
        await run_import(b.pool, b.config, [tampered])
    assert err.value.code == "digest_mismatch"
    assert await _table_counts(b.pool) == before
    job = await b.pool.fetchrow("SELECT result, error_code FROM sync_jobs ORDER BY id DESC")
    assert (job["result"], job["error_code"]) == ("rejected", "digest_mismatch")


async def test_overlapping_ids_do_not_overwrite_each_other(nodes):
    a, b = nodes
    # both nodes have a member and a request with the very same local IDs
    for node, name in ((a, "ann"), (b, "bob")):
        await node.pool.execute(
            "INSERT INTO users (id, username, sync_scope) VALUES ('1', $1, 'public')", name)
        await _public_request(node.pool, "1", "1", title=f"{name}'s request")
    await P.pin_key(b.pool, a.origin)
    await P.pin_key(a.pool, b.origin)
    ra = await run_export(a.pool, a.config)
    rb = await run_export(b.pool, b.config)
    await run_import(b.pool, b.config, [ra.bundle])
    await run_import(a.pool, a.config, [rb.bundle])
    for node, mine, theirs, other in ((a, "ann", "bob", b), (b, "bob", "ann", a)):
        local = await node.pool.fetchrow("SELECT * FROM requests WHERE id = '1'")
        assert local["origin"] is None and local["title"] == f"{mine}'s request"
        assert await node.pool.fetchval("SELECT username FROM users WHERE id='1'") == mine
        remote = await node.pool.fetchrow(
            "SELECT * FROM requests WHERE origin = $1 AND origin_id = '1'", other.origin)
        assert remote["title"] == f"{theirs}'s request"
        assert remote["created_by"] == f"{other.origin}.1"


async def test_schema1_bundle_imports_without_touching_local_rows(nodes):
    a, _ = nodes
    # local rows with the same integer IDs as the original bundle
    await a.pool.execute("INSERT INTO users (id, username) VALUES ('1', 'localone')")
    await a.pool.execute("INSERT INTO users (id, username) VALUES ('2', 'localtwo')")
    await _public_request(a.pool, "1", "1", title="local request")
    bundle = read_bundle(ORIGINAL_V1)
    await P.pin_key(a.pool, V1_KEY)
    [res] = await run_import(a.pool, a.config, [bundle])
    assert res.result == "applied" and res.schema_version == 1
    assert res.applied == {"user": 2, "request": 2, "comment": 3}
    assert await a.pool.fetchval("SELECT username FROM users WHERE id = '1'") == "localone"
    assert await a.pool.fetchval("SELECT title FROM requests WHERE id = '1'") == "local request"
    remote = await a.pool.fetchrow("SELECT * FROM requests WHERE id = $1", f"{V1_KEY}.1")
    assert remote["title"] == "[a] Need a ride to the clinic Tuesday"
    assert remote["created_by"] == f"{V1_KEY}.1" and remote["origin"] == V1_KEY
    thread = await a.pool.fetch(
        "SELECT body, created_by FROM comments WHERE request_id = $1 ORDER BY origin_id",
        f"{V1_KEY}.1")
    assert [r["body"] for r in thread] == ["I can drive you at 10am\n",
                                           "Thank you!\nSee you then.\n"]
    # invite tokens from the original are never stored
    assert await a.pool.fetchval("SELECT count(*) FROM invites") == 0
    # importing the same bundle again is a no-op
    [again] = await run_import(a.pool, a.config, [bundle])
    assert again.result == "duplicate"


async def test_request_made_private_disappears_from_peer_after_next_sync(nodes):
    a, b = nodes
    ann = await create_user(a.pool, "ann", scope="public")
    await _public_request(a.pool, "R1", ann, title="Secret later")
    await a.pool.execute(
        "INSERT INTO comments (id, request_id, created_by, body, sync_scope) "
        "VALUES ('C1', 'R1', $1, 'a reply', 'public')", ann)
    await P.pin_key(b.pool, a.origin)
    first = await run_export(a.pool, a.config)
    await run_import(b.pool, b.config, [first.bundle])
    assert await b.pool.fetchval(
        "SELECT count(*) FROM requests WHERE origin = $1 AND deleted_at IS NULL", a.origin) == 1
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R1'")
    second = await run_export(a.pool, a.config)
    assert second.sequence == 2 and second.counts == {"request_tombstones": 1,
                                                      "comment_tombstones": 1}
    assert b"Secret later" not in second.envelope
    await run_import(b.pool, b.config, [second.bundle])
    row = await b.pool.fetchrow("SELECT * FROM requests WHERE origin_id = 'R1'")
    assert row["deleted_at"] is not None and row["title"] == "" and row["description"] == ""
    c = await b.pool.fetchrow("SELECT * FROM comments WHERE origin_id = 'C1'")
    assert c["deleted_at"] is not None and c["body"] == ""
    # exported once: the next export has nothing to say and writes no chain link
    third = await run_export(a.pool, a.config)
    assert third.sequence is None
    assert await a.pool.fetchval("SELECT sequence FROM node_sync_state") == 2
    # a replay of the first bundle cannot resurrect it
    assert (await run_import(b.pool, b.config, [first.bundle]))[0].result == "duplicate"


async def test_delta_export_holds_only_changes_and_chains(nodes):
    a, _ = nodes
    ann = await create_user(a.pool, "ann", scope="public")
    await create_user(a.pool, "hidden", scope="private")
    await _public_request(a.pool, "R1", ann)
    first = await run_export(a.pool, a.config)
    await a.pool.execute("UPDATE requests SET title = 'Need a tall ladder' WHERE id = 'R1'")
    second = await run_export(a.pool, a.config)
    assert list(second.bundle.files) == ["requests/R1.sync.txt"]
    assert b"Previous: " + first.digest.encode() in second.bundle.manifest
    assert b"Sequence: 2" in second.bundle.manifest


async def _signed(origin_seed: bytes, sequence: int, previous: str | None, title: str):
    from protocol.signature import key_id, public_key_from_seed

    origin = key_id(public_key_from_seed(origin_seed))
    rec = make_record("user", {"ID": "U1", "Origin": origin, "Instance": "http://x.test",
                               "Revision": sequence, "Updated-At": "2026-01-01T00:00:00Z",
                               "Username": title})
    return origin, build_bundle([rec], seed=origin_seed, origin=origin,
                                instance="http://x.test", sequence=sequence,
                                previous=previous, kind="delta",
                                created_at="2026-01-01T00:00:00Z",
                                signed_at="2026-01-01T00:00:00Z")


async def test_gap_and_equivocation_are_recorded(nodes):
    a, _ = nodes
    seed = hashlib.sha256(b"remote node").digest()
    origin, b1 = await _signed(seed, 1, None, "one")
    await P.pin_key(a.pool, origin)
    await run_import(a.pool, a.config, [b1])
    _, b4 = await _signed(seed, 4, "0" * 64, "four")
    [res] = await run_import(a.pool, a.config, [b4])
    assert res.gaps == [2, 3]
    assert [r["sequence"] for r in await a.pool.fetch(
        "SELECT sequence FROM sync_gaps WHERE origin = $1 ORDER BY 1", origin)] == [2, 3]
    _, b2 = await _signed(seed, 2, b1.digest, "two")
    await run_import(a.pool, a.config, [b2])
    assert [r["sequence"] for r in await a.pool.fetch(
        "SELECT sequence FROM sync_gaps WHERE origin = $1", origin)] == [3]
    # the newer revision (4) stays; the late sequence 2 (revision 2) did not overwrite it
    assert await a.pool.fetchval("SELECT username FROM users WHERE origin = $1", origin) == "four"
    _, evil = await _signed(seed, 4, "1" * 64, "forked")
    with pytest.raises(I.SyncError) as err:
        await run_import(a.pool, a.config, [evil])
    assert err.value.code == "equivocation"
    eq = await a.pool.fetchrow("SELECT * FROM sync_equivocations")
    assert (eq["origin"], eq["sequence"], eq["known_digest"], eq["rejected_digest"]) == (
        origin, 4, b4.digest, evil.digest)
    assert await a.pool.fetchval("SELECT username FROM users WHERE origin = $1", origin) == "four"


async def test_unknown_key_is_queued_and_approval_replays(nodes):
    a, b = nodes
    ann = await create_user(a.pool, "ann", scope="public")
    await _public_request(a.pool, "R1", ann)
    first = await run_export(a.pool, a.config)
    await a.pool.execute("UPDATE requests SET title = 'Updated' WHERE id = 'R1'")
    second = await run_export(a.pool, a.config)
    results = await run_import(b.pool, b.config, [first.bundle, second.bundle])
    assert [r.result for r in results] == ["pending", "pending"]
    assert await b.pool.fetchval("SELECT count(*) FROM requests") == 0
    pend = await I.list_pending(b.pool)
    assert len(pend) == 2 and pend[0]["origin"] == a.origin
    replayed = await I.approve_pending(b.pool, pend[1]["id"], our_origin=b.origin,
                                       actor="test")
    assert [r.sequence for r in replayed] == [1, 2]
    assert await b.pool.fetchval("SELECT title FROM requests WHERE origin = $1",
                                 a.origin) == "Updated"
    assert await I.list_pending(b.pool) == []
    # a discarded bundle leaves no trace and no trust
    seed = hashlib.sha256(b"stranger").digest()
    stranger, sb = await _signed(seed, 1, None, "stranger")
    await run_import(b.pool, b.config, [sb])
    [p] = await I.list_pending(b.pool)
    assert await I.discard_pending(b.pool, p["id"])
    assert await b.pool.fetchval("SELECT count(*) FROM sync_trusted_keys WHERE origin = $1",
                                 stranger) == 0


async def test_push_pull_through_directory_peer_with_comment_travelling_back(nodes, tmp_path):
    a, b = nodes
    shared = tmp_path / "exchange"
    await P.add_peer(a.pool, "ex", "dir", str(shared), pins=[b.origin])
    await P.add_peer(b.pool, "ex", "dir", str(shared), pins=[a.origin])
    ann = await create_user(a.pool, "ann", scope="public")
    await _public_request(a.pool, "R1", ann, title="Need soup")
    await run_export(a.pool, a.config)
    pushed = await T.push(a.pool, a.config, "ex")
    assert pushed.bundles == 1
    pulled = await T.pull(b.pool, b.config, "ex")
    assert [i["result"] for i in pulled.imported] == ["applied"] and not pulled.errors
    # a member of B comments on A's request; the comment travels back to A's local row
    bob = await create_user(b.pool, "bob", scope="public")
    remote_req = await b.pool.fetchval("SELECT id FROM requests WHERE origin = $1", a.origin)
    await b.pool.execute(
        "INSERT INTO comments (id, request_id, created_by, body, sync_scope) "
        "VALUES ('BC1', $1, $2, 'I can bring soup', 'public')", remote_req, bob)
    exported = await run_export(b.pool, b.config)
    assert f"Request: {a.origin}/R1".encode() in exported.bundle.files["comments/BC1.sync.txt"]
    await T.push(b.pool, b.config, "ex")
    back = await T.pull(a.pool, a.config, "ex")
    assert [i["result"] for i in back.imported] == ["applied"]
    row = await a.pool.fetchrow("SELECT * FROM comments WHERE origin = $1", b.origin)
    assert row["request_id"] == "R1" and row["body"] == "I can bring soup"
    assert row["created_by"] == f"{b.origin}.{bob}"
    # a second pull finds nothing new; its own bundles are never re-imported
    again = await T.pull(a.pool, a.config, "ex")
    assert again.bundles == 0
    peer = await P.get_peer(a.pool, "ex")
    assert peer["last_success_at"] is not None and peer["push_sequence"] == 1
    jobs = await a.pool.fetch("SELECT kind, result FROM sync_jobs ORDER BY id")
    assert ("pull", "ok") in [(j["kind"], j["result"]) for j in jobs]


async def test_unchanged_rows_are_not_exported_again(nodes):
    a, _ = nodes
    ann = await create_user(a.pool, "ann", scope="public")
    await _public_request(a.pool, "R1", ann)
    first = await run_export(a.pool, a.config)
    assert first.record_count == 2
    again = await run_export(a.pool, a.config)
    assert again.sequence is None and again.record_count == 0
