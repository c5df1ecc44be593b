"""Withdrawing reaches the outbox: withhold withdrawn records from stored bundles.

``sync_outbox`` keeps every bundle this node signed, to hand its chain to peers added
later. A record made private, deleted, or whose member was disabled since must not travel
with it. A database trigger (migration 0141) queues each withdrawn record's path in
``sync_outbox_withdrawn`` in the withdrawing transaction, whoever made the change;
``scrub_outbox`` then removes those files from every stored bundle the way a hub scrubs
its log: the file becomes "withheld" (listed in the signed manifest, absent), so the
bundle keeps its digest and still verifies, and receivers treat it as withheld by a relay.

Pages call it inside the withdrawing transaction; every outbox read (push) calls it
first, so a withdrawal made elsewhere (CLI, copilot, SQL) is scrubbed before any bundle
leaves.
"""

from __future__ import annotations

import hashlib
import logging

import asyncpg

from protocol.containers import from_cbor, to_cbor
from protocol.limits import Limits

log = logging.getLogger("wb.node.sync")

SCRUB_LOCK = int.from_bytes(hashlib.sha256(b"wb-outbox-scrub").digest()[:4], "big") >> 1

# Our own stored envelopes: re-reading one must not fail on a limit lowered since.
STORED_LIMITS = Limits(max_bundle_bytes=1 << 34, max_files=10_000_000,
                       max_manifest_bytes=1 << 31)


async def scrub_outbox(conn: asyncpg.Connection) -> int:
    """Withhold every queued withdrawn path from the stored bundles; return how many
    bundles changed. Run inside the caller's transaction (it takes a transaction-level
    lock, so concurrent scrubs queue up instead of racing)."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM sync_outbox_withdrawn)"):
        return 0
    await conn.execute("SELECT pg_advisory_xact_lock($1)", SCRUB_LOCK)
    paths = [r["path"] for r in await conn.fetch(
        "SELECT path FROM sync_outbox_withdrawn FOR UPDATE")]
    if not paths:
        return 0
    await _index(conn)
    rows = await conn.fetch(
        "SELECT sequence, envelope, paths FROM sync_outbox WHERE paths && $1::text[] "
        "FOR UPDATE", paths)
    gone = set(paths)
    for row in rows:
        bundle = from_cbor(bytes(row["envelope"]), STORED_LIMITS).withhold(gone)
        await conn.execute(
            "UPDATE sync_outbox SET envelope = $2, paths = $3 WHERE sequence = $1",
            row["sequence"], to_cbor(bundle), sorted(bundle.files))
    await conn.execute("DELETE FROM sync_outbox_withdrawn WHERE path = ANY($1::text[])", paths)
    if rows:
        log.info("withdrawn records scrubbed from the outbox",
                 extra={"records": len(paths), "bundles": len(rows)})
    return len(rows)


async def _index(conn: asyncpg.Connection) -> None:
    """Record which paths each not-yet-indexed stored bundle holds."""
    for row in await conn.fetch(
            "SELECT sequence, envelope FROM sync_outbox WHERE paths IS NULL FOR UPDATE"):
        files = sorted(from_cbor(bytes(row["envelope"]), STORED_LIMITS).files)
        await conn.execute("UPDATE sync_outbox SET paths = $2 WHERE sequence = $1",
                           row["sequence"], files)


async def scrub_outbox_now(pool: asyncpg.Pool) -> int:
    """``scrub_outbox`` in a transaction of its own (before reading the outbox)."""
    async with pool.acquire() as conn, conn.transaction():
        return await scrub_outbox(conn)
