"""Queued bundles whose key became trusted later (e.g. a rotation announced it after they
arrived): import them now. Its own module so that rotation never imports the importer."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from node.sync.errors import SyncError
from node.sync.importer import import_bundle
from protocol.containers import from_cbor
from protocol.errors import ProtocolError

log = logging.getLogger("wb.node.sync")


async def replay_trusted_pending(pool: asyncpg.Pool, our_origin: str) -> list[Any]:
    """Import queued bundles whose key is trusted now (e.g. announced by a rotation that
    arrived after them), oldest sequence first; returns the import results."""
    rows = await pool.fetch(
        """SELECT p.id, p.envelope, p.peer FROM sync_pending p
             JOIN sync_trusted_keys t ON t.origin = p.origin AND t.key_id = p.key_id
            ORDER BY p.origin, p.sequence NULLS FIRST, p.received_at""")
    results = []
    for row in rows:
        try:
            results.append(await import_bundle(pool, from_cbor(bytes(row["envelope"])),
                                               our_origin=our_origin, peer=row["peer"]))
        except (ProtocolError, SyncError) as exc:
            log.warning("queued bundle refused on replay", extra={"error_code": exc.code})
        finally:
            await pool.execute("DELETE FROM sync_pending WHERE id = $1", row["id"])
    return results
