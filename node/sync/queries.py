"""All SQL of the sync engine. Functions take a pool or a connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

# A local row may leave the node only when these hold ("live"); otherwise, if it was
# published before, it leaves once more as a tombstone.
USER_LIVE = "(u.sync_scope = 'public' AND u.deleted_at IS NULL AND NOT u.disabled)"
REQUEST_LIVE = ("(r.sync_scope = 'public' AND r.deleted_at IS NULL "
                "AND r.status IN ('open', 'completed') AND r.created_by IS NOT NULL)")
# A comment is live only on a request that is itself visible elsewhere: a live local
# request or a (public by definition) remote one.
COMMENT_LIVE = ("(c.sync_scope = 'public' AND c.deleted_at IS NULL AND c.created_by IS NOT NULL "
                "AND r.deleted_at IS NULL AND (r.origin IS NOT NULL OR "
                + REQUEST_LIVE + "))")

_USER_COLS = f"""
    u.id, u.username, u.display_name, u.bio, u.contact_email, u.share_contact,
    u.created_at, u.updated_at, u.revision, u.change_seq, u.published, u.published_revision,
    {USER_LIVE} AS live,
    inv.id AS inviter_id, inv.change_seq AS inviter_seq,
    (inv.origin IS NULL AND inv.sync_scope = 'public' AND inv.deleted_at IS NULL
     AND NOT inv.disabled) AS inviter_live"""
_USER_FROM = "FROM users u LEFT JOIN users inv ON inv.id = u.invited_by AND inv.origin IS NULL"

_REQUEST_COLS = f"""
    r.id, r.title, r.description, r.status, r.created_by, r.created_at, r.updated_at,
    r.completed_at, r.revision, r.change_seq, r.published, r.published_revision, r.tags,
    {REQUEST_LIVE} AS live"""

_COMMENT_COLS = f"""
    c.id, c.body, c.created_by, c.created_at, c.updated_at, c.revision, c.change_seq,
    c.published, c.published_revision, c.request_id,
    r.origin AS request_origin, r.origin_id AS request_origin_id,
    r.updated_at AS request_updated_at,
    {COMMENT_LIVE} AS live"""
_COMMENT_FROM = "FROM comments c JOIN requests r ON r.id = c.request_id"


def _dirty(alias: str) -> str:
    """The predicate of the *_sync_dirty partial indexes, for a table alias."""
    return (f"{alias}.origin IS NULL AND "
            f"{alias}.published_revision IS DISTINCT FROM {alias}.revision")


# --------------------------------------------------------------------------- state

async def lock_state(conn: asyncpg.Connection) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM node_sync_state FOR UPDATE")


async def get_state(conn: Conn) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM node_sync_state")


async def advance_state(conn: asyncpg.Connection, sequence: int, digest: str,
                        watermark: int) -> None:
    await conn.execute(
        "UPDATE node_sync_state SET sequence = $1, last_digest = $2, "
        "watermark = GREATEST(watermark, $3), last_export_at = now()",
        sequence, digest, watermark)


async def store_outbox(conn: asyncpg.Connection, sequence: int, digest: str, kind: str,
                       record_count: int, envelope: bytes) -> None:
    await conn.execute(
        "INSERT INTO sync_outbox (sequence, digest, kind, record_count, envelope) "
        "VALUES ($1, $2, $3, $4, $5)", sequence, digest, kind, record_count, envelope)


async def outbox_after(conn: Conn, sequence: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT sequence, digest, kind, record_count, envelope FROM sync_outbox "
        "WHERE sequence > $1 ORDER BY sequence", sequence)


async def outbox_get(conn: Conn, sequence: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sync_outbox WHERE sequence = $1", sequence)


# --------------------------------------------------------------------------- export reads

async def dirty_users(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_USER_COLS} {_USER_FROM} WHERE {_dirty('u')} "
        "ORDER BY u.change_seq")


async def dirty_requests(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_REQUEST_COLS} FROM requests r "
        f"WHERE {_dirty('r')} ORDER BY r.change_seq")


async def dirty_comments(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_COMMENT_COLS} {_COMMENT_FROM} "
        f"WHERE {_dirty('c')} ORDER BY c.change_seq")


async def live_users(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_USER_COLS} {_USER_FROM} WHERE u.origin IS NULL AND {USER_LIVE}")


async def live_requests(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_REQUEST_COLS} FROM requests r WHERE r.origin IS NULL AND {REQUEST_LIVE}")


async def live_comments(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {_COMMENT_COLS} {_COMMENT_FROM} WHERE c.origin IS NULL AND {COMMENT_LIVE}")


async def published_rows(conn: Conn) -> tuple[list[asyncpg.Record], list[asyncpg.Record],
                                                 list[asyncpg.Record]]:
    """Local users, requests and comments that are out there now (SYNC_PUBLIC_SCOPE=off
    withdraws them all)."""
    users = await conn.fetch(
        f"SELECT {_USER_COLS} {_USER_FROM} WHERE u.origin IS NULL AND u.published "
        "ORDER BY u.change_seq")
    requests = await conn.fetch(
        f"SELECT {_REQUEST_COLS} FROM requests r WHERE r.origin IS NULL AND r.published "
        "ORDER BY r.change_seq")
    comments = await conn.fetch(
        f"SELECT {_COMMENT_COLS} {_COMMENT_FROM} WHERE c.origin IS NULL AND c.published "
        "ORDER BY c.change_seq")
    return users, requests, comments


async def comments_of_requests(conn: Conn, request_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Local comments on the given requests (for cascades when a request flips)."""
    if not request_ids:
        return []
    return await conn.fetch(
        f"SELECT {_COMMENT_COLS} {_COMMENT_FROM} "
        "WHERE c.request_id = ANY($1::text[]) AND c.origin IS NULL", list(request_ids))


async def invitees_of(conn: Conn, user_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Published local invitees of the given users (for vouch cascades)."""
    if not user_ids:
        return []
    return await conn.fetch(
        f"SELECT {_USER_COLS} {_USER_FROM} "
        "WHERE u.invited_by = ANY($1::text[]) AND u.origin IS NULL AND u.published",
        list(user_ids))


async def mark_examined(conn: asyncpg.Connection, table: str,
                        marks: Sequence[tuple[str, int, int, bool]]) -> None:
    """Set published/published_revision of examined rows: (id, seen_rev, new_rev, live).

    A row changed since it was read keeps its newer revision and stays dirty.
    """
    if not marks:
        return
    assert table in ("users", "requests", "comments")
    ids, seen, new, live = zip(*marks, strict=True)
    await conn.execute(
        f"""UPDATE {table} t SET published = m.live, published_revision = m.new_rev,
                   revision = m.new_rev
              FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::boolean[])
                   AS m(id, seen_rev, new_rev, live)
             WHERE t.id = m.id AND t.revision = m.seen_rev""",
        list(ids), list(seen), list(new), list(live))


def as_dict(row: Any) -> dict[str, Any]:
    return dict(row) if row is not None else {}


# --------------------------------------------------------------------------- scheduling

# A live row changed within the publishing grace period (WB_PUBLISH_DELAY) is held:
# the export leaves it dirty until the period is over. A comment is also held while
# its local request is. Rows that are not live (withdrawals, tombstones) never wait.
_CUTOFF = "now() - make_interval(secs => $1::double precision)"
USER_HELD = f"({USER_LIVE} AND u.updated_at > {_CUTOFF})"
REQUEST_HELD = f"({REQUEST_LIVE} AND r.updated_at > {_CUTOFF})"
COMMENT_HELD = (f"({COMMENT_LIVE} AND (c.updated_at > {_CUTOFF} "
                f"OR (r.origin IS NULL AND r.updated_at > {_CUTOFF})))")


async def has_unexported_changes(conn: Conn, delay: float = 0.0) -> bool:
    """Local changes an export would act on now (not held by the grace period ``delay``).

    Cheap: three probes of the ``*_sync_dirty`` partial indexes."""
    return await conn.fetchval(
        f"""SELECT EXISTS (SELECT 1 FROM users u
                            WHERE {_dirty('u')} AND NOT coalesce({USER_HELD}, false))
                OR EXISTS (SELECT 1 FROM requests r
                            WHERE {_dirty('r')} AND NOT coalesce({REQUEST_HELD}, false))
                OR EXISTS (SELECT 1 {_COMMENT_FROM}
                            WHERE {_dirty('c')} AND NOT coalesce({COMMENT_HELD}, false))""",
        float(delay))


_LEAVES_IN = ("ceil(extract(epoch FROM ({at} + make_interval(secs => $1::double precision))"
              " - now()))::int")


async def held(conn: Conn, delay: float, kind: str, ids: Sequence[str]) -> list[asyncpg.Record]:
    """Which of these local records are waiting out the grace period: id, published
    (an edit of a record already out) and leaves_in (seconds)."""
    if not ids or delay <= 0:
        return []
    if kind == "request":
        sql = (f"SELECT r.id, r.published, {_LEAVES_IN.format(at='r.updated_at')} AS leaves_in "
               f"FROM requests r WHERE r.id = ANY($2::text[]) AND {_dirty('r')} "
               f"AND {REQUEST_HELD}")
    elif kind == "comment":
        at = ("greatest(c.updated_at, CASE WHEN r.origin IS NULL THEN r.updated_at END)")
        sql = (f"SELECT c.id, c.published, {_LEAVES_IN.format(at=at)} AS leaves_in "
               f"{_COMMENT_FROM} WHERE c.id = ANY($2::text[]) AND {_dirty('c')} "
               f"AND {COMMENT_HELD}")
    elif kind == "user":
        sql = (f"SELECT u.id, u.published, {_LEAVES_IN.format(at='u.updated_at')} AS leaves_in "
               f"FROM users u WHERE u.id = ANY($2::text[]) AND {_dirty('u')} AND {USER_HELD}")
    else:
        raise ValueError(kind)
    return await conn.fetch(sql, float(delay), list(ids))


async def db_now(conn: Conn) -> Any:
    return await conn.fetchval("SELECT now()")


async def peers_behind(conn: Conn) -> list[str]:
    """Push-capable peers (directories, hubs with a token) missing chain links."""
    rows = await conn.fetch(
        """SELECT p.name FROM sync_peers p, node_sync_state s
            WHERE p.push_sequence < s.sequence AND (p.kind = 'dir' OR p.token IS NOT NULL)
            ORDER BY p.name""")
    return [r["name"] for r in rows]


async def recent_jobs(conn: Conn, limit: int = 50, peer: str | None = None
                      ) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, started_at, duration_ms, actor, peer, kind, result, error_code,
                  bundle_bytes, bundles, records_in, records_applied
             FROM sync_jobs WHERE $2::text IS NULL OR peer = $2
            ORDER BY id DESC LIMIT $1""", limit, peer)


async def gaps_summary(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT origin, min(sequence) AS first, max(sequence) AS last, count(*) AS n "
        "FROM sync_gaps GROUP BY origin ORDER BY origin")


async def equivocations(conn: Conn, limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT origin, sequence, known_digest, rejected_digest, peer, detected_at "
        "FROM sync_equivocations ORDER BY detected_at DESC LIMIT $1", limit)
