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
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub import queries as Q
from hub.errors import HubError
from protocol.bundle import Bundle
from protocol.containers import CBOR_MEDIA_TYPE, from_cbor, from_targz, to_cbor
from protocol.errors import ProtocolError
from protocol.limits import Limits
from protocol.records import Record
from protocol.verify import VerifiedBundle, check_key_record, verify_bundle

log = logging.getLogger("wb.hub.ingest")

TARGZ_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-tar",
                         "application/tar+gzip", "application/x-gtar"})
_SCOPE_RE = re.compile(rb"(?:^|\n)Sync-Scope: ([^\n]*)")


@dataclass
class Outcome:
    """What the hub answers: HTTP status and JSON body."""

    status: int
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
        return from_targz(data, limits) if data[:2] == b"\x1f\x8b" else from_cbor(data, limits)
    raise HubError(415, "unsupported_media_type",
                   f"send {CBOR_MEDIA_TYPE} or application/gzip, not {ctype}")


def scope_of(data: bytes) -> str | None:
    """``Sync-Scope`` of a record file from its header block only (None if absent)."""
    end = data.find(b"\n\n")
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


def check(data: bytes, content_type: str, limits: Limits) -> tuple[VerifiedBundle, bytes]:
    """Decode, filter and verify completely (CPU only; run in a thread).

    Returns the verified bundle and the CBOR container to store: the received bytes
    when they were a CBOR envelope and nothing was removed, else a fresh deterministic
    envelope of the same manifest, signature and file bytes.
    """
    bundle = decode(data, content_type, limits)
    filtered, dropped = public_only(bundle)
    verified = verify_bundle(filtered, trust=_trust_all, limits=limits)
    if dropped == 0 and data[:2] != b"\x1f\x8b":
        container = data  # the exact envelope received
    else:
        container = to_cbor(filtered)
    return verified, container


def index_rows(verified: VerifiedBundle) -> list[Q.IndexRow]:
    files = verified.bundle.files
    return [_row(rec, files[path]) for path, rec in verified.records]


def _row(rec: Record, raw: bytes) -> Q.IndexRow:
    if rec.deleted:
        return Q.IndexRow(rec.origin, rec.entity, rec.id, rec.revision, True, rec.get("Instance"),
                          rec.get("Updated-At"), "", "", None, None, None, None)
    text = raw.decode("utf-8")
    cut = text.find("\n\n")
    head, body = (text[:cut], text[cut + 2:]) if cut >= 0 else (text, rec.body)
    get = rec.get
    return Q.IndexRow(
        origin=rec.origin, entity=rec.entity, id=rec.id, revision=rec.revision, deleted=False,
        instance=get("Instance"), updated_at=get("Updated-At"), head=head, body=body,
        title=get("Title"), status=get("Status"),
        parent_ref=get("Request") if rec.entity == "comment" else None,
        created_at=get("Created-At"))


def rotations(verified: VerifiedBundle) -> list[tuple[str, bytes]]:
    """Keys announced by this bundle as successors of its (trusted) signing key."""
    found = []
    for path, rec in verified.records:
        if rec.entity == "key" and not rec.deleted \
                and rec.get("Previous-Key-ID") == verified.key_id:
            found.append((rec["Key-ID"], check_key_record(rec, path)))
    return found


async def ingest(pool: asyncpg.Pool, data: bytes, content_type: str, *, limits: Limits,
                 peer: str | None, hops: int = 0, trusted_override: bool = False) -> Outcome:
    """Verify and store one pushed bundle; raise HubError or ProtocolError on rejection."""
    verified, container = await asyncio.to_thread(check, data, content_type, limits)
    return await store(pool, verified, container, peer=peer, hops=hops,
                       trusted_override=trusted_override)


async def store(pool: asyncpg.Pool, verified: VerifiedBundle, container: bytes, *,
                peer: str | None, hops: int, trusted_override: bool = False) -> Outcome:
    origin, key_id = verified.origin, verified.key_id
    async with pool.acquire() as conn:
        if await Q.is_blocked(conn, origin):
            raise HubError(403, "origin_blocked", f"origin {origin} is blocked on this hub")
        if not trusted_override and not await Q.is_trusted(conn, origin, key_id):
            await Q.park_bundle(conn, origin=origin, key_id=key_id,
                                public_key=verified.public_key, peer_name=peer,
                                digest=verified.digest, sequence=verified.sequence, hops=hops,
                                container=container)
            log.info("bundle parked: unknown key",
                     extra={"origin": origin, "key_id": key_id, "digest": verified.digest})
            return Outcome(202, {"status": "pending", "digest": verified.digest,
                                 "origin": origin, "key_id": key_id,
                                 "sequence": verified.sequence,
                                 "message": "signature valid; the key awaits the hub "
                                            "operator's approval"})
        rows = index_rows(verified)
        entities = sorted({r.entity for r in rows})
        withheld = len(verified.withheld)
        for attempt in range(3):
            try:
                result = await Q.store_bundle(
                    conn, digest=verified.digest, origin=origin, instance=verified.instance,
                    sequence=verified.sequence, previous=verified.previous,
                    kind=verified.kind, schema_version=verified.schema_version,
                    key_id=key_id, signed_at=verified.signed_at, container=container,
                    rows=rows, withheld=withheld, received_from=peer, hops=hops,
                    entities=entities, manifest=verified.bundle.manifest,
                    sig=verified.bundle.sig)
                break
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
                if attempt == 2:
                    raise
        if result.outcome == "equivocation":
            log.warning("equivocation rejected",
                        extra={"origin": origin, "sequence": verified.sequence,
                               "digest": verified.digest, "kept": result.kept_digest})
            raise HubError(409, "equivocation",
                           f"origin {origin} already published sequence {verified.sequence} "
                           f"as {result.kept_digest}; this different bundle was rejected "
                           f"and recorded for the operator",
                           extra={"kept_digest": result.kept_digest})
        for new_key_id, public_key in rotations(verified):
            await Q.trust_key(conn, origin, new_key_id, public_key, None)
        if peer is not None:
            await Q.touch_peer(conn, peer)
        answer = await Q.bundle_answer(conn, verified.digest)
    assert answer is not None
    body = {"status": "duplicate" if result.outcome == "duplicate" else "stored",
            "digest": answer["digest"], "origin": answer["origin"],
            "sequence": answer["sequence"], "hub_seq": answer["seq"],
            "accepted": answer["record_count"], "withheld": answer["withheld_count"]}
    return Outcome(200 if result.outcome == "duplicate" else 201, body,
                   stored_seq=result.hub_seq if result.outcome == "stored" else None,
                   extra={"records": len(rows)})


async def approve_key(pool: asyncpg.Pool, key_id: str, *, limits: Limits) -> list[Outcome]:
    """Trust a pending key and replay its parked bundles through ``store``."""
    async with pool.acquire() as conn:
        pending = await Q.find_pending_key(conn, key_id)
        if pending is None:
            raise HubError(404, "not_found", f"no pending key {key_id}")
        await Q.trust_key(conn, pending["origin"], key_id, pending["public_key"],
                          pending["peer_name"])
        parked = await Q.pending_bundles_of(conn, pending["origin"], key_id)
    outcomes = []
    for row in parked:
        try:
            verified, container = await asyncio.to_thread(
                check, bytes(row["container"]), CBOR_MEDIA_TYPE, limits)
            outcomes.append(await store(pool, verified, container, peer=row["peer_name"],
                                        hops=row["hops"]))
        except (HubError, ProtocolError) as exc:
            outcomes.append(Outcome(getattr(exc, "status", 400),
                                    {"error": {"code": exc.code, "message": exc.message}}))
    await Q.drop_pending_key(pool, pending["origin"], key_id)
    return outcomes


async def discard_key(pool: asyncpg.Pool, key_id: str) -> int:
    pending = await Q.find_pending_key(pool, key_id)
    if pending is None:
        raise HubError(404, "not_found", f"no pending key {key_id}")
    parked = await Q.pending_bundles_of(pool, pending["origin"], key_id)
    await Q.drop_pending_key(pool, pending["origin"], key_id)
    return len(parked)
