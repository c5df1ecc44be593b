"""The ingest pipeline: decode, drop non-public files, verify, decide trust, store.

Order for every push: the caller has authenticated the peer and enforced size and rate
limits; here the container is decoded, files whose ``Sync-Scope`` is not ``public`` are
removed (they become "listed but absent", which the manifest still verifies), the rest
is verified completely by the protocol library, and only then is anything written, in
one transaction (:func:`hub.queries.store_bundle`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from hub import queries as Q
from hub.errors import check_code
from hub.sequencer import sequence
from protocol.bundle import Bundle
from protocol.containers import (
    CBOR_MEDIA_TYPE,
    canonical_order,
    file_offsets,
    from_cbor,
    from_targz,
    is_gzip,
    to_cbor,
)
from protocol.errors import ProtocolError
from protocol.limits import Limits
from protocol.records import header_values
from protocol.storable import Storable, storable_records, unsafe_paths
from protocol.verify import VerifiedBundle, check_key_record, verify_bundle

if TYPE_CHECKING:
    from hub.ingest_pool import IngestPool

log = logging.getLogger("wb.hub.ingest")

TARGZ_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-tar",
                         "application/tar+gzip", "application/x-gtar"})
_SCOPE_RE = re.compile(rb"(?:^|\n)Sync-Scope: ([^\n]*)")


class Refused(Exception):
    """The pipeline refuses a bundle or an admin action. ``code`` is registered in
    ``hub.errors.HUB_ERROR_CODES``; the views (``hub.api.http_refusal``) choose the HTTP
    status, the pipeline knows none."""

    def __init__(self, code: str, message: str, *, extra: dict[str, Any] | None = None):
        check_code(code)
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}


@dataclass
class Outcome:
    """What happened to one bundle (``stored``, ``duplicate``, ``pending`` or
    ``refused``) and the JSON body that tells it; the views map it to an HTTP status."""

    result: str
    body: dict[str, Any]
    stored_seq: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def decode(data: bytes, content_type: str, limits: Limits) -> Bundle:
    """The bundle inside a CBOR envelope or a tar.gz (chosen by Content-Type or magic)."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in (CBOR_MEDIA_TYPE, "application/cbor"):
        return from_cbor(data, limits)
    if ctype in TARGZ_TYPES:
        return from_targz(data, limits)
    if ctype in ("", "application/octet-stream"):
        return from_targz(data, limits) if is_gzip(data) else from_cbor(data, limits)
    raise Refused("unsupported_media_type",
                  f"send {CBOR_MEDIA_TYPE} or application/gzip, not {ctype}")


def scope_of(data: bytes) -> str | None:
    """``Sync-Scope`` of a record file from its header block only (None if absent)."""
    end = data.find(b"\n\n")
    at = data.find(b"\nSync-Scope: ", 0, None if end < 0 else end)
    if at >= 0 and not data.startswith(b"Sync-Scope: "):  # the common case: no regex
        stop = data.find(b"\n", at + 13)
        value = data[at + 13:] if stop < 0 else data[at + 13:stop]
        if value == b"public":
            return "public"
        return value.decode("utf-8", "replace").strip()
    head = data if end < 0 else data[:end]
    m = _SCOPE_RE.search(head)
    return None if m is None else m.group(1).decode("utf-8", "replace").strip()


def public_only(bundle: Bundle) -> tuple[Bundle, int]:
    """The bundle without its non-public files, and how many were removed."""
    keep: dict[str, bytes] = {}
    for path, data in bundle.files.items():
        scope = scope_of(data)
        if scope is not None and scope != "public":
            continue
        keep[path] = data
    dropped = len(bundle.files) - len(keep)
    if not dropped:
        return bundle, 0
    return Bundle(manifest=bundle.manifest, sig=bundle.sig, files=keep, keys=bundle.keys), dropped


def _trust_all(origin: str, key_id: str) -> bool:
    return True  # trust is decided by the hub after full verification (may park it)


def verified_public(bundle: Bundle, limits: Limits) -> tuple[VerifiedBundle, Bundle, int]:
    """The verified bundle of ``bundle``'s public files, those files, and how many
    non-public files were removed first.

    A node sends only public files, so a schema-2 bundle is verified whole first: when it
    verifies, every file is a public record (a live record must be, and the grammar
    allows no other tombstone), removing the others would have removed nothing, and
    reading every file's scope is saved (a tenth of the verify processes' time). When it
    does not, the non-public files are removed and the rest is verified, unless none
    was: the verdict is always the one of removing them first."""
    if bundle.manifest.startswith(b"Manifest-Version: 2\n"):
        try:
            return verify_bundle(bundle, trust=_trust_all, limits=limits), bundle, 0
        except ProtocolError:
            filtered, dropped = public_only(bundle)
            if not dropped:  # the same files: the same verdict (no second verification)
                raise
    else:
        filtered, dropped = public_only(bundle)
    return verify_bundle(filtered, trust=_trust_all, limits=limits), filtered, dropped


@dataclass(frozen=True)
class Checked:
    """A completely verified bundle reduced to what storing needs (picklable, so
    verification may run in another process)."""

    digest: str
    origin: str
    instance: str | None
    sequence: int | None
    previous: str | None
    kind: str
    schema_version: int
    key_id: str
    public_key: bytes
    signed_at: str
    manifest: bytes
    sig: bytes
    withheld: int
    columns: Q.IndexColumns  # the index rows, column by column (cheap to pickle)
    entities: list[str]
    rotations: list[tuple[str, bytes]]
    container: bytes | None  # None: store the received bytes unchanged
    paths: list[str]  # record files this bundle carries
    record_paths: list[str]  # the file of each index row (aligned with ``columns``)


def check(data: bytes, content_type: str, limits: Limits) -> Checked:
    """Decode, drop non-public files and verify completely (CPU only; no I/O).

    The container to store is the received bytes when they were a CBOR envelope and
    nothing was removed (``container`` is then None, so a verify process does not send
    the bytes back), else a fresh deterministic envelope of the same manifest,
    signature and file bytes.
    """
    bundle = decode(data, content_type, limits)
    v, filtered, dropped = verified_public(bundle, limits)
    kept = storable_records(v)  # the one mapping the node's importer uses too
    unsafe = unsafe_paths(v)  # schema-1 invites and contact emails: never relayed
    withheld = len(v.withheld) + len(unsafe)
    if unsafe:
        filtered = Bundle(manifest=filtered.manifest, sig=filtered.sig, keys=filtered.keys,
                          files={p: d for p, d in filtered.files.items() if p not in unsafe})
    container = None if dropped == 0 and not unsafe and not is_gzip(data) \
        else to_cbor(filtered)
    # a schema-2 row's head is where its file's bytes lie in the envelope stored (the
    # received bytes, in the order they came, or the one made here, in canonical order)
    at = {} if v.schema_version != 2 else file_offsets(
        data if container is None else container, filtered.files,
        filtered.files if container is None else canonical_order(filtered.files))
    columns = index_columns(kept, at)
    return Checked(v.digest, v.origin, v.instance, v.sequence, v.previous, v.kind,
                   v.schema_version, v.key_id, v.public_key, v.signed_at, filtered.manifest,
                   filtered.sig, withheld, columns, sorted(set(columns[1])),
                   rotations(v), container, sorted(filtered.files),
                   [s[0] for s in kept])


# Stored envelopes were verified on the way in; re-reading one for a scrub must not fail
# on a limit the operator lowered since.
SCRUB_LIMITS = Limits(max_bundle_bytes=1 << 34, max_files=10_000_000,
                      max_manifest_bytes=1 << 31)


def scrub_container(container: bytes, withdrawn: dict[str, int]) -> tuple[bytes, set[str]]:
    """The stored envelope without the files at the paths of ``withdrawn`` whose record
    revision is at most the withdrawn one (a later revision of the record is a new
    publication and stays), and the paths removed. Removed files become "withheld"
    (listed in the signed manifest but absent), so the bundle still verifies."""
    bundle = from_cbor(container, SCRUB_LIMITS)
    removed = {p for p, data in bundle.files.items()
               if p in withdrawn and _revision_of(data) <= withdrawn[p]}
    if not removed:
        return container, removed
    return to_cbor(bundle.withhold(removed)), removed


def _revision_of(data: bytes) -> int:
    """A stored file's ``Revision`` from its header block; 0 (withdrawn by any tombstone)
    when it has none (schema 1) or it cannot be read."""
    end = data.find(b"\n\n")
    head = data if end < 0 else data[:end]
    at = head.find(b"\nRevision: ")
    if at < 0:
        return 0
    stop = head.find(b"\n", at + 1)
    value = head[at + 11:] if stop < 0 else head[at + 11:stop]
    return int(value) if value.isdigit() and len(value) <= 18 else 0


#: the headers an index row is made of (:func:`index_columns`)
_INDEXED = ("Origin", "ID", "Revision", "Instance", "Updated-At", "Deleted", "Title", "Status",
            "Request", "Created-At")


def index_columns(kept: list[Storable], at: Mapping[str, int] | None = None
                  ) -> Q.IndexColumns:
    """The index rows of the kept records (:func:`protocol.storable.storable_records`),
    column by column (the hot loop of ingest after parsing: header values are read
    by position, :func:`protocol.records.header_values`; head and body are the
    mapping's, the signed bytes' own for schema 2). A live record whose file ``at``
    places in the stored envelope gets its head as a pointer there (its header block
    starts its file) instead of a copy (migration 0024)."""
    cols: Q.IndexColumns = tuple([] for _ in Q.INDEX_COLUMNS)  # type: ignore[assignment]
    (origin, entity, ids, revision, deleted, instance, updated, heads, bodies, title, status,
     parent, created, head_at, head_len) = cols
    at = at or {}
    for (path, rec, head, body), row in zip(kept, header_values((s[1] for s in kept),
                                                                _INDEXED), strict=True):
        ent = rec.entity
        origin.append(row[0])
        entity.append(ent)
        ids.append(row[1])
        revision.append(int(row[2]))  # type: ignore[arg-type]
        instance.append(row[3])
        updated.append(row[4])
        if row[5] == "true":
            deleted.append(True)
            heads.append("")
            head_at.append(None)
            head_len.append(None)
            bodies.append("")
            title.append(None)
            status.append(None)
            parent.append(None)
            created.append(None)
            continue
        deleted.append(False)
        start = at.get(path)
        if start is None:
            heads.append(head)
            head_at.append(None)
            head_len.append(None)
        else:
            heads.append(None)
            head_at.append(start)
            head_len.append(len(head) if head.isascii() else len(head.encode()))
        bodies.append(body)
        title.append(row[6])
        status.append(row[7])
        parent.append(row[8] if ent == "comment" else None)
        created.append(row[9])
    return cols


def rotations(verified: VerifiedBundle) -> list[tuple[str, bytes]]:
    """Keys announced by this bundle as successors of its (trusted) signing key."""
    found = []
    for path, rec in verified.records:
        if rec.entity == "key" and not rec.deleted \
                and rec.get("Previous-Key-ID") == verified.key_id:
            found.append((rec["Key-ID"], check_key_record(rec, path)))
    return found


def _inline(data: bytes, inline_bytes: int) -> bool:
    """A CBOR envelope of at most ``inline_bytes`` is checked right here: its work is
    bounded by its size, unlike a tar.gz's."""
    return len(data) <= inline_bytes and not is_gzip(data)


async def run_check(data: bytes, content_type: str, limits: Limits,
                    verifier: IngestPool | None = None, inline_bytes: int = 0) -> Checked:
    """``check`` in the ingest processes, or in a thread, or right here (``_inline``)."""
    if _inline(data, inline_bytes):
        return check(data, content_type, limits)
    if verifier is None:
        return await asyncio.to_thread(check, data, content_type, limits)
    return await verifier.run(data, content_type, limits)


async def ingest(pool: asyncpg.Pool, data: bytes, content_type: str, *, limits: Limits,
                 peer: str | None, hops: int = 0,
                 verifier: IngestPool | None = None, inline_bytes: int = 0) -> Outcome:
    """Verify and store one pushed bundle; raise Refused or ProtocolError on rejection.

    With ingest processes that store (:class:`hub.ingest_pool.IngestPool`), a push not
    checked inline is verified and stored there; else it is verified there (or in a
    thread) and stored here."""
    if verifier is not None and verifier.stores and not _inline(data, inline_bytes):
        try:
            return await verifier.ingest(data, content_type, limits, peer, hops)
        except Refused as exc:
            if exc.code == "verifier_unavailable":  # a process died, maybe between a
                await _log_orphans(pool)  # commit and its log entry: log those now
            raise
    checked = await run_check(data, content_type, limits, verifier, inline_bytes)
    return await store(pool, checked, data, peer=peer, hops=hops)


async def _log_orphans(pool: asyncpg.Pool) -> None:
    """Give log sequences to pushes committed by a process that died before it logged
    them (:func:`hub.queries.sequence_pending`; else they waited for the next push)."""
    try:
        async with pool.acquire() as conn:
            await Q.sequence_pending(conn)
    except (asyncpg.PostgresError, OSError) as exc:
        log.warning("could not log the pushes of a dead ingest process yet",
                    extra={"error": str(exc)[:180]})


async def store(pool: asyncpg.Pool, c: Checked, data: bytes, *, peer: str | None,
                hops: int) -> Outcome:
    """Store a checked bundle; ``data`` is what was received (stored when unchanged).

    Tried once more when asyncpg refuses a query with InternalClientError: a pooled
    connection the server closed while it idled (a restart, a terminated backend), of
    which the client had read the server's last message but not yet the end, is still
    handed out, and its first query fails so (seen in an ingest process on a loaded
    machine: a push after the database's connections were cut got 500). After a short
    pause the loop has read the end and the pool connects afresh. Storing twice is safe:
    nothing was committed on the dead connection, or the second try finds the push
    stored and answers ``duplicate``."""
    try:
        return await _store(pool, c, data, peer=peer, hops=hops)
    except asyncpg.exceptions.InternalClientError as exc:
        log.warning("a pooled database connection was found closed; storing again",
                    extra={"digest": c.digest, "error": str(exc)[:180]})
        await asyncio.sleep(0.05)
        return await _store(pool, c, data, peer=peer, hops=hops)


async def _store(pool: asyncpg.Pool, c: Checked, data: bytes, *, peer: str | None,
                 hops: int) -> Outcome:
    origin, key_id = c.origin, c.key_id
    container = data if c.container is None else c.container
    async with pool.acquire() as conn:
        for attempt in range(3):
            try:  # (the origin's and the key's standing are its first question)
                result = await Q.store_bundle(
                    conn, digest=c.digest, origin=origin, instance=c.instance,
                    sequence=c.sequence, previous=c.previous, kind=c.kind,
                    schema_version=c.schema_version, key_id=key_id, signed_at=c.signed_at,
                    container=container, columns=c.columns, withheld=c.withheld,
                    received_from=peer, hops=hops, entities=c.entities, manifest=c.manifest,
                    sig=c.sig, paths=c.paths, record_paths=c.record_paths,
                    scrub=scrub_container)
                break
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
                if attempt == 2:
                    raise
        if result.outcome == "blocked":
            raise Refused("origin_blocked", f"origin {origin} is blocked on this hub")
        if result.outcome == "revoked":
            log.warning("bundle signed by a revoked key refused",
                        extra={"origin": origin, "key_id": key_id, "digest": c.digest})
            raise Refused("revoked_key",
                          f"key {key_id} of origin {origin} is revoked on this hub")
        if result.outcome == "untrusted":
            await Q.park_bundle(conn, origin=origin, key_id=key_id, public_key=c.public_key,
                                peer_name=peer, digest=c.digest, sequence=c.sequence,
                                hops=hops, container=container)
            log.info("bundle parked: unknown key",
                     extra={"origin": origin, "key_id": key_id, "digest": c.digest})
            return Outcome("pending", {"status": "pending", "digest": c.digest, "origin": origin,
                                 "key_id": key_id, "sequence": c.sequence,
                                 "message": "signature valid; the key awaits the hub "
                                            "operator's approval"})
        if result.outcome == "equivocation":
            log.warning("equivocation rejected",
                        extra={"origin": origin, "sequence": c.sequence, "digest": c.digest,
                               "kept": result.kept_digest})
            raise Refused("equivocation",
                          f"origin {origin} already published sequence {c.sequence} "
                          f"as {result.kept_digest}; this different bundle was rejected "
                          f"and recorded for the operator",
                          extra={"kept_digest": result.kept_digest})
        for new_key_id, public_key in c.rotations:
            await Q.trust_key(conn, origin, new_key_id, public_key, None)
        if result.outcome == "duplicate":  # the stored copy's own counts (a stored push
            if peer is not None:  # is counted for its peer with its log entry)
                await Q.touch_peer(conn, peer)
            answer = await Q.bundle_answer(conn, c.digest)
            assert answer is not None
            accepted, withheld = answer["record_count"], answer["withheld_count"]
        else:
            accepted, withheld = result.accepted, result.withheld
    # (on a connection of its own, after this one went back: never two at a time)
    hub_seq = result.hub_seq if result.hub_seq is not None else \
        await sequence(pool, c.digest)
    body = {"status": "duplicate" if result.outcome == "duplicate" else "stored",
            "digest": c.digest, "origin": origin, "sequence": c.sequence,
            "hub_seq": hub_seq, "accepted": accepted, "withheld": withheld}
    return Outcome("duplicate" if result.outcome == "duplicate" else "stored", body,
                   stored_seq=hub_seq if result.outcome == "stored" else None,
                   extra={"records": len(c.columns[0])})


async def approve_key(pool: asyncpg.Pool, key_id: str, *, limits: Limits,
                      for_origin: str | None = None) -> list[Outcome]:
    """Trust a pending key and replay its parked bundles through ``store``.

    ``for_origin`` names the origin the operator means to let the key publish as. It is
    required when the key claims a foreign origin (see :data:`hub.queries._PENDING_KEYS`)
    or was seen signing for several origins; a wrong one is refused."""
    async with pool.acquire() as conn:
        rows = await Q.find_pending_keys(conn, key_id, for_origin)
        if not rows:
            where = f" for origin {for_origin}" if for_origin else ""
            raise Refused("not_found", f"no pending key {key_id}{where}")
        if len(rows) > 1:
            raise Refused("origin_ambiguous",
                          f"key {key_id} signed bundles for {len(rows)} origins "
                          f"({', '.join(r['origin'] for r in rows)}); name the one to "
                          f"approve it for")
        pending = rows[0]
        if pending["foreign_claim"] and for_origin != pending["origin"]:
            raise Refused("origin_claim_unconfirmed",
                          f"key {key_id} claims origin {pending['origin']}, which is not "
                          f"an origin of peer {pending['peer_name'] or '(none)'} that "
                          f"pushed it: approving lets that peer publish as "
                          f"{pending['origin']}; confirm the origin to approve it")
        await Q.trust_key(conn, pending["origin"], key_id, pending["public_key"],
                          pending["peer_name"])
        await Q.activate_pending_peer(conn, pending["peer_name"])
        parked = await Q.pending_bundles_of(conn, pending["origin"], key_id)
    outcomes = []
    for row in parked:
        try:
            data = bytes(row["container"])
            checked = await run_check(data, CBOR_MEDIA_TYPE, limits)
            outcomes.append(await store(pool, checked, data, peer=row["peer_name"],
                                        hops=row["hops"]))
        except (Refused, ProtocolError) as exc:
            outcomes.append(Outcome("refused",
                                    {"error": {"code": exc.code, "message": exc.message}}))
    await Q.drop_pending_key(pool, pending["origin"], key_id)
    return outcomes


async def discard_key(pool: asyncpg.Pool, key_id: str) -> int:
    pending = await Q.find_pending_key(pool, key_id)
    if pending is None:
        raise Refused("not_found", f"no pending key {key_id}")
    parked = await Q.pending_bundles_of(pool, pending["origin"], key_id)
    await Q.drop_pending_key(pool, pending["origin"], key_id)
    return len(parked)
