"""All SQL of the auth feature: members, sessions, login requests, invites, audit log.

Functions take a pool or a connection (``Conn``); callers that need several statements
to succeed or fail together pass a connection inside a transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

BOOTSTRAP_LOCK = int.from_bytes(hashlib.sha256(b"wb-first-admin").digest()[:4], "big")

USER_COLUMNS = ("id, username, display_name, bio, contact_email, is_admin, disabled, "
                "invited_by, invite_id, created_at")


# --------------------------------------------------------------------------- audit

async def audit(conn: Conn, action: str, *, actor_id: str | None, target: str | None,
                ip: str | None, details: dict[str, Any] | None = None) -> None:
    """Append one audit_log row (time is the database's now())."""
    await conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, ip, details) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        actor_id, action, target, ip or None, json.dumps(details or {}))


async def recent_audit(conn: Conn, limit: int = 50) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT a.id, a.at, a.action, a.target, a.ip, a.details, u.username AS actor
             FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
            ORDER BY a.at DESC, a.id DESC LIMIT $1""", limit)


# --------------------------------------------------------------------------- users

async def lock_bootstrap(conn: asyncpg.Connection) -> None:
    """Serialize first-admin creation until the end of the current transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", BOOTSTRAP_LOCK)


async def local_user_count(conn: Conn) -> int:
    return await conn.fetchval("SELECT count(*) FROM users WHERE origin IS NULL")


async def has_local_users(conn: Conn) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE origin IS NULL)")


async def user_by_username(conn: Conn, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users "
        "WHERE origin IS NULL AND lower(username) = lower($1) AND deleted_at IS NULL",
        username)


async def user_by_id(conn: Conn, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND origin IS NULL", user_id)


async def insert_user(conn: Conn, *, user_id: str, username: str, display_name: str, bio: str,
                      contact_email: str | None, is_admin: bool, invited_by: str | None,
                      invite_id: str | None) -> None:
    """Raises asyncpg.UniqueViolationError when the username is taken."""
    await conn.execute(
        "INSERT INTO users (id, username, display_name, bio, contact_email, is_admin, "
        "invited_by, invite_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        user_id, username, display_name, bio, contact_email, is_admin, invited_by, invite_id)


async def set_admin(conn: Conn, user_id: str, is_admin: bool) -> None:
    await conn.execute("UPDATE users SET is_admin = $2 WHERE id = $1", user_id, is_admin)


async def insert_request(conn: Conn, *, request_id: str, title: str, description: str,
                         created_by: str, status: str,
                         auth_request_id: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO requests (id, title, description, created_by, status, auth_request_id) "
        "VALUES ($1, $2, $3, $4, $5, $6)", request_id, title, description, created_by, status,
        auth_request_id)


async def promote_pending_requests(conn: Conn, auth_request_id: str) -> int:
    """What a device wrote while half-authenticated opens when ITS sign-in is approved;
    approving another device of the same member never touches it."""
    result = await conn.execute(
        "UPDATE requests SET status='open' WHERE auth_request_id=$1 AND status='pending' "
        "AND origin IS NULL", auth_request_id)
    return int(result.split()[-1])


async def discard_pending_requests(conn: Conn, auth_request_id: str) -> int:
    """A denied, cancelled or expired sign-in takes what its device wrote with it."""
    result = await conn.execute(
        "DELETE FROM requests WHERE auth_request_id=$1 AND status='pending' "
        "AND origin IS NULL", auth_request_id)
    return int(result.split()[-1])


async def written_by(conn: Conn, auth_request_ids: list[str]) -> dict[str, list[dict]]:
    """What each waiting device wrote ("this device also wrote: ..."), by sign-in id."""
    rows = await conn.fetch(
        "SELECT id, auth_request_id, title, description, sync_scope, "
        "created_at FROM requests WHERE auth_request_id = ANY($1::text[]) "
        "AND status='pending' ORDER BY created_at, id", auth_request_ids)
    out: dict[str, list[dict]] = {}
    for r in rows:
        item = dict(r)
        out.setdefault(item.pop("auth_request_id"), []).append(item)
    return out


# --------------------------------------------------------------------------- sessions

async def insert_session(conn: Conn, *, id_hash: str, user_id: str, status: str,
                         lifetime: dt.timedelta, ip: str | None, user_agent: str) -> None:
    await conn.execute(
        "INSERT INTO sessions (id_hash, user_id, status, expires_at, ip, user_agent) "
        "VALUES ($1, $2, $3, now() + $4::interval, $5, $6)",
        id_hash, user_id, status, lifetime, ip or None, user_agent[:300])


async def revoke_session(conn: Conn, id_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL "
        "RETURNING id_hash, user_id, status", id_hash)


async def activate_session(conn: Conn, id_hash: str, lifetime: dt.timedelta) -> bool:
    row = await conn.fetchrow(
        "UPDATE sessions SET status = 'active', expires_at = now() + $2::interval "
        "WHERE id_hash = $1 AND status = 'pending' AND revoked_at IS NULL "
        "AND expires_at > now() RETURNING id_hash", id_hash, lifetime)
    return row is not None


async def live_sessions(conn: Conn, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.id_hash, s.status, s.created_at, s.expires_at, s.last_seen_at, s.ip,
                  s.user_agent, u.id AS user_id, u.username, u.is_admin
             FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.revoked_at IS NULL AND s.expires_at > now()
            ORDER BY s.last_seen_at DESC LIMIT $1""", limit)


async def session_counts(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM sessions WHERE revoked_at IS NULL "
        "AND expires_at > now() GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


# --------------------------------------------------------------------------- login requests

AUTH_REQUEST_COLUMNS = ("r.id, r.user_id, r.session_hash, r.code, r.status, r.attempts, "
                        "r.created_at, r.expires_at, r.decided_at, r.decided_by, r.ip, "
                        "r.user_agent, u.username, u.is_admin, u.invited_by")


async def insert_auth_request(conn: Conn, *, request_id: str, user_id: str, session_hash: str,
                              code: str, lifetime: dt.timedelta, ip: str | None,
                              user_agent: str) -> None:
    await conn.execute(
        "INSERT INTO auth_requests (id, user_id, session_hash, code, expires_at, ip, user_agent) "
        "VALUES ($1, $2, $3, $4, now() + $5::interval, $6, $7)",
        request_id, user_id, session_hash, code, lifetime, ip or None, user_agent[:300])


async def pending_login_for_session(pool: Conn, session_hash: str) -> dict | None:
    """The live (pending, unexpired) login request of a half-authenticated session.

    Returns ``{"id", "code", "expires_at", "status"}`` for the session's own device to
    show, or None when nothing is waiting (approved, denied, locked or expired).
    """
    row = await pool.fetchrow(
        """SELECT id, code, expires_at, status FROM auth_requests
            WHERE session_hash = $1 AND status = 'pending' AND expires_at > now()
            ORDER BY created_at DESC, id DESC LIMIT 1""", session_hash)
    return dict(row) if row is not None else None


async def latest_login_for_session(pool: Conn, session_hash: str) -> dict | None:
    """Like ``pending_login_for_session`` but also when the request is no longer live;
    a pending request past its expiry is reported as ``"expired"``."""
    row = await pool.fetchrow(
        """SELECT id, code, expires_at,
                  CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired'
                       ELSE status END AS status
             FROM auth_requests WHERE session_hash = $1
            ORDER BY created_at DESC, id DESC LIMIT 1""", session_hash)
    return dict(row) if row is not None else None


async def auth_request(conn: Conn, request_id: str, *, for_update: bool = False
                       ) -> asyncpg.Record | None:
    lock = " FOR UPDATE OF r" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {AUTH_REQUEST_COLUMNS} FROM auth_requests r JOIN users u ON u.id = r.user_id "
        f"WHERE r.id = $1{lock}", request_id)


async def pending_requests_of_user(conn: Conn, user_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AUTH_REQUEST_COLUMNS} FROM auth_requests r JOIN users u ON u.id = r.user_id "
        "WHERE r.user_id = $1 AND r.status = 'pending' AND r.expires_at > now() "
        "ORDER BY r.created_at DESC", user_id)


async def pending_requests(conn: Conn, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AUTH_REQUEST_COLUMNS} FROM auth_requests r JOIN users u ON u.id = r.user_id "
        "WHERE r.status = 'pending' AND r.expires_at > now() "
        "ORDER BY r.created_at DESC LIMIT $1", limit)


async def decide_auth_request(conn: Conn, request_id: str, status: str,
                              decided_by: str | None) -> asyncpg.Record | None:
    """Move a live pending request to approved/denied; None when it is no longer pending."""
    return await conn.fetchrow(
        "UPDATE auth_requests SET status = $2, decided_at = now(), decided_by = $3 "
        "WHERE id = $1 AND status = 'pending' AND expires_at > now() "
        "RETURNING id, user_id, session_hash", request_id, status, decided_by)


async def count_wrong_code(conn: Conn, request_id: str, max_attempts: int
                           ) -> asyncpg.Record | None:
    """One more failed attempt; the request locks when it reaches ``max_attempts``."""
    return await conn.fetchrow(
        "UPDATE auth_requests SET attempts = attempts + 1, "
        "status = CASE WHEN attempts + 1 >= $2 THEN 'locked' ELSE status END, "
        "decided_at = CASE WHEN attempts + 1 >= $2 THEN now() ELSE decided_at END "
        "WHERE id = $1 AND status = 'pending' RETURNING attempts, status",
        request_id, max_attempts)


async def cancel_requests_of_session(conn: Conn, session_hash: str) -> None:
    """Expire the session's waiting sign-in and discard what its device wrote."""
    await conn.execute(
        """WITH gone AS (
               UPDATE auth_requests SET status = 'expired', decided_at = now()
                WHERE session_hash = $1 AND status = 'pending' RETURNING id)
           DELETE FROM requests WHERE status = 'pending' AND origin IS NULL
              AND auth_request_id IN (SELECT id FROM gone)""", session_hash)


async def expire_stale(conn: Conn) -> dict[str, int]:
    """Mark overdue login requests expired; delete dead sessions (their requests go too)."""
    expired = await conn.execute(
        "UPDATE auth_requests SET status = 'expired', decided_at = now() "
        "WHERE status = 'pending' AND expires_at <= now()")
    # What an unapproved device wrote dies with its sign-in (expired, denied or locked).
    await conn.execute(
        "DELETE FROM requests r USING auth_requests a WHERE a.id = r.auth_request_id "
        "AND r.status = 'pending' AND r.origin IS NULL AND a.status <> 'approved' "
        "AND (a.status <> 'pending' OR a.expires_at <= now())")
    deleted = await conn.execute(
        "DELETE FROM sessions WHERE expires_at <= now() "
        "OR revoked_at < now() - interval '7 days'")
    return {"expired_requests": int(expired.split()[-1]),
            "deleted_sessions": int(deleted.split()[-1])}


# --------------------------------------------------------------------------- invites

INVITE_COLUMNS = ("id, token_hash, created_by, max_uses, use_count, expires_at, auto_approve, "
                  "disabled, suggested_username, suggested_bio, gratitude, support_message, "
                  "help_examples, fun_details, photo_path, created_at")


async def insert_invite(conn: Conn, *, invite_id: str, token_hash: str, created_by: str | None,
                        max_uses: int, expires_at: dt.datetime | None, auto_approve: bool,
                        fields: dict[str, str], photo_path: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO invites (id, token_hash, created_by, max_uses, expires_at, auto_approve,
                   suggested_username, suggested_bio, gratitude, support_message,
                   help_examples, fun_details, photo_path)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            RETURNING {INVITE_COLUMNS}""",
        invite_id, token_hash, created_by, max_uses, expires_at, auto_approve,
        fields.get("suggested_username", ""), fields.get("suggested_bio", ""),
        fields.get("gratitude", ""), fields.get("support_message", ""),
        fields.get("help_examples", ""), fields.get("fun_details", ""), photo_path)


async def invite_by_token_hash(conn: Conn, token_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT i.{INVITE_COLUMNS.replace(', ', ', i.')},
                   u.username AS inviter_username, u.display_name AS inviter_name
              FROM invites i LEFT JOIN users u ON u.id = i.created_by
             WHERE i.token_hash = $1""", token_hash)


async def use_invite(conn: Conn, token_hash: str) -> asyncpg.Record | None:
    """Atomically take one use of a valid invite; None if unknown/expired/used up/disabled."""
    return await conn.fetchrow(
        f"""UPDATE invites SET use_count = use_count + 1
             WHERE token_hash = $1 AND NOT disabled AND use_count < max_uses
               AND (expires_at IS NULL OR expires_at > now())
            RETURNING {INVITE_COLUMNS}""", token_hash)


async def invites_by_creator(conn: Conn, user_id: str | None, limit: int = 100
                             ) -> list[asyncpg.Record]:
    """Invites of one member, or of everyone when ``user_id`` is None."""
    return await conn.fetch(
        f"""SELECT i.{INVITE_COLUMNS.replace(', ', ', i.')}, u.username AS inviter_username
              FROM invites i LEFT JOIN users u ON u.id = i.created_by
             WHERE $1::text IS NULL OR i.created_by = $1
             ORDER BY i.created_at DESC LIMIT $2""", user_id, limit)


async def disable_invite(conn: Conn, invite_id: str, by_user: str | None) -> asyncpg.Record | None:
    """Disable an invite created by ``by_user`` (any invite when ``by_user`` is None)."""
    return await conn.fetchrow(
        "UPDATE invites SET disabled = true WHERE id = $1 "
        "AND ($2::text IS NULL OR created_by = $2) RETURNING id", invite_id, by_user)


async def auth_request_expiry(conn: Any, request_id: str) -> Any:
    return await conn.fetchval("SELECT expires_at FROM auth_requests WHERE id = $1", request_id)
