"""Key revocation: an operator withdraws trust in a (leaked) signing key of an origin.

``revoke_key`` deletes the key from ``sync_trusted_keys``, drops the bundles it signed
that wait in ``sync_pending`` and records it in ``sync_key_revocations``, with an
``audit_log`` row, in one transaction. From then on the importer refuses bundles signed
by it (``revoked_key``, nothing written), a rotation announcement naming it trusts
nothing, and pinning or approving it is refused until ``unrevoke_key``. The node's own
current signing key cannot be revoked here (rotate it first: ``wb keys rotate``).

Keys that the revoked key announced by rotation stay trusted (a legitimate rotation is
announced by the key it replaces); ``list_keys`` shows ``announced_by`` so the operator
can revoke those too.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg

from node.sync import queries_keys as QK
from node.sync.errors import SyncError
from protocol.records import KEY_ID_RE

log = logging.getLogger("wb.node.sync")


def _check_ids(origin: str, key_id: str) -> None:
    for value in (origin, key_id):
        if not KEY_ID_RE.fullmatch(value):
            raise SyncError("invalid_key_id", f"{value!r} is not a 16-hex key id")


async def is_revoked(conn: Any, origin: str, key_id: str) -> bool:
    return await QK.select_sync_key_revocations_by_origin(conn, origin, key_id)


async def refuse_if_revoked(conn: Any, origin: str, key_id: str) -> None:
    if await is_revoked(conn, origin, key_id):
        raise SyncError("revoked_key",
                        f"key {key_id} of origin {origin} is revoked; remove the revocation "
                        f"first (wb sync keys unrevoke {origin} {key_id})")


async def revoke_key(pool: asyncpg.Pool, origin: str, key_id: str, *, own_key_id: str,
                     actor: str) -> dict[str, Any]:
    """Stop trusting ``key_id`` for ``origin`` for good; returns what was removed."""
    _check_ids(origin, key_id)
    if key_id == own_key_id:
        raise SyncError("own_key", f"{key_id} is this node's current signing key; rotate "
                                   "it first (wb keys rotate), then revoke the old one")
    async with pool.acquire() as conn, conn.transaction():
        if await is_revoked(conn, origin, key_id):
            raise SyncError("already_revoked", f"key {key_id} of origin {origin} is "
                                               "already revoked")
        known_origin = await QK.origin_known(conn, origin)
        if not known_origin:
            raise SyncError("unknown_origin", f"this node knows no origin {origin} "
                                              "(see wb sync keys list)")
        trusted = await QK.delete_sync_trusted_keys_by_origin(conn, origin, key_id)
        pending = await QK.drop_pending_of_key(conn, origin, key_id)
        if trusted is None and not pending:
            raise SyncError("unknown_key", f"key {key_id} is neither trusted nor pending "
                                           f"for origin {origin} (see wb sync keys list)")
        await QK.insert_sync_key_revocations(conn, origin, key_id, actor)
        details = {"actor": actor, "was_trusted": trusted is not None,
                   "source": trusted["source"] if trusted else None,
                   "pending_dropped": pending}
        await QK.audit_key_revoked(conn, f"{origin}:{key_id}", json.dumps(details))
    log.warning("signing key revoked", extra={"origin": origin, "key_id": key_id,
                                              "by": actor})
    return {"origin": origin, "key_id": key_id, **details}


async def unrevoke_key(pool: asyncpg.Pool, origin: str, key_id: str, *, actor: str) -> None:
    """Remove a revocation; the key is *not* trusted again (pin or approve it)."""
    _check_ids(origin, key_id)
    async with pool.acquire() as conn, conn.transaction():
        status = await QK.delete_sync_key_revocations_by_origin(conn, origin, key_id)
        if status == "DELETE 0":
            raise SyncError("not_revoked", f"key {key_id} of origin {origin} is not revoked")
        await QK.audit_key_unrevoked(conn, f"{origin}:{key_id}", json.dumps({"actor": actor}))
    log.warning("key revocation removed", extra={"origin": origin, "key_id": key_id,
                                                 "by": actor})


async def list_keys(conn: Any, origin: str | None = None) -> list[dict[str, Any]]:
    """Trusted and revoked keys, by origin (``status`` is trusted or revoked)."""
    rows = await QK.select_sync_trusted_keys(conn, origin)
    return [dict(r) for r in rows]
