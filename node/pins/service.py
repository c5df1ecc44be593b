"""Rules of pinned requests, shared by pages, the JSON API and the CLI.

Admins pin up to ``WB_PINNED_REQUESTS_LIMIT`` requests (ended pins do not count), each with
a position, an optional short note and an optional end. Pins are local: the table has no
change tracking, so no export, hub answer, feed or copilot tool ever reads it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from node.errors import bad_request, conflict, forbidden, not_found
from node.pins import queries as Q
from node.requests import service as RS

NOTE_MAX = 120
POSITION_MAX = 1000


def may_pin(actor: RS.Actor | None) -> bool:
    return actor is not None and actor.active and actor.is_admin


def parse_position(value: Any) -> int:
    if value in (None, ""):
        return 1
    try:
        position = int(value)
    except (TypeError, ValueError):
        raise bad_request("invalid_position", "The position is a whole number.",
                          position="A whole number from 1.") from None
    if not 1 <= position <= POSITION_MAX:
        raise bad_request("invalid_position", f"The position is from 1 to {POSITION_MAX}.",
                          position=f"From 1 to {POSITION_MAX}.")
    return position


def parse_ends_at(value: Any, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """An ISO date (the pin ends at the start of the next day, UTC) or date-time; empty: never."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad_request("invalid_ends_at", "ends_at is an ISO date or date-time.",
                          ends_at="A date like 2026-12-31.")
    now = now or dt.datetime.now(dt.UTC)
    try:
        if len(value) == 10:
            ends = dt.datetime.combine(dt.date.fromisoformat(value) + dt.timedelta(days=1),
                                       dt.time(), dt.UTC)
        else:
            ends = dt.datetime.fromisoformat(value)
            if ends.tzinfo is None:
                ends = ends.replace(tzinfo=dt.UTC)
    except ValueError:
        raise bad_request("invalid_ends_at", "ends_at is an ISO date or date-time.",
                          ends_at="A date like 2026-12-31.") from None
    if ends <= now:
        raise bad_request("ends_at_past", "The end of a pin lies in the future.",
                          ends_at="Choose a later date.")
    return ends


def clean_note(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request("invalid_field", "note must be a string.", note="Not text.")
    note = " ".join(value.split())
    if len(note) > NOTE_MAX:
        raise bad_request("note_too_long", f"A pin's note has at most {NOTE_MAX} characters.",
                          note=f"At most {NOTE_MAX} characters.")
    return note


async def pin(pool: asyncpg.Pool, actor: RS.Actor | None, request_id: str, *, limit: int,
              position: Any = None, note: Any = None, ends_at: Any = None) -> asyncpg.Record:
    if not may_pin(actor):
        raise forbidden("pin_forbidden", "Only admins pin requests.")
    assert actor is not None
    values = {"position": parse_position(position), "note": clean_note(note),
              "ends_at": parse_ends_at(ends_at)}
    async with pool.acquire() as conn, conn.transaction():
        req = await RS.get_visible(conn, actor, request_id)
        if req["status"] != "open" or req["deleted_at"] is not None:
            raise conflict("request_not_open", "Only open requests can be pinned.")
        await Q.lock(conn)
        if await Q.count_active(conn, excluding=req["id"]) >= limit:
            raise conflict("pin_limit_reached",
                           f"At most {limit} requests can be pinned; unpin one first.")
        row = await Q.upsert(conn, request_id=req["id"], pinned_by=actor.user_id, **values)
        await Q.audit(conn, actor_id=actor.user_id, action="request.pin", target=req["id"],
                      ip=actor.ip, details={"position": values["position"], "via": actor.via})
    return row


async def unpin(pool: asyncpg.Pool, actor: RS.Actor | None, request_id: str) -> None:
    if not may_pin(actor):
        raise forbidden("pin_forbidden", "Only admins pin requests.")
    assert actor is not None
    async with pool.acquire() as conn, conn.transaction():
        if not await Q.delete(conn, RS.check_id(request_id)):
            raise not_found("pin_not_found", "This request is not pinned.")
        await Q.audit(conn, actor_id=actor.user_id, action="request.unpin", target=request_id,
                      ip=actor.ip, details={"via": actor.via})


async def active(pool: asyncpg.Pool, actor: RS.Actor | None) -> list[asyncpg.Record]:
    """The pins a member sees above the feed (nothing for anyone else)."""
    if actor is None or not actor.active:
        return []
    return await Q.active(pool)


async def overview(pool: asyncpg.Pool, actor: RS.Actor | None) -> list[asyncpg.Record]:
    if not may_pin(actor):
        raise forbidden("pin_forbidden", "Only admins manage pins.")
    return await Q.all_pins(pool)


def pin_json(row: Any) -> dict[str, Any]:
    out = {"request_id": row["request_id"], "position": row["position"], "note": row["note"],
           "ends_at": row["ends_at"].isoformat() if row["ends_at"] else None}
    if "title" in row.keys():
        out.update(title=row["title"], status=row["status"],
                   pinned_by=row["pinned_by_username"])
    if "running" in row.keys():
        out["running"] = row["running"]
    return out
