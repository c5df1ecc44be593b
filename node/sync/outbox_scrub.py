"""Withdrawing reaches the outbox: withhold withdrawn records from stored bundles.

``sync_outbox`` keeps every bundle this node signed, to hand its chain to peers added
later. A record made private, deleted, or whose member was disabled since must not travel
with it. A database trigger (migration 0141) queues each withdrawn record's path in
``sync_outbox_withdrawn`` in the withdrawing transaction, whoever made the change;
``scrub_outbox`` then removes those files from every stored bundle the way a hub scrubs
its log: the file becomes "withheld" (listed in the signed manifest, absent), so the
bundle keeps its digest and still verifies, and receivers treat it as withheld by a relay.
Tombstones are never withheld. A queue row stays while its record is withdrawn (the
trigger drops it when the record becomes public again), with the sequence the outbox is
known to be clean up to, so a bundle that a concurrent export wrote from a stale read is
scrubbed by the next call.

Pages call it inside the withdrawing transaction; every outbox read (push) calls it
first, so a withdrawal made elsewhere (CLI, copilot, SQL) is scrubbed before any bundle
leaves.
"""

from __future__ import annotations

import hashlib
import logging

import asyncpg

from node.sync import queries_repair as QR
from protocol.containers import from_cbor, to_cbor
from protocol.errors import ProtocolError
from protocol.limits import Limits
from protocol.records import parse_record

log = logging.getLogger("wb.node.sync")

SCRUB_LOCK = int.from_bytes(hashlib.sha256(b"wb-outbox-scrub").digest()[:4], "big") >> 1

# Our own stored envelopes: re-reading one must not fail on a limit lowered since.
STORED_LIMITS = Limits(max_bundle_bytes=1 << 34, max_files=10_000_000,
                       max_manifest_bytes=1 << 31)


async def scrub_outbox(conn: asyncpg.Connection) -> int:
    """Withhold every withdrawn record from the stored bundles it is not yet known to be
    scrubbed from; return how many bundles changed. Run inside the caller's transaction
    (a transaction-level lock makes concurrent scrubs queue up instead of racing)."""
    head = await QR.outbox_head(conn)
    if not await QR.scrub_pending(conn, head):
        return 0
    await QR.advisory_xact_lock(conn, SCRUB_LOCK)
    head = await QR.outbox_head(conn)
    queued = await QR.withdrawn_to_scrub(conn, head)
    if not queued:
        return 0
    await _index(conn)
    since = min(r["scrubbed_through"] for r in queued)
    rows = await QR.select_sync_outbox_by_sequence(conn, since, head, [r["path"] for r in queued])
    changed = 0
    for row in rows:
        gone = {r["path"] for r in queued if r["scrubbed_through"] < row["sequence"]}
        bundle = from_cbor(bytes(row["envelope"]), STORED_LIMITS)
        withheld = {p for p in gone if p in bundle.files and not _tombstone(bundle.files[p])}
        if not withheld:
            continue
        # ``paths`` keeps listing the withheld file (the manifest does too): rewriting a
        # snapshot's 100,000-entry array and its index would double the cost, and a later
        # scrub that picks the bundle again finds the file already gone and writes nothing.
        await QR.update_sync_outbox_set_envelope_by_sequence(conn, row["sequence"],
                                                             to_cbor(bundle.withhold(withheld)))
        changed += 1
    await QR.update_sync_outbox_withdrawn_set_scrubbed_through_by_path(
        conn, [r["path"] for r in queued], head)
    if changed:
        log.info("withdrawn records scrubbed from the outbox",
                 extra={"records": len(queued), "bundles": changed})
    return changed


def record_files(envelope: bytes) -> dict[str, bytes]:
    """The record files a stored bundle carries ({} when it does not decode)."""
    try:
        return from_cbor(envelope, STORED_LIMITS).files
    except ProtocolError:
        return {}


def still_held(files: dict[str, bytes], withdrawn: set[str]) -> list[str]:
    """The withdrawn record files a stored bundle still carries (tombstones excepted)."""
    return sorted(p for p in files if p in withdrawn and not _tombstone(files[p]))


def _tombstone(data: bytes) -> bool:
    """A tombstone must keep travelling: it is how peers learn to forget the record."""
    try:
        return parse_record(data, STORED_LIMITS).deleted
    except ProtocolError:
        return False


async def _index(conn: asyncpg.Connection) -> None:
    """Record which paths each not-yet-indexed stored bundle holds."""
    for row in await QR.select_sync_outbox_by_paths(conn):
        files = sorted(from_cbor(bytes(row["envelope"]), STORED_LIMITS).files)
        await QR.update_sync_outbox_set_paths_by_sequence(conn, row["sequence"], files)


async def scrub_outbox_now(pool: asyncpg.Pool) -> int:
    """``scrub_outbox`` in a transaction of its own (before reading the outbox)."""
    async with pool.acquire() as conn, conn.transaction():
        return await scrub_outbox(conn)
