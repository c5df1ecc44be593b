"""All SQL of comment promotions."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection


async def insert(conn: Conn, *, comment_id: str, request_id: str,
                 promoted_by: str | None) -> bool:
    """False when the comment was promoted already (the primary key decides, once)."""
    return await conn.fetchval(
        "INSERT INTO comment_promotions (comment_id, request_id, promoted_by) "
        "VALUES ($1, $2, $3) ON CONFLICT (comment_id) DO NOTHING RETURNING true",
        comment_id, request_id, promoted_by) or False


async def lock_comment(conn: asyncpg.Connection, comment_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id FROM comments WHERE id = $1 FOR UPDATE", comment_id)


async def by_comments(conn: Conn, comment_ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT comment_id, request_id FROM comment_promotions WHERE comment_id = ANY($1)",
        comment_ids)
    return {r["comment_id"]: r["request_id"] for r in rows}


async def source_of(conn: Conn, request_id: str) -> asyncpg.Record | None:
    """The comment (and its request) a request was promoted from."""
    return await conn.fetchrow(
        "SELECT p.comment_id, c.request_id AS source_request_id, r.title AS source_title "
        "FROM comment_promotions p JOIN comments c ON c.id = p.comment_id "
        "JOIN requests r ON r.id = c.request_id WHERE p.request_id = $1", request_id)


async def existing(conn: Conn, comment_id: str) -> str | None:
    return await conn.fetchval(
        "SELECT request_id FROM comment_promotions WHERE comment_id = $1", comment_id)
