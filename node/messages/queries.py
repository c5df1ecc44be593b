"""All SQL of direct messages.

Every read of a message body names the reader as a participant (or, for the report queue,
joins an open report): there is no query that returns a body by conversation or message id
alone, so no route or command can read an unreported conversation for an admin.
"""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

_THREAD_COLUMNS = """t.id, t.created_at, t.last_message_at,
       o.id AS other_id, o.username AS other_username,
       COALESCE(NULLIF(o.display_name, ''), o.username) AS other_name"""


async def member_by_username(conn: Conn, username: str) -> asyncpg.Record | None:
    """A local member who can receive messages (not disabled, not deleted)."""
    return await conn.fetchrow(
        "SELECT id, username, COALESCE(NULLIF(display_name, ''), username) AS name "
        "FROM users WHERE origin IS NULL AND lower(username) = lower($1) "
        "AND NOT disabled AND deleted_at IS NULL", username)


async def member_by_id(conn: Conn, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, username, COALESCE(NULLIF(display_name, ''), username) AS name "
        "FROM users WHERE origin IS NULL AND id = $1 AND NOT disabled AND deleted_at IS NULL",
        user_id)


async def block_between(conn: Conn, a: str, b: str) -> asyncpg.Record | None:
    """Who blocked whom between two members (the first row found), or None."""
    return await conn.fetchrow(
        "SELECT blocker_id, blocked_id FROM message_blocks "
        "WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1) "
        "ORDER BY blocker_id = $1 DESC LIMIT 1", a, b)


async def thread_for_pair(conn: Conn, thread_id: str, low: str, high: str) -> str:
    """The conversation of a pair, created if missing; locked for this transaction (the
    message insert that follows gets its ``seq`` in commit order)."""
    return await conn.fetchval(
        "INSERT INTO message_threads (id, member_low, member_high) VALUES ($1, $2, $3) "
        "ON CONFLICT (member_low, member_high) DO UPDATE SET last_message_at = now() "
        "RETURNING id", thread_id, low, high)


async def insert_message(conn: Conn, *, message_id: str, thread_id: str, sender_id: str,
                         recipient_id: str, body: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO messages (id, thread_id, sender_id, recipient_id, body) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id, seq, thread_id, sender_id, recipient_id, "
        "body, created_at, read_at", message_id, thread_id, sender_id, recipient_id, body)


async def thread_of(conn: Conn, thread_id: str, member_id: str) -> asyncpg.Record | None:
    """A conversation as one of its two members sees it (None for anyone else)."""
    return await conn.fetchrow(
        f"SELECT {_THREAD_COLUMNS} FROM message_threads t "
        "JOIN users o ON o.id = CASE WHEN t.member_low = $2 THEN t.member_high "
        "ELSE t.member_low END "
        "WHERE t.id = $1 AND $2 IN (t.member_low, t.member_high)", thread_id, member_id)


async def thread_with(conn: Conn, low: str, high: str) -> str | None:
    return await conn.fetchval(
        "SELECT id FROM message_threads WHERE member_low = $1 AND member_high = $2", low, high)


async def inbox(conn: Conn, member_id: str, limit: int) -> list[asyncpg.Record]:
    """The member's conversations, newest first, with their unread count and the last
    message's first characters."""
    return await conn.fetch(
        f"""SELECT {_THREAD_COLUMNS},
                   (SELECT count(*) FROM messages u WHERE u.thread_id = t.id
                       AND u.recipient_id = $1 AND u.read_at IS NULL) AS unread,
                   last.body AS last_body, last.sender_id AS last_sender_id
              FROM message_threads t
              JOIN users o ON o.id = CASE WHEN t.member_low = $1 THEN t.member_high
                                          ELSE t.member_low END
              LEFT JOIN LATERAL (SELECT m.body, m.sender_id FROM messages m
                                  WHERE m.thread_id = t.id ORDER BY m.seq DESC LIMIT 1) last
                     ON true
             WHERE t.member_low = $1 OR t.member_high = $1
             ORDER BY t.last_message_at DESC, t.id DESC LIMIT $2""", member_id, limit)


async def messages_of(conn: Conn, thread_id: str, member_id: str, *, after_seq: int = 0,
                      limit: int = 200) -> list[asyncpg.Record]:
    """The latest ``limit`` messages after ``after_seq``, oldest first; only for a
    participant."""
    return await conn.fetch(
        """SELECT * FROM (
               SELECT m.id, m.seq, m.thread_id, m.sender_id, m.recipient_id, m.body,
                      m.created_at, m.read_at
                 FROM messages m JOIN message_threads t ON t.id = m.thread_id
                WHERE m.thread_id = $1 AND $2 IN (t.member_low, t.member_high)
                  AND m.seq > $3
                ORDER BY m.seq DESC LIMIT $4) latest ORDER BY seq""",
        thread_id, member_id, after_seq, limit)


async def mark_read(conn: Conn, thread_id: str, member_id: str) -> int:
    """Everything sent to the member in this conversation is read now; how many were not."""
    status = await conn.execute(
        "UPDATE messages SET read_at = now() WHERE thread_id = $1 AND recipient_id = $2 "
        "AND read_at IS NULL", thread_id, member_id)
    return int(status.split()[-1])


async def unread_count(conn: Conn, member_id: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM messages WHERE recipient_id = $1 AND read_at IS NULL", member_id)


async def message_for_recipient(conn: Conn, message_id: str,
                                member_id: str) -> asyncpg.Record | None:
    """A message as its recipient sees it (the one who may report it)."""
    return await conn.fetchrow(
        "SELECT id, thread_id, sender_id, recipient_id FROM messages "
        "WHERE id = $1 AND recipient_id = $2", message_id, member_id)


async def message_of_participant(conn: Conn, message_id: str,
                                 member_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, thread_id, sender_id, recipient_id FROM messages "
        "WHERE id = $1 AND $2 IN (sender_id, recipient_id)", message_id, member_id)


async def session_alive(conn: Conn, session_hash: str) -> bool:
    """The live stream's session is still approved, unexpired and its member enabled."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.id_hash = $1 AND s.status = 'active' AND s.revoked_at IS NULL "
        "AND s.expires_at > now() AND NOT u.disabled)", session_hash)


# ------------------------------------------------------------------------------ blocks

async def block(conn: Conn, blocker_id: str, blocked_id: str) -> None:
    await conn.execute(
        "INSERT INTO message_blocks (blocker_id, blocked_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING", blocker_id, blocked_id)


async def unblock(conn: Conn, blocker_id: str, blocked_id: str) -> bool:
    return await conn.fetchval(
        "DELETE FROM message_blocks WHERE blocker_id = $1 AND blocked_id = $2 RETURNING true",
        blocker_id, blocked_id) or False


async def blocked_by(conn: Conn, blocker_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT u.id, u.username, COALESCE(NULLIF(u.display_name, ''), u.username) AS name, "
        "b.created_at FROM message_blocks b JOIN users u ON u.id = b.blocked_id "
        "WHERE b.blocker_id = $1 ORDER BY b.created_at DESC", blocker_id)


async def has_blocked(conn: Conn, blocker_id: str, blocked_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM message_blocks WHERE blocker_id = $1 "
        "AND blocked_id = $2)", blocker_id, blocked_id)


# ----------------------------------------------------------------------------- reports

async def insert_report(conn: Conn, *, report_id: str, message_id: str, reporter_id: str,
                        reason: str) -> asyncpg.Record:
    """One report per message and reporter; a second is the first, unchanged."""
    row = await conn.fetchrow(
        "INSERT INTO message_reports (id, message_id, reporter_id, reason) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (message_id, reporter_id) DO NOTHING "
        "RETURNING id, message_id, created_at, resolved_at", report_id, message_id,
        reporter_id, reason)
    if row is None:
        row = await conn.fetchrow(
            "SELECT id, message_id, created_at, resolved_at FROM message_reports "
            "WHERE message_id = $1 AND reporter_id = $2", message_id, reporter_id)
    return row


async def reports(conn: Conn, *, open_only: bool, limit: int) -> list[asyncpg.Record]:
    """The report queue: each reported message's body, and nothing else of its
    conversation."""
    return await conn.fetch(
        """SELECT r.id, r.message_id, r.reason, r.created_at, r.resolved_at, r.resolution,
                  m.body, m.created_at AS sent_at,
                  s.username AS sender, rp.username AS reporter, rb.username AS resolved_by
             FROM message_reports r
             JOIN messages m ON m.id = r.message_id
             JOIN users s ON s.id = m.sender_id
             JOIN users rp ON rp.id = r.reporter_id
             LEFT JOIN users rb ON rb.id = r.resolved_by
            WHERE NOT $1 OR r.resolved_at IS NULL
            ORDER BY (r.resolved_at IS NULL) DESC, r.created_at, r.id LIMIT $2""",
        open_only, limit)


async def resolve_report(conn: Conn, report_id: str, resolved_by: str | None,
                         resolution: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE message_reports SET resolved_at = now(), resolved_by = $2, resolution = $3 "
        "WHERE id = $1 AND resolved_at IS NULL RETURNING id, message_id, resolved_at",
        report_id, resolved_by, resolution)


async def report_exists(conn: Conn, report_id: str) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM message_reports WHERE id = $1)",
                               report_id)
