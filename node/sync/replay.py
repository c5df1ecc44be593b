"""Queued bundles whose key became trusted later (e.g. a rotation announced it after they
arrived): import them now. Its own module so that rotation never imports the importer."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from node.sync import queries_peers as QP
from node.sync.errors import SyncError
from node.sync.importer import import_bundle
from protocol.containers import from_cbor
from protocol.errors import ProtocolError

log = logging.getLogger("wb.node.sync")


async def replay_trusted_pending(pool: asyncpg.Pool, our_origin: str) -> list[Any]:
    """Import queued bundles whose key is trusted now (e.g. announced by a rotation that
    arrived after them), oldest sequence first; returns the import results."""
    rows = await QP.select_sync_pending(pool)
    results = []
    for row in rows:
        try:
            results.append(await import_bundle(pool, from_cbor(bytes(row["envelope"])),
                                               our_origin=our_origin, peer=row["peer"]))
        except (ProtocolError, SyncError) as exc:
            log.warning("queued bundle refused on replay", extra={"error_code": exc.code})
        finally:
            await QP.drop_pending(pool, row["id"])
    return results
