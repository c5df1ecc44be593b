"""SQL of the hub's peers, trusted / revoked / blocked keys and pending keys (re-exported
by hub.queries)."""

from __future__ import annotations

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

# ------------------------------------------------------------------------- peers and trust

async def add_peer(conn: Conn, name: str, kind: str, token_hash: str) -> None:
    await conn.execute(
        "INSERT INTO hub_peers (name, kind, token_hash) VALUES ($1, $2, $3)",
        name, kind, token_hash)


async def peer_by_token(conn: Conn, token_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT name, kind, status, max_bundle_bytes, rate_per_minute FROM hub_peers "
        "WHERE token_hash = $1", token_hash)


async def list_peers(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT p.name, p.kind, p.status, p.created_at, p.last_push_at, p.pushes,
                  coalesce(array_agg(k.origin || '/' || k.key_id ORDER BY k.origin)
                           FILTER (WHERE k.key_id IS NOT NULL), '{}') AS keys
             FROM hub_peers p LEFT JOIN hub_trusted_keys k ON k.peer_name = p.name
            GROUP BY p.name ORDER BY p.name""")


async def get_peer(conn: Conn, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT name, kind, status, created_at, last_push_at, pushes, max_bundle_bytes, "
        "rate_per_minute FROM hub_peers WHERE name = $1", name)


async def remove_peer(conn: Conn, name: str) -> bool:
    return (await conn.execute("DELETE FROM hub_peers WHERE name = $1", name)) != "DELETE 0"


async def set_peer_status(conn: Conn, name: str, status: str) -> bool:
    done = await conn.execute("UPDATE hub_peers SET status = $2 WHERE name = $1", name, status)
    return done != "UPDATE 0"


async def add_pending_peer(conn: Conn, name: str, token_hash: str) -> bool:
    """Register a v1 peer that introduced itself (auto-registration): status 'pending'.
    False when the name is taken or invalid, or the token belongs to another peer."""
    try:
        done = await conn.execute(
            """INSERT INTO hub_peers (name, kind, token_hash, status)
               VALUES ($1, 'node', $2, 'pending') ON CONFLICT DO NOTHING""",
            name, token_hash)
    except asyncpg.CheckViolationError:
        return False
    return done == "INSERT 0 1"


async def activate_pending_peer(conn: Conn, name: str | None) -> None:
    """Approving the key a pending peer pushed approves the peer too."""
    if name is not None:
        await conn.execute(
            "UPDATE hub_peers SET status = 'active' WHERE name = $1 AND status = 'pending'",
            name)


async def touch_peer(conn: Conn, name: str) -> None:
    await conn.execute(
        "UPDATE hub_peers SET last_push_at = now(), pushes = pushes + 1 WHERE name = $1", name)


async def trust_key(conn: Conn, origin: str, key_id: str, public_key: bytes,
                    peer_name: str | None) -> None:
    await conn.execute(
        """INSERT INTO hub_trusted_keys (origin, key_id, public_key, peer_name)
           SELECT $1, $2, $3, $4
            WHERE NOT EXISTS (SELECT 1 FROM hub_key_revocations
                               WHERE origin = $1 AND key_id = $2)
           ON CONFLICT (origin, key_id) DO NOTHING""",
        origin, key_id, public_key, peer_name)


async def is_revoked(conn: Conn, origin: str, key_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_key_revocations WHERE origin = $1 AND key_id = $2)",
        origin, key_id)


async def revoke_key(pool: asyncpg.Pool, origin: str, key_id: str, actor: str) -> str | None:
    """Withdraw trust in ``key_id`` for ``origin`` for good and drop its parked bundles.

    Returns None when done, else why not: ``already_revoked`` or ``unknown_key`` (neither
    trusted nor pending for the origin) or ``unknown_origin``."""
    async with pool.acquire() as conn, conn.transaction():
        if await is_revoked(conn, origin, key_id):
            return "already_revoked"
        known = await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM hub_trusted_keys WHERE origin = $1)
                   OR EXISTS (SELECT 1 FROM hub_pending_keys WHERE origin = $1)""", origin)
        if not known:
            return "unknown_origin"
        trusted = await conn.execute(
            "DELETE FROM hub_trusted_keys WHERE origin = $1 AND key_id = $2", origin, key_id)
        pending = await conn.execute(
            "DELETE FROM hub_pending_keys WHERE origin = $1 AND key_id = $2", origin, key_id)
        if trusted == "DELETE 0" and pending == "DELETE 0":
            return "unknown_key"
        await conn.execute(
            "INSERT INTO hub_key_revocations (origin, key_id, actor) VALUES ($1, $2, $3)",
            origin, key_id, actor)
    return None


async def trusted_and_revoked_keys(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT origin, key_id, 'trusted' AS status, peer_name AS via, approved_at AS at
             FROM hub_trusted_keys
           UNION ALL
           SELECT origin, key_id, 'revoked', actor, revoked_at FROM hub_key_revocations
           ORDER BY origin, at, key_id""")


async def is_trusted(conn: Conn, origin: str, key_id: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_trusted_keys WHERE origin = $1 AND key_id = $2)",
        origin, key_id)


async def block_origin(conn: Conn, origin: str, reason: str) -> None:
    await conn.execute(
        "INSERT INTO hub_blocklist (origin, reason) VALUES ($1, $2) "
        "ON CONFLICT (origin) DO UPDATE SET reason = EXCLUDED.reason", origin, reason)


async def unblock_origin(conn: Conn, origin: str) -> None:
    await conn.execute("DELETE FROM hub_blocklist WHERE origin = $1", origin)


async def blocklist(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT origin, reason, created_at FROM hub_blocklist ORDER BY 1")


# ------------------------------------------------------------------------- pending keys

async def park_bundle(conn: asyncpg.Connection, *, origin: str, key_id: str,
                      public_key: bytes, peer_name: str | None, digest: str,
                      sequence: int | None, hops: int, container: bytes) -> None:
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO hub_pending_keys (origin, key_id, public_key, peer_name)
               VALUES ($1, $2, $3, $4) ON CONFLICT (origin, key_id) DO NOTHING""",
            origin, key_id, public_key, peer_name)
        await conn.execute(
            """INSERT INTO hub_pending_bundles
                   (digest, origin, key_id, sequence, peer_name, hops, container)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO NOTHING""",
            digest, origin, key_id, sequence, peer_name, hops, container)


#: A pending key "claims a foreign origin" when it is not the origin's own first key
#: (``key_id <> origin``: nothing in the key itself ties it to the origin) and the origin
#: is not one the pushing peer registered (a trusted key of that origin with that
#: peer's name). Approving such a key lets whoever pushed it publish as that origin.
_PENDING_KEYS = """
SELECT k.origin, k.key_id, k.public_key, k.peer_name, k.first_seen_at,
       (SELECT count(*) FROM hub_pending_bundles b
         WHERE b.origin = k.origin AND b.key_id = k.key_id) AS bundles,
       (k.key_id <> k.origin AND NOT EXISTS (
            SELECT 1 FROM hub_trusted_keys t
             WHERE t.origin = k.origin AND k.peer_name IS NOT NULL
               AND t.peer_name = k.peer_name)) AS foreign_claim,
       EXISTS (SELECT 1 FROM hub_trusted_keys t WHERE t.origin = k.origin) AS known_origin
  FROM hub_pending_keys k
"""


async def pending_keys(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(_PENDING_KEYS + " ORDER BY k.first_seen_at, k.origin")


async def find_pending_keys(conn: Conn, key_id: str,
                            origin: str | None = None) -> list[asyncpg.Record]:
    """Pending rows of ``key_id`` (one per origin it was seen signing for)."""
    return await conn.fetch(
        _PENDING_KEYS + " WHERE k.key_id = $1 AND ($2::text IS NULL OR k.origin = $2) "
        "ORDER BY k.origin", key_id, origin)


async def find_pending_key(conn: Conn, key_id: str) -> asyncpg.Record | None:
    rows = await find_pending_keys(conn, key_id)
    return rows[0] if rows else None


async def pending_bundles_of(conn: Conn, origin: str, key_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT digest, peer_name, hops, container FROM hub_pending_bundles
            WHERE origin = $1 AND key_id = $2 ORDER BY sequence NULLS FIRST, received_at""",
        origin, key_id)


async def drop_pending_key(conn: Conn, origin: str, key_id: str) -> None:
    await conn.execute("DELETE FROM hub_pending_keys WHERE origin = $1 AND key_id = $2",
                       origin, key_id)
