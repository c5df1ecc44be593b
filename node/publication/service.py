"""SYNC_PUBLIC_SCOPE: one place decides whether a record may be made public.

``gate`` is called by ``node.requests.service.change_scope`` (the function behind the
scope pages, the JSON API, the CLI and the copilot tool) and by request creation, so the
four paths cannot disagree. The mode in force lives in ``node_public_scope``; the node
writes it from the setting at start-up (``apply_mode``) and audits every change.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from node.errors import bad_request, conflict, forbidden, not_found
from node.publication import queries as Q
from node.requests import queries as RQ
from service.ids import ulid
from service.settings import Config

log = logging.getLogger("wb.node.publication")

MODES = ("members", "admins", "off")
RANK = {"off": 0, "admins": 1, "members": 2}
DEFAULT_MODE = "members"
STATUSES = ("pending", "approved", "declined", "cancelled")

EXPLAIN = {
    "members": "Members may mark their own records public; they leave with the next export.",
    "admins": "A member's \"make public\" is a publication request; nothing leaves until an "
              "admin approves it.",
    "off": "This node publishes nothing: records cannot be marked public, and what was "
           "public before leaves once more as a tombstone.",
}


def configured_mode(config: Config) -> str:
    mode = config["SYNC_PUBLIC_SCOPE"].strip().lower() or DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(f"SYNC_PUBLIC_SCOPE must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


async def current_mode(conn: Q.Conn) -> str:
    return await Q.get_mode(conn) or DEFAULT_MODE


async def apply_mode(pool: asyncpg.Pool, config: Config, *,
                     actor: str = "config") -> dict[str, Any]:
    """Put the configured mode in force; audit it when it differs from the one before.

    Lowering never silently keeps publishing: the answer names how many records are still
    public (the review page lists them with "withdraw all"). Raising from ``off`` makes
    the public records that were tombstoned due for publishing again.
    """
    mode = configured_mode(config)
    async with pool.acquire() as conn, conn.transaction():
        await Q.lock_mode_row(conn)
        before = await Q.get_mode(conn)
        changed = before is not None and before != mode
        if before != mode:
            await Q.set_mode(conn, mode)
        republished = 0
        if changed and before == "off":
            republished = await Q.make_public_rows_dirty(conn)
        still = len(await Q.public_ids(conn))
        if changed:
            assert before is not None
            await Q.audit(conn, actor_id=None, action="sync.public_scope", target=mode,
                          ip=None, details={"via": actor, "from": before, "to": mode,
                                            "lowered": RANK[mode] < RANK[before],
                                            "still_public": still,
                                            "republished": republished})
            log.warning("SYNC_PUBLIC_SCOPE changed", extra={"from": before, "to": mode,
                                                            "still_public": still})
    return {"mode": mode, "previous": before or mode, "changed": changed,
            "still_public": still, "explain": EXPLAIN[mode]}


async def gate(conn: asyncpg.Connection, actor: Any, kind: str, record_id: str) -> str:
    """May ``actor`` make this record public now? ``"apply"`` (yes), ``"requested"`` (a
    publication request was filed instead), or a 403 ``public_scope_off``."""
    mode = await current_mode(conn)
    if mode == "off":
        raise forbidden("public_scope_off",
                        "This node publishes nothing (SYNC_PUBLIC_SCOPE=off); records "
                        "cannot be made public.")
    if mode == "members" or actor.is_admin:
        return "apply"
    request_id, created = await Q.add_request(conn, request_id=ulid(), kind=kind,
                                              record_id=record_id,
                                              requested_by=actor.user_id)
    if created:
        await Q.audit(conn, actor_id=actor.user_id, action="publication.request",
                      target=f"{kind}:{record_id}", ip=actor.ip,
                      details={"via": actor.via, "request": request_id})
    return "requested"


async def withdrawn(conn: asyncpg.Connection, kind: str, record_id: str, via: str) -> None:
    """The record went (back) to private: a pending publication request is moot."""
    await Q.cancel_pending_for(conn, kind, record_id, via)


def _admin(actor: Any) -> None:
    if actor is None or not actor.active or not actor.is_admin:
        raise forbidden("admin_required", "Only an admin may review publication requests.")


def parse_status(value: str | None) -> str | None:
    if value in (None, "", "all"):
        return None if value == "all" else "pending"
    if value not in STATUSES:
        raise bad_request("invalid_status", f"status must be one of {', '.join(STATUSES)} "
                          "or all.")
    return value


async def list_requests(pool: asyncpg.Pool, actor: Any, *, status: str | None = "pending",
                        limit: int = 200) -> list[asyncpg.Record]:
    _admin(actor)
    return await Q.list_requests(pool, status=status, limit=limit)


async def decide(pool: asyncpg.Pool, actor: Any, request_id: str, approve: bool,
                 note: str = "") -> dict[str, Any]:
    """Approve (the record becomes public, through the same audit as any scope change)
    or decline a pending publication request."""
    _admin(actor)
    note = " ".join((note or "").split())[:500] or None
    async with pool.acquire() as conn, conn.transaction():
        row = await Q.lock_request(conn, request_id)
        if row is None:
            raise not_found("publication_request_not_found", "No such publication request.")
        if row["status"] != "pending":
            raise conflict("publication_request_decided",
                           f"This request was already {row['status']}.")
        target = f"{row['kind']}:{row['record_id']}"
        rec = await RQ.record_owner(conn, row["kind"], row["record_id"])
        if approve:
            if await current_mode(conn) == "off":
                raise forbidden("public_scope_off", "This node publishes nothing "
                                "(SYNC_PUBLIC_SCOPE=off); nothing can be approved.")
            if rec is None or rec["origin"] is not None:
                raise conflict("record_gone", "The record no longer exists.")
            if rec["sync_scope"] != "public":
                setter = {"request": RQ.set_request_scope, "comment": RQ.set_comment_scope,
                          "user": RQ.set_user_scope}[row["kind"]]
                await setter(conn, row["record_id"], "public")
                await Q.audit(conn, actor_id=actor.user_id, action="scope.change",
                              target=target, ip=actor.ip,
                              details={"via": actor.via, "from": rec["sync_scope"],
                                       "to": "public", "publication_request": row["id"]})
        status = "approved" if approve else "declined"
        await Q.decide(conn, row["id"], status=status, decided_by=actor.user_id,
                       via=actor.via, note=note)
        await Q.audit(conn, actor_id=actor.user_id, action=f"publication.{status}",
                      target=target, ip=actor.ip,
                      details={"via": actor.via, "request": row["id"], "note": note})
    return {"id": row["id"], "kind": row["kind"], "record_id": row["record_id"],
            "status": status}


async def still_public(pool: asyncpg.Pool, actor: Any, limit: int = 200
                       ) -> dict[str, list[asyncpg.Record]]:
    _admin(actor)
    return await Q.still_public(pool, limit)


async def withdraw_all(pool: asyncpg.Pool, actor: Any) -> int:
    """Every local public record becomes private (each audited); the next export carries
    their tombstones."""
    _admin(actor)
    changed = 0
    async with pool.acquire() as conn, conn.transaction():
        for kind, record_id in await Q.public_ids(conn):
            setter = {"request": RQ.set_request_scope, "comment": RQ.set_comment_scope,
                      "user": RQ.set_user_scope}[kind]
            await setter(conn, record_id, "private")
            await Q.audit(conn, actor_id=actor.user_id, action="scope.change",
                          target=f"{kind}:{record_id}", ip=actor.ip,
                          details={"via": actor.via, "from": "public", "to": "private",
                                   "withdraw_all": True})
            changed += 1
        if changed:
            await Q.audit(conn, actor_id=actor.user_id, action="sync.withdraw_all",
                          target="public", ip=actor.ip,
                          details={"via": actor.via, "count": changed})
    return changed


def request_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "record_id": row["record_id"],
            "status": row["status"], "summary": row["summary"],
            "requested_by": row["requested_by_username"],
            "requested_at": row["requested_at"], "decided_at": row["decided_at"],
            "decided_by": row["decided_by_username"], "note": row["note"]}


