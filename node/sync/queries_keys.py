"""SQL of peer keys: rotation, revocation and this node's own identity (node/sync/rotation.py,
revocation.py, identity.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def select_node_keys_by_key_id(conn: Conn, key_id: Any) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM node_keys WHERE key_id = $1", key_id)


async def update_node_keys_set_retired_file_by_key_id(
    conn: Conn, previous: Any, retired: Any
) -> str:
    return await conn.execute(
        "UPDATE node_keys SET retired_file = $2 WHERE key_id = $1", previous, retired
    )


async def own_origin_row(conn: Conn) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT origin FROM node_sync_state")


async def select_sync_outbox_by_sequence(conn: Conn, announced_sequence: Any) -> Any:
    return await conn.fetchval(
        "SELECT digest FROM sync_outbox WHERE sequence = $1", announced_sequence
    )


async def select_node_keys(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT key_id, previous_key_id, valid_from, announced_sequence, retired_at, "
        "retired_file FROM node_keys ORDER BY valid_from, key_id"
    )


async def is_key_trusted(conn: Conn, origin: Any, key_id: Any) -> Any:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM sync_trusted_keys WHERE origin = $1 AND key_id = $2)",
        origin,
        key_id,
    )


async def count_node_keys(conn: Conn) -> Any:
    return await conn.fetchval("SELECT count(*) FROM node_keys")


async def insert_first_node_key(conn: Conn, key_id: Any, public_key: Any) -> str:
    return await conn.execute(
        "INSERT INTO node_keys (key_id, public_key, previous_key_id) VALUES ($1, $2, NULL)",
        key_id,
        public_key,
    )


async def trust_rotated_key(
    conn: Conn, origin: Any, key_id: Any, public_key: Any, peer: Any, previous_key_id: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_trusted_keys (origin, key_id, public_key, source, peer,
                                              added_by, announced_by)
               SELECT $1, $2, $3, 'rotation', $4, 'rotation', $5
                WHERE NOT EXISTS (SELECT 1 FROM sync_key_revocations
                                   WHERE origin = $1 AND key_id = $2)
               ON CONFLICT DO NOTHING""",
        origin,
        key_id,
        public_key,
        peer,
        previous_key_id,
    )


async def insert_rotated_node_key(
    conn: Conn, key_id: Any, public_key: Any, key_id_2: Any, now: Any, sequence: Any
) -> str:
    return await conn.execute(
        "INSERT INTO node_keys (key_id, public_key, previous_key_id, valid_from, "
        "announced_sequence) VALUES ($1, $2, $3, $4, $5)",
        key_id,
        public_key,
        key_id_2,
        now,
        sequence,
    )


async def update_node_keys_set_retired_at_by_key_id(
    conn: Conn, key_id: Any, now: Any, config: Any
) -> str:
    return await conn.execute(
        "UPDATE node_keys SET retired_at = $2, retired_file = $3 WHERE key_id = $1",
        key_id,
        now,
        config,
    )


async def trust_own_rotated_key(
    conn: Conn, origin: Any, key_id: Any, public_key: Any, actor: Any, key_id_4: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_trusted_keys (origin, key_id, public_key, source, added_by,
                                                  announced_by)
                   VALUES ($1, $2, $3, 'self', $4, $5) ON CONFLICT DO NOTHING""",
        origin,
        key_id,
        public_key,
        actor,
        key_id_4,
    )


async def select_sync_key_revocations_by_origin(conn: Conn, origin: Any, key_id: Any) -> Any:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM sync_key_revocations WHERE origin = $1 AND key_id = $2)",
        origin,
        key_id,
    )


async def select_sync_trusted_keys(conn: Conn, origin: Any) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT origin, key_id, 'trusted' AS status, source, announced_by, peer,
                  added_by AS actor, added_at AS at
             FROM sync_trusted_keys WHERE $1::text IS NULL OR origin = $1
           UNION ALL
           SELECT origin, key_id, 'revoked', NULL, NULL, NULL, actor, revoked_at
             FROM sync_key_revocations WHERE $1::text IS NULL OR origin = $1
           ORDER BY origin, at, key_id""",
        origin,
    )


async def origin_known(conn: Conn, origin: Any) -> Any:
    return await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM sync_trusted_keys WHERE origin = $1)
                   OR EXISTS (SELECT 1 FROM sync_pending WHERE origin = $1)
                   OR EXISTS (SELECT 1 FROM sync_received WHERE origin = $1)""",
        origin,
    )


async def delete_sync_trusted_keys_by_origin(
    conn: Conn, origin: Any, key_id: Any
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "DELETE FROM sync_trusted_keys WHERE origin = $1 AND key_id = $2 "
        "RETURNING source, announced_by",
        origin,
        key_id,
    )


async def drop_pending_of_key(conn: Conn, origin: Any, key_id: Any) -> Any:
    return await conn.fetchval(
        "WITH d AS (DELETE FROM sync_pending WHERE origin = $1 AND key_id = $2 "
        "RETURNING 1) SELECT count(*) FROM d",
        origin,
        key_id,
    )


async def insert_sync_key_revocations(conn: Conn, origin: Any, key_id: Any, actor: Any) -> str:
    return await conn.execute(
        "INSERT INTO sync_key_revocations (origin, key_id, actor) VALUES ($1, $2, $3)",
        origin,
        key_id,
        actor,
    )


async def audit_key_revoked(conn: Conn, target: Any, details: Any) -> str:
    return await conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, details) "
        "VALUES (NULL, 'sync.key_revoked', $1, $2::jsonb)",
        target,
        details,
    )


async def delete_sync_key_revocations_by_origin(conn: Conn, origin: Any, key_id: Any) -> str:
    return await conn.execute(
        "DELETE FROM sync_key_revocations WHERE origin = $1 AND key_id = $2", origin, key_id
    )


async def audit_key_unrevoked(conn: Conn, target: Any, details: Any) -> str:
    return await conn.execute(
        "INSERT INTO audit_log (actor_id, action, target, details) "
        "VALUES (NULL, 'sync.key_unrevoked', $1, $2::jsonb)",
        target,
        details,
    )


async def insert_node_sync_state(conn: Conn, key_id: Any) -> str:
    return await conn.execute(
        "INSERT INTO node_sync_state (origin) VALUES ($1) ON CONFLICT DO NOTHING", key_id
    )


async def own_origin(conn: Conn) -> Any:
    return await conn.fetchval("SELECT origin FROM node_sync_state")


async def trust_own_key(conn: Conn, origin: Any, key_id: Any, public_key: Any) -> str:
    return await conn.execute(
        "INSERT INTO sync_trusted_keys (origin, key_id, public_key, source) "
        "VALUES ($1, $2, $3, 'self') ON CONFLICT DO NOTHING",
        origin,
        key_id,
        public_key,
    )
