"""SQL of repairs: `wb sync repair` (node/sync/repair.py) and the outbox scrub on withdrawal
(outbox_scrub.py).
"""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def export_head(conn: Conn) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT sequence, last_digest FROM node_sync_state")


async def outbox_envelopes(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT envelope FROM sync_outbox ORDER BY sequence")


async def select_sync_received_by_sequence(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT r.origin, s AS sequence
             FROM (SELECT origin, max(sequence) AS top FROM sync_received
                    WHERE sequence > 0 GROUP BY origin) r,
                  generate_series(1, r.top) AS s
            WHERE NOT EXISTS (SELECT 1 FROM sync_received x
                               WHERE x.origin = r.origin AND x.sequence = s)
            ORDER BY 1, 2 LIMIT 10000"""
    )


async def select_sync_pending_by_exists(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT p.origin, p.sequence FROM sync_pending p
             JOIN sync_trusted_keys t ON t.origin = p.origin AND t.key_id = p.key_id
            WHERE NOT EXISTS (SELECT 1 FROM sync_key_revocations v
                               WHERE v.origin = p.origin AND v.key_id = p.key_id)"""
    )


async def select_invite_map_cache_by_graph_version(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT c.viewer_id, c.depth, c.nodes, u.is_admin
             FROM invite_map_cache c JOIN users u ON u.id = c.viewer_id
            WHERE c.graph_version = (SELECT version FROM invite_graph_version)"""
    )


async def count_sync_key_revocations(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT v.origin, v.key_id, count(r.digest) AS bundles
             FROM sync_key_revocations v
             JOIN sync_received r ON r.origin = v.origin AND r.key_id = v.key_id
            GROUP BY v.origin, v.key_id ORDER BY 1, 2"""
    )


async def insert_sync_gaps(conn: Conn, origin_sequences: Any) -> None:
    return await conn.executemany(
        "INSERT INTO sync_gaps (origin, sequence, peer) VALUES ($1, $2, NULL) "
        "ON CONFLICT DO NOTHING",
        origin_sequences,
    )


async def outbox_bundles(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT sequence, digest, envelope FROM sync_outbox ORDER BY sequence")


async def update_node_sync_state_set_last_digest(conn: Conn, digest: Any) -> str:
    return await conn.execute("UPDATE node_sync_state SET last_digest = $1", digest)


async def insert_sync_outbox(
    conn: Conn, seq: Any, digest: Any, kind: Any, records: Any, bundle: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_outbox (sequence, digest, kind, record_count, envelope)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (sequence) DO UPDATE SET digest = EXCLUDED.digest,
                       kind = EXCLUDED.kind, record_count = EXCLUDED.record_count,
                       envelope = EXCLUDED.envelope, paths = NULL""",
        seq,
        digest,
        kind,
        records,
        bundle,
    )


async def withdrawn_paths(conn: Conn) -> dict[str, int]:
    """Record paths withdrawn since they were published, each with the outbox sequence
    it is known to be scrubbed through (node.sync.outbox_scrub)."""
    return {r["path"]: r["scrubbed_through"] for r in await conn.fetch(
        "SELECT path, scrubbed_through FROM sync_outbox_withdrawn")}


async def outbox_paths(conn: Conn) -> dict[int, list[str] | None]:
    """The scrub's index: the record paths each stored bundle holds (None: not indexed)."""
    return {r["sequence"]: r["paths"] for r in await conn.fetch(
        "SELECT sequence, paths FROM sync_outbox")}


async def reset_outbox_paths(conn: Conn, sequences: list[int]) -> str:
    """Forget the index of these bundles; the next scrub re-reads them."""
    return await conn.execute("UPDATE sync_outbox SET paths = NULL "
                              "WHERE sequence = ANY($1::bigint[])", sequences)


async def rewind_scrub(conn: Conn, paths: list[str], before: int) -> str:
    """These paths are not known to be scrubbed from bundle ``before + 1`` on."""
    return await conn.execute(
        "UPDATE sync_outbox_withdrawn SET scrubbed_through = least(scrubbed_through, $2) "
        "WHERE path = ANY($1::text[])", paths, before)


async def select_sync_gaps(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT origin, sequence FROM sync_gaps")


async def delete_invite_map_cache_by_viewer_id(conn: Conn, viewer_id: Any, depth: Any) -> str:
    return await conn.execute(
        "DELETE FROM invite_map_cache WHERE viewer_id = $1 AND depth = $2", viewer_id, depth
    )


async def outbox_head(conn: Conn) -> Any:
    return await conn.fetchval("SELECT coalesce(max(sequence), 0) FROM sync_outbox")


async def advisory_xact_lock(conn: Conn, scrub_lock: Any) -> str:
    return await conn.execute("SELECT pg_advisory_xact_lock($1)", scrub_lock)


async def withdrawn_to_scrub(
    conn: Conn, head: Any
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT path, scrubbed_through FROM sync_outbox_withdrawn "
        "WHERE scrubbed_through < $1 FOR UPDATE",
        head,
    )


async def select_sync_outbox_by_sequence(
    conn: Conn, since: Any, head: Any, paths: Any
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT sequence, envelope FROM sync_outbox WHERE sequence > $1 AND sequence <= $2 "
        "AND paths && $3::text[] ORDER BY sequence FOR UPDATE",
        since,
        head,
        paths,
    )


async def update_sync_outbox_withdrawn_set_scrubbed_through_by_path(
    conn: Conn, paths: Any, head: Any
) -> str:
    return await conn.execute(
        "UPDATE sync_outbox_withdrawn SET scrubbed_through = $2 WHERE path = ANY($1::text[])",
        paths,
        head,
    )


async def select_sync_outbox_by_paths(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT sequence, envelope FROM sync_outbox WHERE paths IS NULL FOR UPDATE"
    )


async def scrub_pending(conn: Conn, head: Any) -> Any:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM sync_outbox_withdrawn WHERE scrubbed_through < $1)", head
    )


async def update_sync_outbox_set_envelope_by_sequence(
    conn: Conn, sequence: Any, withheld: Any
) -> str:
    return await conn.execute(
        "UPDATE sync_outbox SET envelope = $2 WHERE sequence = $1", sequence, withheld
    )


async def update_sync_outbox_set_paths_by_sequence(conn: Conn, sequence: Any, files: Any) -> str:
    return await conn.execute(
        "UPDATE sync_outbox SET paths = $2 WHERE sequence = $1", sequence, files
    )


# The tables repair may name; a table name never comes from input.
_TABLES = frozenset({"users", "requests", "comments"})


def _table(table: str) -> str:
    if table not in _TABLES:
        raise ValueError(f"not a synced table: {table!r}")
    return table


async def local_publication_state(conn: Conn, table: str) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT id, published FROM {_table(table)} WHERE origin IS NULL")


async def set_published(conn: Conn, table: str, row_id: str, published: bool) -> str:
    return await conn.execute(
        f"UPDATE {_table(table)} SET published = $2, published_revision = NULL WHERE id = $1",
        row_id,
        published,
    )


async def count_live_rows_of_origin(conn: Conn, table: str, origin: str) -> int:
    return await conn.fetchval(
        f"SELECT count(*) FROM {_table(table)} WHERE origin = $1 AND deleted_at IS NULL", origin
    )


async def withdraw_rows_of_origin(conn: Conn, table: str, origin: str) -> str:
    return await conn.execute(
        f"UPDATE {_table(table)} SET deleted_at = now() WHERE origin = $1 AND deleted_at IS NULL",
        origin,
    )
