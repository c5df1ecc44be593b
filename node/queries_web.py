"""SQL of the node's request plumbing (node/web.py): the session behind a cookie."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

TOUCH_SESSION = "UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1"


async def session_by_hash(conn: Conn, id_hash: str) -> asyncpg.Record | None:
    """The live session of a cookie hash with its member, skin, roles, the
    SYNC_PUBLIC_SCOPE mode in force and the member's unread direct messages;
    ``seen_ago`` and ``expires_in`` in seconds, by the database's clock."""
    return await conn.fetchrow(
        """SELECT s.id_hash, s.status,
                  extract(epoch FROM now() - s.last_seen_at)::float8 AS seen_ago,
                  extract(epoch FROM s.expires_at - now())::float8 AS expires_in,
                  u.id, u.username, u.display_name, u.is_admin,
                  (SELECT ms.skin FROM member_skins ms WHERE ms.user_id = u.id) AS skin,
                  ARRAY(SELECT mr.role FROM member_roles mr WHERE mr.user_id = u.id) AS roles,
                  (SELECT ps.mode FROM node_public_scope ps) AS public_scope,
                  (SELECT count(*) FROM messages m WHERE m.recipient_id = u.id
                      AND m.read_at IS NULL) AS unread_messages
             FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
              AND NOT u.disabled AND u.origin IS NULL""",
        id_hash)


async def touch_session(conn: Conn, id_hash: str) -> None:
    await conn.execute(TOUCH_SESSION, id_hash)
