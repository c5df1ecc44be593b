"""All SQL of tags."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection


async def all_tags(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT t.name, t.colour, t.text_colour, (SELECT count(*) FROM request_tags rt "
        "WHERE rt.tag = t.name) AS uses FROM community_tags t ORDER BY t.name")


async def lock_catalog(conn: Conn) -> str:
    """Serialises saves so two admins cannot both add the last tag under the limit."""
    return await conn.execute("LOCK TABLE community_tags IN SHARE ROW EXCLUSIVE MODE")


async def count(conn: Conn) -> int:
    return await conn.fetchval("SELECT count(*) FROM community_tags")


async def upsert(conn: Conn, name: str, colour: str, text_colour: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO community_tags (name, colour, text_colour) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET colour = EXCLUDED.colour, "
        "text_colour = EXCLUDED.text_colour RETURNING name, colour, text_colour",
        name, colour, text_colour)


async def exists(conn: Conn, name: str) -> bool:
    return await conn.fetchval("SELECT true FROM community_tags WHERE name = $1", name) or False


async def delete(conn: Conn, name: str) -> bool:
    return await conn.fetchval("DELETE FROM community_tags WHERE name = $1 RETURNING true",
                               name) or False


async def known(conn: Conn, names: list[str]) -> set[str]:
    rows = await conn.fetch("SELECT name FROM community_tags WHERE name = ANY($1)", names)
    return {r["name"] for r in rows}


async def of_request(conn: Conn, request_id: str) -> list[str]:
    rows = await conn.fetch("SELECT tag FROM request_tags WHERE request_id = $1 ORDER BY tag",
                            request_id)
    return [r["tag"] for r in rows]


async def set_for_request(conn: asyncpg.Connection, request_id: str, names: list[str]) -> None:
    await conn.execute("DELETE FROM request_tags WHERE request_id = $1 AND NOT tag = ANY($2)",
                       request_id, names)
    await conn.execute(
        "INSERT INTO request_tags (request_id, tag) SELECT $1, unnest($2::text[]) "
        "ON CONFLICT DO NOTHING", request_id, names)
    await sync_header(conn, [request_id])


async def sync_header(conn: Conn, request_ids: list[str]) -> None:
    """requests.tags (the exported Tags header) from request_tags; an unchanged value
    leaves the revision alone."""
    await conn.execute(
        "UPDATE requests r SET tags = coalesce((SELECT string_agg(t.tag, ' ' ORDER BY t.tag) "
        "FROM request_tags t WHERE t.request_id = r.id), '') "
        "WHERE r.id = ANY($1) AND r.origin IS NULL", request_ids)


async def requests_with(conn: Conn, name: str) -> list[str]:
    rows = await conn.fetch("SELECT request_id FROM request_tags WHERE tag = $1", name)
    return [r["request_id"] for r in rows]
