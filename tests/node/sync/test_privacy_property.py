"""Property: whatever the data, no byte of a private field leaves the node."""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.sync.service import run_export
from protocol.containers import to_targz

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
user_st = st.fixed_dictionaries({
    "scope": st.sampled_from(["public", "private"]), "name": text, "bio": text,
    "email": st.one_of(st.none(), text), "share": st.booleans(), "admin": st.booleans(),
    "disabled": st.booleans(), "invited_by": st.one_of(st.none(), st.integers(0, 7))})
request_st = st.fixed_dictionaries({
    "scope": st.sampled_from(["public", "private"]), "title": text, "body": text,
    "email": st.one_of(st.none(), text), "by": st.integers(0, 7),
    "status": st.sampled_from(["pending", "open", "completed"]), "deleted": st.booleans()})
comment_st = st.fixed_dictionaries({
    "scope": st.sampled_from(["public", "private"]), "body": text, "on": st.integers(0, 7),
    "by": st.integers(0, 7), "deleted": st.booleans()})
flip_st = st.lists(st.tuples(st.sampled_from(["users", "requests", "comments"]),
                             st.integers(0, 7)), max_size=5)


class Secrets:
    def __init__(self) -> None:
        self.values: list[str] = []

    def __call__(self, value: str | None) -> str:
        marker = f"{value or ''}~{secrets.token_hex(6)}~"
        self.values.append(marker)
        return marker


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(users=st.lists(user_st, min_size=1, max_size=8),
       requests=st.lists(request_st, max_size=8), comments=st.lists(comment_st, max_size=8),
       flips=flip_st)
async def test_no_private_byte_is_ever_exported(nodes, users, requests, comments, flips):
    a, _ = nodes
    pool = a.pool
    await pool.execute("TRUNCATE users, requests, comments, invites, sync_outbox CASCADE")
    await pool.execute("UPDATE node_sync_state SET sequence = 0, last_digest = NULL")
    hide = Secrets()
    uids: list[str] = []
    for i, u in enumerate(users):
        private = u["scope"] == "private"
        uid = f"U{i}"
        inviter = uids[u["invited_by"] % len(uids)] if uids and u["invited_by"] is not None \
            else None
        await pool.execute(
            "INSERT INTO users (id, username, display_name, bio, contact_email, share_contact, "
            "is_admin, disabled, sync_scope, invited_by) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            uid, hide(u["name"]) if private else f"{u['name']}{i}",
            hide(u["name"]) if private else u["name"],
            hide(u["bio"]) if private else u["bio"],
            (hide(u["email"]) if (private or not u["share"]) else u["email"])
            if u["email"] is not None else None,
            u["share"], u["admin"], u["disabled"], u["scope"], inviter)
        uids.append(uid)
    # invite tokens and their texts never leave
    await pool.execute(
        "INSERT INTO invites (id, token_hash, created_by, suggested_username, gratitude) "
        "VALUES ('I1', $1, $2, $3, $4)", hide("tokenhash"), uids[0], hide("sugg"),
        hide("thanks"))
    rids: list[str] = []
    for i, r in enumerate(requests):
        private = r["scope"] == "private"
        rid = f"R{i}"
        await pool.execute(
            "INSERT INTO requests (id, title, description, contact_email, created_by, status, "
            "sync_scope, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "CASE WHEN $8 THEN now() END)",
            rid, hide(r["title"]) if private or r["deleted"] else r["title"],
            hide(r["body"]) if private or r["deleted"] else r["body"],
            hide(r["email"]) if r["email"] is not None else None,
            uids[r["by"] % len(uids)], r["status"], r["scope"], r["deleted"])
        rids.append(rid)
    for i, c in enumerate(comments):
        if not rids:
            break
        private = c["scope"] == "private" or c["deleted"]
        await pool.execute(
            "INSERT INTO comments (id, request_id, created_by, body, sync_scope, deleted_at) "
            "VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END)",
            f"C{i}", rids[c["on"] % len(rids)], uids[c["by"] % len(uids)],
            hide(c["body"]) if private else c["body"], c["scope"], c["deleted"])

    envelopes = []
    for snapshot in (False, True):
        res = await run_export(pool, a.config, snapshot=snapshot)
        if res.envelope:
            envelopes.append(res.envelope)
            envelopes.append(to_targz(res.bundle))
    # rows flipped to private: their current content becomes secret from now on
    for table, idx in flips:
        row_id = {"users": "U", "requests": "R", "comments": "C"}[table] + str(idx)
        col = {"users": "bio", "requests": "description", "comments": "body"}[table]
        await pool.execute(f"UPDATE {table} SET sync_scope = 'private', {col} = $2 "
                           "WHERE id = $1", row_id, hide("flipped"))
    for snapshot in (False, True):
        res = await run_export(pool, a.config, snapshot=snapshot)
        if res.envelope:
            envelopes.append(res.envelope)
    blob = b"\n".join(envelopes)
    for value in hide.values:
        assert value.encode() not in blob, value
