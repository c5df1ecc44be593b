"""SQL of the node's operational views: /metrics gauges and the `serve` banner."""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def count_sessions_by_revoked_at(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT status, count(*) AS n FROM sessions WHERE revoked_at IS NULL "
        "AND expires_at > now() GROUP BY status"
    )


async def count_requests_by_origin(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT status, count(*) AS n FROM requests WHERE origin IS NULL AND deleted_at IS NULL "
        "GROUP BY status"
    )


async def count_users_by_origin(conn: Conn) -> Any:
    return await conn.fetchval("SELECT count(*) FROM users WHERE origin IS NULL")
