"""SYNC_PUBLIC_SCOPE: one place decides whether a record may be made public.

``gate`` is called by ``node.requests.service.change_scope`` (the function behind the
scope pages, the JSON API, the CLI and the copilot tool) and by request creation, so the
four paths cannot disagree. The mode in force lives in ``node_public_scope``: the setting
is the initial value (``apply_mode`` at start-up), an admin may change it (``set_mode``),
and every change is audited.
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


def parse_mode(value: object) -> str:
    """An admin's choice of mode: one of MODES, else 400 ``invalid_public_scope``."""
    mode = value.strip().lower() if isinstance(value, str) else ""
    if mode not in MODES:
        raise bad_request("invalid_public_scope",
                          f"mode must be one of {', '.join(MODES)}.",
                          mode=f"Choose {', '.join(MODES)}.")
    return mode


async def _change(conn: asyncpg.Connection, before: str, mode: str, *,
                  actor_id: str | None, ip: str | None, via: str, source: str
                  ) -> dict[str, Any]:
    """Audit a change of the mode in force (already written) and make records that were
    tombstoned under ``off`` due for publishing again when it is raised from ``off``."""
    republished = await Q.make_public_rows_dirty(conn) if before == "off" else 0
    still = len(await Q.public_ids(conn))
    lowered = RANK[mode] < RANK[before]
    await Q.audit(conn, actor_id=actor_id, action="sync.public_scope", target=mode, ip=ip,
                  details={"via": via, "source": source, "from": before, "to": mode,
                           "lowered": lowered, "still_public": still,
                           "republished": republished})
    log.warning("SYNC_PUBLIC_SCOPE changed", extra={"from": before, "to": mode,
                                                    "via": via, "still_public": still})
    return {"still_public": still, "lowered": lowered, "republished": republished}


async def apply_mode(pool: asyncpg.Pool, config: Config, *,
                     actor: str = "config") -> dict[str, Any]:
    """At start-up (and before every CLI command): the setting is the node's initial mode.

    The mode in force is written from ``SYNC_PUBLIC_SCOPE`` on a fresh node and whenever
    the setting differs from the one seen last time (the operator changed it: the setting
    wins, audited). With the same setting as last time an admin's choice on /sync/review
    stays in force. Lowering never silently keeps publishing: the answer names how many
    records are still public (the review page lists them with "withdraw all").
    """
    configured = configured_mode(config)
    async with pool.acquire() as conn, conn.transaction():
        await Q.lock_mode_row(conn)
        state = await Q.get_state(conn)
        before = state["mode"] if state is not None else None
        changed = False
        if state is None or state["configured"] != configured:
            await Q.set_mode(conn, configured, configured=configured, source="setting")
            changed = before is not None and before != configured
        extra: dict[str, Any] = {"lowered": False, "republished": 0}
        if changed:
            assert before is not None
            extra = await _change(conn, before, configured, actor_id=None, ip=None,
                                  via=actor, source="setting")
        else:
            extra["still_public"] = len(await Q.public_ids(conn))
        return dict(await _describe(conn), previous=before or configured, changed=changed,
                    **extra)


async def set_mode(pool: asyncpg.Pool, actor: Any, value: object) -> dict[str, Any]:
    """An admin changes the mode in force (page, JSON API, ``wb sync public-scope MODE``).

    It stays in force across restarts until the operator changes ``SYNC_PUBLIC_SCOPE``.
    Audited as ``sync.public_scope`` (who, from, to); choosing the mode in force changes
    nothing and writes nothing."""
    if actor is None or not actor.active or not actor.is_admin:
        raise forbidden("admin_required", "Only an admin may change SYNC_PUBLIC_SCOPE.")
    mode = parse_mode(value)
    async with pool.acquire() as conn, conn.transaction():
        await Q.lock_mode_row(conn)
        before = await current_mode(conn)
        extra: dict[str, Any] = {"lowered": False, "republished": 0}
        if before != mode:
            await Q.set_mode(conn, mode, source="admin", changed_by=actor.user_id)
            extra = await _change(conn, before, mode, actor_id=actor.user_id, ip=actor.ip,
                                  via=actor.via, source="admin")
        else:
            extra["still_public"] = len(await Q.public_ids(conn))
        return dict(await _describe(conn), previous=before, changed=before != mode, **extra)


async def _describe(conn: asyncpg.Connection) -> dict[str, Any]:
    state = await Q.get_state(conn)
    assert state is not None
    return {"mode": state["mode"], "explain": EXPLAIN[state["mode"]],
            "source": state["source"], "configured": state["configured"],
            "changed_by": state["changed_by"], "changed_at": state["changed_at"]}


async def mode_state(conn: asyncpg.Connection) -> dict[str, Any]:
    """The mode in force and where it comes from (for the review page and the CLI)."""
    if await Q.get_state(conn) is None:
        return {"mode": DEFAULT_MODE, "explain": EXPLAIN[DEFAULT_MODE], "source": "setting",
                "configured": None, "changed_by": None, "changed_at": None}
    return await _describe(conn)


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


