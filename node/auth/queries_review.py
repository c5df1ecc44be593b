"""SQL of peer approval (#23): the reviewers' queue, who may approve a waiting member,
and the hash-chained approval ledger. Decisions themselves go through node.auth.queries
(the same ``auth_requests`` rows as every other approval)."""

from __future__ import annotations

import datetime as dt
import hashlib

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

#: Held (transaction-scoped) while a row is appended, so concurrent decisions queue up
#: and the chain never forks.
LEDGER_LOCK = int.from_bytes(hashlib.sha256(b"wb-approval-ledger").digest()[:4], "big")

LEDGER_COLUMNS = ("seq, at, request_id, member_id, member, reviewer_id, reviewer, capacity, "
                  "decision, note, prev_hash, hash")


async def review_queue(conn: Conn, *, viewer_id: str, is_admin: bool, reviewer: bool,
                       inviter_may: bool, limit: int = 200) -> list[asyncpg.Record]:
    """Live sign-in requests of OTHER members this viewer may decide, oldest first:
    admins every one; reviewers those of members who are not admins; with
    ``inviter_may`` also those of members the viewer invited (not admins). Never the
    code, never the address."""
    return await conn.fetch(
        """SELECT r.id, r.created_at, r.expires_at, r.attempts, r.user_agent,
                  u.username, u.display_name, u.is_admin, u.created_at AS member_since,
                  (u.invited_by IS NOT DISTINCT FROM $1) AS invited_by_me,
                  inv.username AS inviter_username, inv.display_name AS inviter_name
             FROM auth_requests r JOIN users u ON u.id = r.user_id
             LEFT JOIN users inv ON inv.id = u.invited_by
            WHERE r.status = 'pending' AND r.expires_at > now() AND r.user_id <> $1
              AND ($2 OR (NOT u.is_admin AND ($3 OR ($4 AND u.invited_by = $1))))
            ORDER BY r.created_at, r.id LIMIT $5""",
        viewer_id, is_admin, reviewer, inviter_may, limit)


async def approvers_of(conn: Conn, user_id: str) -> dict:
    """Names of those who may vouch for ``user_id``'s sign-in besides its own devices and
    the admins: the reviewers (not the member, not admins, live accounts) and the
    inviter (a live local member); nobody when the member is an admin."""
    row = await conn.fetchrow(
        """SELECT u.is_admin,
                  (SELECT coalesce(array_agg(coalesce(nullif(v.display_name, ''), v.username)
                                             ORDER BY mr.granted_at, v.username), '{}')
                     FROM member_roles mr JOIN users v ON v.id = mr.user_id
                    WHERE mr.role = 'reviewer' AND v.id <> u.id AND NOT v.is_admin
                      AND v.origin IS NULL AND NOT v.disabled AND v.deleted_at IS NULL
                  ) AS reviewers,
                  (SELECT coalesce(nullif(i.display_name, ''), i.username) FROM users i
                    WHERE i.id = u.invited_by AND i.origin IS NULL AND NOT i.disabled
                      AND i.deleted_at IS NULL) AS inviter
             FROM users u WHERE u.id = $1""", user_id)
    if row is None or row["is_admin"]:
        return {"reviewers": [], "inviter": None}
    return {"reviewers": list(row["reviewers"]), "inviter": row["inviter"]}


async def username_of(conn: Conn, user_id: str) -> str | None:
    return await conn.fetchval("SELECT username FROM users WHERE id = $1", user_id)


# --------------------------------------------------------------------------- the ledger

async def lock_ledger(conn: asyncpg.Connection) -> None:
    """Serialize appends until the end of the current transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", LEDGER_LOCK)


async def ledger_head(conn: Conn) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT seq, hash FROM approval_ledger ORDER BY seq DESC LIMIT 1")


async def insert_ledger_row(conn: Conn, *, seq: int, at: dt.datetime, request_id: str,
                            member_id: str, member: str, reviewer_id: str | None,
                            reviewer: str, capacity: str, decision: str, note: str,
                            prev_hash: str, hash: str) -> None:
    await conn.execute(
        f"INSERT INTO approval_ledger ({LEDGER_COLUMNS}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        seq, at, request_id, member_id, member, reviewer_id, reviewer, capacity, decision,
        note, prev_hash, hash)


async def ledger_rows(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {LEDGER_COLUMNS} FROM approval_ledger ORDER BY seq")


async def ledger_seq_in_audit(conn: Conn) -> int:
    """The highest ledger row the audit log says was written (0 when none): a second
    witness, so that rows cut from the end of the chain are noticed too."""
    return int(await conn.fetchval(
        "SELECT coalesce(max((details->>'ledger')::bigint), 0) FROM audit_log "
        "WHERE action IN ('login.approve', 'login.deny') AND details ? 'ledger'"))
