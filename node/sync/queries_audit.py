"""SQL of the hub transparency-log audit (node/sync/audit.py): acknowledged hub sequences,
kept checkpoints and incidents.
"""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def insert_ack(conn: Conn, peer: str, hub_seq: int, origin: str, sequence: Any,
                     digest: str) -> str:
    return await conn.execute(
        """INSERT INTO sync_hub_acks (peer, hub_seq, origin, sequence, digest)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        peer, hub_seq, origin, sequence, digest)


async def insert_skipped(conn: Conn, peer: str, skipped: list[int]) -> str:
    return await conn.execute(
        """INSERT INTO sync_hub_acks (peer, hub_seq, origin, sequence, digest)
           SELECT $1, s, '', NULL, '' FROM unnest($2::bigint[]) AS s
           ON CONFLICT DO NOTHING""", peer, skipped)


async def select_incidents(conn: Conn, peer: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, peer, kind, message, evidence, detected_at FROM sync_hub_incidents "
        "WHERE $1::text IS NULL OR peer = $1 ORDER BY id DESC LIMIT $2", peer, limit)


async def select_latest_checkpoints(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT l.peer, p.location, l.verifier, l.size, l.note, l.checked_at "
        "FROM sync_hub_logs l JOIN sync_peers p ON p.name = l.peer "
        "WHERE l.note IS NOT NULL ORDER BY l.peer")


async def incident_exists(conn: Conn, peer: str, kind: str, evidence: str) -> Any:
    return await conn.fetchval(
        "SELECT 1 FROM sync_hub_incidents WHERE peer = $1 AND kind = $2 AND evidence = $3",
        peer, kind, evidence)


async def insert_incident(conn: Conn, peer: str, kind: str, message: str,
                          evidence: str) -> str:
    return await conn.execute(
        "INSERT INTO sync_hub_incidents (peer, kind, message, evidence) "
        "VALUES ($1, $2, $3, $4)", peer, kind, message, evidence)


async def select_hub_log(conn: Conn, peer: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM sync_hub_logs WHERE peer = $1", peer)


async def insert_hub_log(conn: Conn, peer: str, verifier: str) -> str:
    return await conn.execute("INSERT INTO sync_hub_logs (peer, verifier) VALUES ($1, $2) "
                              "ON CONFLICT DO NOTHING", peer, verifier)


async def update_hub_log_checkpoint(conn: Conn, peer: str, size: int, root: bytes,
                                    note: bytes) -> str:
    return await conn.execute(
        "UPDATE sync_hub_logs SET size = $2, root = $3, note = $4, checked_at = now() "
        "WHERE peer = $1", peer, size, root, note)


async def select_unchecked_acks(conn: Conn, peer: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT hub_seq, origin, sequence, digest,
                  extract(epoch FROM now() - acked_at) AS age
             FROM sync_hub_acks
            WHERE peer = $1 AND included_at IS NULL AND flagged_at IS NULL
            ORDER BY hub_seq LIMIT 500""", peer)


async def mark_ack_included(conn: Conn, peer: str, hub_seq: int) -> str:
    return await conn.execute("UPDATE sync_hub_acks SET included_at = now() "
                              "WHERE peer = $1 AND hub_seq = $2", peer, hub_seq)


async def mark_ack_flagged(conn: Conn, peer: str, hub_seq: int) -> str:
    return await conn.execute("UPDATE sync_hub_acks SET flagged_at = now() "
                              "WHERE peer = $1 AND hub_seq = $2", peer, hub_seq)
