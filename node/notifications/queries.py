"""All SQL of the notifications feature: switches, the mail outbox, feed secrets.

The ``queue_*`` statements run on the caller's connection, inside the transaction of the
event that causes them: a message exists exactly when its event committed. Each picks
its recipients by their switches and confirmed address in the same statement, and
``ON CONFLICT (idempotency_key) DO NOTHING`` makes a replayed event a no-op.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import asyncpg

from service.ids import ulid

Conn = asyncpg.Pool | asyncpg.Connection

# One sign-in mail per member per this many minutes: someone typing a member's username
# over and over must not flood that member's inbox.
SIGNIN_QUIET_MINUTES = 10
SWITCHES = ("on_comment", "on_status", "on_signin", "on_member_waiting", "digest")
_RECIPIENT = """
    JOIN users u ON u.id = p.user_id
   WHERE u.origin IS NULL AND NOT u.disabled AND u.deleted_at IS NULL
     AND p.email IS NOT NULL AND p.email_confirmed_at IS NOT NULL"""


# --------------------------------------------------------------------------- switches

async def prefs(conn: Conn, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM notification_prefs WHERE user_id = $1", user_id)


async def ensure_prefs(conn: Conn, user_id: str) -> asyncpg.Record:
    await conn.execute("INSERT INTO notification_prefs (user_id) VALUES ($1) "
                       "ON CONFLICT DO NOTHING", user_id)
    row = await prefs(conn, user_id)
    assert row is not None
    return row


async def set_switches(conn: Conn, user_id: str, values: dict[str, bool]) -> None:
    await ensure_prefs(conn, user_id)
    await conn.execute(
        "UPDATE notification_prefs SET on_comment = $2, on_status = $3, on_signin = $4, "
        "on_member_waiting = $5, digest = $6, updated_at = now() WHERE user_id = $1",
        user_id, *(values[name] for name in SWITCHES))


async def switch_off(conn: Conn, user_id: str, switches: tuple[str, ...]) -> bool:
    sets = ", ".join(f"{name} = false" for name in switches if name in SWITCHES)
    status = await conn.execute(
        f"UPDATE notification_prefs SET {sets}, updated_at = now() "  # noqa: S608 (fixed names)
        "WHERE user_id = $1", user_id)
    return status != "UPDATE 0"


async def set_email(conn: Conn, user_id: str, email: str | None) -> None:
    await ensure_prefs(conn, user_id)
    await conn.execute(
        "UPDATE notification_prefs SET email = $2, updated_at = now(), "
        "email_confirmed_at = CASE WHEN email IS NOT DISTINCT FROM $2 "
        "                          THEN email_confirmed_at END "
        "WHERE user_id = $1", user_id, email)


async def confirm_email(conn: Conn, user_id: str, email: str) -> bool:
    status = await conn.execute(
        "UPDATE notification_prefs SET email_confirmed_at = now(), updated_at = now() "
        "WHERE user_id = $1 AND email = $2", user_id, email)
    return status != "UPDATE 0"


async def recent_confirmation(conn: Conn, user_id: str, seconds: int) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM mail_outbox WHERE user_id = $1 AND kind = 'confirm' "
        "AND created_at > now() - make_interval(secs => $2))", user_id, seconds))


# --------------------------------------------------------------------------- feed secrets

async def set_feed_token(conn: Conn, user_id: str, token_hash: str | None) -> None:
    await ensure_prefs(conn, user_id)
    await conn.execute("UPDATE notification_prefs SET feed_token_hash = $2, updated_at = now() "
                       "WHERE user_id = $1", user_id, token_hash)


async def feed_owner(conn: Conn, token_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT u.id, u.username, u.is_admin FROM notification_prefs p "
        "JOIN users u ON u.id = p.user_id "
        "WHERE p.feed_token_hash = $1 AND u.origin IS NULL AND NOT u.disabled "
        "AND u.deleted_at IS NULL", token_hash)


# --------------------------------------------------------------------------- queueing

async def queue_comment(conn: Conn, comment_id: str) -> int:
    """The request's owner hears of a comment that someone else wrote."""
    status = await conn.execute(
        f"""INSERT INTO mail_outbox (id, idempotency_key, user_id, kind, params)
            SELECT $2, 'comment:' || c.id || ':' || p.user_id, p.user_id, 'comment',
                   jsonb_build_object('comment_id', c.id, 'request_id', r.id)
              FROM comments c JOIN requests r ON r.id = c.request_id
              JOIN notification_prefs p ON p.user_id = r.created_by
              {_RECIPIENT} AND c.id = $1 AND p.on_comment
               AND c.created_by IS DISTINCT FROM r.created_by
            ON CONFLICT (idempotency_key) DO NOTHING""", comment_id, ulid())
    return int(status.split()[-1])


async def queue_status(conn: Conn, request_id: str, actor_id: str | None) -> int:
    """The request's owner hears that it was completed or reopened by someone else."""
    status = await conn.execute(
        f"""INSERT INTO mail_outbox (id, idempotency_key, user_id, kind, params)
            SELECT $3, 'status:' || r.id || ':' || r.revision || ':' || p.user_id,
                   p.user_id, 'status',
                   jsonb_build_object('request_id', r.id, 'status', r.status)
              FROM requests r JOIN notification_prefs p ON p.user_id = r.created_by
              {_RECIPIENT} AND r.id = $1 AND p.on_status
               AND r.created_by IS DISTINCT FROM $2
            ON CONFLICT (idempotency_key) DO NOTHING""", request_id, actor_id, ulid())
    return int(status.split()[-1])


async def queue_signin(conn: Conn, auth_request_id: str) -> int:
    """The member hears that a device waits for their approval (never its code)."""
    status = await conn.execute(
        f"""INSERT INTO mail_outbox (id, idempotency_key, user_id, kind, params)
            SELECT $2, 'signin:' || a.id, p.user_id, 'signin',
                   jsonb_build_object('auth_request_id', a.id)
              FROM auth_requests a JOIN notification_prefs p ON p.user_id = a.user_id
              {_RECIPIENT} AND a.id = $1 AND p.on_signin
               AND NOT EXISTS (SELECT 1 FROM mail_outbox o
                                WHERE o.user_id = p.user_id AND o.kind = 'signin'
                                  AND o.created_at > now() - make_interval(mins => $3))
            ON CONFLICT (idempotency_key) DO NOTHING""", auth_request_id, ulid(),
        SIGNIN_QUIET_MINUTES)
    return int(status.split()[-1])


async def queue_member_waiting(conn: Conn, user_id: str) -> int:
    """Every admin who asked for it hears that a new member waits for approval."""
    rows = await conn.fetch(
        f"""SELECT p.user_id FROM notification_prefs p {_RECIPIENT}
               AND u.is_admin AND p.on_member_waiting AND p.user_id <> $1""", user_id)
    for row in rows:
        await conn.execute(
            """INSERT INTO mail_outbox (id, idempotency_key, user_id, kind, params)
               VALUES ($1, $2, $3, 'member_waiting', $4)
               ON CONFLICT (idempotency_key) DO NOTHING""",
            ulid(), f"member:{user_id}:{row['user_id']}", row["user_id"],
            json.dumps({"member_id": user_id}))
    return len(rows)


async def queue_confirmation(conn: Conn, user_id: str, email: str, nonce: str) -> None:
    await conn.execute(
        """INSERT INTO mail_outbox (id, idempotency_key, user_id, to_addr, kind, params)
           VALUES ($1, $2, $3, $4, 'confirm', $5)""",
        ulid(), f"confirm:{user_id}:{nonce}", user_id, email, json.dumps({"email": email}))


async def queue_digests(conn: Conn, today: dt.date) -> int:
    """One digest per member and day, for members who turned it on."""
    rows = await conn.fetch(
        """UPDATE notification_prefs p SET digest_sent_on = $1
              FROM users u
             WHERE u.id = p.user_id AND u.origin IS NULL AND NOT u.disabled
               AND u.deleted_at IS NULL AND p.email IS NOT NULL
               AND p.email_confirmed_at IS NOT NULL AND p.digest
               AND (p.digest_sent_on IS NULL OR p.digest_sent_on < $1)
         RETURNING p.user_id,
                   coalesce((SELECT max(o.created_at) FROM mail_outbox o
                              WHERE o.user_id = p.user_id AND o.kind = 'digest'),
                            now() - interval '1 day') AS since""", today)
    for row in rows:
        await conn.execute(
            """INSERT INTO mail_outbox (id, idempotency_key, user_id, kind, params)
               VALUES ($1, $2, $3, 'digest', $4) ON CONFLICT (idempotency_key) DO NOTHING""",
            ulid(), f"digest:{row['user_id']}:{today.isoformat()}", row["user_id"],
            json.dumps({"since": row["since"].isoformat()}))
    return len(rows)


# --------------------------------------------------------------------------- the outbox

async def recover_stale(conn: Conn, older_than_s: float) -> tuple[int, int]:
    """Claims of dead workers: before the body was handed over they are safe to send
    again; during the hand-over the outcome is unknown, so they are set aside."""
    requeued = await conn.execute(
        "UPDATE mail_outbox SET state = 'queued', claimed_at = NULL, "
        "last_error = 'worker stopped before sending; sent again' "
        "WHERE state = 'sending' AND claimed_at < now() - make_interval(secs => $1)",
        older_than_s)
    uncertain = await conn.execute(
        "UPDATE mail_outbox SET state = 'uncertain', claimed_at = NULL, "
        "last_error = 'worker stopped while the relay received the message; it may or may "
        "not have been delivered' "
        "WHERE state = 'committing' AND claimed_at < now() - make_interval(secs => $1)",
        older_than_s)
    return int(requeued.split()[-1]), int(uncertain.split()[-1])


async def in_flight_last_minute(conn: Conn) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM mail_outbox WHERE sent_at > now() - interval '60 seconds' "
        "OR state IN ('sending', 'committing')"))


async def claim_next(conn: Conn) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """UPDATE mail_outbox SET state = 'sending', claimed_at = now(),
                  attempts = attempts + 1
            WHERE id = (SELECT id FROM mail_outbox
                         WHERE state = 'queued' AND next_attempt_at <= now()
                         ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING *""")


async def mark(conn: Conn, message_id: str, state: str, *, error: str | None = None,
               to_addr: str | None = None) -> None:
    await conn.execute(
        "UPDATE mail_outbox SET state = $2, last_error = coalesce($3, last_error), "
        "to_addr = coalesce($4, to_addr), "
        "claimed_at = CASE WHEN $2 IN ('sending', 'committing') THEN claimed_at END, "
        "sent_at = CASE WHEN $2 = 'sent' THEN now() END WHERE id = $1",
        message_id, state, error, to_addr)


async def retry_later(conn: Conn, message_id: str, delay_s: float, error: str) -> None:
    await conn.execute(
        "UPDATE mail_outbox SET state = 'queued', claimed_at = NULL, last_error = $3, "
        "next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1",
        message_id, delay_s, error)


async def requeue(conn: Conn, *, ids: list[str] | None, uncertain: bool) -> int:
    states = ["dropped", "uncertain"] if uncertain else ["dropped"]
    status = await conn.execute(
        "UPDATE mail_outbox SET state = 'queued', attempts = 0, next_attempt_at = now(), "
        "claimed_at = NULL WHERE state = ANY($1::text[]) "
        "AND ($2::text[] IS NULL OR id = ANY($2::text[]))", states, ids)
    return int(status.split()[-1])


async def counts(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT state, count(*) AS n FROM mail_outbox GROUP BY state")
    return {r["state"]: r["n"] for r in rows}


async def problems(conn: Conn, limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT o.id, o.kind, o.state, o.attempts, o.last_error, o.created_at, o.to_addr, "
        "u.username FROM mail_outbox o LEFT JOIN users u ON u.id = o.user_id "
        "WHERE o.state IN ('dropped', 'uncertain') OR (o.state = 'queued' AND o.attempts > 0) "
        "ORDER BY o.created_at DESC LIMIT $1", limit)


# --------------------------------------------------------------------------- rendering reads

async def recipient(conn: Conn, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT p.*, u.username, u.display_name, u.is_admin FROM notification_prefs p "
        f"{_RECIPIENT} AND p.user_id = $1", user_id)


async def comment_for_mail(conn: Conn, comment_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT c.id, c.body, c.deleted_at, r.id AS request_id, r.title, r.status,
                  r.deleted_at AS request_deleted_at, r.created_by AS owner,
                  coalesce(nullif(u.display_name, ''), u.username) AS author
             FROM comments c JOIN requests r ON r.id = c.request_id
             LEFT JOIN users u ON u.id = c.created_by WHERE c.id = $1""", comment_id)


async def request_for_mail(conn: Conn, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, title, status, created_by, deleted_at FROM requests WHERE id = $1",
        request_id)


async def auth_request_for_mail(conn: Conn, auth_request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, user_id, status, expires_at, created_at, user_agent FROM auth_requests "
        "WHERE id = $1", auth_request_id)


async def waiting_member(conn: Conn, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT u.id, u.username, u.display_name, "
        "EXISTS (SELECT 1 FROM auth_requests a WHERE a.user_id = u.id "
        "        AND a.status = 'pending' AND a.expires_at > now()) AS waiting "
        "FROM users u WHERE u.id = $1 AND u.origin IS NULL", user_id)


async def open_requests_since(conn: Conn, since: dt.datetime, limit: int = 30
                              ) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, title, left(description, 200) AS description, created_at FROM requests "
        "WHERE status = 'open' AND deleted_at IS NULL AND created_at > $1 "
        "ORDER BY created_at DESC, id DESC LIMIT $2", since, limit)


# --------------------------------------------------------------------------- feeds

async def public_requests(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """This node's own public requests: what a bundle would carry, nothing more."""
    return await conn.fetch(
        """SELECT r.id, r.title, r.description, r.status, r.created_at, r.updated_at,
                  CASE WHEN u.sync_scope = 'public' THEN u.username END AS author
             FROM requests r LEFT JOIN users u ON u.id = r.created_by
            WHERE r.origin IS NULL AND r.sync_scope = 'public' AND r.deleted_at IS NULL
              AND r.status IN ('open', 'completed')
            ORDER BY r.updated_at DESC, r.id DESC LIMIT $1""", limit)


async def member_requests(conn: Conn, user_id: str, is_admin: bool, limit: int
                          ) -> list[asyncpg.Record]:
    """What the member sees in the feed: open and completed requests, their own pending
    ones (an admin: every pending one)."""
    return await conn.fetch(
        """SELECT r.id, r.title, r.description, r.status, r.created_at, r.updated_at,
                  coalesce(nullif(u.display_name, ''), u.username) AS author
             FROM requests r LEFT JOIN users u ON u.id = r.created_by
            WHERE r.deleted_at IS NULL
              AND (r.status <> 'pending' OR r.created_by = $1 OR $2)
            ORDER BY r.updated_at DESC, r.id DESC LIMIT $3""", user_id, is_admin, limit)


def params_of(row: Any) -> dict[str, Any]:
    value = row["params"]
    return json.loads(value) if isinstance(value, str) else dict(value)
