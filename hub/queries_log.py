"""SQL of the hub's log: its state, reading it, pruning it, chain gaps and the origins
page (re-exported by hub.queries)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


# ------------------------------------------------------------------------- the log

async def log_state(conn: Conn) -> tuple[int, int]:
    row = await conn.fetchrow("SELECT last_seq, pruned_through FROM hub_state WHERE id = 1")
    assert row is not None
    return row["last_seq"], row["pruned_through"]


async def log_after(conn: Conn, since: int, limit: int, *, origins: list[str] | None = None,
                    entities: list[str] | None = None, upto: int | None = None,
                    exclude_from: str | None = None) -> list[asyncpg.Record]:
    """Log entries with seq > since (and <= upto), oldest first, with their bundle bytes."""
    return await conn.fetch(
        """SELECT l.seq, l.digest, l.origin, l.received_from, l.hops, l.entities,
                  b.sequence, b.container
             FROM hub_log l JOIN hub_bundles b USING (digest)
            WHERE l.seq > $1 AND ($3::bigint IS NULL OR l.seq <= $3)
              AND ($4::text[] IS NULL OR l.origin = ANY($4))
              AND ($5::text[] IS NULL OR l.entities && $5)
              AND ($6::text IS NULL OR l.received_from IS DISTINCT FROM $6)
            ORDER BY l.seq LIMIT $2""",
        since, limit, upto, origins, entities, exclude_from)


@dataclass(frozen=True)
class Pruned:
    pruned_through: int
    entries: int
    bundles: int


async def prune_log(conn: asyncpg.Connection, *, before_seq: int | None = None,
                    older_than_days: float | None = None) -> Pruned:
    """Delete log entries (and their bundles) with seq < ``before_seq`` or committed more
    than ``older_than_days`` ago, in ONE transaction; the latest bundle of each origin's
    chain stays. ``hub_state.pruned_through`` moves to the highest sequence covered, so
    cursors below it get ``outdated_cursor``. The ``hub_state`` row lock orders this with
    ingest commits: every later entry gets a sequence above the new point."""
    async with conn.transaction():
        last_seq, pruned = await conn.fetchrow(
            "SELECT last_seq, pruned_through FROM hub_state WHERE id = 1 FOR UPDATE")
        target = pruned
        if before_seq is not None:
            target = max(target, min(before_seq - 1, last_seq))
        if older_than_days is not None:
            aged = await conn.fetchval(
                "SELECT max(seq) FROM hub_log WHERE committed_at < now() "
                "- make_interval(secs => $1)", float(older_than_days) * 86400.0)
            target = max(target, aged or 0)
        if target <= pruned:
            return Pruned(pruned, 0, 0)
        digests = await conn.fetchval(
            """WITH gone AS (
                   DELETE FROM hub_log l WHERE l.seq > $1 AND l.seq <= $2
                      AND NOT EXISTS (SELECT 1 FROM hub_origins o
                                       WHERE o.last_digest = l.digest)
                   RETURNING l.digest)
               SELECT coalesce(array_agg(digest), '{}') FROM gone""", pruned, target)
        await inline_heads(conn, digests)
        floors = await conn.fetch(
            """DELETE FROM hub_bundles WHERE digest = ANY($1::text[])
               RETURNING origin, sequence""", digests)
        highest: dict[str, int] = {}
        for row in floors:
            if row["sequence"] is not None:
                highest[row["origin"]] = max(highest.get(row["origin"], 0), row["sequence"])
        if highest:
            await conn.execute(
                """UPDATE hub_origins o SET pruned_sequence = greatest(o.pruned_sequence, f.s)
                     FROM unnest($1::text[], $2::bigint[]) AS f(origin, s)
                    WHERE o.origin = f.origin""", list(highest), list(highest.values()))
        await conn.execute("UPDATE hub_state SET pruned_through = $1 WHERE id = 1", target)
    return Pruned(target, len(digests), len(floors))


async def chain_gaps(conn: Conn, origin: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT origin, prev + 1 AS from_sequence, sequence - 1 AS to_sequence
             FROM (SELECT origin, sequence,
                          greatest(coalesce(lag(sequence) OVER (PARTITION BY origin
                                                                ORDER BY sequence), 0),
                                   coalesce((SELECT o.pruned_sequence FROM hub_origins o
                                              WHERE o.origin = b.origin), 0)) AS prev
                     FROM hub_bundles b
                    WHERE sequence IS NOT NULL AND ($1::text IS NULL OR origin = $1)) s
            WHERE sequence > prev + 1 ORDER BY origin, sequence""", origin)


async def origins(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT o.origin, o.instance, o.last_sequence, o.last_digest, o.bundles, o.records,
                  o.first_seen_at, o.last_seen_at,
                  coalesce((SELECT array_agg(k.key_id ORDER BY k.approved_at)
                              FROM hub_trusted_keys k WHERE k.origin = o.origin), '{}')
                      AS key_ids,
                  coalesce((SELECT array_agg(encode(k.public_key, 'base64')
                                             ORDER BY k.approved_at)
                              FROM hub_trusted_keys k WHERE k.origin = o.origin), '{}')
                      AS public_keys
             FROM hub_origins o ORDER BY o.last_seen_at DESC""")


#: the header block a row ``r`` points at in the envelope of its bundle ``b`` (migration
#: 0024): a slice of the uncompressed stored value, read without the rest of it
HEAD_IN_BUNDLE = ("convert_from(substring(b.container FROM r.head_at + 1 FOR r.head_len),"
                  " 'UTF8')")


async def inline_heads(conn: asyncpg.Connection, digests: list[str]) -> None:
    """Copy into their rows the heads and digest the rows of ``digests`` point at
    (migration 0024), before those bundles' envelopes are rewritten or deleted, in the
    caller's transaction. The rows are found from each envelope's record paths
    (``<entity>s/<id>.sync.txt``), one probe of the index's key each."""
    await conn.execute(
        f"""UPDATE hub_records r
              SET head = {HEAD_IN_BUNDLE},
                  head_at = NULL, head_len = NULL, digest = b.digest, bundle = NULL
             FROM hub_bundles b, unnest(b.paths) AS p(path)
            WHERE b.digest = ANY($1::text[]) AND r.origin = b.origin
              AND r.entity = left(split_part(p.path, '/', 1), -1)
              AND r.id = left(split_part(p.path, '/', 2), -9)
              AND r.bundle = b.id""", digests)
