"""Every SQL statement of the hub, as small async functions taking a pool or connection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from hub.queries_admin import (  # noqa: F401 (re-exported: callers use Q.<name>)
    add_admin_token,
    admin_session_valid,
    admin_token_exists,
    count_pending_bundles,
    create_admin_session,
    csrf_secret,
    end_admin_session,
)
from hub.queries_delivery import (  # noqa: F401 (re-exported: callers use Q.<name>)
    add_subscription,
    add_upstream,
    advance_cursor,
    claim_subscriptions,
    delivery_failed,
    has_push_subscriptions,
    release_subscription,
    remove_subscription,
    subscriptions,
    upstream_progress,
    upstreams,
)
from hub.queries_log import (  # noqa: F401 (re-exported: callers use Q.<name>)
    Pruned,
    chain_gaps,
    inline_heads,
    log_after,
    log_state,
    origins,
    prune_log,
)
from hub.queries_public import (  # noqa: F401 (re-exported: callers use Q.<name>)
    comments_for,
    feed,
    feed_of_origin,
    latest_bundle_from,
    origin_known,
    search_records,
)
from hub.queries_trust import (  # noqa: F401 (re-exported: callers use Q.<name>)
    activate_pending_peer,
    add_peer,
    add_pending_peer,
    block_origin,
    blocklist,
    drop_pending_key,
    find_pending_key,
    find_pending_keys,
    get_peer,
    is_revoked,
    is_trusted,
    list_peers,
    park_bundle,
    peer_by_token,
    pending_bundles_of,
    pending_keys,
    remove_peer,
    revoke_key,
    set_peer_status,
    touch_peer,
    trust_key,
    trusted_and_revoked_keys,
    unblock_origin,
)

Conn = asyncpg.Connection | asyncpg.Pool
#: ``scrub(container, {path: revision}) -> (container, removed paths)``: the stored
#: envelope without the files at ``path`` whose record revision is at most ``revision``
Scrub = Callable[[bytes, dict[str, int]], tuple[bytes, set[str]]]

NOTIFY_CHANNEL = "wb_hub_log"


# ------------------------------------------------------------------------- ingest

@dataclass(frozen=True)
class Stored:
    # "stored" | "duplicate" | "equivocation", or nothing written: "blocked" (the
    # origin), "revoked" or "untrusted" (the key)
    outcome: str
    hub_seq: int | None
    kept_digest: str | None = None
    accepted: int = 0  # stored: the index rows and withheld files of the stored copy
    withheld: int = 0


#: Columns of the record index as :func:`store_bundle` takes them (one list per column,
#: aligned): origin, entity, id, revision, deleted, instance, updated_at, head, body,
#: title, status, parent_ref, created_at, head_at, head_len. A row's head is either
#: ``head`` (the text) or ``head_at``/``head_len`` (where its bytes lie in the stored
#: envelope, ``head`` None): migration 0024.
INDEX_COLUMNS = ("origin", "entity", "id", "revision", "deleted", "instance", "updated_at",
                 "head", "body", "title", "status", "parent_ref", "created_at", "head_at",
                 "head_len")
_RECORD_CONFLICT = """
ON CONFLICT (origin, entity, id) DO UPDATE
   SET revision = EXCLUDED.revision, deleted = EXCLUDED.deleted,
       instance = EXCLUDED.instance, updated_at = EXCLUDED.updated_at,
       head = EXCLUDED.head, body = EXCLUDED.body, title = EXCLUDED.title,
       status = EXCLUDED.status, parent_ref = EXCLUDED.parent_ref,
       created_at = EXCLUDED.created_at, head_at = EXCLUDED.head_at,
       head_len = EXCLUDED.head_len, digest = EXCLUDED.digest, bundle = EXCLUDED.bundle
 WHERE hub_records.revision < EXCLUDED.revision
"""

_INSERT_BUNDLE = """
INSERT INTO hub_bundles (digest, origin, instance, sequence, previous, kind, schema_version,
                         key_id, signed_at, container, record_count, withheld_count,
                         received_from, paths)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
        string_to_array($14::text, E'\\n'))
ON CONFLICT DO NOTHING RETURNING id
"""


def _store(rows: str) -> str:
    """The bundle, its index rows and its pending log entry in one statement: the rows
    (``rows``: a SELECT of the fifteen :data:`INDEX_COLUMNS`) and the entry go in only if
    the bundle did (not for a duplicate or an equivocation); the answer is the stored
    bundle's id (the rows point at it), or NULL when it was not stored.
    The parameters: the bundle's fourteen (``$14``, its paths, one per line: a record
    path holds no LF), the entities ``$15`` and hops ``$16`` of the log entry, then the
    rows' own. (The origin's row and the peer's counter come later, with the log
    sequence: :data:`_SEQUENCE_PENDING`; here every push would hold their row locks
    through its COPY and its commit, one push of an origin or a peer after another.)"""
    return f"""
WITH b AS ({_INSERT_BUNDLE}),
     r AS (INSERT INTO hub_records (origin, entity, id, revision, deleted, instance,
                                    updated_at, head, body, title, status, parent_ref,
                                    created_at, head_at, head_len, bundle, digest)
           SELECT t.*, CASE WHEN t.head IS NULL THEN (SELECT id FROM b) END,
                  CASE WHEN t.head IS NOT NULL THEN $1 END
             FROM ({rows}) AS t({", ".join(INDEX_COLUMNS)})
            WHERE EXISTS (SELECT 1 FROM b)
           {_RECORD_CONFLICT} RETURNING 1),
     l AS (INSERT INTO hub_log_pending (digest, origin, entities, received_from, hops)
           SELECT $1, $2, $15, $13, $16 WHERE EXISTS (SELECT 1 FROM b) RETURNING 1)
SELECT (SELECT id FROM b)
"""


# small bundles: the rows as fifteen arrays, after the statement's sixteen parameters
_STORE_WITH_ARRAYS = _store("""
    SELECT * FROM unnest($17::text[], $18::text[], $19::text[], $20::bigint[], $21::bool[],
                         $22::text[], $23::text[], $24::text[], $25::text[], $26::text[],
                         $27::text[], $28::text[], $29::text[], $30::int[], $31::int[])""")

#: Bundles with at least this many index rows are staged by COPY (:func:`_stage`); fewer
#: go as arrays in one statement (no temporary table, one round trip less). Such a big
#: bundle's rows at :data:`DIRECT_REVISION` are COPYed into the index itself instead.
STAGE_MIN_ROWS = 64
#: A record's first revision: new to the index unless the same record was published
#: again in another bundle, so COPYed without the upsert (:func:`store_bundle`).
DIRECT_REVISION = 1

# The push's first question (hub_ingest_begin, migration 0023): (origin blocked, key
# revoked, key trusted, origin has tombstones), after taking the origin's lock only when
# the first three allow the push, in one round trip.
_BEGIN = "SELECT * FROM hub_ingest_begin($1, $2, $3)"

_STAGE_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS hub_stage (
    n integer, origin text, entity text, id text, revision bigint, deleted boolean,
    instance text, updated_at text, head text, body text, title text, status text,
    parent_ref text, created_at text, head_at integer, head_len integer)
    ON COMMIT DELETE ROWS
"""

# big bundles: the rows COPYed into this connection's hub_stage first (:func:`_stage`)
_STORE_STAGED = _store("""
    SELECT origin, entity, id, revision, deleted, instance, updated_at, head, body, title,
           status, parent_ref, created_at, head_at, head_len FROM hub_stage""")

# under the hub_state row lock: every pending push logged in arrival order, the counter
# moved past them, the streams woken (identical NOTIFYs of one transaction are
# delivered once), and each origin's row and each peer's push counter brought up to date
# (set by set: the batch's pushes of one origin at once, as if one after another), in
# one round trip
_SEQUENCE_PENDING = f"""
WITH p AS (DELETE FROM hub_log_pending RETURNING *),
     l AS (INSERT INTO hub_log (seq, digest, origin, entities, received_from, hops)
           SELECT $1 + row_number() OVER (ORDER BY id), digest, origin, entities,
                  received_from, hops
             FROM p ORDER BY id
           RETURNING seq, digest),
     s AS (UPDATE hub_state SET last_seq = (SELECT max(seq) FROM l)
            WHERE id = 1 AND EXISTS (SELECT 1 FROM l)),
     o AS (INSERT INTO hub_origins (origin, instance, last_sequence, last_digest, bundles,
                                    records)
           SELECT p.origin,
                  (array_agg(b.instance ORDER BY p.id DESC)
                       FILTER (WHERE b.instance IS NOT NULL))[1],
                  max(b.sequence),
                  (array_agg(p.digest ORDER BY coalesce(b.sequence, 0) DESC, p.id DESC))[1],
                  count(*), sum(b.record_count)
             FROM p JOIN hub_bundles b USING (digest)
            GROUP BY p.origin
           ON CONFLICT (origin) DO UPDATE SET
               instance = coalesce(EXCLUDED.instance, hub_origins.instance),
               last_digest = CASE WHEN coalesce(EXCLUDED.last_sequence, 0)
                                       >= coalesce(hub_origins.last_sequence, 0)
                                  THEN EXCLUDED.last_digest
                                  ELSE hub_origins.last_digest END,
               last_sequence = greatest(EXCLUDED.last_sequence, hub_origins.last_sequence),
               bundles = hub_origins.bundles + EXCLUDED.bundles,
               records = hub_origins.records + EXCLUDED.records,
               last_seen_at = now()),
     pe AS (UPDATE hub_peers e SET last_push_at = now(), pushes = e.pushes + c.n
             FROM (SELECT received_from, count(*) AS n FROM p GROUP BY received_from) c
            WHERE e.name = c.received_from)
SELECT seq, digest, pg_notify('{NOTIFY_CHANNEL}', (SELECT max(seq) FROM l)::text) FROM l
"""


_RECORD_COLUMNS = [*INDEX_COLUMNS, "bundle", "digest"]
IndexColumns = tuple[list[str], list[str], list[str], list[int], list[bool],
                     list[str | None], list[str | None], list[str | None], list[str],
                     list[str | None], list[str | None], list[str | None], list[str | None],
                     list[int | None], list[int | None]]


async def store_bundle(conn: asyncpg.Connection, *, columns: IndexColumns,
                       **bundle: Any) -> Stored:
    """Store, index and log one verified bundle in ONE transaction.

    The hub sequence comes from the single ``hub_state`` row, updated last: its row lock
    orders concurrent committers, so sequences are gap-free and follow commit order.

    Tombstones are state (``hub_tombstones``): under a per-origin lock, every live
    record of the bundle at or below a withdrawn revision is withheld from the stored
    copy before anything is written, and the bundle's own tombstones are recorded and
    scrub the earlier copies of their records from the stored bundles of the origin
    (``scrub(container, {path: revision}) -> container`` drops the files at ``path``
    whose revision is at most ``revision``). ``record_paths`` is the file of each
    index row (aligned with ``columns``).

    A big bundle's first revisions (``Revision: 1``, a record's first publication) are
    COPYed straight into ``hub_records`` (:data:`DIRECT_REVISION`), its other rows go
    through the upsert; should a first revision be indexed already (the same record
    published again in another bundle), the unique violation undoes the transaction and
    it is stored again with every row through the upsert.

    The keyword arguments are those of :func:`_store_bundle` (where they are typed).
    """
    direct = len(columns[0]) >= STAGE_MIN_ROWS and DIRECT_REVISION in columns[3]
    if direct:
        try:
            return await _store_bundle(conn, columns=columns, direct=True, **bundle)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "hub_records_pkey":
                raise
    return await _store_bundle(conn, columns=columns, direct=False, **bundle)


async def _store_bundle(conn: asyncpg.Connection, *, digest: str, origin: str,
                        instance: str | None, sequence: int | None, previous: str | None,
                        kind: str | None, schema_version: int, key_id: str,
                        signed_at: str | None, container: bytes, columns: IndexColumns,
                        withheld: int, received_from: str | None, hops: int,
                        entities: list[str], manifest: bytes, sig: bytes,
                        direct: bool, paths: Sequence[str] = (),
                        record_paths: Sequence[str] = (),
                        scrub: Scrub | None = None) -> Stored:
    async with conn.transaction():
        # A bundle carrying tombstones takes the origin's lock exclusively, every other
        # one shared (until commit): bundles without tombstones still commit side by side,
        # but a tombstone and an older copy of its record arriving together can never
        # miss each other (the copy sees the tombstone, or the tombstone's scrub sees it).
        blocked, revoked, trusted, tombstones = await conn.fetchrow(
            _BEGIN, origin, key_id, True in columns[4])
        if blocked or revoked or not trusted:  # (nothing written)
            return Stored("blocked" if blocked else "revoked" if revoked else "untrusted",
                          None)
        staged = not direct and len(columns[0]) >= STAGE_MIN_ROWS
        if staged:
            await _stage(conn, columns)
        if scrub is not None and record_paths and tombstones:
            withdrawn = await _withdrawn_paths(conn, origin, columns, record_paths, staged)
            if withdrawn:
                received = container
                container, removed = scrub(container, withdrawn)
                # the heads pointed into the envelope as received, whose files moved:
                # they go into the rows
                columns = _inline_heads_of(columns, received)
                columns, paths, record_paths = _without(columns, record_paths, paths,
                                                        removed)
                if staged:  # staged again, as they are now
                    await conn.execute("DELETE FROM hub_stage")
                    await _stage(conn, columns)
                withheld += len(removed)
                entities = sorted(set(columns[1]))
        # (a record path holds no LF: the paths go as one string, not a 1,000-item array)
        bundle = (digest, origin, instance, sequence, previous, kind, schema_version, key_id,
                  signed_at, container, len(columns[0]), withheld, received_from,
                  "\n".join(paths), entities, hops)
        fresh: list[int] = []
        if direct:  # the first revisions by COPY below, the rest through the upsert here
            fresh = [i for i, r in enumerate(columns[3]) if r == DIRECT_REVISION]
            rest = _rows(columns, [i for i, r in enumerate(columns[3])
                                   if r != DIRECT_REVISION])
            if len(rest[0]) >= STAGE_MIN_ROWS:
                await _stage(conn, rest)
                inserted = await conn.fetchval(_STORE_STAGED, *bundle)
            else:
                inserted = await conn.fetchval(_STORE_WITH_ARRAYS, *bundle, *rest)
        elif staged:
            inserted = await conn.fetchval(_STORE_STAGED, *bundle)
        else:
            inserted = await conn.fetchval(_STORE_WITH_ARRAYS, *bundle, *columns)
        if not inserted:
            seq, pending = await conn.fetchrow(
                """SELECT (SELECT seq FROM hub_log WHERE digest = $1),
                          EXISTS (SELECT 1 FROM hub_log_pending WHERE digest = $1)""",
                digest)
            if seq is not None or pending:  # (pending: stored, its sequence yet to come)
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
        if fresh:
            rows = _rows(columns, fresh)  # (a row points at its bundle or holds its digest)
            await conn.copy_records_to_table(
                "hub_records", columns=_RECORD_COLUMNS,
                records=zip(*rows, [None if h is not None else inserted for h in rows[7]],
                            [None if h is None else digest for h in rows[7]], strict=True))
        if True in columns[4]:
            await _withdraw(conn, origin, digest, sequence, columns, record_paths, scrub)
        # the log entry, the origin's row and the peer's counter come later, from
        # sequence_pending (group commit of the log)
    return Stored("stored", None, accepted=len(columns[0]), withheld=withheld)


def _inline_heads_of(columns: IndexColumns, container: bytes) -> IndexColumns:
    """``columns`` with every head that points into ``container`` copied into its row."""
    heads, at, length = columns[7], columns[13], columns[14]
    if all(a is None for a in at):
        return columns
    texts = [h if a is None else container[a:a + n].decode()  # type: ignore[operator]
             for h, a, n in zip(heads, at, length, strict=True)]
    none: list[int | None] = [None] * len(heads)
    return (*columns[:7], texts, *columns[8:13], none, none)  # type: ignore[return-value]


def _rows(columns: IndexColumns, keep: list[int]) -> IndexColumns:
    """The index rows at ``keep``, column by column (all of them: ``columns`` itself)."""
    if len(keep) == len(columns[0]):
        return columns
    return tuple([col[i] for i in keep] for col in columns)  # type: ignore[return-value]


async def sequence_pending(conn: asyncpg.Connection) -> dict[str, int]:
    """Give the next hub sequences to every committed pending push, in arrival order, in
    ONE transaction: the ``hub_state`` row lock orders it with every other sequencing
    and with pruning, so the log stays gap-free and in commit order, and one WAL flush
    covers the whole batch. Returns digest -> sequence of what it logged."""
    async with conn.transaction():
        last = await conn.fetchval("SELECT last_seq FROM hub_state WHERE id = 1 FOR UPDATE")
        rows = await conn.fetch(_SEQUENCE_PENDING, last)
    return {r["digest"]: r["seq"] for r in rows}


async def logged_seqs(conn: Conn, digests: list[str]) -> dict[str, int]:
    rows = await conn.fetch("SELECT digest, seq FROM hub_log WHERE digest = ANY($1::text[])",
                            digests)
    return {r["digest"]: r["seq"] for r in rows}


async def _withdrawn_paths(conn: asyncpg.Connection, origin: str, columns: IndexColumns,
                           record_paths: Sequence[str], staged: bool) -> dict[str, int]:
    """Files of this bundle holding a live record at or below a withdrawn revision."""
    if staged:
        rows = await conn.fetch(
            """SELECT s.n, t.revision FROM hub_stage s
                 JOIN hub_tombstones t ON t.origin = $1 AND t.entity = s.entity AND t.id = s.id
                WHERE NOT s.deleted AND s.revision <= t.revision
                  AND EXISTS (SELECT 1 FROM hub_tombstones WHERE origin = $1)""", origin)
        return {record_paths[r["n"]]: r["revision"] for r in rows}
    live = [i for i, dead in enumerate(columns[4]) if not dead]
    if not live:
        return {}
    rows = await conn.fetch(
        """SELECT r.n, t.revision FROM hub_tombstones t
             JOIN unnest($2::text[], $3::text[], $4::bigint[], $5::int[]) AS r(e, i, rev, n)
               ON t.origin = $1 AND t.entity = r.e AND t.id = r.i
            WHERE r.rev <= t.revision""",
        origin, [columns[1][i] for i in live], [columns[2][i] for i in live],
        [columns[3][i] for i in live], live)
    return {record_paths[r["n"]]: r["revision"] for r in rows}


async def _stage(conn: asyncpg.Connection, columns: IndexColumns) -> None:
    """The bundle's index rows in this connection's ``hub_stage`` (emptied at commit), by
    COPY: for a big bundle, binary COPY costs the hub a fifth of the CPU of sending the
    same rows as thirteen arrays (asyncpg checks every array element's type in Python)."""
    await conn.execute(_STAGE_TABLE)
    await conn.copy_records_to_table("hub_stage", records=zip(range(len(columns[0])),
                                                              *columns, strict=True))


def _without(columns: IndexColumns, record_paths: Sequence[str], paths: Sequence[str],
             gone: set[str]) -> tuple[IndexColumns, list[str], list[str]]:
    keep = [i for i, p in enumerate(record_paths) if p not in gone]
    cols: IndexColumns = tuple([col[i] for i in keep] for col in columns)  # type: ignore[assignment]
    return cols, [p for p in paths if p not in gone], [record_paths[i] for i in keep]


async def _withdraw(conn: asyncpg.Connection, origin: str, digest: str, sequence: int | None,
                    columns: IndexColumns, record_paths: Sequence[str],
                    scrub: Scrub | None) -> None:
    """Record the bundle's tombstones (the highest revision wins; never pruned) and
    scrub the withdrawn copies from every other stored bundle of the origin."""
    dead = [i for i, d in enumerate(columns[4]) if d]
    await conn.execute(
        """INSERT INTO hub_tombstones (origin, entity, id, revision, sequence, digest)
           SELECT $1, e, i, r, $5, $6
             FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(e, i, r)
           ON CONFLICT (origin, entity, id) DO UPDATE
              SET revision = EXCLUDED.revision, sequence = EXCLUDED.sequence,
                  digest = EXCLUDED.digest, withdrawn_at = now()
            WHERE hub_tombstones.revision < EXCLUDED.revision""",
        origin, [columns[1][i] for i in dead], [columns[2][i] for i in dead],
        [columns[3][i] for i in dead], sequence, digest)
    if scrub is None or not record_paths:
        return
    gone = {record_paths[i]: columns[3][i] for i in dead}
    rows = await conn.fetch(
        """SELECT digest, container, paths FROM hub_bundles
            WHERE origin = $1 AND digest <> $2 AND paths && $3::text[] FOR UPDATE""",
        origin, digest, list(gone))
    changed = []
    for row in rows:
        scrubbed, removed = scrub(bytes(row["container"]), gone)
        if removed:  # (only later revisions there: nothing of them is withdrawn)
            changed.append((row, scrubbed, removed))
    if changed:  # the heads pointing into them go into their rows first: the files move
        await inline_heads(conn, [row["digest"] for row, _, _ in changed])
    for row, scrubbed, removed in changed:
        await conn.execute(
            "UPDATE hub_bundles SET container = $2, paths = $3 WHERE digest = $1",
            row["digest"], scrubbed, [p for p in row["paths"] if p not in removed])
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, f"scrub:{row['digest']}")


async def bundle_answer(conn: Conn, digest: str) -> asyncpg.Record | None:
    """The stored copy's counts (its log entry may be still to come: sequence_pending)."""
    return await conn.fetchrow(
        "SELECT record_count, withheld_count FROM hub_bundles WHERE digest = $1", digest)


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
