"""Deciding a waiting sign-in: approve or deny, by whoever may, recorded in the ledger.

Who may decide a sign-in request (its *capacity*, written to the ledger):

- ``own_device``: another signed-in device of the same member, with the code;
- ``admin``: an admin (the code is recommended on /admin/sessions, required on the
  reviewers' queue);
- ``reviewer``: a member an admin gave the reviewer role, for ANOTHER member who is not an
  admin, with the code (read to them through a channel of their own);
- ``inviter``: with ``WB_INVITER_MAY_APPROVE``, whoever invited the member (not an
  admin), with the code;
- ``operator``: ``wb session approve|deny`` at the command line.

A wrong code counts against the request and locks it at ``WB_CODE_MAX_ATTEMPTS``,
whoever typed it. Every approval and denial appends one ledger row in the same
transaction (node.auth.ledger).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from node.auth import ledger
from node.auth import queries as q
from node.auth import queries_review as QR
from node.errors import AppError, bad_request, conflict, not_found
from node.i18n import plural
from service.settings import Config

log = logging.getLogger("wb.node.auth")

MAX_NOTE = 500


def session_lifetime(config: Config) -> dt.timedelta:
    return dt.timedelta(days=config.get_int("WB_SESSION_DAYS"))


@dataclass(frozen=True)
class Decision:
    request_id: str
    user_id: str
    username: str
    status: str  # approved | denied
    promoted_requests: int = 0
    ledger_seq: int = 0


@dataclass(frozen=True)
class Voucher:
    """A member deciding ANOTHER member's sign-in (the reviewers' queue)."""

    user_id: str
    is_admin: bool
    reviewer: bool  # holds the reviewer role
    inviter_may: bool  # WB_INVITER_MAY_APPROVE: may decide for the members they invited

    @property
    def may_review(self) -> bool:
        return self.is_admin or self.reviewer or self.inviter_may


def voucher(user_id: str, *, is_admin: bool, roles: Any, config: Config) -> Voucher:
    """The voucher of an active member; 403 ``reviewer_only`` when they may decide nobody's
    sign-in (not an admin, not a reviewer, and inviters may not approve on this node)."""
    v = Voucher(user_id, is_admin, "reviewer" in roles,
                config.get_bool("WB_INVITER_MAY_APPROVE"))
    if not v.may_review:
        raise AppError(403, "reviewer_only", "Only reviewers and admins approve other "
                       "members' sign-ins. Ask an admin to name you a reviewer.")
    return v


def capacity_for(req: asyncpg.Record, v: Voucher) -> str:
    """In whose name ``v`` may decide ``req``, or the refusal."""
    if req["user_id"] == v.user_id:
        raise AppError(403, "own_sign_in", "Approve your own sign-in from a device where you "
                       "are signed in (Approve my device), or ask an admin or a reviewer.")
    if v.is_admin:
        return "admin"
    if req["is_admin"]:
        raise AppError(403, "admin_sign_in", "An admin's sign-in is approved by another "
                       "admin or by one of that admin's own devices, never by a reviewer.")
    if v.reviewer:
        return "reviewer"
    if v.inviter_may and req["invited_by"] == v.user_id:
        return "inviter"
    raise _unknown(req["id"])  # not in this member's queue: as if it did not exist


def clean_note(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request("invalid_field", "note must be text.", note="must be text")
    value = value.strip()
    if len(value) > MAX_NOTE:
        raise bad_request("invalid_field", "The note is too long.",
                          note=f"at most {MAX_NOTE} characters")
    return value


class WrongCode(AppError):
    def __init__(self, attempts_left: int, locked: bool):
        if locked:
            super().__init__(423, "request_locked",
                             "Too many wrong codes: this sign-in request is locked. "
                             "Start a new sign-in on the other device.")
        else:
            super().__init__(400, "wrong_code",
                             "That code is not right. " + plural(
                                 attempts_left, "%(num)d attempt left.",
                                 "%(num)d attempts left."),
                             fields={"code": "does not match"})
        self.locked = locked


def _unknown(request_id: str) -> AppError:
    return not_found("unknown_request", f"No sign-in request {request_id!r}.")


def _not_pending(req: asyncpg.Record) -> AppError:
    status = req["status"]
    if status == "pending":
        status = "expired"
    return conflict(f"request_{status}", f"This sign-in request is {status}; "
                    "start a new sign-in on the other device.")


def _capacity(req: asyncpg.Record, actor_id: str | None, same_member: str | None,
              vouch: Voucher | None) -> str:
    if same_member is not None:
        if req["user_id"] != same_member:
            raise _unknown(req["id"])
        return "own_device"
    if vouch is not None:
        return capacity_for(req, vouch)
    return "admin" if actor_id is not None else "operator"


async def approve(pool: asyncpg.Pool, config: Config, request_id: str, *,
                  actor_id: str | None, ip: str | None, code: str | None = None,
                  same_member: str | None = None, via: str = "web",
                  vouch: Voucher | None = None, note: Any = None) -> Decision:
    """Approve a login request and make its session fully authenticated.

    ``same_member`` (the approving member's id) restricts approval to that member's own
    requests and requires the code; ``vouch`` is another member deciding (reviewer,
    inviter, or an admin on the reviewers' queue) and requires the code too; admins on
    /admin/sessions and the CLI pass neither and may pass a code to check it. A wrong
    code counts an attempt and locks at the limit.
    """
    if (same_member is not None or vouch is not None) and not code:
        # (not bad_request(): its first parameter is already called ``code``)
        raise AppError(400, "code_required", "Enter the code shown on the other device.",
                       fields={"code": "required"})
    note = clean_note(note)
    max_attempts = config.get_int("WB_CODE_MAX_ATTEMPTS")
    wrong: WrongCode | None = None
    async with pool.acquire() as conn, conn.transaction():
        req = await q.auth_request(conn, request_id, for_update=True)
        if req is None:
            raise _unknown(request_id)
        capacity = _capacity(req, actor_id, same_member, vouch)
        if req["status"] != "pending" or req["expires_at"] <= dt.datetime.now(dt.UTC):
            raise _not_pending(req)
        if code is not None and code != "":
            given = code.strip().replace(" ", "") if isinstance(code, str) else ""
            if not hmac.compare_digest(given.encode(), req["code"].encode()):
                row = await q.count_wrong_code(conn, request_id, max_attempts)
                locked = row is not None and row["status"] == "locked"
                left = max(0, max_attempts - (row["attempts"] if row else max_attempts))
                await q.audit(conn, "login.lock" if locked else "login.wrong_code",
                              actor_id=actor_id, target=request_id, ip=ip,
                              details={"attempts": row["attempts"] if row else None,
                                       "via": via, "by": capacity})
                wrong = WrongCode(left, locked)
        if wrong is None:
            if await q.decide_auth_request(conn, request_id, "approved", actor_id) is None:
                raise _not_pending(req)
            if not await q.activate_session(conn, req["session_hash"], session_lifetime(config)):
                raise conflict("session_gone", "The device that asked to sign in has signed "
                               "out or expired; start a new sign-in there.")
            promoted = await q.promote_pending_requests(conn, request_id)
            entry = await ledger.append(
                conn, request_id=request_id, member_id=req["user_id"], member=req["username"],
                reviewer_id=actor_id, capacity=capacity, decision="approved", note=note)
            await q.audit(conn, "login.approve", actor_id=actor_id, target=request_id, ip=ip,
                          details={"user_id": req["user_id"], "via": via,
                                   "by": capacity,
                                   "ledger": entry["seq"]})
    if wrong is not None:  # the attempt count is committed; now tell the client
        raise wrong
    log.info("login approved", extra={"request_id": request_id, "via": via, "by": capacity})
    return Decision(request_id=request_id, user_id=req["user_id"], username=req["username"],
                    status="approved", promoted_requests=promoted, ledger_seq=entry["seq"])


async def deny(pool: asyncpg.Pool, request_id: str, *, actor_id: str | None, ip: str | None,
               same_member: str | None = None, via: str = "web",
               vouch: Voucher | None = None, note: Any = None) -> Decision:
    """Deny a login request and revoke its half-authenticated session."""
    note = clean_note(note)
    async with pool.acquire() as conn, conn.transaction():
        req = await q.auth_request(conn, request_id, for_update=True)
        if req is None:
            raise _unknown(request_id)
        capacity = _capacity(req, actor_id, same_member, vouch)
        if await q.decide_auth_request(conn, request_id, "denied", actor_id) is None:
            raise _not_pending(req)
        await q.revoke_session(conn, req["session_hash"])
        discarded = await q.discard_pending_requests(conn, request_id)
        entry = await ledger.append(
            conn, request_id=request_id, member_id=req["user_id"], member=req["username"],
            reviewer_id=actor_id, capacity=capacity, decision="denied", note=note)
        await q.audit(conn, "login.deny", actor_id=actor_id, target=request_id, ip=ip,
                      details={"user_id": req["user_id"], "via": via, "by": capacity,
                               "discarded_requests": discarded, "ledger": entry["seq"]})
    log.info("login denied", extra={"request_id": request_id, "via": via, "by": capacity})
    return Decision(request_id=request_id, user_id=req["user_id"], username=req["username"],
                    status="denied", ledger_seq=entry["seq"])


async def review_queue(pool: asyncpg.Pool, v: Voucher) -> list[dict[str, Any]]:
    """The sign-ins ``v`` may decide, oldest first, as reviewers see them: never the code
    nor the address the device came from."""
    rows = await QR.review_queue(pool, viewer_id=v.user_id, is_admin=v.is_admin,
                                 reviewer=v.reviewer, inviter_may=v.inviter_may)
    return [{"id": r["id"], "username": r["username"], "display_name": r["display_name"],
             "created_at": r["created_at"], "expires_at": r["expires_at"],
             "attempts": r["attempts"], "user_agent": r["user_agent"],
             "member_since": r["member_since"], "invited_by_me": r["invited_by_me"],
             "inviter": r["inviter_name"] or r["inviter_username"],
             "capacity": "admin" if v.is_admin else
             ("reviewer" if v.reviewer else "inviter")} for r in rows]


async def approvers(pool: asyncpg.Pool, config: Config, user_id: str) -> dict[str, Any]:
    """Who besides the member's own devices and the admins may let ``user_id`` in (names
    only): the reviewers and, when enabled, the inviter."""
    found = await QR.approvers_of(pool, user_id)
    if not config.get_bool("WB_INVITER_MAY_APPROVE"):
        found["inviter"] = None
    return found
