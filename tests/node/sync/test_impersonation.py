"""Issue 14, attack 3: a trusted peer signs records whose actor references name OUR origin
and one of our user ids. Refused with ``impersonation``, logged in the sync job log, and
nothing is ever attributed to a local account, whatever the bundle holds (property)."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.sync import peers as P
from node.sync.importer import SyncError
from node.sync.service import our_origin, run_import
from protocol.bundle import Bundle, build_bundle
from protocol.containers import CBOR_MEDIA_TYPE, to_cbor
from protocol.records import Record, make_record
from protocol.signature import key_id, public_key_from_seed
from service.ids import ulid

SEED = hashlib.sha256(b"impersonating origin").digest()
ORIGIN = key_id(public_key_from_seed(SEED))
TS = "2026-01-01T00:00:00Z"


def _request(rid: str, created_by: str, title: str = "Spoken for you") -> Record:
    return make_record("request", {"ID": rid, "Origin": ORIGIN, "Instance": "http://x.test",
                                   "Revision": 1, "Updated-At": TS, "Title": title,
                                   "Status": "open", "Created-By": created_by}, "hello")


def _comment(cid: str, request_ref: str, created_by: str) -> Record:
    return make_record("comment", {"ID": cid, "Origin": ORIGIN, "Instance": "http://x.test",
                                   "Revision": 1, "Updated-At": TS, "Request": request_ref,
                                   "Created-By": created_by, "Created-At": TS}, "me too")


def _user(uid: str, invited_by: str | None) -> Record:
    headers = {"ID": uid, "Origin": ORIGIN, "Instance": "http://x.test", "Revision": 1,
               "Updated-At": TS, "Username": f"u{uid}", "Display-Name": "Someone"}
    if invited_by:
        headers["Invited-By"] = invited_by
    return make_record("user", headers, "bio")


def _bundle(records: list[Record], sequence: int = 1) -> Bundle:
    return build_bundle(records, seed=SEED, origin=ORIGIN, instance="http://x.test",
                        sequence=sequence, previous=None, kind="delta", created_at=TS,
                        signed_at=TS)


async def _local_admin(pool) -> str:
    uid = ulid()
    await pool.execute("INSERT INTO users (id, username, display_name, is_admin) "
                       "VALUES ($1, 'ada', 'Ada', true)", uid)
    return uid


async def test_a_peer_cannot_post_as_our_admin_through_the_inbox(node_client, node_pool,
                                                                 node_config):
    ours = await our_origin(node_pool, node_config)
    ada = await _local_admin(node_pool)
    await P.add_peer(node_pool, "hub", "hub", "http://hub.test", inbox_token="tok-123",
                     pins=[ORIGIN])
    auth = {"Authorization": "Bearer tok-123", "Content-Type": CBOR_MEDIA_TYPE,
            "Accept": "application/json"}
    for records in ([_request("R1", f"{ours}/{ada}")],
                    [_request("R1", f"{ORIGIN}/U1"), _user("U2", f"{ours}/{ada}")],
                    [_comment("C1", f"{ORIGIN}/R1", f"{ours}/{ada}")]):
        r = await node_client.post("/sync/inbox", data=to_cbor(_bundle(records)),
                                   headers=auth)
        body = await r.json()
        assert r.status == 409 and body["error"]["code"] == "impersonation", body
        assert ada in body["error"]["message"]
    # nothing applied, nothing attributed to ada, every refusal in the sync log
    assert await node_pool.fetchval("SELECT count(*) FROM requests") == 0
    assert await node_pool.fetchval("SELECT count(*) FROM users WHERE origin IS NOT NULL") == 0
    assert await node_pool.fetchval("SELECT count(*) FROM sync_received") == 0
    log = await node_pool.fetch("SELECT kind, result, error_code, peer FROM sync_jobs")
    assert [tuple(r) for r in log] == [("inbox", "rejected", "impersonation", "hub")] * 3


async def test_our_requests_may_still_be_commented_on_from_elsewhere(node_client, node_pool,
                                                                     node_config):
    """A comment's Request names a thing of ours, not a speaker: still accepted."""
    ours = await our_origin(node_pool, node_config)
    ada = await _local_admin(node_pool)
    await node_pool.execute("INSERT INTO requests (id, description, created_by, sync_scope) "
                            "VALUES ('LOCAL1', 'ours', $1, 'public')", ada)
    await node_pool.execute(
        "INSERT INTO sync_trusted_keys (origin, key_id, public_key, source, added_by) "
        "VALUES ($1, $1, $2, 'pinned', 'test')", ORIGIN, public_key_from_seed(SEED))
    [res] = await run_import(node_pool, node_config, [_bundle([
        _user("U1", None), _comment("C1", f"{ours}/LOCAL1", f"{ORIGIN}/U1")])])
    assert res.result == "applied"
    row = await node_pool.fetchrow("SELECT request_id, created_by FROM comments")
    assert tuple(row) == ("LOCAL1", f"{ORIGIN}.U1")


# --------------------------------------------------------------------------- property

ref_st = st.sampled_from(["ours", "theirs", "third", "none"])
record_st = st.fixed_dictionaries({
    "kind": st.sampled_from(["user", "request", "comment"]),
    "actor": ref_st, "target": st.sampled_from(["ours", "theirs"]),
    "id": st.integers(0, 5)})


def _ref(kind: str, ours: str, local: list[str], i: int) -> str | None:
    if kind == "ours":
        return f"{ours}/{local[i % len(local)]}"
    if kind == "theirs":
        return f"{ORIGIN}/U{i}"
    if kind == "third":
        return f"{'f' * 16}/U{i}"
    return None


async def _snapshot(pool) -> tuple:
    users = await pool.fetch(
        "SELECT id, username, display_name, bio, contact_email, is_admin, invited_by, "
        "revision, deleted_at FROM users WHERE origin IS NULL ORDER BY id")
    authored = await pool.fetch(
        "SELECT 'request' AS t, id, created_by FROM requests "
        "WHERE created_by IN (SELECT id FROM users WHERE origin IS NULL) UNION ALL "
        "SELECT 'comment', id, created_by FROM comments "
        "WHERE created_by IN (SELECT id FROM users WHERE origin IS NULL) "
        "UNION ALL SELECT 'invitee', id, invited_by FROM users "
        "WHERE invited_by IN (SELECT id FROM users WHERE origin IS NULL) ORDER BY 1, 2")
    return [tuple(r) for r in users], [tuple(r) for r in authored]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(record_st, min_size=1, max_size=8))
async def test_no_imported_bundle_changes_a_local_member_or_authorship(nodes, records):
    a, _ = nodes
    pool = a.pool
    await pool.execute("TRUNCATE users, requests, comments, sync_received, sync_jobs CASCADE")
    await pool.execute(
        "INSERT INTO sync_trusted_keys (origin, key_id, public_key, source, added_by) "
        "VALUES ($1, $1, $2, 'pinned', 'test') ON CONFLICT DO NOTHING",
        ORIGIN, public_key_from_seed(SEED))
    local = []
    for i in range(3):
        uid = f"L{i}"
        await pool.execute("INSERT INTO users (id, username, display_name, bio) "
                           "VALUES ($1, $2, 'Local', 'mine')", uid, f"local{i}")
        local.append(uid)
    await pool.execute("INSERT INTO requests (id, description, created_by, sync_scope) "
                       "VALUES ('LR', 'ours', 'L0', 'public')")
    before = await _snapshot(pool)
    built: dict[str, Record] = {}
    for n, spec in enumerate(records):
        actor = _ref(spec["actor"], a.origin, local, spec["id"]) or f"{ORIGIN}/U0"
        if spec["kind"] == "user":
            rec = _user(f"U{spec['id']}", _ref(spec["actor"], a.origin, local, spec["id"]))
        elif spec["kind"] == "request":
            rec = _request(f"R{spec['id']}", actor)
        else:
            target = f"{a.origin}/LR" if spec["target"] == "ours" else f"{ORIGIN}/R{n}"
            rec = _comment(f"C{n}", target, actor)
        built[rec.path] = rec
    speaks_for_us = any((rec.get(h) or "").startswith(a.origin + "/")
                        for rec in built.values() for h in ("Created-By", "Invited-By"))
    try:
        await run_import(pool, a.config, [_bundle(list(built.values()))])
        refused = False
    except SyncError as exc:
        assert exc.code == "impersonation"
        refused = True
    assert await _snapshot(pool) == before  # no local member's row or authorship moved
    assert refused == speaks_for_us
