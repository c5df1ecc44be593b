"""SQL of delivery: subscriptions, their cursors and upstream hubs (re-exported by hub.queries)."""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

# ------------------------------------------------------------------------- subscriptions

async def add_subscription(conn: Conn, *, sub_id: str, peer_name: str, mode: str,
                           inbox_url: str | None, inbox_token: str | None,
                           origins: list[str] | None, entities: list[str] | None,
                           cursor: int) -> None:
    await conn.execute(
        """INSERT INTO hub_subscriptions (id, peer_name, mode, inbox_url, inbox_token,
               origins, entities, cursor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        sub_id, peer_name, mode, inbox_url, inbox_token, origins, entities, cursor)


async def subscriptions(conn: Conn, peer_name: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.id, s.peer_name, s.mode, s.inbox_url, s.origins, s.entities, s.cursor,
                  s.failures, s.next_attempt_at, s.last_error, s.last_delivered_at,
                  s.delivered, st.last_seq - s.cursor AS lag
             FROM hub_subscriptions s CROSS JOIN hub_state st
            WHERE $1::text IS NULL OR s.peer_name = $1 ORDER BY s.created_at""", peer_name)


async def remove_subscription(conn: Conn, sub_id: str, peer_name: str | None = None) -> bool:
    done = await conn.execute(
        "DELETE FROM hub_subscriptions WHERE id = $1 AND ($2::text IS NULL OR peer_name = $2)",
        sub_id, peer_name)
    return done != "DELETE 0"


async def has_push_subscriptions(conn: Conn) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_subscriptions WHERE mode = 'push')")


async def claim_subscriptions(conn: Conn, limit: int, *,
                              lease_seconds: float) -> list[asyncpg.Record]:
    """Lease due push subscriptions that are behind the head (skipping ones another
    process holds)."""
    return await conn.fetch(
        """UPDATE hub_subscriptions s
              SET next_attempt_at = now() + make_interval(secs => $2)
             FROM (SELECT id FROM hub_subscriptions
                    WHERE mode = 'push' AND next_attempt_at <= now()
                      AND cursor < (SELECT last_seq FROM hub_state WHERE id = 1)
                    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
            WHERE s.id = due.id
        RETURNING s.id, s.peer_name, s.inbox_url, s.inbox_token, s.origins, s.entities,
                  s.cursor, s.failures""", limit, lease_seconds)


async def advance_cursor(conn: Conn, sub_id: str, cursor: int, delivered: int, *,
                         release: bool, lease_seconds: float = 0) -> None:
    """Move the cursor forward (never back); release or renew the lease."""
    await conn.execute(
        """UPDATE hub_subscriptions SET cursor = greatest(cursor, $2),
               failures = 0, last_error = NULL,
               next_attempt_at = CASE WHEN $4 THEN now()
                                      ELSE now() + make_interval(secs => $5) END,
               delivered = delivered + $3,
               last_delivered_at = CASE WHEN $3 > 0 THEN now() ELSE last_delivered_at END
            WHERE id = $1""", sub_id, cursor, delivered, release, float(lease_seconds))


async def release_subscription(conn: Conn, sub_id: str) -> None:
    await conn.execute("UPDATE hub_subscriptions SET next_attempt_at = now() WHERE id = $1",
                       sub_id)


async def delivery_failed(conn: Conn, sub_id: str, cursor: int, error: str,
                          delay_seconds: float) -> None:
    """Keep the progress made, count the failure and schedule the retry."""
    await conn.execute(
        """UPDATE hub_subscriptions SET cursor = greatest(cursor, $2),
               failures = failures + 1, last_error = $3,
               next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1""",
        sub_id, cursor, error[:300], float(delay_seconds))


async def add_upstream(conn: Conn, name: str, url: str, cursor: int) -> None:
    await conn.execute(
        "INSERT INTO hub_upstreams (name, url, cursor) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url", name, url, cursor)


async def upstreams(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT name, url, cursor, last_error, connected_at FROM hub_upstreams ORDER BY name")


async def upstream_progress(conn: Conn, name: str, cursor: int | None,
                            error: str | None = None, connected: bool = False) -> None:
    await conn.execute(
        """UPDATE hub_upstreams SET cursor = greatest(cursor, coalesce($2, cursor)),
               last_error = $3,
               connected_at = CASE WHEN $4 THEN now() ELSE connected_at END
            WHERE name = $1""", name, cursor, error, connected)


async def try_follow_lock(conn: Conn, name: Any) -> Any:
    return await conn.fetchval("SELECT pg_try_advisory_lock($1)", name)


async def upstream_by_name(conn: Conn, name: Any) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT url, cursor FROM hub_upstreams WHERE name = $1", name)
