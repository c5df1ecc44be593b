"""All SQL of skins: a member's choice."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def set_member_skin(conn: Conn, user_id: str, skin: str | None) -> None:
    if skin is None:
        await conn.execute("DELETE FROM member_skins WHERE user_id = $1", user_id)
        return
    await conn.execute(
        "INSERT INTO member_skins (user_id, skin) VALUES ($1, $2) ON CONFLICT (user_id) "
        "DO UPDATE SET skin = EXCLUDED.skin, updated_at = now()", user_id, skin)


async def local_user_id(conn: Conn, username: str) -> str | None:
    return await conn.fetchval(
        "SELECT id FROM users WHERE lower(username) = lower($1) AND origin IS NULL "
        "AND deleted_at IS NULL", username)


async def counts(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT skin, count(*) AS n FROM member_skins GROUP BY skin")
    return {r["skin"]: r["n"] for r in rows}
