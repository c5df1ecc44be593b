"""SQL of the hub's admin dashboard: tokens, sessions, CSRF secret and gauges (re-exported
by hub.queries)."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

# ------------------------------------------------------------------------- admin

async def add_admin_token(conn: Conn, token_hash: str) -> None:
    await conn.execute("INSERT INTO hub_admin_tokens (token_hash) VALUES ($1)", token_hash)


async def admin_token_exists(conn: Conn, token_hash: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_admin_tokens WHERE token_hash = $1)", token_hash)


async def create_admin_session(conn: Conn, id_hash: str, hours: int) -> None:
    await conn.execute(
        "DELETE FROM hub_admin_sessions WHERE expires_at < now()")
    await conn.execute(
        "INSERT INTO hub_admin_sessions (id_hash, expires_at) "
        "VALUES ($1, now() + make_interval(hours => $2))", id_hash, hours)


async def admin_session_valid(conn: Conn, id_hash: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_admin_sessions WHERE id_hash = $1 "
        "AND expires_at > now())", id_hash)


async def end_admin_session(conn: Conn, id_hash: str) -> None:
    await conn.execute("DELETE FROM hub_admin_sessions WHERE id_hash = $1", id_hash)


async def csrf_secret(conn: Conn) -> str:
    return await conn.fetchval("SELECT csrf_secret FROM hub_state WHERE id = 1")


async def count_pending_bundles(conn: Conn) -> int:
    return await conn.fetchval("SELECT count(*) FROM hub_pending_bundles")
