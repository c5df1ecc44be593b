"""Import: verify a bundle completely, then apply it in one transaction.

One code path for ``wb sync import``, pulls and inbox deliveries. Remote rows live in
the same tables as local ones with ``origin``/``origin_id`` set and the local ID
``<origin>.<id>`` (a ULID never contains a dot, so it can never collide with a local
row). A record is applied only when its revision is newer, only to rows of its own
origin, and never to local rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from node.sync import queries as Q
from node.sync import queries_import as QI
from node.sync.errors import SyncError
from node.sync.gaps import check_previous
from node.sync.impersonation import refuse_claims_on_our_members
from node.sync.rotation import accept_rotations
from protocol.bundle import Bundle
from protocol.containers import to_cbor
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.records import Record
from protocol.storable import storable_records
from protocol.verify import VerifiedBundle, verify_bundle
from service.ids import ulid

log = logging.getLogger("wb.node.sync")

MAX_GAP_ROWS = 10_000


@dataclass
class ImportResult:
    result: str  # applied | duplicate | pending | own
    digest: str
    origin: str
    sequence: int | None
    schema_version: int
    records_in: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    gaps: list[int] = field(default_factory=list)
    bundle_bytes: int = 0

    @property
    def applied_total(self) -> int:
        return sum(self.applied.values())

    def as_json(self) -> dict[str, Any]:
        return {"result": self.result, "digest": self.digest, "origin": self.origin,
                "sequence": self.sequence, "schema_version": self.schema_version,
                "records": self.records_in, "applied": self.applied,
                "skipped": self.skipped, "gaps": self.gaps, "bytes": self.bundle_bytes}


def local_id(origin: str, origin_id: str) -> str:
    return f"{origin}.{origin_id}"


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    text = value[:-1] if value.endswith("Z") else value
    head, dot, frac = text.partition(".")
    if dot:
        text = f"{head}.{frac[:6]}"
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def split_ref(ref: str | None) -> tuple[str | None, str | None]:
    if not ref:
        return None, None
    origin, _, rid = ref.partition("/")
    return origin, rid


class Resolver:
    """``origin/id`` references -> local row IDs (our own origin maps to local rows)."""

    def __init__(self, our_origin: str) -> None:
        self.our_origin = our_origin

    def __call__(self, ref: str | None) -> str | None:
        origin, rid = split_ref(ref)
        if origin is None or rid is None:
            return None
        return rid if origin == self.our_origin else local_id(origin, rid)


async def load_trust(conn: Q.Conn) -> set[tuple[str, str]]:
    rows = await QI.select_sync_trusted_keys_by_exists(conn)
    return {(r["origin"], r["key_id"]) for r in rows}


async def import_bundle(pool: asyncpg.Pool, bundle: Bundle, *, our_origin: str,
                        peer: str | None = None, limits: Limits = DEFAULT_LIMITS,
                        approved: bool = False) -> ImportResult:
    """Verify ``bundle`` and apply it. Raises ProtocolError or SyncError on refusal."""
    from node.sync.revocation import refuse_if_revoked

    trusted = await load_trust(pool)
    try:
        vb = verify_bundle(bundle, trust=lambda o, k: approved or (o, k) in trusted,
                           limits=limits)
    except ProtocolError as exc:
        if exc.code != "untrusted_key":
            raise
        # Authentic but unknown key: verify everything else, then queue it (unless the
        # operator revoked that key: refused, nothing written).
        vb = verify_bundle(bundle, trust=lambda o, k: True, limits=limits)
        await refuse_if_revoked(pool, vb.origin, vb.key_id)
        return await _queue_pending(pool, vb, peer)
    if approved and vb.origin != our_origin:
        await refuse_if_revoked(pool, vb.origin, vb.key_id)
    if vb.origin == our_origin:
        return ImportResult("own", vb.digest, vb.origin, vb.sequence, vb.schema_version,
                            len(vb.records), bundle_bytes=bundle.total_bytes)
    refuse_claims_on_our_members(our_origin, vb)  # issue 14: nobody else speaks for us
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await _apply(conn, vb, our_origin, peer)
    except _Equivocation as exc:
        # Recorded outside the refused transaction, so the operator sees it.
        await QI.insert_sync_equivocations(pool, vb.origin, vb.sequence, exc.known, vb.digest, peer,
                                           vb.bundle.manifest)
        log.error("equivocation refused", extra={"origin": vb.origin,
                                                  "sequence": vb.sequence})
        raise


async def _queue_pending(pool: asyncpg.Pool, vb: VerifiedBundle, peer: str | None
                         ) -> ImportResult:
    await QI.insert_sync_pending(pool, ulid(), vb.digest, vb.origin, vb.key_id, vb.public_key,
                                 vb.sequence, len(vb.records), to_cbor(vb.bundle), peer)
    log.warning("bundle signed by an unknown key queued for approval",
                extra={"origin": vb.origin, "key_id": vb.key_id, "digest": vb.digest})
    return ImportResult("pending", vb.digest, vb.origin, vb.sequence, vb.schema_version,
                        len(vb.records), bundle_bytes=vb.bundle.total_bytes)


async def _apply(conn: asyncpg.Connection, vb: VerifiedBundle, our_origin: str,
                 peer: str | None) -> ImportResult:
    origin = vb.origin
    await QI.lock_origin(conn, origin)
    result = ImportResult("applied", vb.digest, origin, vb.sequence, vb.schema_version,
                          len(vb.records), bundle_bytes=vb.bundle.total_bytes)
    if await QI.select_sync_received_by_digest(conn, vb.digest):
        result.result = "duplicate"
        return result
    sequence = vb.sequence or 0
    if sequence:
        known = await QI.received_digest(conn, origin, sequence)
        if known is not None:
            raise _Equivocation(origin, sequence, known, vb.digest)
        result.gaps = await _record_gaps(conn, origin, sequence, peer)
        await check_previous(conn, vb, peer)  # chain breaks, for the operator
    resolve = Resolver(our_origin)
    # the one mapping the hub's index uses too: no invites, no schema-1 contact emails
    kept = [(s.path, s.record) for s in storable_records(vb)]
    withdrawn = await _withdrawn(conn, origin, kept)
    by_entity: dict[str, list[Record]] = {}
    for _, rec in kept:
        if not rec.deleted and withdrawn.get((rec.entity, rec.id), 0) >= rec.revision:
            continue  # a copy the origin withdrew: never stored again (counted as skipped)
        by_entity.setdefault(f"{rec.entity}{'-' if rec.deleted else ''}", []).append(rec)
    await _remember_tombstones(conn, vb)
    for entity in ("user", "request", "comment", "vouch"):
        live = by_entity.get(entity, [])
        dead = by_entity.get(f"{entity}-", [])
        if live:
            n = await _UPSERTS[entity](conn, origin, live, resolve)
            result.applied[entity] = result.applied.get(entity, 0) + n
        if dead:
            n = await _tombstone(conn, entity, origin, dead)
            result.applied[f"{entity}_tombstones"] = n
        if entity == "request" and (live or dead):
            await _requeue_local_comments(conn, origin, live + dead)
    result.skipped = result.records_in - result.applied_total
    await accept_rotations(conn, vb, peer)  # key records from a trusted signer
    await QI.insert_sync_received(conn, origin, sequence, vb.digest, vb.previous, vb.kind,
                                  vb.schema_version, vb.key_id, vb.instance, len(vb.records), peer)
    return result


async def _withdrawn(conn: asyncpg.Connection, origin: str,
                     records: list[tuple[str, Record]]) -> dict[tuple[str, str], int]:
    """The withdrawn revision of each live record of the bundle that has a tombstone."""
    live = [rec for _, rec in records if not rec.deleted]
    if not live:
        return {}
    rows = await QI.select_sync_tombstones(conn, origin, [r.entity for r in live],
                                           [r.id for r in live])
    return {(r["entity"], r["origin_id"]): r["revision"] for r in rows}


async def _remember_tombstones(conn: asyncpg.Connection, vb: VerifiedBundle) -> None:
    """Tombstones are state: kept (highest revision wins) even when the row they
    withdraw has not arrived yet, so it is refused when it does."""
    dead = [rec for _, rec in vb.records if rec.deleted]
    if not dead:
        return
    await QI.insert_sync_tombstones(conn, vb.origin, [r.entity for r in dead], [r.id for r in dead],
                                    [r.revision for r in dead], vb.sequence, vb.digest)


class _Equivocation(SyncError):
    def __init__(self, origin: str, sequence: int, known: str, rejected: str) -> None:
        super().__init__("equivocation",
                         f"origin {origin} signed two different bundles with sequence "
                         f"{sequence} ({known[:12]} and {rejected[:12]}); refused and "
                         f"recorded for the operator")
        self.known = known


async def _record_gaps(conn: asyncpg.Connection, origin: str, sequence: int,
                       peer: str | None) -> list[int]:
    await QI.delete_sync_gaps_by_origin(conn, origin, sequence)
    top = await QI.last_received_sequence(conn, origin)
    top = top or 0
    if sequence <= top + 1:
        return []
    start = max(top + 1, sequence - MAX_GAP_ROWS)
    missing = list(range(start, sequence))
    await QI.insert_sync_gaps(conn, origin, peer, missing)
    return missing


# --------------------------------------------------------------------------- upserts

def _common(origin: str, recs: Iterable[Record]) -> tuple[list[Any], ...]:
    recs = list(recs)
    return ([local_id(origin, r.id) for r in recs], [r.id for r in recs],
            [r.instance for r in recs], [r.revision for r in recs],
            [parse_time(r.updated_at) for r in recs],
            [parse_time(r.get("Created-At")) for r in recs])


async def _upsert_users(conn: asyncpg.Connection, origin: str, recs: list[Record],
                        resolve: Resolver) -> int:
    ids, oids, instances, revs, updated, created = _common(origin, recs)
    status = await QI.insert_users(conn, origin, ids, oids, instances, revs, updated, created,
                                   [r["Username"] for r in recs],
                                   [r.get("Display-Name") for r in recs], [r.body for r in recs],
                                   [r.get("Contact-Email") for r in recs])
    applied = int(status.split()[-1])
    inviters = [(i, resolve(r.get("Invited-By"))) for i, r in zip(ids, recs, strict=True)
                if r.get("Invited-By")]
    if inviters:
        a, b = zip(*inviters, strict=True)
        await QI.update_users_set_invited_by_by_id(conn, list(a), list(b), origin)
    return applied


async def _upsert_requests(conn: asyncpg.Connection, origin: str, recs: list[Record],
                           resolve: Resolver) -> int:
    ids, oids, instances, revs, updated, created = _common(origin, recs)
    status = await QI.insert_requests(conn, origin, ids, oids, instances, revs, updated, created,
                                      [r["Title"] for r in recs], [r.body for r in recs],
                                      [r["Status"] for r in recs],
                                      [resolve(r["Created-By"]) for r in recs],
                                      [parse_time(r.get("Completed-At")) for r in recs])
    return int(status.split()[-1])


async def _upsert_comments(conn: asyncpg.Connection, origin: str, recs: list[Record],
                           resolve: Resolver) -> int:
    """Comments attach to the request they reference (a local one for our origin);
    comments on requests this node does not have are skipped."""
    ids, oids, instances, revs, updated, created = _common(origin, recs)
    status = await QI.insert_comments(conn, origin, ids, oids, instances, revs, updated, created,
                                      [resolve(r["Request"]) for r in recs],
                                      [resolve(r["Created-By"]) for r in recs],
                                      [r.body for r in recs])
    return int(status.split()[-1])


async def _upsert_vouches(conn: asyncpg.Connection, origin: str, recs: list[Record],
                          resolve: Resolver) -> int:
    status = await QI.upsert_vouches(conn, origin, [r.id for r in recs],
                                     [r["Inviter"] for r in recs], [r["Invitee"] for r in recs],
                                     [r.revision for r in recs])
    return int(status.split()[-1])


_UPSERTS = {"user": _upsert_users, "request": _upsert_requests,
            "comment": _upsert_comments, "vouch": _upsert_vouches}

async def _tombstone(conn: asyncpg.Connection, entity: str, origin: str,
                     recs: list[Record]) -> int:
    if entity == "vouch":
        status = await QI.tombstone_vouches(conn, origin, [r.id for r in recs],
                                            [r.revision for r in recs])
        return int(status.split()[-1])
    status = await QI.tombstone_rows(
        conn, entity, origin, [local_id(origin, r.id) for r in recs], [r.revision for r in recs],
        [parse_time(r.updated_at) for r in recs])
    return int(status.split()[-1])


async def _requeue_local_comments(conn: asyncpg.Connection, origin: str,
                                  recs: list[Record]) -> None:
    """Our comments on remote requests that just disappeared or reappeared must follow
    them: bump their revision so the next export tombstones or re-publishes them
    (``wb_track_change`` ignores the revision column, so nothing else moves)."""
    await QI.update_comments_set_revision_by_id(conn, [local_id(origin, r.id) for r in recs])


# --------------------------------------------------------------------------- pending queue

async def approve_pending(pool: asyncpg.Pool, pending_id: str, *, our_origin: str,
                          actor: str) -> list[ImportResult]:
    """Trust the key of a pending bundle for its origin and replay every bundle queued
    for that (origin, key), oldest sequence first."""
    from protocol.containers import from_cbor

    row = await QI.select_sync_pending_by_id(pool, pending_id)
    if row is None:
        raise SyncError("not_found", f"no pending bundle {pending_id}")
    from node.sync.revocation import refuse_if_revoked

    await refuse_if_revoked(pool, row["origin"], row["key_id"])
    await QI.trust_approved_key(pool, row["origin"], row["key_id"], row["public_key"], actor)
    queued = await QI.select_sync_pending_by_origin(pool, row["origin"], row["key_id"])
    results = []
    for item in queued:
        bundle = from_cbor(bytes(item["envelope"]))
        try:
            results.append(await import_bundle(pool, bundle, our_origin=our_origin,
                                               peer=item["peer"]))
        finally:
            await QI.drop_pending(pool, item["id"])
    return results


async def discard_pending(pool: asyncpg.Pool, pending_id: str) -> bool:
    status = await QI.drop_pending_by_id_or_digest(pool, pending_id)
    return status != "DELETE 0"


async def list_pending(pool: Q.Conn) -> list[asyncpg.Record]:
    return await QI.select_sync_pending(pool)
