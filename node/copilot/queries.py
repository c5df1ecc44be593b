"""All SQL of the copilot: triage and scope reports, settings, tokens, audit, chat.

Read-only report queries never select contact columns (least privilege): the tools
see what an admin sees on the pages, minus e-mail addresses.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection


# --------------------------------------------------------------------------- triage

async def open_requests(conn: Conn, limit: int) -> list[asyncpg.Record]:
    """Open local requests, neediest first: no helper yet, no replies, then oldest."""
    return await conn.fetch(
        """SELECT r.id, r.title, left(r.description, 300) AS description, r.created_at,
                  r.created_by, r.sync_scope, u.username AS requester,
                  u.display_name AS requester_name, u.sync_scope AS requester_scope,
                  (SELECT count(*) FROM comments c
                    WHERE c.request_id = r.id AND c.deleted_at IS NULL) AS comments,
                  (SELECT count(DISTINCT c.created_by) FROM comments c
                    WHERE c.request_id = r.id AND c.deleted_at IS NULL
                      AND c.created_by IS DISTINCT FROM r.created_by) AS helpers,
                  extract(epoch FROM now() - r.created_at)::bigint AS age_seconds
             FROM requests r LEFT JOIN users u ON u.id = r.created_by
            WHERE r.origin IS NULL AND r.deleted_at IS NULL AND r.status = 'open'
            ORDER BY (SELECT count(*) FROM comments c
                       WHERE c.request_id = r.id AND c.deleted_at IS NULL
                         AND c.created_by IS DISTINCT FROM r.created_by) = 0 DESC,
                     (SELECT count(*) FROM comments c
                       WHERE c.request_id = r.id AND c.deleted_at IS NULL) = 0 DESC,
                     r.created_at, r.id
            LIMIT $1""", limit)


# Members within two hops of the requester in the (undirected) invite tree, who
# commented on other requests that share words with this one (full-text search on
# requests.search), ranked by how similar those requests are; a comment on a
# completed request counts double (they saw it through).
_HELPERS_SQL = """
WITH RECURSIVE near(id, dist) AS (
    SELECT $1::text, 0
  UNION
    SELECT n.id, near.dist + 1
      FROM near CROSS JOIN LATERAL (
          SELECT p.invited_by AS id FROM users p
           WHERE p.id = near.id AND p.invited_by IS NOT NULL
          UNION ALL
          SELECT c.id FROM users c WHERE c.invited_by = near.id
      ) n
     WHERE near.dist < 2
), circle AS (
    SELECT id, min(dist) AS dist FROM near WHERE id <> $1 GROUP BY id
), q AS (
    SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS query
      FROM requests r, unnest(r.search) AS t(lexeme)
     WHERE r.id = $2 AND length(lexeme) > 2
), similar_requests AS (
    SELECT r.id, r.status, ts_rank(r.search, q.query) AS rank
      FROM requests r, q
     WHERE r.id <> $2 AND r.deleted_at IS NULL AND q.query IS NOT NULL
       AND r.search @@ q.query
)
SELECT u.id, u.username, u.display_name, u.sync_scope, circle.dist,
       sum(s.rank * CASE WHEN s.status = 'completed' THEN 2 ELSE 1 END) AS score,
       count(DISTINCT s.id) AS similar_requests,
       count(DISTINCT s.id) FILTER (WHERE s.status = 'completed') AS completed_similar
  FROM circle
  JOIN users u ON u.id = circle.id AND u.origin IS NULL AND NOT u.disabled
                  AND u.deleted_at IS NULL
  JOIN comments c ON c.created_by = u.id AND c.deleted_at IS NULL
  JOIN similar_requests s ON s.id = c.request_id
 GROUP BY u.id, u.username, u.display_name, u.sync_scope, circle.dist
 ORDER BY score DESC, circle.dist, lower(u.username)
 LIMIT $3
"""


async def suggested_helpers(conn: Conn, requester_id: str, request_id: str, limit: int
                            ) -> list[asyncpg.Record]:
    return await conn.fetch(_HELPERS_SQL, requester_id, request_id, limit)


# --------------------------------------------------------------------------- scope report

async def public_local_texts(conn: Conn, limit: int) -> dict[str, list[asyncpg.Record]]:
    """Public local records with the free text that would be exported."""
    requests = await conn.fetch(
        "SELECT id, title, description AS text, created_by AS owner FROM requests "
        "WHERE origin IS NULL AND deleted_at IS NULL AND sync_scope = 'public' "
        "ORDER BY created_at DESC LIMIT $1", limit)
    comments = await conn.fetch(
        "SELECT id, '' AS title, body AS text, created_by AS owner FROM comments "
        "WHERE origin IS NULL AND deleted_at IS NULL AND sync_scope = 'public' "
        "ORDER BY created_at DESC LIMIT $1", limit)
    users = await conn.fetch(
        "SELECT id, display_name AS title, bio AS text, id AS owner FROM users "
        "WHERE origin IS NULL AND deleted_at IS NULL AND sync_scope = 'public' "
        "ORDER BY created_at DESC LIMIT $1", limit)
    return {"request": requests, "comment": comments, "user": users}


async def private_local_requests(conn: Conn, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, title, description AS text, created_by AS owner FROM requests "
        "WHERE origin IS NULL AND deleted_at IS NULL AND sync_scope = 'private' "
        "AND status <> 'pending' ORDER BY created_at DESC LIMIT $1", limit)


# --------------------------------------------------------------------------- settings

async def get_settings(conn: Conn) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM copilot_settings WHERE id = 1")
    assert row is not None
    return row


async def set_enabled(conn: Conn, enabled: bool, admin_id: str | None) -> None:
    await conn.execute("UPDATE copilot_settings SET enabled = $1, updated_by = $2, "
                       "updated_at = now() WHERE id = 1", enabled, admin_id)


async def store_key(conn: Conn, key: str | None, admin_id: str | None) -> None:
    await conn.execute(
        "UPDATE copilot_settings SET api_key = $1, key_verified_at = "
        "CASE WHEN $1::text IS NULL THEN NULL ELSE now() END, updated_by = $2, "
        "updated_at = now() WHERE id = 1", key, admin_id)


# --------------------------------------------------------------------------- tokens

async def insert_token(conn: Conn, *, token_id: str, token_hash: str, admin_id: str,
                       label: str) -> None:
    await conn.execute("INSERT INTO copilot_tokens (id, token_hash, admin_id, label) "
                       "VALUES ($1, $2, $3, $4)", token_id, token_hash, admin_id, label)


async def admin_for_token(conn: Conn, token_hash: str) -> asyncpg.Record | None:
    """The live local admin a token acts for; touches last_used_at."""
    return await conn.fetchrow(
        """UPDATE copilot_tokens t SET last_used_at = now()
             FROM users u
            WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.id = t.admin_id
              AND u.is_admin AND NOT u.disabled AND u.origin IS NULL
        RETURNING t.id AS token_id, u.id AS admin_id, u.username""", token_hash)


async def list_tokens(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT t.id, t.label, t.created_at, t.last_used_at, t.revoked_at, u.username "
        "FROM copilot_tokens t JOIN users u ON u.id = t.admin_id ORDER BY t.created_at DESC")


async def revoke_token(conn: Conn, token_id: str) -> bool:
    return await conn.fetchval(
        "UPDATE copilot_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL "
        "RETURNING true", token_id) is not None


async def local_admin(conn: Conn, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, username FROM users WHERE origin IS NULL AND lower(username) = lower($1) "
        "AND is_admin AND NOT disabled", username)


# --------------------------------------------------------------------------- audit

async def insert_audit(conn: Conn, *, admin_id: str | None, via: str, tool: str,
                       arguments: dict[str, Any], result_summary: str, latency_ms: int,
                       success: bool, error_code: str | None = None,
                       prompt: str | None = None, response: str | None = None) -> int:
    return await conn.fetchval(
        """INSERT INTO copilot_audit (admin_id, via, tool, arguments, result_summary,
                                      latency_ms, success, error_code, prompt, response)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10) RETURNING id""",
        admin_id, via, tool, json.dumps(arguments, default=str), result_summary, latency_ms,
        success, error_code, prompt, response)


async def recent_audit(conn: Conn, limit: int = 30) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT a.*, u.username FROM copilot_audit a LEFT JOIN users u ON u.id = a.admin_id "
        "ORDER BY a.id DESC LIMIT $1", limit)


# --------------------------------------------------------------------------- satisfaction

# One answered chat turn = one successful 'chat' audit row; its feedback is the admin's
# thumbs up (1) or down (-1), NULL while unrated. A turn counts for every tool it ran or
# proposed (arguments.tools_run / tools_proposed), and for "(no tool)" when it used none.
_SATISFACTION_SQL = """
WITH turns AS (
    SELECT a.feedback,
           ARRAY(SELECT DISTINCT t FROM jsonb_array_elements_text(
                     coalesce(a.arguments->'tools_run', '[]'::jsonb)
                     || coalesce(a.arguments->'tools_proposed', '[]'::jsonb)) AS t) AS tools
      FROM copilot_audit a
     WHERE a.tool = 'chat' AND a.success AND a.at > now() - make_interval(days => $1)
)
SELECT NULL::text AS tool, count(*) AS answers, count(feedback) AS rated,
       count(*) FILTER (WHERE feedback = 1) AS helpful
  FROM turns
UNION ALL
SELECT coalesce(tool, '(no tool)'), count(*), count(feedback),
       count(*) FILTER (WHERE feedback = 1)
  FROM turns LEFT JOIN LATERAL unnest(CASE WHEN tools = '{}' THEN ARRAY[NULL::text]
                                           ELSE tools END) AS tool ON true
 GROUP BY tool
"""


async def satisfaction(conn: Conn, days: int) -> list[asyncpg.Record]:
    """Answers, rated answers and helpful ones in the last ``days``: overall (tool NULL)
    first, then per tool."""
    rows = await conn.fetch(_SATISFACTION_SQL, days)
    return sorted(rows, key=lambda r: (r["tool"] is not None, r["tool"] or ""))


async def unrated_answers(conn: Conn, admin_id: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM copilot_messages WHERE admin_id = $1 AND role = 'assistant' "
        "AND feedback IS NULL", admin_id)


# --------------------------------------------------------------------------- conversation

async def messages(conn: Conn, admin_id: str, limit: int = 40) -> list[asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT id, role, content, audit_id, feedback, created_at FROM copilot_messages "
        "WHERE admin_id = $1 ORDER BY id DESC LIMIT $2", admin_id, limit)
    return list(reversed(rows))


async def add_message(conn: Conn, admin_id: str, role: str, content: str,
                      audit_id: int | None = None) -> int:
    return await conn.fetchval(
        "INSERT INTO copilot_messages (admin_id, role, content, audit_id) "
        "VALUES ($1, $2, $3, $4) RETURNING id", admin_id, role, content, audit_id)


async def clear_messages(conn: Conn, admin_id: str) -> None:
    await conn.execute("DELETE FROM copilot_messages WHERE admin_id = $1", admin_id)


async def set_feedback(conn: asyncpg.Connection, admin_id: str, message_id: int,
                       value: int) -> bool:
    audit_id = await conn.fetchval(
        "UPDATE copilot_messages SET feedback = $3 WHERE id = $1 AND admin_id = $2 "
        "AND role = 'assistant' RETURNING coalesce(audit_id, 0)", message_id, admin_id, value)
    if audit_id is None:
        return False
    if audit_id:
        await conn.execute("UPDATE copilot_audit SET feedback = $2 WHERE id = $1",
                           audit_id, value)
    return True


async def add_proposal(conn: Conn, *, proposal_id: str, admin_id: str, tool: str,
                       arguments: dict[str, Any], reason: str) -> None:
    await conn.execute(
        "INSERT INTO copilot_proposals (id, admin_id, tool, arguments, reason) "
        "VALUES ($1, $2, $3, $4::jsonb, $5)",
        proposal_id, admin_id, tool, json.dumps(arguments), reason)


async def pending_proposals(conn: Conn, admin_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, tool, arguments, reason, created_at FROM copilot_proposals "
        "WHERE admin_id = $1 AND status = 'pending' ORDER BY created_at", admin_id)


async def claim_proposal(conn: Conn, proposal_id: str, admin_id: str, status: str
                         ) -> asyncpg.Record | None:
    """Move a pending proposal of this admin to ``status`` (once); None if not pending."""
    return await conn.fetchrow(
        "UPDATE copilot_proposals SET status = $3, decided_at = now() "
        "WHERE id = $1 AND admin_id = $2 AND status = 'pending' "
        "RETURNING id, tool, arguments", proposal_id, admin_id, status)


async def finish_proposal(conn: Conn, proposal_id: str, status: str, result: str) -> None:
    await conn.execute("UPDATE copilot_proposals SET status = $2, result = $3 WHERE id = $1",
                       proposal_id, status, result)
