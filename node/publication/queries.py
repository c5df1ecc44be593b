"""All SQL of SYNC_PUBLIC_SCOPE: the mode in force and publication requests."""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def get_mode(conn: Conn) -> str | None:
    return await conn.fetchval("SELECT mode FROM node_public_scope")


async def lock_mode(conn: asyncpg.Connection) -> str | None:
    return await conn.fetchval("SELECT mode FROM node_public_scope FOR UPDATE")


async def get_state(conn: Conn) -> asyncpg.Record | None:
    """The mode in force, the setting last seen at start-up, who set the mode and when."""
    return await conn.fetchrow(
        "SELECT s.mode, s.configured, s.source, s.changed_at, u.username AS changed_by "
        "FROM node_public_scope s LEFT JOIN users u ON u.id = s.changed_by")


async def set_mode(conn: Conn, mode: str, *, configured: str | None = None,
                   source: str = "setting", changed_by: str | None = None) -> None:
    """Write the mode in force. ``configured`` (the setting seen at start-up) is kept as
    it was unless given."""
    await conn.execute(
        "INSERT INTO node_public_scope (id, mode, configured, source, changed_by) "
        "VALUES (true, $1, coalesce($2, $1), $3, $4) "
        "ON CONFLICT (id) DO UPDATE SET mode = EXCLUDED.mode, changed_at = now(), "
        "configured = coalesce($2, node_public_scope.configured), "
        "source = EXCLUDED.source, changed_by = EXCLUDED.changed_by",
        mode, configured, source, changed_by)


async def set_configured(conn: Conn, configured: str) -> None:
    await conn.execute("UPDATE node_public_scope SET configured = $1", configured)


async def lock_mode_row(conn: asyncpg.Connection) -> None:
    """Serialise mode changes (the row may not exist yet on a fresh node)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('node_public_scope'))")


async def add_request(conn: Conn, *, request_id: str, kind: str, record_id: str,
                      requested_by: str | None) -> tuple[str, bool]:
    """File a pending request; (its id, True) or the one already pending (id, False)."""
    row = await conn.fetchrow(
        "INSERT INTO publication_requests (id, kind, record_id, requested_by) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (kind, record_id) WHERE status = 'pending' "
        "DO NOTHING RETURNING id", request_id, kind, record_id, requested_by)
    if row is not None:
        return row["id"], True
    existing = await conn.fetchval(
        "SELECT id FROM publication_requests WHERE kind = $1 AND record_id = $2 "
        "AND status = 'pending'", kind, record_id)
    return existing, False


_REQUEST_COLS = """
    p.id, p.kind, p.record_id, p.status, p.requested_at, p.decided_at, p.decided_via,
    p.note, p.requested_by, ru.username AS requested_by_username,
    du.username AS decided_by_username,
    CASE p.kind
      WHEN 'request' THEN (SELECT coalesce(nullif(r.title, ''), left(r.description, 80))
                             FROM requests r WHERE r.id = p.record_id)
      WHEN 'comment' THEN (SELECT left(c.body, 80) FROM comments c WHERE c.id = p.record_id)
      ELSE (SELECT u.username FROM users u WHERE u.id = p.record_id)
    END AS summary"""
_REQUEST_FROM = """
    FROM publication_requests p
    LEFT JOIN users ru ON ru.id = p.requested_by
    LEFT JOIN users du ON du.id = p.decided_by"""


async def list_requests(conn: Conn, *, status: str | None, limit: int) -> list[asyncpg.Record]:
    if status is None:
        return await conn.fetch(
            f"SELECT {_REQUEST_COLS} {_REQUEST_FROM} "
            "ORDER BY p.requested_at DESC, p.id DESC LIMIT $1", limit)
    return await conn.fetch(
        f"SELECT {_REQUEST_COLS} {_REQUEST_FROM} WHERE p.status = $2 "
        "ORDER BY p.requested_at, p.id LIMIT $1", limit, status)


async def lock_request(conn: asyncpg.Connection, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, kind, record_id, status, requested_by FROM publication_requests "
        "WHERE id = $1 FOR UPDATE", request_id)


async def decide(conn: Conn, request_id: str, *, status: str, decided_by: str | None,
                 via: str, note: str | None) -> None:
    await conn.execute(
        "UPDATE publication_requests SET status = $2, decided_by = $3, decided_via = $4, "
        "decided_at = now(), note = $5 WHERE id = $1", request_id, status, decided_by, via,
        note)


async def cancel_pending_for(conn: Conn, kind: str, record_id: str, via: str) -> int:
    """A record made private (or deleted) by its owner: its pending request is moot."""
    res = await conn.execute(
        "UPDATE publication_requests SET status = 'cancelled', decided_at = now(), "
        "decided_via = $3 WHERE kind = $1 AND record_id = $2 AND status = 'pending'",
        kind, record_id, via)
    return int(res.split()[-1])


async def still_public(conn: Conn, limit: int) -> dict[str, list[asyncpg.Record]]:
    """Local records marked public (whatever the mode), newest first."""
    requests = await conn.fetch(
        "SELECT r.id, coalesce(nullif(r.title, ''), left(r.description, 80)) AS summary, "
        "r.published, r.created_at FROM requests r WHERE r.origin IS NULL "
        "AND r.sync_scope = 'public' AND r.deleted_at IS NULL "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT $1", limit)
    comments = await conn.fetch(
        "SELECT c.id, left(c.body, 80) AS summary, c.published, c.created_at FROM comments c "
        "WHERE c.origin IS NULL AND c.sync_scope = 'public' AND c.deleted_at IS NULL "
        "ORDER BY c.created_at DESC, c.id DESC LIMIT $1", limit)
    users = await conn.fetch(
        "SELECT u.id, u.username AS summary, u.published, u.created_at FROM users u "
        "WHERE u.origin IS NULL AND u.sync_scope = 'public' AND u.deleted_at IS NULL "
        "ORDER BY lower(u.username) LIMIT $1", limit)
    return {"request": requests, "comment": comments, "user": users}


async def public_ids(conn: Conn) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT 'request' AS kind, id FROM requests WHERE origin IS NULL "
        "AND sync_scope = 'public' UNION ALL "
        "SELECT 'comment', id FROM comments WHERE origin IS NULL AND sync_scope = 'public' "
        "UNION ALL SELECT 'user', id FROM users WHERE origin IS NULL "
        "AND sync_scope = 'public'")
    return [(r["kind"], r["id"]) for r in rows]


async def make_public_rows_dirty(conn: Conn) -> int:
    """After `off`: public rows that were tombstoned become due for publishing again."""
    total = 0
    for table in ("users", "requests", "comments"):
        res = await conn.execute(
            f"UPDATE {table} SET published_revision = NULL WHERE origin IS NULL "  # noqa: S608
            "AND sync_scope = 'public' AND NOT published")
        total += int(res.split()[-1])
    return total


async def audit(conn: Conn, *, actor_id: str | None, action: str, target: str,
                ip: str | None, details: dict[str, Any]) -> None:
    import json

    await conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, ip, details) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        actor_id, action, target, ip, json.dumps(details))
