"""All SQL of request drafts."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection


async def count_for(conn: Conn, owner_id: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM request_drafts WHERE owner_id = $1",
                               owner_id)


async def lock_owner(conn: asyncpg.Connection, owner_id: str) -> None:
    """One draft write per member at a time (the per-member limit holds under races)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('request_drafts:' || $1))",
                       owner_id)


async def insert(conn: Conn, *, draft_id: str, owner_id: str, title: str, description: str,
                 contact_email: str, sync_scope: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO request_drafts (id, owner_id, title, description, contact_email, "
        "sync_scope) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        draft_id, owner_id, title, description, contact_email, sync_scope)


async def update(conn: Conn, *, draft_id: str, owner_id: str, title: str, description: str,
                 contact_email: str, sync_scope: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE request_drafts SET title = $3, description = $4, contact_email = $5, "
        "sync_scope = $6, updated_at = now() WHERE id = $1 AND owner_id = $2 RETURNING *",
        draft_id, owner_id, title, description, contact_email, sync_scope)


async def get_own(conn: Conn, draft_id: str, owner_id: str, *,
                  for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(
        f"SELECT * FROM request_drafts WHERE id = $1 AND owner_id = $2{lock}",
        draft_id, owner_id)


async def delete_own(conn: Conn, draft_id: str, owner_id: str) -> bool:
    return await conn.fetchval(
        "DELETE FROM request_drafts WHERE id = $1 AND owner_id = $2 RETURNING true",
        draft_id, owner_id) or False


async def list_own(conn: Conn, owner_id: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM request_drafts WHERE owner_id = $1 ORDER BY updated_at DESC, id DESC "
        "LIMIT $2", owner_id, limit)
