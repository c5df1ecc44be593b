"""SQL of the hub's public index: feeds, search, origins pages (re-exported by hub.queries)."""

from __future__ import annotations

import asyncpg

from hub.queries_log import HEAD_IN_BUNDLE

Conn = asyncpg.Connection | asyncpg.Pool

# ------------------------------------------------------------------------- public index

# a row's header block and bundle digest: its own, or what it points at in its bundle
# (migration 0024); evaluated for the rows an answer returns only (after its LIMIT)
_HEAD = f"""coalesce(r.head, (SELECT {HEAD_IN_BUNDLE} FROM hub_bundles b
                          WHERE b.id = r.bundle), '') AS head"""
_DIGEST = """coalesce(r.digest, (SELECT b.digest FROM hub_bundles b WHERE b.id = r.bundle))
           AS digest"""


async def feed(conn: Conn, *, limit: int, offset: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        # (the page is cut first: the rows an OFFSET skips never read their heads)
        f"""SELECT origin, id, instance, title, status, body, created_at, updated_at, {_HEAD}
              FROM (SELECT * FROM hub_records WHERE entity = 'request' AND NOT deleted
                     ORDER BY updated_at DESC, origin, id LIMIT $1 OFFSET $2) AS r
             ORDER BY updated_at DESC, origin, id""", limit, offset)


async def feed_of_origin(conn: Conn, origin: str, *, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT origin, id, instance, title, status, body, created_at, updated_at, {_HEAD}
              FROM hub_records r WHERE entity = 'request' AND NOT deleted AND origin = $1
             ORDER BY updated_at DESC, id LIMIT $2""", origin, limit)


async def origin_known(conn: Conn, origin: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_origins WHERE origin = $1)", origin))


async def comments_for(conn: Conn, refs: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT origin, id, parent_ref, body, created_at, {_HEAD} FROM hub_records r
             WHERE entity = 'comment' AND NOT deleted AND parent_ref IS NOT NULL
               AND parent_ref = ANY($1)
             ORDER BY created_at, id""", refs)


async def search_records(conn: Conn, *, origin: str | None, entity: str | None,
                         q: str | None, after: str | None, limit: int) -> list[asyncpg.Record]:
    """Live public records, paged by (origin, entity, id) > after (``o|e|i``)."""
    a = after.split("|", 2) if after else None
    return await conn.fetch(
        f"""SELECT origin, entity, id, revision, instance, updated_at, {_HEAD}, body,
                  {_DIGEST}
             FROM hub_records r
            WHERE NOT deleted AND ($1::text IS NULL OR origin = $1)
              AND ($2::text IS NULL OR entity = $2)
              AND ($3::text[] IS NULL OR NOT EXISTS (
                       SELECT 1 FROM unnest($3::text[]) AS w(p)
                        WHERE coalesce(title, '') NOT ILIKE w.p AND body NOT ILIKE w.p))
              AND ($4::text IS NULL OR (origin, entity, id) > ($4, $5, $6))
            ORDER BY origin, entity, id LIMIT $7""",
        origin, entity, _like_words(q), a[0] if a and len(a) == 3 else None,
        a[1] if a and len(a) == 3 else None, a[2] if a and len(a) == 3 else None, limit)


def _like_words(q: str | None) -> list[str] | None:
    """ILIKE patterns, one per word of ``q`` (every word must appear)."""
    if not q:
        return None
    words = q.split()[:8]
    esc = [w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in words]
    return [f"%{w}%" for w in esc] or None


async def latest_bundle_from(conn: Conn, peer: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT digest, origin, sequence, container, received_at, record_count
             FROM hub_bundles WHERE received_from = $1
            ORDER BY received_at DESC LIMIT 1""", peer)
