"""SQL of peers and their transport: peers, gaps, pull/push transport, replay, the sync service
and its CLI.
"""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def pin_key(
    conn: Conn, origin: Any, key_id: Any, peer: Any, actor: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_trusted_keys (origin, key_id, source, peer, added_by)
           VALUES ($1, $2, 'pinned', $3, $4) ON CONFLICT DO NOTHING""",
        origin,
        key_id,
        peer,
        actor,
    )


async def select_sync_peers_by_name(conn: Conn, name: Any) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sync_peers WHERE name = $1", name)


async def select_sync_peers(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM sync_peers ORDER BY name")


async def select_sync_trusted_keys_by_peer(conn: Conn, name: Any) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT origin, key_id, source FROM sync_trusted_keys WHERE peer = $1 ORDER BY origin", name
    )


async def select_sync_peers_by_token_hash(conn: Conn, token: Any) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM sync_peers WHERE token_hash = $1 AND kind = 'hub'", token
    )


async def unpin_key(conn: Conn, name: Any, origin: Any, key_id: Any) -> str:
    return await conn.execute(
        "DELETE FROM sync_trusted_keys WHERE peer = $1 AND origin = $2 AND key_id = $3 "
        "AND source = 'pinned'",
        name,
        origin,
        key_id,
    )


async def unpin_all_keys(conn: Conn, name: Any) -> str:
    return await conn.execute(
        "DELETE FROM sync_trusted_keys WHERE peer = $1 AND source = 'pinned'", name
    )


async def delete_sync_peers_by_name(conn: Conn, name: Any) -> str:
    return await conn.execute("DELETE FROM sync_peers WHERE name = $1", name)


async def update_sync_peers_set_location_by_name(
    conn: Conn, name: Any, location: Any, api: Any, token: Any, inbox_token_hash: Any,
    clear_token: Any,
) -> str:
    return await conn.execute(
        """UPDATE sync_peers SET location = coalesce($2, location), api = coalesce($3, api),
                      token = CASE WHEN $6 THEN NULL ELSE coalesce($4, token) END,
                      token_hash = coalesce($5, token_hash)
                WHERE name = $1""",
        name,
        location,
        api,
        token,
        inbox_token_hash,
        clear_token,
    )


async def insert_sync_peers(
    conn: Conn,
    peer_id: Any,
    name: Any,
    kind: Any,
    location: Any,
    api: Any,
    token: Any,
    inbox_token_hash: Any,
    schedule: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO sync_peers (id, name, kind, location, api, token, token_hash,
                                           schedule)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        peer_id,
        name,
        kind,
        location,
        api,
        token,
        inbox_token_hash,
        schedule,
    )


async def received_link(
    conn: Conn, origin: Any, sequence: Any
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT digest, previous, peer FROM sync_received WHERE origin = $1 AND sequence = $2",
        origin,
        sequence,
    )


async def insert_sync_chain_breaks(
    conn: Conn, origin: Any, sequence: Any, previous: Any, expected: Any, digest: Any, peer: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_chain_breaks (origin, sequence, previous, expected, digest, peer)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        origin,
        sequence,
        previous,
        expected,
        digest,
        peer,
    )


async def select_sync_chain_breaks(conn: Conn, limit: Any) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT origin, sequence, previous, expected, digest, peer, detected_at "
        "FROM sync_chain_breaks ORDER BY detected_at DESC LIMIT $1",
        limit,
    )


async def update_sync_gaps_set_attempts_by_origin(conn: Conn, origin: Any, sequences: Any) -> str:
    return await conn.execute(
        "UPDATE sync_gaps SET attempts = attempts + 1, last_attempt_at = now() "
        "WHERE origin = $1 AND sequence = ANY($2::bigint[])",
        origin,
        sequences,
    )


async def select_sync_gaps_by_origin(
    conn: Conn, origin: Any, sequences: Any
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT sequence FROM sync_gaps WHERE origin = $1 AND sequence = ANY($2::bigint[])",
        origin,
        sequences,
    )


async def received_digest(conn: Conn, origin: Any, sequence: Any) -> Any:
    return await conn.fetchval(
        "SELECT digest FROM sync_received WHERE origin = $1 AND sequence = $2", origin, sequence
    )


async def update_sync_peers_set_seen_by_name(conn: Conn, name: Any, digest: Any) -> str:
    return await conn.execute(
        "UPDATE sync_peers SET seen = array_append(seen, $2) WHERE name = $1", name, digest
    )


async def select_sync_pending(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT p.id, p.envelope, p.peer FROM sync_pending p
             JOIN sync_trusted_keys t ON t.origin = p.origin AND t.key_id = p.key_id
            ORDER BY p.origin, p.sequence NULLS FIRST, p.received_at"""
    )


async def drop_pending(conn: Conn, id: Any) -> str:
    return await conn.execute("DELETE FROM sync_pending WHERE id = $1", id)


async def insert_sync_jobs(
    conn: Conn,
    ms: Any,
    actor: Any,
    peer: Any,
    kind: Any,
    result: Any,
    error_code: Any,
    bundle_bytes: Any,
    bundles: Any,
    records_in: Any,
    records_applied: Any,
    details: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO sync_jobs (duration_ms, actor, peer, kind, result, error_code,
                          bundle_bytes, bundles, records_in, records_applied, details)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)""",
        ms,
        actor,
        peer,
        kind,
        result,
        error_code,
        bundle_bytes,
        bundles,
        records_in,
        records_applied,
        details,
    )


async def count_sync_pending(conn: Conn) -> Any:
    return await conn.fetchval("SELECT count(*) FROM sync_pending")


async def sync_state(conn: Conn) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM node_sync_state")


async def count_sync_gaps(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT origin, min(sequence) AS first, max(sequence) AS last, count(*) AS n "
        "FROM sync_gaps GROUP BY origin"
    )


async def select_sync_equivocations(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT origin, sequence, known_digest, rejected_digest, peer, detected_at "
        "FROM sync_equivocations ORDER BY detected_at DESC LIMIT 20"
    )


async def select_sync_jobs(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT started_at, kind, peer, result, error_code, duration_ms, records_in, "
        "records_applied, bundle_bytes FROM sync_jobs ORDER BY id DESC LIMIT 10"
    )


async def update_peer_outcome(conn: Conn, sets: list[str], args: list[Any]) -> str:
    """Record a run's outcome; ``sets`` are fixed column assignments built by
    ``node.sync.peers.record_outcome`` (never user input), ``args`` start with name, error."""
    return await conn.execute(
        f"UPDATE sync_peers SET {', '.join(sets)} WHERE name = $1 "
        "AND $2::text IS NOT DISTINCT FROM $2::text",
        *args,
    )


async def due_gaps(
    conn: Conn, force: bool, backoff_seconds: int, backoff_max_seconds: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT origin, sequence FROM sync_gaps
             WHERE $1 OR last_attempt_at IS NULL
                OR last_attempt_at + make_interval(secs => least({int(backoff_max_seconds)},
                       {int(backoff_seconds)} * power(2, least(attempts, 20)))) <= now()
             ORDER BY origin, sequence LIMIT {int(limit)}""",
        force,
    )
