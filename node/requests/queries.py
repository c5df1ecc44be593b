"""All SQL of the requests feature: feed, detail, comments, completion, scope, audit.

Every function takes a pool or a connection. Visibility (who may see a pending or a
deleted request) is decided in ``service``; the queries take the resulting flags.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection
Cursor = tuple[dt.datetime, str]

_REQUEST_COLUMNS = """
    r.id, r.title, r.description, r.status, r.sync_scope, r.created_at, r.updated_at,
    r.completed_at, r.deleted_at, r.origin, r.origin_id, r.instance, r.created_by,
    r.contact_email, u.username AS creator_username, u.display_name AS creator_display_name,
    u.instance AS creator_instance"""

_FEED_COLUMNS = """
    r.id, r.title, left(r.description, 400) AS description, r.status, r.sync_scope,
    r.created_at, r.updated_at, r.completed_at, r.deleted_at, r.origin, r.origin_id,
    r.instance, r.created_by, r.contact_email, u.username AS creator_username,
    u.display_name AS creator_display_name, u.instance AS creator_instance,
    (SELECT count(*) FROM comments c
      WHERE c.request_id = r.id AND c.deleted_at IS NULL) AS comment_count,
    ARRAY(SELECT t.tag FROM request_tags t WHERE t.request_id = r.id ORDER BY t.tag) AS tags"""

FEED_STATUSES = ("open", "completed", "pending", "all")


def _status_where(status: str, viewer_id: str | None, is_admin: bool,
                  args: list[Any]) -> str:
    """Fixed SQL per status filter; a non-admin only ever sees their own pending rows."""
    if status in ("open", "completed"):
        return f"r.status = '{status}'"
    if is_admin:
        return "r.status = 'pending'" if status == "pending" else "TRUE"
    if viewer_id is None:
        return "FALSE" if status == "pending" else "r.status <> 'pending'"
    args.append(viewer_id)
    if status == "pending":
        return f"r.status = 'pending' AND r.created_by = ${len(args)}"
    return f"(r.status <> 'pending' OR r.created_by = ${len(args)})"


async def feed(conn: Conn, *, viewer_id: str | None, is_admin: bool, status: str,
               search: str, before: Cursor | None, limit: int,
               tag: str = "") -> list[asyncpg.Record]:
    """One page of the feed, newest first, keyset-paginated on (created_at, id)."""
    args: list[Any] = []
    where = ["r.deleted_at IS NULL", _status_where(status, viewer_id, is_admin, args)]
    if tag:
        args.append(tag)
        where.append(f"EXISTS (SELECT 1 FROM request_tags t WHERE t.request_id = r.id "
                     f"AND t.tag = ${len(args)})")
    if search:
        args.append(search)
        where.append(f"r.search @@ websearch_to_tsquery('simple', ${len(args)})")
    if before is not None:
        args.extend(before)
        where.append(f"(r.created_at, r.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    sql = (f"SELECT {_FEED_COLUMNS} FROM requests r LEFT JOIN users u ON u.id = r.created_by "
           f"WHERE {' AND '.join(where)} ORDER BY r.created_at DESC, r.id DESC "
           f"LIMIT ${len(args)}")
    return await conn.fetch(sql, *args)


async def own_pending(conn: Conn, user_id: str, limit: int = 50) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_FEED_COLUMNS} FROM requests r LEFT JOIN users u ON u.id = r.created_by "
        "WHERE r.created_by = $1 AND r.status = 'pending' AND r.deleted_at IS NULL "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT $2", user_id, limit)


async def pending_of_session(conn: Conn, session_hash: str, limit: int = 50
                             ) -> list[asyncpg.Record]:
    """What one unapproved device wrote: the pending requests bound to its sign-in."""
    return await conn.fetch(
        f"SELECT {_FEED_COLUMNS} FROM requests r LEFT JOIN users u ON u.id = r.created_by "
        "JOIN auth_requests a ON a.id = r.auth_request_id "
        "WHERE a.session_hash = $1 AND r.status = 'pending' AND r.deleted_at IS NULL "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT $2", session_hash, limit)


async def count_bound(conn: Conn, auth_request_id: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM requests WHERE auth_request_id = $1 AND status = 'pending'",
        auth_request_id)


async def live_sign_in(conn: Conn, session_hash: str) -> asyncpg.Record | None:
    """The session's live (pending, unexpired) sign-in request, locked against a
    concurrent approval or denial until the end of the transaction."""
    return await conn.fetchrow(
        "SELECT id FROM auth_requests WHERE session_hash = $1 AND status = 'pending' "
        "AND expires_at > now() ORDER BY created_at DESC, id DESC LIMIT 1 FOR SHARE",
        session_hash)


async def get_request(conn: Conn, request_id: str, *, for_update: bool = False
                      ) -> asyncpg.Record | None:
    lock = " FOR UPDATE OF r" if for_update else ""
    return await conn.fetchrow(
        f"SELECT {_REQUEST_COLUMNS} FROM requests r LEFT JOIN users u ON u.id = r.created_by "
        f"WHERE r.id = $1{lock}", request_id)


async def insert_request(conn: Conn, *, request_id: str, title: str, description: str,
                         status: str, created_by: str, contact_email: str | None,
                         sync_scope: str, auth_request_id: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO requests (id, title, description, status, created_by, contact_email, "
        "sync_scope, auth_request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        request_id, title, description, status, created_by, contact_email, sync_scope,
        auth_request_id)


async def set_completed(conn: Conn, request_id: str) -> asyncpg.Record | None:
    """Open → completed; None when the request was not open (someone else was first)."""
    return await conn.fetchrow(
        "UPDATE requests SET status = 'completed', completed_at = now() "
        "WHERE id = $1 AND status = 'open' AND origin IS NULL AND deleted_at IS NULL "
        "RETURNING created_at, completed_at", request_id)


async def set_reopened(conn: Conn, request_id: str) -> bool:
    row = await conn.fetchrow(
        "UPDATE requests SET status = 'open', completed_at = NULL "
        "WHERE id = $1 AND status = 'completed' AND origin IS NULL RETURNING id", request_id)
    return row is not None


async def set_request_scope(conn: Conn, request_id: str, scope: str) -> None:
    await conn.execute("UPDATE requests SET sync_scope = $2 WHERE id = $1 AND origin IS NULL",
                       request_id, scope)


async def set_comment_scope(conn: Conn, comment_id: str, scope: str) -> None:
    await conn.execute("UPDATE comments SET sync_scope = $2 WHERE id = $1 AND origin IS NULL",
                       comment_id, scope)


async def set_user_scope(conn: Conn, user_id: str, scope: str) -> None:
    await conn.execute("UPDATE users SET sync_scope = $2 WHERE id = $1 AND origin IS NULL",
                       user_id, scope)


# --------------------------------------------------------------------------- comments

_COMMENT_COLUMNS = """
    c.id, c.request_id, c.body, c.sync_scope, c.created_at, c.deleted_at, c.origin,
    c.instance, c.created_by, u.username AS creator_username,
    u.display_name AS creator_display_name, u.instance AS creator_instance"""


async def comments_page(conn: Conn, request_id: str, *, include_deleted: bool,
                        after: Cursor | None, limit: int) -> list[asyncpg.Record]:
    """Comments oldest first, keyset-paginated on (created_at, id)."""
    where = ["c.request_id = $1"]
    args: list[Any] = [request_id]
    if not include_deleted:
        where.append("c.deleted_at IS NULL")
    if after is not None:
        args.extend(after)
        where.append(f"(c.created_at, c.id) > (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return await conn.fetch(
        f"SELECT {_COMMENT_COLUMNS} FROM comments c LEFT JOIN users u ON u.id = c.created_by "
        f"WHERE {' AND '.join(where)} ORDER BY c.created_at, c.id LIMIT ${len(args)}", *args)


async def count_comments(conn: Conn, request_id: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM comments WHERE request_id = $1 AND deleted_at IS NULL", request_id)


async def get_comment(conn: Conn, comment_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_COMMENT_COLUMNS} FROM comments c LEFT JOIN users u ON u.id = c.created_by "
        "WHERE c.id = $1", comment_id)


async def insert_comment(conn: Conn, *, comment_id: str, request_id: str, created_by: str,
                         body: str) -> None:
    await conn.execute(
        "INSERT INTO comments (id, request_id, created_by, body) VALUES ($1, $2, $3, $4)",
        comment_id, request_id, created_by, body)


async def set_comment_deleted(conn: Conn, comment_id: str, deleted: bool) -> bool:
    """Soft-delete or restore; False when the comment was already in that state."""
    if deleted:
        sql = ("UPDATE comments SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL "
               "AND origin IS NULL RETURNING id")
    else:
        sql = ("UPDATE comments SET deleted_at = NULL WHERE id = $1 AND deleted_at IS NOT NULL "
               "AND origin IS NULL RETURNING id")
    return await conn.fetchrow(sql, comment_id) is not None


# --------------------------------------------------------------------------- scope page

async def scope_records(conn: Conn, *, owner_id: str | None, limit: int
                        ) -> dict[str, list[asyncpg.Record]]:
    """Local records with their scope: the owner's own, or every local one (owner None)."""
    args: list[Any] = [limit]
    mine_r = mine_c = mine_u = ""
    if owner_id is not None:
        args.append(owner_id)
        mine_r = " AND r.created_by = $2"
        mine_c = " AND c.created_by = $2"
        mine_u = " AND u.id = $2"
    requests = await conn.fetch(
        "SELECT r.id, r.title, r.description, r.status, r.sync_scope, r.created_at "
        f"FROM requests r WHERE r.origin IS NULL AND r.deleted_at IS NULL{mine_r} "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT $1", *args)
    comments = await conn.fetch(
        "SELECT c.id, c.request_id, left(c.body, 120) AS body, c.sync_scope, c.created_at "
        f"FROM comments c WHERE c.origin IS NULL AND c.deleted_at IS NULL{mine_c} "
        "ORDER BY c.created_at DESC, c.id DESC LIMIT $1", *args)
    users = await conn.fetch(
        "SELECT u.id, u.username, u.display_name, u.sync_scope FROM users u "
        f"WHERE u.origin IS NULL AND u.deleted_at IS NULL{mine_u} "
        "ORDER BY lower(u.username) LIMIT $1", *args)
    return {"request": requests, "comment": comments, "user": users}


async def record_owner(conn: Conn, kind: str, record_id: str) -> asyncpg.Record | None:
    """(owner id, origin, scope) of a request, comment or user; None when missing."""
    sql = {
        "request": "SELECT created_by AS owner, origin, sync_scope FROM requests WHERE id = $1",
        "comment": "SELECT created_by AS owner, origin, sync_scope FROM comments WHERE id = $1",
        "user": "SELECT id AS owner, origin, sync_scope FROM users WHERE id = $1",
    }[kind]
    return await conn.fetchrow(sql, record_id)


# --------------------------------------------------------------------------- audit

async def audit(conn: Conn, *, actor_id: str | None, action: str, target: str,
                ip: str | None, details: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, ip, details) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        actor_id, action, target, ip, json.dumps(details))


async def list_for_cli(conn: Conn, *, status: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT r.id, r.status, r.title, r.created_at, r.sync_scope, r.origin, "
        "u.username AS creator_username FROM requests r LEFT JOIN users u ON u.id = r.created_by "
        "WHERE r.deleted_at IS NULL AND ($1::text IS NULL OR r.status = $1) "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT $2", status, limit)
