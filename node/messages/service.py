"""Rules of direct messages, shared by pages, the JSON API, the live stream and the CLI.

- Off unless the operator sets ``WB_MESSAGES=true`` (every route answers 404
  ``messages_disabled``; the CLI's report queue still works).
- Full members only: the route policy refuses anonymous visitors and unapproved devices;
  a disabled (suspended) account has no session and cannot be written to.
- A conversation is between two members; only they read its messages. Admins read a
  message's body only once its recipient reported it (the report queue), never a
  conversation.
- A member blocks another: neither can write to the other; the blocked one is told only
  that the message could not be delivered.
- Messages never leave the node: nothing here is change-tracked, exported, fed, logged
  (no bodies in log lines) or readable by the copilot.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

import asyncpg

from node.errors import AppError, bad_request, conflict, not_found, text_field
from node.messages import queries as Q
from node.messages.live import Notifier
from service.ids import ulid
from service.ratelimit import RateLimiter
from service.settings import Config

log = logging.getLogger("wb.node.messages")

BODY_MAX = 4000
REASON_MAX = 500
INBOX_LIMIT = 200
PAGE_MESSAGES = 200
REPORTS_LIMIT = 500
_ID = re.compile(r"^[0-9A-Za-z]{1,40}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def enabled(config: Config) -> bool:
    return config.get_bool("WB_MESSAGES")


def require_enabled(config: Config) -> None:
    if not enabled(config):
        raise not_found("messages_disabled",
                        "Direct messages are not switched on in this community.")


def _check_id(value: str, code: str = "conversation_not_found") -> str:
    if not _ID.match(value or ""):
        raise not_found(code, "No such conversation." if code == "conversation_not_found"
                        else "No such message.")
    return value


def _has_controls(text: str) -> bool:
    """NUL and other control characters, lone surrogates (PostgreSQL refuses some; none
    is ever meant); emoji joiners and other format characters are fine."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in text)


def clean_body(value: Any) -> str:
    body = text_field(value, "body").replace("\r\n", "\n").strip()
    if not body:
        raise bad_request("invalid_message", "Write a message first.",
                          body="Write a message first.")
    if _has_controls(body):
        raise bad_request("invalid_message", "The message contains characters that cannot "
                          "be shown.", body="Remove the control characters.")
    if len(body) > BODY_MAX:
        raise bad_request("message_too_long",
                          f"A message has at most {BODY_MAX:,} characters.",
                          body=f"{len(body):,} characters; the limit is {BODY_MAX:,}.")
    return body


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


async def recipient(pool: asyncpg.Pool, sender_id: str, username: Any) -> asyncpg.Record:
    name = text_field(username, "to").strip().lstrip("@")
    if not _USERNAME.match(name):
        raise bad_request("recipient_not_found", "Name the member to write to.",
                          to="Choose a member.")
    row = await Q.member_by_username(pool, name)
    if row is None:
        raise not_found("recipient_not_found", "No member by that name.")
    if row["id"] == sender_id:
        raise bad_request("message_self", "You cannot write to yourself.",
                          to="Choose another member.")
    return row


async def _check_blocks(conn: asyncpg.Connection, sender_id: str, recipient_id: str) -> None:
    row = await Q.block_between(conn, sender_id, recipient_id)
    if row is None:
        return
    if row["blocker_id"] == sender_id:
        raise conflict("member_blocked", "You blocked this member; unblock them to write.")
    # neutral: the blocked member learns nothing more than that it did not go through
    raise AppError(403, "message_refused", "This message could not be delivered.")


async def send(pool: asyncpg.Pool, sender_id: str, *, body: Any, to: Any = None,
               thread_id: str | None = None, limiter: RateLimiter | None = None,
               rate: int = 0, notifier: Notifier | None = None) -> asyncpg.Record:
    """Write a message to ``to`` (a username) or into conversation ``thread_id``."""
    text = clean_body(body)
    if thread_id is not None:
        thread = await Q.thread_of(pool, _check_id(thread_id), sender_id)
        if thread is None:
            raise not_found("conversation_not_found", "No such conversation.")
        other = await Q.member_by_id(pool, thread["other_id"])
        if other is None:  # the other account was disabled or deleted
            raise AppError(403, "message_refused", "This message could not be delivered.")
    else:
        other = await recipient(pool, sender_id, to)
    if limiter is not None and rate > 0 and not limiter.allow(f"dm:{sender_id}", rate):
        raise AppError(429, "message_rate_limited",
                       "You are sending messages too quickly; wait a minute.")
    low, high = _pair(sender_id, other["id"])
    async with pool.acquire() as conn, conn.transaction():
        await _check_blocks(conn, sender_id, other["id"])
        tid = await Q.thread_for_pair(conn, ulid(), low, high)
        row = await Q.insert_message(conn, message_id=ulid(), thread_id=tid,
                                     sender_id=sender_id, recipient_id=other["id"], body=text)
    log.info("message sent", extra={"conversation_id": tid, "message_id": row["id"]})
    if notifier is not None:
        notifier.wake(sender_id, other["id"])
    return row


async def inbox(pool: asyncpg.Pool, member_id: str) -> list[asyncpg.Record]:
    return await Q.inbox(pool, member_id, INBOX_LIMIT)


async def conversation(pool: asyncpg.Pool, member_id: str, thread_id: str, *,
                       notifier: Notifier | None = None,
                       ) -> tuple[asyncpg.Record, list[asyncpg.Record], int]:
    """A conversation opened by one of its members: its messages, now read (and how many
    were unread)."""
    thread = await Q.thread_of(pool, _check_id(thread_id), member_id)
    if thread is None:  # someone else's conversation looks exactly like none
        raise not_found("conversation_not_found", "No such conversation.")
    rows = await Q.messages_of(pool, thread["id"], member_id, limit=PAGE_MESSAGES)
    marked = await Q.mark_read(pool, thread["id"], member_id)
    if marked and notifier is not None:
        notifier.wake(member_id)  # the member's other tabs update their count
    return thread, rows, marked


async def conversation_exists(pool: asyncpg.Pool, member_id: str, thread_id: str) -> None:
    if await Q.thread_of(pool, _check_id(thread_id), member_id) is None:
        raise not_found("conversation_not_found", "No such conversation.")


async def newer(pool: asyncpg.Pool, member_id: str, thread_id: str,
                after_seq: int) -> list[asyncpg.Record]:
    """Messages of an open conversation after ``after_seq`` (read now: it is open)."""
    rows = await Q.messages_of(pool, thread_id, member_id, after_seq=after_seq,
                               limit=PAGE_MESSAGES)
    if rows:
        await Q.mark_read(pool, thread_id, member_id)
    return rows


async def session_alive(pool: asyncpg.Pool, session_hash: str) -> bool:
    return await Q.session_alive(pool, session_hash)


async def unread(pool: asyncpg.Pool, member_id: str) -> int:
    return await Q.unread_count(pool, member_id)


async def existing_thread(pool: asyncpg.Pool, member_id: str, other_id: str) -> str | None:
    return await Q.thread_with(pool, *_pair(member_id, other_id))


async def has_blocked(pool: asyncpg.Pool, member_id: str, other_id: str) -> bool:
    return await Q.has_blocked(pool, member_id, other_id)


# ------------------------------------------------------------------------------ blocks

async def block(pool: asyncpg.Pool, member_id: str, username: Any) -> asyncpg.Record:
    other = await _someone(pool, member_id, username)
    await Q.block(pool, member_id, other["id"])
    log.info("member blocked", extra={"blocker": member_id, "blocked": other["id"]})
    return other


async def unblock(pool: asyncpg.Pool, member_id: str, username: Any) -> asyncpg.Record:
    other = await _someone(pool, member_id, username)
    await Q.unblock(pool, member_id, other["id"])
    return other


async def _someone(pool: asyncpg.Pool, member_id: str, username: Any) -> asyncpg.Record:
    name = text_field(username, "username").strip().lstrip("@")
    row = await Q.member_by_username(pool, name) if _USERNAME.match(name) else None
    if row is None:
        raise not_found("recipient_not_found", "No member by that name.")
    if row["id"] == member_id:
        raise bad_request("block_self", "You cannot block yourself.")
    return row


async def blocked(pool: asyncpg.Pool, member_id: str) -> list[asyncpg.Record]:
    return await Q.blocked_by(pool, member_id)


# ----------------------------------------------------------------------------- reports

async def report(pool: asyncpg.Pool, member_id: str, message_id: Any,
                 reason: Any = "") -> dict[str, Any]:
    """The recipient reports a message: admins may read that message's body."""
    mid = _check_id(text_field(message_id, "message_id").strip(), "direct_message_not_found")
    text = text_field(reason, "reason").strip()
    if len(text) > REASON_MAX or _has_controls(text):
        raise bad_request("invalid_report", f"A reason has at most {REASON_MAX} characters "
                          "and no control characters.",
                          reason=f"At most {REASON_MAX} characters.")
    message = await Q.message_for_recipient(pool, mid, member_id)
    if message is None:
        # one's own message, someone else's, or none: all alike
        raise not_found("direct_message_not_found", "No such message.")
    row = await Q.insert_report(pool, report_id=ulid(), message_id=mid,
                                reporter_id=member_id, reason=text)
    log.info("message reported", extra={"report_id": row["id"], "message_id": mid})
    return {"id": row["id"], "message_id": mid, "created_at": row["created_at"],
            "conversation_id": message["thread_id"]}


async def reports(pool: asyncpg.Pool, *, open_only: bool = True) -> list[asyncpg.Record]:
    """The admins' queue (the caller checked the admin): reported messages only."""
    return await Q.reports(pool, open_only=open_only, limit=REPORTS_LIMIT)


async def resolve(pool: asyncpg.Pool, admin_id: str | None, report_id: str,
                  resolution: Any = "") -> asyncpg.Record:
    rid = report_id if _ID.match(report_id or "") else None
    text = text_field(resolution, "resolution").strip()
    if len(text) > REASON_MAX or _has_controls(text):
        raise bad_request("invalid_report", f"A note has at most {REASON_MAX} characters "
                          "and no control characters.",
                          resolution=f"At most {REASON_MAX} characters.")
    row = await Q.resolve_report(pool, rid, admin_id, text) if rid else None
    if row is None:
        if rid and await Q.report_exists(pool, rid):
            raise conflict("report_resolved", "This report is resolved already.")
        raise not_found("report_not_found", "No such report.")
    log.info("message report resolved", extra={"report_id": rid})
    return row


# -------------------------------------------------------------------------------- JSON

def message_json(row: Any, member_id: str) -> dict[str, Any]:
    return {"id": row["id"], "seq": row["seq"], "conversation_id": row["thread_id"],
            "mine": row["sender_id"] == member_id, "body": row["body"],
            "created_at": row["created_at"], "read_at": row["read_at"]}


def thread_json(row: Any) -> dict[str, Any]:
    out = {"id": row["id"], "with": {"username": row["other_username"],
                                     "name": row["other_name"]},
           "last_message_at": row["last_message_at"]}
    if "unread" in row.keys():
        out["unread"] = row["unread"]
    return out


def report_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "message_id": row["message_id"], "body": row["body"],
            "sender": row["sender"], "reporter": row["reporter"], "reason": row["reason"],
            "sent_at": row["sent_at"], "created_at": row["created_at"],
            "resolved_at": row["resolved_at"], "resolved_by": row["resolved_by"],
            "resolution": row["resolution"]}
