"""All SQL of pinned requests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

_ACTIVE = "(p.ends_at IS NULL OR p.ends_at > now())"


async def lock(conn: asyncpg.Connection) -> None:
    """Serialise pin changes so two admins cannot both take the last free slot."""
    await conn.execute("LOCK TABLE request_pins IN SHARE ROW EXCLUSIVE MODE")


async def count_active(conn: Conn, *, excluding: str | None = None) -> int:
    return await conn.fetchval(
        f"SELECT count(*) FROM request_pins p WHERE {_ACTIVE} "
        "AND ($1::text IS NULL OR p.request_id <> $1)", excluding)


async def upsert(conn: Conn, *, request_id: str, position: int, note: str,
                 ends_at: dt.datetime | None, pinned_by: str | None) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO request_pins (request_id, position, note, ends_at, pinned_by) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO UPDATE SET "
        "position = EXCLUDED.position, note = EXCLUDED.note, ends_at = EXCLUDED.ends_at, "
        "pinned_by = EXCLUDED.pinned_by, created_at = now() RETURNING *",
        request_id, position, note, ends_at, pinned_by)


async def delete(conn: Conn, request_id: str) -> bool:
    return await conn.fetchval(
        "DELETE FROM request_pins WHERE request_id = $1 RETURNING true", request_id) or False


async def get(conn: Conn, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM request_pins WHERE request_id = $1", request_id)


_COLUMNS = ("p.request_id, p.position, p.note, p.ends_at, p.created_at AS pinned_at, "
            "r.title, r.description, r.status, r.sync_scope, r.created_at, r.origin, "
            "r.instance, u.username AS creator_username, "
            "u.display_name AS creator_display_name, pu.username AS pinned_by_username")


async def active(conn: Conn) -> list[asyncpg.Record]:
    """Pins members see: running, on an open request that is not deleted."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM request_pins p JOIN requests r ON r.id = p.request_id "
        "LEFT JOIN users u ON u.id = r.created_by LEFT JOIN users pu ON pu.id = p.pinned_by "
        f"WHERE {_ACTIVE} AND r.status = 'open' AND r.deleted_at IS NULL "
        "ORDER BY p.position, p.created_at, p.request_id")


async def all_pins(conn: Conn) -> list[asyncpg.Record]:
    """Every pin, ended ones too, for the admin page and the CLI."""
    return await conn.fetch(
        f"SELECT {_COLUMNS}, {_ACTIVE} AS running, r.deleted_at FROM request_pins p "
        "JOIN requests r ON r.id = p.request_id "
        "LEFT JOIN users u ON u.id = r.created_by LEFT JOIN users pu ON pu.id = p.pinned_by "
        "ORDER BY p.position, p.created_at, p.request_id")


async def audit(conn: Conn, *, actor_id: str | None, action: str, target: str,
                ip: str | None, details: dict[str, Any]) -> None:
    import json

    await conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, ip, details) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)", actor_id, action, target, ip, json.dumps(details))
