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


# ------------------------------------------------------- gossip (node/sync/gossip.py)

async def select_gossip(conn: Conn, source: str, peer: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT size, root FROM sync_hub_gossip "
                               "WHERE source = $1 AND peer = $2", source, peer)


async def upsert_gossip(conn: Conn, source: str, peer: str, size: int, root: bytes,
                        note: bytes) -> str:
    return await conn.execute(
        """INSERT INTO sync_hub_gossip (source, peer, size, root, note)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (source, peer) DO UPDATE
              SET size = $3, root = $4, note = $5, checked_at = now()""",
        source, peer, size, root, note)


async def source_asked(conn: Conn, source: str, notes: int, error: str | None) -> str:
    return await conn.execute(
        """INSERT INTO sync_gossip_sources (source, notes, error) VALUES ($1, $2, $3)
           ON CONFLICT (source) DO UPDATE SET asked_at = now(), notes = $2, error = $3""",
        source, notes, error)


async def select_gossip_sources(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT source, asked_at, notes, error FROM sync_gossip_sources "
                            "ORDER BY source")


async def select_trusted_instances(conn: Conn, own: str, limit: int) -> list[str]:
    """Instances of origins this node trusts (pinned or approved keys), the most recently
    heard from first: the nodes likely to share our hubs."""
    rows = await conn.fetch(
        """SELECT r.instance FROM sync_received r
            WHERE r.instance IS NOT NULL AND r.origin <> $1
              AND EXISTS (SELECT 1 FROM sync_trusted_keys k WHERE k.origin = r.origin
                            AND k.source IN ('pinned', 'approved'))
            GROUP BY r.instance ORDER BY max(r.received_at) DESC LIMIT $2""", own, limit)
    return [r["instance"] for r in rows]
