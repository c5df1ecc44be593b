"""SQL of the bundle importer (node/sync/importer.py): staging, applying and recording imported
records.
"""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def select_sync_trusted_keys_by_exists(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT origin, key_id FROM sync_trusted_keys t
            WHERE NOT EXISTS (SELECT 1 FROM sync_key_revocations r
                               WHERE r.origin = t.origin AND r.key_id = t.key_id)"""
    )


async def insert_sync_pending(
    conn: Conn,
    pending_id: Any,
    digest: Any,
    origin: Any,
    key_id: Any,
    public_key: Any,
    sequence: Any,
    records: Any,
    bundle: Any,
    peer: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO sync_pending (id, digest, origin, key_id, public_key, sequence,
                                     record_count, envelope, peer)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (digest) DO NOTHING""",
        pending_id,
        digest,
        origin,
        key_id,
        public_key,
        sequence,
        records,
        bundle,
        peer,
    )


async def lock_origin(conn: Conn, origin: Any) -> str:
    return await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('wb-sync-origin:' || $1))", origin
    )


async def select_sync_received_by_digest(conn: Conn, digest: Any) -> Any:
    return await conn.fetchval("SELECT 1 FROM sync_received WHERE digest = $1", digest)


async def insert_sync_received(
    conn: Conn,
    origin: Any,
    sequence: Any,
    digest: Any,
    previous: Any,
    kind: Any,
    schema_version: Any,
    key_id: Any,
    instance: Any,
    records: Any,
    peer: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO sync_received (origin, sequence, digest, previous, kind, schema_version,
                  key_id, instance, record_count, peer)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        origin,
        sequence,
        digest,
        previous,
        kind,
        schema_version,
        key_id,
        instance,
        records,
        peer,
    )


async def select_sync_tombstones(
    conn: Conn, origin: Any, entities: Any, origin_ids: Any
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT t.entity, t.origin_id, t.revision FROM sync_tombstones t
             JOIN unnest($2::text[], $3::text[]) AS r(e, i)
               ON t.origin = $1 AND t.entity = r.e AND t.origin_id = r.i""",
        origin,
        entities,
        origin_ids,
    )


async def insert_sync_tombstones(
    conn: Conn, origin: Any, entities: Any, origin_ids: Any, revisions: Any, sequence: Any,
    digest: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO sync_tombstones (origin, entity, origin_id, revision, sequence, digest)
           SELECT $1, e, i, r, $5, $6 FROM unnest($2::text[], $3::text[], $4::bigint[])
                  AS t(e, i, r)
           ON CONFLICT (origin, entity, origin_id) DO UPDATE
              SET revision = EXCLUDED.revision, sequence = EXCLUDED.sequence,
                  digest = EXCLUDED.digest, withdrawn_at = now()
            WHERE sync_tombstones.revision < EXCLUDED.revision""",
        origin,
        entities,
        origin_ids,
        revisions,
        sequence,
        digest,
    )


async def delete_sync_gaps_by_origin(conn: Conn, origin: Any, sequence: Any) -> str:
    return await conn.execute(
        "DELETE FROM sync_gaps WHERE origin = $1 AND sequence = $2", origin, sequence
    )


async def last_received_sequence(conn: Conn, origin: Any) -> Any:
    return await conn.fetchval(
        "SELECT max(sequence) FROM sync_received WHERE origin = $1 AND sequence > 0", origin
    )


async def insert_sync_gaps(conn: Conn, origin: Any, peer: Any, missing: Any) -> str:
    return await conn.execute(
        """INSERT INTO sync_gaps (origin, sequence, peer)
           SELECT $1, s, $2 FROM unnest($3::bigint[]) AS s ON CONFLICT DO NOTHING""",
        origin,
        peer,
        missing,
    )


async def insert_users(
    conn: Conn,
    origin: Any,
    ids: Any,
    oids: Any,
    instances: Any,
    revs: Any,
    updated: Any,
    created: Any,
    usernames: Any,
    display_names: Any,
    bios: Any,
    emails: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO users (id, origin, origin_id, instance, username, display_name, bio,
                              contact_email, share_contact, sync_scope, created_at,
                              updated_at, revision)
           SELECT m.id, $1, m.oid, m.instance, m.username, coalesce(m.display_name, ''),
                  m.bio, m.email, m.email IS NOT NULL, 'public',
                  coalesce(m.created, m.updated), m.updated, m.rev
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[],
                         $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[])
                  AS m(id, oid, instance, rev, updated, created, username, display_name, bio,
                       email)
           ON CONFLICT (id) DO UPDATE SET
                  instance = EXCLUDED.instance, username = EXCLUDED.username,
                  display_name = EXCLUDED.display_name, bio = EXCLUDED.bio,
                  contact_email = EXCLUDED.contact_email,
                  share_contact = EXCLUDED.share_contact, created_at = EXCLUDED.created_at,
                  updated_at = EXCLUDED.updated_at, revision = EXCLUDED.revision,
                  deleted_at = NULL
            WHERE users.origin = EXCLUDED.origin AND users.revision < EXCLUDED.revision""",
        origin,
        ids,
        oids,
        instances,
        revs,
        updated,
        created,
        usernames,
        display_names,
        bios,
        emails,
    )


async def insert_requests(
    conn: Conn,
    origin: Any,
    ids: Any,
    oids: Any,
    instances: Any,
    revs: Any,
    updated: Any,
    created: Any,
    titles: Any,
    descriptions: Any,
    statuses: Any,
    creators: Any,
    completed: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO requests (id, origin, origin_id, instance, title, description, status,
                                 created_by, sync_scope, created_at, updated_at,
                                 completed_at, revision)
           SELECT m.id, $1, m.oid, m.instance, m.title, m.description,
                  CASE WHEN m.status IN ('open', 'completed') THEN m.status ELSE 'open' END,
                  u.id, 'public', coalesce(m.created, m.updated), m.updated, m.completed,
                  m.rev
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[],
                         $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[],
                         $12::timestamptz[])
                  AS m(id, oid, instance, rev, updated, created, title, description, status,
                       creator, completed)
             LEFT JOIN users u ON u.id = m.creator
           ON CONFLICT (id) DO UPDATE SET
                  instance = EXCLUDED.instance, title = EXCLUDED.title,
                  description = EXCLUDED.description, status = EXCLUDED.status,
                  created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at,
                  updated_at = EXCLUDED.updated_at, completed_at = EXCLUDED.completed_at,
                  revision = EXCLUDED.revision, deleted_at = NULL
            WHERE requests.origin = EXCLUDED.origin
              AND requests.revision < EXCLUDED.revision""",
        origin,
        ids,
        oids,
        instances,
        revs,
        updated,
        created,
        titles,
        descriptions,
        statuses,
        creators,
        completed,
    )


async def insert_comments(
    conn: Conn,
    origin: Any,
    ids: Any,
    oids: Any,
    instances: Any,
    revs: Any,
    updated: Any,
    created: Any,
    request_ids: Any,
    creators: Any,
    bodies: Any,
) -> str:
    return await conn.execute(
        """INSERT INTO comments (id, origin, origin_id, instance, request_id, created_by, body,
                                 sync_scope, created_at, updated_at, revision)
           SELECT m.id, $1, m.oid, m.instance, rq.id, u.id, m.body, 'public',
                  coalesce(m.created, m.updated), m.updated, m.rev
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[],
                         $7::timestamptz[], $8::text[], $9::text[], $10::text[])
                  AS m(id, oid, instance, rev, updated, created, request, creator, body)
             JOIN requests rq ON rq.id = m.request AND rq.deleted_at IS NULL
                  AND (rq.origin IS NOT NULL OR rq.sync_scope = 'public')
             LEFT JOIN users u ON u.id = m.creator
           ON CONFLICT (id) DO UPDATE SET
                  instance = EXCLUDED.instance, body = EXCLUDED.body,
                  created_by = EXCLUDED.created_by, updated_at = EXCLUDED.updated_at,
                  revision = EXCLUDED.revision, deleted_at = NULL
            WHERE comments.origin = EXCLUDED.origin
              AND comments.revision < EXCLUDED.revision
              AND comments.request_id = EXCLUDED.request_id""",
        origin,
        ids,
        oids,
        instances,
        revs,
        updated,
        created,
        request_ids,
        creators,
        bodies,
    )


async def upsert_vouches(
    conn: Conn, origin: Any, oids: Any, inviters: Any, invitees: Any, revs: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_vouches (origin, origin_id, inviter, invitee, revision)
           SELECT $1, m.oid, m.inviter, m.invitee, m.rev
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[])
                  AS m(oid, inviter, invitee, rev)
           ON CONFLICT (origin, origin_id) DO UPDATE SET
                  inviter = EXCLUDED.inviter, invitee = EXCLUDED.invitee,
                  revision = EXCLUDED.revision, deleted = false, updated_at = now()
            WHERE sync_vouches.revision < EXCLUDED.revision""",
        origin,
        oids,
        inviters,
        invitees,
        revs,
    )


async def update_comments_set_revision_by_id(conn: Conn, request_ids: Any) -> str:
    return await conn.execute(
        """UPDATE comments c SET revision = c.revision + 1
             FROM requests r
            WHERE r.id = ANY($1::text[]) AND c.request_id = r.id AND c.origin IS NULL
              AND c.sync_scope = 'public' AND c.deleted_at IS NULL
              AND c.published = (r.deleted_at IS NOT NULL)""",
        request_ids,
    )


async def select_sync_pending_by_id(conn: Conn, pending_id: Any) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM sync_pending WHERE id = $1 OR digest = $1", pending_id
    )


async def trust_approved_key(
    conn: Conn, origin: Any, key_id: Any, public_key: Any, actor: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_trusted_keys (origin, key_id, public_key, source, added_by)
           VALUES ($1, $2, $3, 'approved', $4) ON CONFLICT DO NOTHING""",
        origin,
        key_id,
        public_key,
        actor,
    )


async def select_sync_pending_by_origin(
    conn: Conn, origin: Any, key_id: Any
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM sync_pending WHERE origin = $1 AND key_id = $2 "
        "ORDER BY sequence NULLS FIRST, received_at",
        origin,
        key_id,
    )


async def drop_pending_by_id_or_digest(conn: Conn, pending_id: Any) -> str:
    return await conn.execute("DELETE FROM sync_pending WHERE id = $1 OR digest = $1", pending_id)


async def select_sync_pending(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, digest, origin, key_id, sequence, record_count, peer, received_at "
        "FROM sync_pending ORDER BY received_at"
    )


async def received_digest(conn: Conn, origin: Any, sequence: Any) -> Any:
    return await conn.fetchval(
        "SELECT digest FROM sync_received WHERE origin = $1 AND sequence = $2", origin, sequence
    )


async def update_users_set_invited_by_by_id(conn: Conn, a: Any, b: Any, origin: Any) -> str:
    return await conn.execute(
        """UPDATE users u SET invited_by = inv.id
                 FROM unnest($1::text[], $2::text[]) AS m(id, inviter)
                 JOIN users inv ON inv.id = m.inviter
                WHERE u.id = m.id AND u.origin = $3""",
        a,
        b,
        origin,
    )


async def tombstone_vouches(conn: Conn, origin: Any, oids: Any, revs: Any) -> str:
    return await conn.execute(
        """INSERT INTO sync_vouches (origin, origin_id, revision, deleted)
               SELECT $1, m.oid, m.rev, true
                 FROM unnest($2::text[], $3::bigint[]) AS m(oid, rev)
               ON CONFLICT (origin, origin_id) DO UPDATE SET deleted = true,
                      inviter = NULL, invitee = NULL, revision = EXCLUDED.revision,
                      updated_at = now()
                WHERE sync_vouches.revision < EXCLUDED.revision""",
        origin,
        oids,
        revs,
    )


async def insert_sync_equivocations(
    conn: Conn, origin: Any, sequence: Any, known: Any, digest: Any, peer: Any, manifest: Any
) -> str:
    return await conn.execute(
        """INSERT INTO sync_equivocations (origin, sequence, known_digest,
                      rejected_digest, peer, manifest)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        origin,
        sequence,
        known,
        digest,
        peer,
        manifest,
    )


async def drop_pending(conn: Conn, id: Any) -> str:
    return await conn.execute("DELETE FROM sync_pending WHERE id = $1", id)


# Tombstones forget the content, keep the row (other rows may point at it) and keep
# the revision so an older copy can never bring it back.
_SCRUB = {
    "user": "display_name = '', bio = '', contact_email = NULL, share_contact = false",
    "request": "title = '', description = ''",
    "comment": "body = ''",
}
_TABLES = {"user": "users", "request": "requests", "comment": "comments"}


async def tombstone_rows(
    conn: Conn, entity: str, origin: str, ids: list[str], revisions: list[int], updated: list[Any]
) -> str:
    """Scrub the content of ``origin``'s rows of ``entity`` older than the tombstones."""
    return await conn.execute(
        f"""UPDATE {_TABLES[entity]} t SET {_SCRUB[entity]}, deleted_at = now(),
                   revision = m.rev, updated_at = m.updated
              FROM unnest($2::text[], $3::bigint[], $4::timestamptz[]) AS m(id, rev, updated)
             WHERE t.id = m.id AND t.origin = $1 AND t.revision < m.rev""",
        origin,
        ids,
        revisions,
        updated,
    )
