"""SQL for the admin console: counts for /admin, the explained approval list, the
requests to triage and the audit log. Read-only; decisions go through node.auth.service."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

WAITING_APPROVALS = ("SELECT count(*) FROM auth_requests "
                     "WHERE status = 'pending' AND expires_at > now()")


async def waiting_approvals(conn: Conn) -> int:
    return int(await conn.fetchval(WAITING_APPROVALS))


async def console_counts(conn: Conn) -> dict[str, int]:
    """Everything /admin counts, in one round trip."""
    row = await conn.fetchrow(
        f"""SELECT ({WAITING_APPROVALS}) AS approvals,
                  (SELECT count(*) FROM users WHERE origin IS NULL AND deleted_at IS NULL
                      AND NOT disabled) AS members,
                  (SELECT count(*) FROM requests WHERE origin IS NULL AND deleted_at IS NULL
                      AND status = 'open') AS open_requests,
                  (SELECT count(*) FROM requests WHERE origin IS NULL AND deleted_at IS NULL
                      AND status = 'pending') AS pending_requests,
                  (SELECT count(*) FROM sync_pending) AS pending_keys,
                  (SELECT count(*) FROM sync_gaps) AS gaps,
                  (SELECT count(*) FROM sessions WHERE status = 'active' AND revoked_at IS NULL
                      AND expires_at > now()) AS sessions,
                  (SELECT count(*) FROM invites WHERE NOT disabled AND use_count < max_uses
                      AND (expires_at IS NULL OR expires_at > now())) AS live_invites""")
    return {k: int(v) for k, v in dict(row).items()}


async def peer_health(conn: Conn) -> list[asyncpg.Record]:
    """One line per peer: is it healthy (last success after last failure)?"""
    return await conn.fetch(
        """SELECT name, kind, last_success_at, last_failure_at, last_error,
                  (last_failure_at IS NULL OR (last_success_at IS NOT NULL
                       AND last_success_at >= last_failure_at)) AS healthy
             FROM sync_peers ORDER BY name""")


async def approvals(conn: Conn, *, user_id: str | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
    """Live sign-in requests, each explained: a new member (the account was created with
    this very request, from an invite that needs an admin) or a new device of an existing
    member; who invited them; and what this very device wrote while waiting (bound to
    its sign-in request)."""
    rows = await conn.fetch(
        """SELECT r.id, r.user_id, r.created_at, r.expires_at, r.ip, r.user_agent, r.attempts,
                  u.username, u.display_name, u.created_at AS member_since, u.is_admin,
                  (r.created_at - u.created_at < interval '1 minute'
                   AND NOT EXISTS (SELECT 1 FROM auth_requests a WHERE a.user_id = u.id
                                      AND a.status = 'approved')
                   AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id
                                      AND s.status = 'active')) AS new_member,
                  inv.username AS inviter_username, inv.display_name AS inviter_name,
                  (SELECT coalesce(json_agg(json_build_object('id', p.id, 'title',
                          coalesce(nullif(p.title, ''), left(p.description, 80)))
                          ORDER BY p.created_at), '[]')::text
                     FROM requests p WHERE p.auth_request_id = r.id AND p.status = 'pending'
                      AND p.deleted_at IS NULL) AS waiting_posts
             FROM auth_requests r JOIN users u ON u.id = r.user_id
             LEFT JOIN users inv ON inv.id = u.invited_by
            WHERE r.status = 'pending' AND r.expires_at > now()
              AND ($1::text IS NULL OR r.user_id = $1)
            ORDER BY r.created_at DESC LIMIT $2""", user_id, limit)
    out = []
    for r in rows:
        d = dict(r)
        d["waiting_posts"] = json.loads(d["waiting_posts"])
        out.append(d)
    return out


async def triage_requests(conn: Conn, limit: int = 100) -> list[asyncpg.Record]:
    """Local requests that still need someone: waiting for approval first, then open."""
    return await conn.fetch(
        """SELECT r.id, coalesce(nullif(r.title, ''), left(r.description, 80)) AS title,
                  r.status, r.sync_scope, r.created_at, u.username, u.display_name,
                  (SELECT count(*) FROM comments c WHERE c.request_id = r.id
                      AND c.deleted_at IS NULL) AS comments
             FROM requests r LEFT JOIN users u ON u.id = r.created_by
            WHERE r.origin IS NULL AND r.deleted_at IS NULL AND r.status IN ('pending', 'open')
            ORDER BY r.status = 'pending' DESC, r.created_at DESC LIMIT $1""", limit)



async def waiting_member_context(conn: Conn, user_id: str, session_hash: str
                                 ) -> dict[str, Any]:
    """For a device waiting for approval: can another of the member's devices approve it,
    which admins can, and what this device wrote meanwhile (shown once approved)."""
    row = await conn.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = $1 AND s.status = 'active'
                            AND s.revoked_at IS NULL AND s.expires_at > now()
                            AND s.id_hash <> $2) AS other_device,
                  (SELECT coalesce(array_agg(coalesce(nullif(a.display_name, ''), a.username)
                                             ORDER BY a.created_at), '{}')
                     FROM users a WHERE a.is_admin AND a.origin IS NULL AND NOT a.disabled
                      AND a.deleted_at IS NULL) AS admins""", user_id, session_hash)
    # only what this very device wrote: pending posts are bound to its sign-in request
    posts = await conn.fetch(
        """SELECT r.id, coalesce(nullif(r.title, ''), left(r.description, 80)) AS title,
                  r.created_at
             FROM requests r JOIN auth_requests a ON a.id = r.auth_request_id
            WHERE a.session_hash = $1 AND r.created_by = $2 AND r.status = 'pending'
              AND r.deleted_at IS NULL
            ORDER BY r.created_at""", session_hash, user_id)
    return {"other_device": row["other_device"], "admins": list(row["admins"]),
            "waiting_posts": [dict(p) for p in posts]}
