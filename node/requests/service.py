"""Domain rules of help requests and comments, shared by pages, the JSON API and the CLI.

One place decides who may see, comment on, complete, reopen or re-scope a record, so
pages and API can never disagree. Writes that touch several rows run in one transaction
together with their audit entry.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from node.errors import AppError, bad_request, conflict, forbidden, not_found
from node.notifications import service as notifications
from node.publication import service as publication
from node.requests import queries as Q
from node.requests.permissions import (  # noqa: F401 (re-exported: RS.<name>)
    MEMBER,
    Actor,
    can_change_scope,
    can_comment,
    can_complete,
    can_moderate,
    can_see_contact,
    can_view,
    permissions,
)
from node.requests.permissions import is_owner as _is_owner
from node.requests.shapes import (  # noqa: F401 (re-exported: RS.<name>)
    comment_json,
    creator_of,
    request_json,
)
from node.sync.outbox_scrub import scrub_outbox
from service.ids import ulid

log = logging.getLogger("wb.node.requests")

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
COMMENT_MAX = 2000
EMAIL_MAX = 254
FEED_PAGE = 20
COMMENTS_PAGE = 50
API_LIMIT_MAX = 100
#: What one unapproved device may post while it waits (its sign-in is rate-limited too).
MAX_PENDING_PER_SIGN_IN = 10
SCOPES = ("private", "public")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[0-9A-Za-z_.:-]{1,80}$")


# --------------------------------------------------------------------------- validation

def clean_title(value: str) -> str:
    """One line: line breaks and runs of whitespace become single spaces."""
    return " ".join(value.split())


def validate_request(title: str, description: str, contact_email: str,
                     sync_scope: str) -> tuple[str, str, str | None, str]:
    title = clean_title(title or "")
    description = (description or "").replace("\r\n", "\n").strip()
    contact = (contact_email or "").strip()
    scope = (sync_scope or "private").strip()
    errors: dict[str, str] = {}
    if not description:
        errors["description"] = "Describe what you need help with."
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = (f"The description is {len(description):,} characters; "
                                 f"the limit is {DESCRIPTION_MAX:,}.")
    if len(title) > TITLE_MAX:
        errors["title"] = f"The title is {len(title):,} characters; the limit is {TITLE_MAX}."
    if contact and (len(contact) > EMAIL_MAX or not _EMAIL.match(contact)):
        errors["contact_email"] = "That does not look like an email address."
    if scope not in SCOPES:
        errors["sync_scope"] = "Choose private or public."
    if errors:
        raise AppError(400, "invalid_request", "Please fix the highlighted fields.",
                       fields=errors)
    return title, description, contact or None, scope


def validate_comment(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise AppError(400, "invalid_comment", "Write something first.",
                       fields={"body": "The comment is empty."})
    if len(body) > COMMENT_MAX:
        raise AppError(400, "invalid_comment", "That comment is too long.",
                       fields={"body": f"The comment is {len(body):,} characters; "
                                       f"the limit is {COMMENT_MAX:,}."})
    return body


def parse_scope(value: str) -> str:
    if value not in SCOPES:
        raise bad_request("invalid_scope", "Scope must be private or public.",
                          sync_scope="Choose private or public.")
    return value


def check_id(value: str) -> str:
    if not _ID.match(value or ""):
        raise not_found("request_not_found", "No such request.")
    return value


# --------------------------------------------------------------------------- cursors

def encode_cursor(created_at: dt.datetime, record_id: str) -> str:
    raw = f"{created_at.astimezone(dt.UTC).isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> Q.Cursor | None:
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        when, _, record_id = raw.partition("|")
        parsed = dt.datetime.fromisoformat(when)
        if parsed.tzinfo is None or not record_id:
            raise ValueError
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise bad_request("invalid_cursor", "That page link is not valid.",
                          cursor="Start again from the first page.") from None
    return parsed, record_id


def parse_limit(value: str | None, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= API_LIMIT_MAX:
        raise bad_request("invalid_limit", f"limit must be between 1 and {API_LIMIT_MAX}.",
                          limit=f"1 to {API_LIMIT_MAX}")
    return n


# --------------------------------------------------------------------------- reads

@dataclass
class FeedPage:
    items: list[asyncpg.Record]
    next_cursor: str | None
    status: str
    search: str
    tag: str = ""


async def feed(pool: asyncpg.Pool, actor: Actor | None, *, status: str = "open",
               search: str = "", cursor: str = "", limit: int = FEED_PAGE,
               tag: str = "") -> FeedPage:
    if actor is not None and not actor.active:
        raise forbidden("session_not_approved", "The feed is for approved members only.")
    if status not in Q.FEED_STATUSES:
        raise bad_request("invalid_status", "Unknown status filter.",
                          status="open, completed, pending or all")
    search = " ".join((search or "").split())[:200]
    tag = (tag or "").strip().lower()[:32]
    before = decode_cursor(cursor)
    rows = await Q.feed(pool, viewer_id=actor.user_id if actor else None,
                        is_admin=bool(actor and actor.is_admin and actor.active),
                        status=status, search=search, before=before, limit=limit + 1,
                        tag=tag)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return FeedPage(rows, next_cursor, status, search, tag)


async def own_pending(pool: asyncpg.Pool, actor: Actor,
                      session_hash: str | None = None) -> list[asyncpg.Record]:
    """An approved member's pending requests; for an unapproved device, only what that
    device wrote (bound to its sign-in request, by ``session_hash``)."""
    if actor.user_id is None:
        return []
    if not actor.active:
        return [] if session_hash is None else await Q.pending_of_session(pool, session_hash)
    return await Q.own_pending(pool, actor.user_id)


async def get_visible(conn: Q.Conn, actor: Actor | None, request_id: str) -> asyncpg.Record:
    row = await Q.get_request(conn, check_id(request_id))
    if row is None or not can_view(actor, row):
        raise not_found("request_not_found", "No such request.")
    return row


@dataclass
class Thread:
    comments: list[asyncpg.Record]
    next_cursor: str | None
    total: int


async def thread(pool: asyncpg.Pool, actor: Actor | None, request_id: str, *,
                 cursor: str = "", limit: int = COMMENTS_PAGE) -> Thread:
    after = decode_cursor(cursor)
    rows = await Q.comments_page(pool, request_id, include_deleted=can_moderate(actor),
                                 after=after, limit=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return Thread(rows, next_cursor, await Q.count_comments(pool, request_id))


# --------------------------------------------------------------------------- writes

async def create_request(pool: asyncpg.Pool, actor: Actor | None, *, title: str,
                         description: str, contact_email: str = "",
                         sync_scope: str = "private",
                         session_hash: str | None = None) -> asyncpg.Record:
    """Post a request. An unapproved device's request waits as ``pending``, bound to that
    device's live sign-in request (``session_hash``): approving that sign-in opens it,
    denying or expiring it discards it."""
    if actor is None or actor.user_id is None:
        raise AppError(401, "login_required", "Sign in first.")
    async with pool.acquire() as conn, conn.transaction():
        request_id = await insert_request_in(conn, actor, title=title,
                                             description=description,
                                             contact_email=contact_email,
                                             sync_scope=sync_scope, session_hash=session_hash)
    row = await Q.get_request(pool, request_id)
    assert row is not None
    return row


async def insert_request_in(conn: asyncpg.Connection, actor: Actor, *, title: str,
                            description: str, contact_email: str = "",
                            sync_scope: str = "private",
                            session_hash: str | None = None) -> str:
    """Post a request inside the caller's transaction (a draft is published and removed in
    one); answers the new request's id."""
    if actor.user_id is None:
        raise AppError(401, "login_required", "Sign in first.")
    title, description, contact, scope = validate_request(title, description, contact_email,
                                                          sync_scope)
    request_id = ulid()
    status = "open" if actor.active else "pending"
    bound = None
    if not actor.active:
        sign_in = await Q.live_sign_in(conn, session_hash) if session_hash else None
        if sign_in is None:
            raise conflict("sign_in_closed", "This device's sign-in request is no longer "
                           "waiting; start a new sign-in before posting.")
        bound = sign_in["id"]
        if await Q.count_bound(conn, bound) >= MAX_PENDING_PER_SIGN_IN:
            raise AppError(429, "pending_limit",
                           f"A device waiting for approval may post at most "
                           f"{MAX_PENDING_PER_SIGN_IN} requests; wait for approval.")
    # SYNC_PUBLIC_SCOPE: "public" at creation passes the same gate as a later change
    # (refused when off; under admins the request starts private and a publication
    # request waits for an admin).
    if scope == "public" and \
            await publication.gate(conn, actor, "request", request_id) != "apply":
        scope = "private"
    await Q.insert_request(conn, request_id=request_id, title=title,
                           description=description, status=status,
                           created_by=actor.user_id, contact_email=contact,
                           sync_scope=scope, auth_request_id=bound)
    log.info("request posted", extra={"request_id": request_id, "status": status})
    return request_id


async def post_comment(pool: asyncpg.Pool, actor: Actor | None, request_id: str,
                       body: str, metrics: Any = None) -> asyncpg.Record:
    req = await get_visible(pool, actor, request_id)
    if actor is None or not actor.active:
        raise forbidden("session_not_approved",
                        "This device is waiting for approval; you can comment once it is "
                        "approved.")
    if not can_comment(actor, req):
        raise forbidden("cannot_comment", "Comments are closed on this request.")
    body = validate_comment(body)
    comment_id = ulid()
    assert actor.user_id is not None
    async with pool.acquire() as conn, conn.transaction():
        await Q.insert_comment(conn, comment_id=comment_id, request_id=req["id"],
                               created_by=actor.user_id, body=body)
        await notifications.comment_posted(conn, comment_id)
    if metrics is not None:
        metrics.comments_posted.inc()
    row = await Q.get_comment(pool, comment_id)
    assert row is not None
    return row


async def complete(pool: asyncpg.Pool, actor: Actor | None, request_id: str,
                   metrics: Any = None) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        req = await get_visible(conn, actor, request_id)
        if req["status"] == "completed":
            raise conflict("already_completed", "This request is already completed.")
        if actor is None or not actor.active:
            raise forbidden("session_not_approved",
                            "This device is waiting for approval; you can complete requests "
                            "once it is approved.")
        if not can_complete(actor, req):
            raise forbidden("cannot_complete",
                            "Only the person who asked, or an admin, may complete this.")
        done = await Q.set_completed(conn, req["id"])
        if done is None:
            raise conflict("not_open", "This request is not open any more.")
        await notifications.request_status_changed(conn, req["id"], actor.user_id)
        if actor.via == "cli" or not _is_owner(actor, req):
            await Q.audit(conn, actor_id=actor.user_id, action="request.complete",
                          target=f"request:{req['id']}", ip=actor.ip, details={"via": actor.via})
    if metrics is not None:
        metrics.completion_seconds.observe(
            max(0.0, (done["completed_at"] - done["created_at"]).total_seconds()))
    log.info("request completed", extra={"request_id": req["id"]})
    row = await Q.get_request(pool, req["id"])
    assert row is not None
    return row


async def reopen(pool: asyncpg.Pool, actor: Actor | None, request_id: str) -> asyncpg.Record:
    """Undo "completed": the request's author (a slip of the thumb) or an admin."""
    if actor is None or not actor.active:
        raise forbidden("session_not_approved", "Only approved members may reopen requests.")
    async with pool.acquire() as conn, conn.transaction():
        req = await Q.get_request(conn, check_id(request_id), for_update=True)
        if req is None:
            raise not_found("request_not_found", "No such request.")
        if not (can_moderate(actor) or _is_owner(actor, req)):
            raise forbidden("cannot_reopen",
                            "Only the request's author or an admin may reopen it.")
        if req["origin"] is not None:
            raise forbidden("remote_record", "Records from other nodes are read-only here.")
        if not await Q.set_reopened(conn, req["id"]):
            raise conflict("not_completed", "Only a completed request can be reopened.")
        await notifications.request_status_changed(conn, req["id"], actor.user_id)
        await Q.audit(conn, actor_id=actor.user_id, action="request.reopen",
                      target=f"request:{req['id']}", ip=actor.ip, details={"via": actor.via})
    row = await Q.get_request(pool, req["id"])
    assert row is not None
    return row


async def moderate_comment(pool: asyncpg.Pool, actor: Actor | None, comment_id: str,
                           *, delete: bool) -> asyncpg.Record:
    if not can_moderate(actor):
        raise forbidden("admin_only", "Only an admin may moderate comments.")
    assert actor is not None
    async with pool.acquire() as conn, conn.transaction():
        comment = await Q.get_comment(conn, check_id(comment_id))
        if comment is None:
            raise not_found("comment_not_found", "No such comment.")
        if comment["origin"] is not None:
            raise forbidden("remote_record", "Records from other nodes are read-only here.")
        if not await Q.set_comment_deleted(conn, comment["id"], delete):
            raise conflict("unchanged", "The comment is already "
                           + ("deleted." if delete else "visible."))
        await Q.audit(conn, actor_id=actor.user_id,
                      action="comment.delete" if delete else "comment.restore",
                      target=f"comment:{comment['id']}", ip=actor.ip,
                      details={"via": actor.via, "request_id": comment["request_id"]})
        await scrub_outbox(conn)
    row = await Q.get_comment(pool, comment["id"])
    assert row is not None
    return row


SCOPE_KINDS = ("request", "comment", "user")


@dataclass(frozen=True)
class ScopeChange:
    """What a scope change did: records changed, and (SYNC_PUBLIC_SCOPE=admins) records
    for which a publication request now waits for an admin."""

    changed: int
    requested: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"changed": self.changed, "requested": list(self.requested)}


async def change_scope(pool: asyncpg.Pool, actor: Actor | None,
                       items: list[tuple[str, str]], scope: str) -> ScopeChange:
    """Set ``scope`` on (kind, id) records in one transaction.

    Every record must be one the actor may re-scope, or nothing changes. Making a record
    public goes through ``node.publication.service.gate`` (SYNC_PUBLIC_SCOPE): refused when
    the mode is ``off``, a publication request instead when it is ``admins`` and the actor
    is not an admin. This is the one function behind the pages, the JSON API, the CLI and
    the copilot tool.
    """
    scope = parse_scope(scope)
    if actor is None or not actor.active:
        raise forbidden("session_not_approved", "Only approved members may change scope.")
    changed = 0
    requested: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        for kind, record_id in items:
            if kind not in SCOPE_KINDS:
                raise bad_request("invalid_item", "Unknown record kind.", item=kind)
            row = await Q.record_owner(conn, kind, check_id(record_id))
            if row is None:
                raise not_found(f"{kind}_not_found", f"No such {kind}.")
            if not can_change_scope(actor, row["owner"], row["origin"]):
                raise forbidden("cannot_change_scope",
                                "Only the owner or an admin may change the scope of this "
                                f"{kind}.")
            if scope == "private":
                await publication.withdrawn(conn, kind, record_id, actor.via)
            if row["sync_scope"] == scope:
                continue
            if scope == "public" and \
                    await publication.gate(conn, actor, kind, record_id) == "requested":
                requested.append(f"{kind}:{record_id}")
                continue
            setter = {"request": Q.set_request_scope, "comment": Q.set_comment_scope,
                      "user": Q.set_user_scope}[kind]
            await setter(conn, record_id, scope)
            await Q.audit(conn, actor_id=actor.user_id, action="scope.change",
                          target=f"{kind}:{record_id}", ip=actor.ip,
                          details={"via": actor.via, "from": row["sync_scope"], "to": scope})
            changed += 1
        await scrub_outbox(conn)  # what was made private leaves no stored bundle again
    return ScopeChange(changed, tuple(requested))


async def set_scope(pool: asyncpg.Pool, actor: Actor | None,
                    items: list[tuple[str, str]], scope: str) -> int:
    """``change_scope``, answering only how many records changed."""
    return (await change_scope(pool, actor, items, scope)).changed
