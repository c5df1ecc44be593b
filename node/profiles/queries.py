"""All SQL of the profiles feature: profiles, directory, admin directory, invite map cache.

Functions take a pool or a connection. Who may see whom is one SQL predicate
(``VISIBLE``) used by every query that lists or draws members, so the profile page,
the directory and the invite map cannot disagree.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

# Visibility of member ``u`` to viewer $1 (admin flag $2): admins see every account; a
# member sees themself and every live account. Inside a community, name, bio and avatar
# are for all its members (they already read each other's requests); a profile's scope
# only says whether it may leave the community, and the contact address has its own rule
# (service.contact_visible). The choice is written down in docs/member-guide.md.
VISIBLE = """($2 OR u.id = $1 OR (NOT u.disabled AND u.deleted_at IS NULL))"""

PROFILE_COLUMNS = """u.id, u.username, u.display_name, u.bio, u.contact_email,
    u.share_contact, u.is_admin, u.disabled, u.invited_by, u.invite_id, u.avatar_path,
    u.sync_scope, u.deleted_at, u.created_at, u.updated_at"""


# --------------------------------------------------------------------------- profiles

async def user_by_id(conn: Conn, user_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM users u WHERE u.id = $1 AND u.origin IS NULL", user_id)


async def user_by_username(conn: Conn, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM users u "
        "WHERE u.origin IS NULL AND lower(u.username) = lower($1)", username)


async def visible_user(conn: Conn, *, viewer_id: str, is_admin: bool, user_id: str | None
                       ) -> asyncpg.Record | None:
    """The local member ``user_id`` (with visibility), or None when it does not exist."""
    if user_id is None:
        return None
    return await conn.fetchrow(
        f"SELECT u.id, u.username, u.display_name, {VISIBLE} AS visible "
        "FROM users u WHERE u.id = $3 AND u.origin IS NULL", viewer_id, is_admin, user_id)


async def can_see(conn: Conn, *, viewer_id: str, is_admin: bool, user_id: str) -> bool:
    return bool(await conn.fetchval(
        f"SELECT {VISIBLE} FROM users u WHERE u.id = $3 AND u.origin IS NULL",
        viewer_id, is_admin, user_id))


async def requests_by(conn: Conn, user_id: str, *, include_pending: bool, limit: int
                      ) -> list[asyncpg.Record]:
    pending = "" if include_pending else " AND r.status <> 'pending'"
    return await conn.fetch(
        "SELECT r.id, r.title, left(r.description, 200) AS description, r.status, "
        "r.sync_scope, r.created_at FROM requests r "
        f"WHERE r.created_by = $1 AND r.deleted_at IS NULL{pending} "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT $2", user_id, limit)


async def comments_by(conn: Conn, user_id: str, *, viewer_id: str, is_admin: bool, limit: int
                      ) -> list[asyncpg.Record]:
    """Live comments of ``user_id`` on live requests the viewer may open."""
    return await conn.fetch(
        "SELECT c.id, left(c.body, 200) AS body, c.created_at, c.request_id, "
        "r.title AS request_title FROM comments c JOIN requests r ON r.id = c.request_id "
        "WHERE c.created_by = $1 AND c.deleted_at IS NULL AND r.deleted_at IS NULL "
        "AND (r.status <> 'pending' OR $3 OR r.created_by = $2) "
        "ORDER BY c.created_at DESC, c.id DESC LIMIT $4", user_id, viewer_id, is_admin, limit)


async def invites_sent(conn: Conn, user_id: str, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT i.id, i.max_uses, i.use_count, i.expires_at, i.disabled, i.created_at, "
        "i.suggested_username, (i.expires_at IS NOT NULL AND i.expires_at <= now()) AS expired, "
        "COALESCE((SELECT array_agg(u.username ORDER BY u.created_at) FROM users u "
        "          WHERE u.invite_id = i.id AND u.origin IS NULL), '{}') AS used_by "
        "FROM invites i WHERE i.created_by = $1 ORDER BY i.created_at DESC, i.id DESC LIMIT $2",
        user_id, limit)


async def invitees(conn: Conn, user_id: str, limit: int = 200) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT u.id, u.username, u.display_name, u.sync_scope, u.disabled, u.created_at "
        "FROM users u WHERE u.invited_by = $1 AND u.origin IS NULL "
        "ORDER BY u.created_at, u.id LIMIT $2", user_id, limit)


async def update_account(conn: Conn, user_id: str, *, display_name: str, bio: str,
                         contact_email: str | None, share_contact: bool, scope: str) -> None:
    await conn.execute(
        "UPDATE users SET display_name = $2, bio = $3, contact_email = $4, share_contact = $5, "
        "sync_scope = $6 WHERE id = $1 AND origin IS NULL",
        user_id, display_name, bio, contact_email, share_contact, scope)


async def set_avatar(conn: Conn, user_id: str, name: str | None) -> str | None:
    """Set the avatar file name; return the previous one."""
    return await conn.fetchval(
        "WITH old AS (SELECT avatar_path FROM users WHERE id = $1 AND origin IS NULL "
        "FOR UPDATE) UPDATE users u SET avatar_path = $2 FROM old WHERE u.id = $1 "
        "RETURNING old.avatar_path", user_id, name)


async def avatar_in_use(conn: Conn, name: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM users WHERE avatar_path = $1 AND origin IS NULL)", name))


async def audit(conn: Conn, action: str, *, actor_id: str | None, target: str | None,
                ip: str | None, details: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, ip, details) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        actor_id, action, target, ip or None, json.dumps(details or {}))


# --------------------------------------------------------------------------- directories

# Filters are fixed fragments chosen by name, never built from input.
_ROLE_WHERE = {"admin": "u.is_admin", "member": "NOT u.is_admin"}
_SCOPE_WHERE = {"public": "u.sync_scope = 'public'", "private": "u.sync_scope = 'private'"}
_STATUS_WHERE = {"active": "NOT u.disabled AND u.deleted_at IS NULL",
                 "disabled": "(u.disabled OR u.deleted_at IS NOT NULL)"}


def _directory_where(*, search: str, role: str, scope: str, status: str, invited_by_me: bool,
                     args: list[Any]) -> list[str]:
    where = ["u.origin IS NULL"]
    if search:
        args.append("%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    + "%")
        n = len(args)
        where.append(f"(u.username ILIKE ${n} OR u.display_name ILIKE ${n})")
    if role in _ROLE_WHERE:
        where.append(_ROLE_WHERE[role])
    if scope in _SCOPE_WHERE:
        where.append(_SCOPE_WHERE[scope])
    if status in _STATUS_WHERE:
        where.append(_STATUS_WHERE[status])
    if invited_by_me:
        where.append("u.invited_by = $1")
    return where


async def directory(conn: Conn, *, viewer_id: str, is_admin: bool, search: str, role: str,
                    scope: str, invited_by_me: bool, offset: int, limit: int
                    ) -> list[asyncpg.Record]:
    """Members the viewer may see, alphabetically; ``limit + 1`` rows tell of a next page."""
    args: list[Any] = [viewer_id, is_admin]
    where = _directory_where(search=search, role=role, scope=scope, status="",
                             invited_by_me=invited_by_me, args=args)
    where.append(VISIBLE)
    args.extend([limit + 1, offset])
    return await conn.fetch(
        "SELECT u.id, u.username, u.display_name, left(u.bio, 160) AS bio, u.avatar_path, "
        "u.sync_scope, u.is_admin, u.disabled, u.created_at, (u.invited_by = $1) AS my_invitee "
        f"FROM users u WHERE {' AND '.join(where)} "
        f"ORDER BY lower(u.username) LIMIT ${len(args) - 1} OFFSET ${len(args)}", *args)


async def admin_directory(conn: Conn, *, search: str, role: str, scope: str, status: str,
                          offset: int, limit: int) -> tuple[list[asyncpg.Record], int]:
    args: list[Any] = []
    where = _directory_where(search=search, role=role, scope=scope, status=status,
                             invited_by_me=False, args=args)
    sql_where = " AND ".join(where)
    total = await conn.fetchval(
        f"SELECT count(*) FROM users u WHERE {sql_where}", *args)
    args.extend([limit, offset])
    rows = await conn.fetch(
        "SELECT u.id, u.username, u.display_name, u.sync_scope, u.is_admin, u.disabled, "
        "u.deleted_at, u.created_at, u.avatar_path, inv.username AS invited_by_username, "
        "(SELECT count(*) FROM requests r WHERE r.created_by = u.id) AS request_count, "
        "(SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL "
        "   AND s.expires_at > now()) AS session_count "
        "FROM users u LEFT JOIN users inv ON inv.id = u.invited_by "
        f"WHERE {sql_where} "
        f"ORDER BY u.created_at DESC, u.id DESC LIMIT ${len(args) - 1} OFFSET ${len(args)}",
        *args)
    return rows, total


async def admin_detail(conn: Conn, user_id: str) -> dict[str, Any]:
    requests = await conn.fetch(
        "SELECT id, title, status, sync_scope, created_at, deleted_at FROM requests "
        "WHERE created_by = $1 ORDER BY created_at DESC, id DESC LIMIT 50", user_id)
    comments = await conn.fetch(
        "SELECT c.id, left(c.body, 160) AS body, c.request_id, c.created_at, c.deleted_at "
        "FROM comments c WHERE c.created_by = $1 ORDER BY c.created_at DESC, c.id DESC LIMIT 50",
        user_id)
    sessions = await conn.fetch(
        "SELECT left(id_hash, 10) AS short_id, status, created_at, expires_at, last_seen_at, "
        "ip, user_agent, revoked_at, (revoked_at IS NULL AND expires_at > now()) AS live "
        "FROM sessions WHERE user_id = $1 ORDER BY last_seen_at DESC LIMIT 50", user_id)
    used = await conn.fetchrow(
        "SELECT i.id, i.created_at, c.username AS created_by_username FROM users u "
        "JOIN invites i ON i.id = u.invite_id LEFT JOIN users c ON c.id = i.created_by "
        "WHERE u.id = $1", user_id)
    return {"requests": requests, "comments": comments, "sessions": sessions,
            "invite_used": used, "roles": await roles_of(conn, user_id)}


async def lock_admins(conn: asyncpg.Connection) -> list[str]:
    """Lock every live local admin row (in id order) for the transaction; return their ids."""
    rows = await conn.fetch(
        "SELECT id FROM users WHERE origin IS NULL AND is_admin AND NOT disabled "
        "AND deleted_at IS NULL ORDER BY id FOR UPDATE")
    return [r["id"] for r in rows]


async def set_admin(conn: Conn, user_id: str, is_admin: bool) -> bool:
    row = await conn.fetchrow(
        "UPDATE users SET is_admin = $2 WHERE id = $1 AND origin IS NULL "
        "AND is_admin IS DISTINCT FROM $2 RETURNING id", user_id, is_admin)
    return row is not None


async def roles_of(conn: Conn, user_id: str) -> list[str]:
    rows = await conn.fetch("SELECT role FROM member_roles WHERE user_id = $1 ORDER BY role",
                            user_id)
    return [r["role"] for r in rows]


async def members_with_role(conn: Conn, role: str | None = None) -> list[asyncpg.Record]:
    """Local live members holding ``role`` (every role when None), oldest grant first."""
    return await conn.fetch(
        """SELECT mr.role, mr.granted_at, u.id, u.username, u.display_name, g.username AS granted_by
             FROM member_roles mr JOIN users u ON u.id = mr.user_id
             LEFT JOIN users g ON g.id = mr.granted_by
            WHERE ($1::text IS NULL OR mr.role = $1) AND u.origin IS NULL
              AND NOT u.disabled AND u.deleted_at IS NULL
            ORDER BY mr.role, mr.granted_at, u.username""", role)


async def grant_role(conn: Conn, user_id: str, role: str, granted_by: str | None) -> bool:
    row = await conn.fetchrow(
        "INSERT INTO member_roles (user_id, role, granted_by) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING RETURNING user_id", user_id, role, granted_by)
    return row is not None


async def revoke_role(conn: Conn, user_id: str, role: str) -> bool:
    row = await conn.fetchrow(
        "DELETE FROM member_roles WHERE user_id = $1 AND role = $2 RETURNING user_id",
        user_id, role)
    return row is not None


async def set_disabled(conn: Conn, user_id: str, disabled: bool) -> bool:
    row = await conn.fetchrow(
        "UPDATE users SET disabled = $2 WHERE id = $1 AND origin IS NULL "
        "AND disabled IS DISTINCT FROM $2 RETURNING id", user_id, disabled)
    return row is not None


async def revoke_sessions(conn: Conn, user_id: str) -> int:
    result = await conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id)
    return int(result.split()[-1])


# --------------------------------------------------------------------------- invite map

# Undirected walk of the invite tree around the viewer, in one recursive query:
# an "up" step follows invited_by, a "down" step follows invitees. Going down never turns
# back up (that would only revisit the node we came from), so the walk stays within
# ``depth`` hops; ``gen`` is the generation relative to the viewer (inviters negative).
# The first column of every row is the graph version, read in the same snapshot.
_MAP_SQL = f"""
WITH RECURSIVE walk(id, dist, gen, dir) AS (
    SELECT $1::text, 0, 0, 'self'::text
  UNION
    SELECT n.id, w.dist + 1, w.gen + n.step, n.dir
      FROM walk w
      CROSS JOIN LATERAL (
          SELECT p.invited_by AS id, -1 AS step, 'up'::text AS dir
            FROM users p WHERE p.id = w.id AND p.invited_by IS NOT NULL AND w.dir <> 'down'
          UNION ALL
          SELECT c.id, 1, 'down'::text FROM users c WHERE c.invited_by = w.id AND c.origin IS NULL
      ) n
     WHERE w.dist < $3
), nearest AS (
    SELECT DISTINCT ON (id) id, dist, gen FROM walk ORDER BY id, dist
)
SELECT (SELECT version FROM invite_graph_version) AS graph_version,
       n.dist, n.gen, u.id, u.username, u.display_name, u.invited_by, u.is_admin,
       {VISIBLE} AS visible
  FROM nearest n JOIN users u ON u.id = n.id
 WHERE u.origin IS NULL
 ORDER BY n.gen, n.dist, lower(u.username)
"""


async def graph_version(conn: Conn) -> int:
    return await conn.fetchval("SELECT version FROM invite_graph_version")


async def map_rows(conn: Conn, *, viewer_id: str, is_admin: bool, depth: int
                   ) -> list[asyncpg.Record]:
    return await conn.fetch(_MAP_SQL, viewer_id, is_admin, depth)


async def cached_map(conn: Conn, viewer_id: str, depth: int) -> asyncpg.Record | None:
    """The cached map when it is still current, else None."""
    return await conn.fetchrow(
        "SELECT c.nodes, c.svg, c.graph_version, c.computed_at FROM invite_map_cache c "
        "JOIN invite_graph_version g ON g.version = c.graph_version "
        "WHERE c.viewer_id = $1 AND c.depth = $2", viewer_id, depth)


async def store_map(conn: Conn, *, viewer_id: str, depth: int, version: int, nodes: str,
                    svg: str, compute_ms: float) -> None:
    """Upsert; an older computation never overwrites a newer one."""
    await conn.execute(
        "INSERT INTO invite_map_cache (viewer_id, depth, graph_version, nodes, svg, compute_ms) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, $6) "
        "ON CONFLICT (viewer_id, depth) DO UPDATE SET graph_version = EXCLUDED.graph_version, "
        "nodes = EXCLUDED.nodes, svg = EXCLUDED.svg, compute_ms = EXCLUDED.compute_ms, "
        "computed_at = now() WHERE invite_map_cache.graph_version <= EXCLUDED.graph_version",
        viewer_id, depth, version, nodes, svg, compute_ms)


async def cache_entries(conn: Conn, *, stale_only: bool) -> list[asyncpg.Record]:
    stale = " WHERE c.graph_version <> (SELECT version FROM invite_graph_version)" \
        if stale_only else ""
    return await conn.fetch(
        "SELECT c.viewer_id, c.depth, u.is_admin, (u.disabled OR u.deleted_at IS NOT NULL) "
        "AS gone, c.computed_at < now() - interval '7 days' AS idle "
        "FROM invite_map_cache c JOIN users u ON u.id = c.viewer_id"
        f"{stale} ORDER BY c.viewer_id, c.depth")


async def drop_cache(conn: Conn, viewer_id: str, depth: int) -> None:
    await conn.execute("DELETE FROM invite_map_cache WHERE viewer_id = $1 AND depth = $2",
                       viewer_id, depth)


async def clear_cache(conn: Conn) -> int:
    result = await conn.execute("DELETE FROM invite_map_cache")
    return int(result.split()[-1])
