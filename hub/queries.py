"""Every SQL statement of the hub, as small async functions taking a pool or connection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

NOTIFY_CHANNEL = "wb_hub_log"


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


async def is_blocked(conn: Conn, origin: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_blocklist WHERE origin = $1)", origin)


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


async def pending_keys(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT k.origin, k.key_id, k.public_key, k.peer_name, k.first_seen_at,
                  count(b.digest) AS bundles
             FROM hub_pending_keys k
             LEFT JOIN hub_pending_bundles b USING (origin, key_id)
            GROUP BY k.origin, k.key_id ORDER BY k.first_seen_at""")


async def find_pending_key(conn: Conn, key_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT origin, key_id, public_key, peer_name FROM hub_pending_keys WHERE key_id = $1",
        key_id)


async def pending_bundles_of(conn: Conn, origin: str, key_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT digest, peer_name, hops, container FROM hub_pending_bundles
            WHERE origin = $1 AND key_id = $2 ORDER BY sequence NULLS FIRST, received_at""",
        origin, key_id)


async def drop_pending_key(conn: Conn, origin: str, key_id: str) -> None:
    await conn.execute("DELETE FROM hub_pending_keys WHERE origin = $1 AND key_id = $2",
                       origin, key_id)


# ------------------------------------------------------------------------- ingest

@dataclass(frozen=True)
class Stored:
    outcome: str  # "stored" | "duplicate" | "equivocation"
    hub_seq: int | None
    kept_digest: str | None = None


_UPSERT_RECORDS = """
INSERT INTO hub_records (origin, entity, id, revision, deleted, instance, updated_at,
                         head, body, title, status, parent_ref, created_at, digest)
SELECT o, e, i, r, d, ins, u, h, b, ti, st, pr, ca, $14
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bool[], $6::text[],
              $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
              $13::text[]) AS t(o, e, i, r, d, ins, u, h, b, ti, st, pr, ca)
ON CONFLICT (origin, entity, id) DO UPDATE
   SET revision = EXCLUDED.revision, deleted = EXCLUDED.deleted,
       instance = EXCLUDED.instance, updated_at = EXCLUDED.updated_at,
       head = EXCLUDED.head, body = EXCLUDED.body, title = EXCLUDED.title,
       status = EXCLUDED.status, parent_ref = EXCLUDED.parent_ref,
       created_at = EXCLUDED.created_at, digest = EXCLUDED.digest
 WHERE hub_records.revision < EXCLUDED.revision
"""


#: Columns of the record index as :func:`store_bundle` takes them (one list per column,
#: aligned): origin, entity, id, revision, deleted, instance, updated_at, head, body,
#: title, status, parent_ref, created_at.
INDEX_COLUMNS = ("origin", "entity", "id", "revision", "deleted", "instance", "updated_at",
                 "head", "body", "title", "status", "parent_ref", "created_at")
IndexColumns = tuple[list[str], list[str], list[str], list[int], list[bool],
                     list[str | None], list[str | None], list[str], list[str],
                     list[str | None], list[str | None], list[str | None], list[str | None]]


async def store_bundle(conn: asyncpg.Connection, *, digest: str, origin: str,
                       instance: str | None, sequence: int | None, previous: str | None,
                       kind: str | None, schema_version: int, key_id: str,
                       signed_at: str | None, container: bytes, columns: IndexColumns,
                       withheld: int, received_from: str | None, hops: int,
                       entities: list[str], manifest: bytes, sig: bytes,
                       paths: Sequence[str] = (), tombstoned: Sequence[str] = (),
                       scrub: Callable[[bytes, set[str]], bytes] | None = None) -> Stored:
    """Store, index and log one verified bundle in ONE transaction.

    The hub sequence comes from the single ``hub_state`` row, updated last: its row lock
    orders concurrent committers, so sequences are gap-free and follow commit order.
    Tombstones scrub the earlier copies of their records from the stored bundles of the
    same origin in the same transaction (``scrub(container, paths) -> container``).
    """
    async with conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO hub_bundles (digest, origin, instance, sequence, previous, kind,
                   schema_version, key_id, signed_at, container, record_count,
                   withheld_count, received_from, paths)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
               ON CONFLICT DO NOTHING RETURNING true""",
            digest, origin, instance, sequence, previous, kind, schema_version, key_id,
            signed_at, container, len(columns[0]), withheld, received_from, list(paths))
        if not inserted:
            seq = await conn.fetchval("SELECT seq FROM hub_log WHERE digest = $1", digest)
            if seq is not None:
                return Stored("duplicate", seq)
            kept = await conn.fetchval(
                "SELECT digest FROM hub_bundles WHERE origin = $1 AND sequence = $2",
                origin, sequence)
            if kept is None or kept == digest:  # pragma: no cover - vanished concurrently
                raise asyncpg.UniqueViolationError("bundle conflict, retry")
            await conn.execute(
                """INSERT INTO hub_equivocations (origin, sequence, kept_digest,
                       rejected_digest, peer_name, manifest, sig)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
                origin, sequence, kept, digest, received_from, manifest, sig)
            return Stored("equivocation", None, kept)
        if columns[0]:
            await conn.execute(_UPSERT_RECORDS, *columns, digest)
        if tombstoned and scrub is not None:
            await _scrub_older(conn, origin, digest, list(tombstoned), scrub)
        await conn.execute(
            """INSERT INTO hub_origins (origin, instance, last_sequence, last_digest,
                                        bundles, records)
               VALUES ($1, $2, $3, $4, 1, $5)
               ON CONFLICT (origin) DO UPDATE SET
                   instance = coalesce(EXCLUDED.instance, hub_origins.instance),
                   last_digest = CASE WHEN coalesce(EXCLUDED.last_sequence, 0)
                                           >= coalesce(hub_origins.last_sequence, 0)
                                      THEN EXCLUDED.last_digest
                                      ELSE hub_origins.last_digest END,
                   last_sequence = greatest(EXCLUDED.last_sequence,
                                            hub_origins.last_sequence),
                   bundles = hub_origins.bundles + 1,
                   records = hub_origins.records + EXCLUDED.records,
                   last_seen_at = now()""",
            origin, instance, sequence, digest, len(columns[0]))
        seq = await conn.fetchval(
            "UPDATE hub_state SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq")
        await conn.execute(
            """INSERT INTO hub_log (seq, digest, origin, entities, received_from, hops)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            seq, digest, origin, entities, received_from, hops)
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(seq))
    return Stored("stored", seq)


async def _scrub_older(conn: asyncpg.Connection, origin: str, digest: str,
                       tombstoned: list[str],
                       scrub: Callable[[bytes, set[str]], bytes]) -> None:
    rows = await conn.fetch(
        """SELECT digest, container, paths FROM hub_bundles
            WHERE origin = $1 AND digest <> $2 AND paths && $3::text[] FOR UPDATE""",
        origin, digest, tombstoned)
    gone = set(tombstoned)
    for row in rows:
        await conn.execute(
            "UPDATE hub_bundles SET container = $2, paths = $3 WHERE digest = $1",
            row["digest"], scrub(bytes(row["container"]), gone),
            [p for p in row["paths"] if p not in gone])
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, f"scrub:{row['digest']}")


async def bundle_answer(conn: Conn, digest: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT b.digest, b.origin, b.sequence, b.record_count, b.withheld_count, l.seq
             FROM hub_bundles b JOIN hub_log l USING (digest) WHERE b.digest = $1""", digest)


async def count_error(conn: Conn, code: str, message: str, peer: str | None) -> None:
    await conn.execute(
        """INSERT INTO hub_ingest_errors (code, count, last_message, last_peer)
           VALUES ($1, 1, $2, $3)
           ON CONFLICT (code) DO UPDATE SET count = hub_ingest_errors.count + 1,
               last_message = EXCLUDED.last_message, last_peer = EXCLUDED.last_peer,
               last_at = now()""", code, message[:500], peer)


async def ingest_errors(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT code, count, last_message, last_peer, last_at FROM hub_ingest_errors "
        "ORDER BY last_at DESC")


async def equivocations(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT origin, sequence, kept_digest, rejected_digest, peer_name, detected_at "
        "FROM hub_equivocations ORDER BY detected_at DESC LIMIT 200")


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


# ------------------------------------------------------------------------- public index

async def feed(conn: Conn, *, limit: int, offset: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT origin, id, instance, title, status, body, created_at, updated_at, head
             FROM hub_records WHERE entity = 'request' AND NOT deleted
            ORDER BY updated_at DESC, origin, id LIMIT $1 OFFSET $2""", limit, offset)


async def comments_for(conn: Conn, refs: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT origin, id, parent_ref, body, created_at, head FROM hub_records
            WHERE entity = 'comment' AND NOT deleted AND parent_ref = ANY($1)
            ORDER BY created_at, id""", refs)


async def search_records(conn: Conn, *, origin: str | None, entity: str | None,
                         q: str | None, after: str | None, limit: int) -> list[asyncpg.Record]:
    """Live public records, paged by (origin, entity, id) > after (``o|e|i``)."""
    a = after.split("|", 2) if after else None
    return await conn.fetch(
        """SELECT origin, entity, id, revision, instance, updated_at, head, body, digest
             FROM hub_records
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


# ------------------------------------------------------------------------- subscriptions

async def add_subscription(conn: Conn, *, sub_id: str, peer_name: str, mode: str,
                           inbox_url: str | None, inbox_token: str | None,
                           origins: list[str] | None, entities: list[str] | None,
                           cursor: int) -> None:
    await conn.execute(
        """INSERT INTO hub_subscriptions (id, peer_name, mode, inbox_url, inbox_token,
               origins, entities, cursor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        sub_id, peer_name, mode, inbox_url, inbox_token, origins, entities, cursor)


async def subscriptions(conn: Conn, peer_name: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.id, s.peer_name, s.mode, s.inbox_url, s.origins, s.entities, s.cursor,
                  s.failures, s.next_attempt_at, s.last_error, s.last_delivered_at,
                  s.delivered, st.last_seq - s.cursor AS lag
             FROM hub_subscriptions s CROSS JOIN hub_state st
            WHERE $1::text IS NULL OR s.peer_name = $1 ORDER BY s.created_at""", peer_name)


async def remove_subscription(conn: Conn, sub_id: str, peer_name: str | None = None) -> bool:
    done = await conn.execute(
        "DELETE FROM hub_subscriptions WHERE id = $1 AND ($2::text IS NULL OR peer_name = $2)",
        sub_id, peer_name)
    return done != "DELETE 0"


async def claim_subscriptions(conn: Conn, limit: int, *,
                              lease_seconds: float) -> list[asyncpg.Record]:
    """Lease due push subscriptions that are behind the head (skipping ones another
    process holds)."""
    return await conn.fetch(
        """UPDATE hub_subscriptions s
              SET next_attempt_at = now() + make_interval(secs => $2)
             FROM (SELECT id FROM hub_subscriptions
                    WHERE mode = 'push' AND next_attempt_at <= now()
                      AND cursor < (SELECT last_seq FROM hub_state WHERE id = 1)
                    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
            WHERE s.id = due.id
        RETURNING s.id, s.peer_name, s.inbox_url, s.inbox_token, s.origins, s.entities,
                  s.cursor, s.failures""", limit, lease_seconds)


async def advance_cursor(conn: Conn, sub_id: str, cursor: int, delivered: int, *,
                         release: bool, lease_seconds: float = 0) -> None:
    """Move the cursor forward (never back); release or renew the lease."""
    await conn.execute(
        """UPDATE hub_subscriptions SET cursor = greatest(cursor, $2),
               failures = 0, last_error = NULL,
               next_attempt_at = CASE WHEN $4 THEN now()
                                      ELSE now() + make_interval(secs => $5) END,
               delivered = delivered + $3,
               last_delivered_at = CASE WHEN $3 > 0 THEN now() ELSE last_delivered_at END
            WHERE id = $1""", sub_id, cursor, delivered, release, float(lease_seconds))


async def release_subscription(conn: Conn, sub_id: str) -> None:
    await conn.execute("UPDATE hub_subscriptions SET next_attempt_at = now() WHERE id = $1",
                       sub_id)


async def delivery_failed(conn: Conn, sub_id: str, cursor: int, error: str,
                          delay_seconds: float) -> None:
    """Keep the progress made, count the failure and schedule the retry."""
    await conn.execute(
        """UPDATE hub_subscriptions SET cursor = greatest(cursor, $2),
               failures = failures + 1, last_error = $3,
               next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1""",
        sub_id, cursor, error[:300], float(delay_seconds))


async def add_upstream(conn: Conn, name: str, url: str, cursor: int) -> None:
    await conn.execute(
        "INSERT INTO hub_upstreams (name, url, cursor) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url", name, url, cursor)


async def upstreams(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT name, url, cursor, last_error, connected_at FROM hub_upstreams ORDER BY name")


async def upstream_progress(conn: Conn, name: str, cursor: int | None,
                            error: str | None = None, connected: bool = False) -> None:
    await conn.execute(
        """UPDATE hub_upstreams SET cursor = greatest(cursor, coalesce($2, cursor)),
               last_error = $3,
               connected_at = CASE WHEN $4 THEN now() ELSE connected_at END
            WHERE name = $1""", name, cursor, error, connected)


# ------------------------------------------------------------------------- admin

async def add_admin_token(conn: Conn, token_hash: str) -> None:
    await conn.execute("INSERT INTO hub_admin_tokens (token_hash) VALUES ($1)", token_hash)


async def admin_token_exists(conn: Conn, token_hash: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_admin_tokens WHERE token_hash = $1)", token_hash)


async def create_admin_session(conn: Conn, id_hash: str, hours: int) -> None:
    await conn.execute(
        "DELETE FROM hub_admin_sessions WHERE expires_at < now()")
    await conn.execute(
        "INSERT INTO hub_admin_sessions (id_hash, expires_at) "
        "VALUES ($1, now() + make_interval(hours => $2))", id_hash, hours)


async def admin_session_valid(conn: Conn, id_hash: str) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM hub_admin_sessions WHERE id_hash = $1 "
        "AND expires_at > now())", id_hash)


async def end_admin_session(conn: Conn, id_hash: str) -> None:
    await conn.execute("DELETE FROM hub_admin_sessions WHERE id_hash = $1", id_hash)


async def csrf_secret(conn: Conn) -> str:
    return await conn.fetchval("SELECT csrf_secret FROM hub_state WHERE id = 1")
