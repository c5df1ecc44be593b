"""Holes and breaks in other origins' hash chains.

- ``check_previous`` (inside the import transaction): a bundle's ``Previous`` must be
  the digest of the origin's predecessor we hold, and the successor we may already hold
  must name this bundle's digest. A mismatch is a *chain break*: recorded in
  ``sync_chain_breaks`` for the operator (``wb sync status``, the control center); the
  bundle itself is still applied (its signature verified; equivocation on the same
  sequence is refused separately).
- ``due_gaps`` / ``mark_attempt``: the missing sequences of ``sync_gaps`` that a pull
  should look for now. Every look that does not fill a gap doubles the wait before the
  next one (from one minute up to a day), so a peer that does not have them is not
  scanned on every pull. A gap row disappears when its bundle is imported
  (``importer._record_gaps``).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from node.sync import queries_peers as QP
from protocol.verify import VerifiedBundle

log = logging.getLogger("wb.node.sync")

BACKOFF_SECONDS = 60
BACKOFF_MAX_SECONDS = 86_400
MAX_GAPS_PER_RUN = 1000


async def check_previous(conn: asyncpg.Connection, vb: VerifiedBundle,
                         peer: str | None = None) -> list[int]:
    """Record chain breaks around ``vb``; return the sequences found broken."""
    sequence = vb.sequence or 0
    if vb.schema_version != 2 or sequence < 1:
        return []
    broken: list[int] = []
    if sequence > 1:
        before = await QP.received_digest(conn, vb.origin, sequence - 1)
        if before is not None and before != vb.previous:
            await _record(conn, vb.origin, sequence, vb.previous, before, vb.digest, peer)
            broken.append(sequence)
    after = await QP.received_link(conn, vb.origin, sequence + 1)
    if after is not None and after["previous"] != vb.digest:
        await _record(conn, vb.origin, sequence + 1, after["previous"], vb.digest,
                      after["digest"], after["peer"])
        broken.append(sequence + 1)
    return broken


async def _record(conn: asyncpg.Connection, origin: str, sequence: int, previous: str | None,
                  expected: str, digest: str, peer: str | None) -> None:
    await QP.insert_sync_chain_breaks(conn, origin, sequence, previous, expected, digest, peer)
    log.error("chain break: Previous does not match the predecessor",
              extra={"origin": origin, "sequence": sequence, "peer": peer})


async def chain_breaks(pool: Any, limit: int = 20) -> list[asyncpg.Record]:
    return await QP.select_sync_chain_breaks(pool, limit)


async def due_gaps(pool: Any, *, force: bool = False) -> dict[str, list[int]]:
    """Missing sequences to look for now, by origin (oldest first)."""
    rows = await QP.due_gaps(pool, force, BACKOFF_SECONDS, BACKOFF_MAX_SECONDS,
                             MAX_GAPS_PER_RUN)
    out: dict[str, list[int]] = {}
    for r in rows:
        out.setdefault(r["origin"], []).append(r["sequence"])
    return out


async def mark_attempt(pool: Any, origin: str, sequences: list[int]) -> None:
    """A look for these sequences is over; those still missing wait longer next time."""
    await QP.update_sync_gaps_set_attempts_by_origin(pool, origin, sequences)


async def remaining(pool: Any, origin: str, sequences: list[int]) -> set[int]:
    rows = await QP.select_sync_gaps_by_origin(pool, origin, sequences)
    return {r["sequence"] for r in rows}
