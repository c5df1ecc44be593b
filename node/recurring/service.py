"""Rules of recurring request templates, shared by pages, the JSON API, the CLI and the job.

A template belongs to the house manager who wrote it (admins hold every role and see and
manage every template). It is local: never exported, fed, sent to a hub or shown to the
copilot; only what it makes becomes a record, a draft in its owner's drafts (mode
``draft``) or a request posted in the owner's name (mode ``publish``), which passes the same
SYNC_PUBLIC_SCOPE gate as any new request.

``materialise_due`` (the ``recurring:materialise`` job, ``wb recurring run``) makes each
template's latest due occurrence once: the occurrence row (UNIQUE template, start) is
inserted with ON CONFLICT DO NOTHING in the same transaction that creates the draft or the
request, so two processes, a retry or a restart make it once, and a run that dies midway
leaves neither. After downtime only the latest missed occurrence is made (never a burst);
the ones before it are counted in its log note. Creating, resuming or re-timing a template
starts it afresh from that moment (``anchor_at``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from node.drafts import queries as DQ
from node.drafts import service as DS
from node.errors import AppError, conflict, forbidden, not_found
from node.publication import service as publication
from node.recurring import cadence as C
from node.recurring import queries as Q
from node.requests import queries as RQ
from node.requests import service as RS
from node.tags import queries as TQ
from node.tags import service as TS
from service.ids import ulid
from service.settings import Config

log = logging.getLogger("wb.node.recurring")

ROLE = "house_manager"
MODES = ("draft", "publish")
MAX_TEMPLATES = 50
LOG_LIMIT = 50
#: ``app[T.extras_key][CLOCK]``: the job's clock (tests inject one; nobody sleeps)
CLOCK = "recurring_clock"
_ID = re.compile(r"^[0-9A-Za-z]{1,40}$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(:[0-5]\d)?$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def zone_of(config: Config) -> ZoneInfo:
    return C.zone_named(config["WB_TIME_ZONE"])


# --------------------------------------------------------------------------- permissions

def require_manager(actor: RS.Actor | None) -> RS.Actor:
    if actor is None or (actor.user_id is None and actor.via != "cli"):
        raise AppError(401, "login_required", "Sign in first.")
    if not actor.active:
        raise forbidden("session_not_approved", "Recurring requests are for approved members.")
    if not actor.has_role(ROLE):
        raise forbidden("house_manager_only",
                        "Only house managers (and admins) keep recurring requests.")
    return actor


def _check_id(value: str) -> str:
    if not _ID.match(value or ""):
        raise not_found("recurring_not_found", "No such recurring request.")
    return value


async def _visible(conn: Q.Conn, actor: RS.Actor, template_id: str, *,
                   for_update: bool = False) -> asyncpg.Record:
    row = await Q.get(conn, _check_id(template_id), for_update=for_update)
    if row is None or not (actor.is_admin or row["owner_id"] == actor.user_id):
        raise not_found("recurring_not_found", "No such recurring request.")
    return row


async def _audit_other(conn: asyncpg.Connection, actor: RS.Actor, row: Any,
                       action: str) -> None:
    """An admin (or the CLI) acting on someone else's template is audited."""
    if actor.user_id != row["owner_id"]:
        await RQ.audit(conn, actor_id=actor.user_id, action=f"recurring.{action}",
                       target=f"recurring:{row['id']}", ip=actor.ip,
                       details={"via": actor.via, "owner": row["owner_username"]})


# --------------------------------------------------------------------------- validation

def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise AppError(400, "invalid_field", f"{name} must be text.", fields={name: "Not text."})
    return str(value)


def _list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name) or []
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple) or \
            not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise AppError(400, "invalid_field", f"{name} must be a list.",
                       fields={name: "A list."})
    return [str(v).strip().lower() for v in value if str(v).strip()]


def _number(value: str) -> int | None:
    """A short number in ASCII digits, else None: ``str.isdigit`` also accepts "²" and
    other digits ``int`` refuses, and ``int`` refuses more than 4300 digits (a 500 each)."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 4 else None


def _weekdays(values: list[str]) -> tuple[int, ...] | None:
    by_name = {v: k for k, v in C.WEEKDAYS.items()}
    by_name.update({v.lower(): k for k, v in C.WEEKDAY_NAMES.items()})
    days = set()
    for v in values:
        day = _number(v) if v.isdigit() else by_name.get(v)
        if day not in C.WEEKDAYS:
            return None
        days.add(day)
    return tuple(sorted(days)) or None


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The template's fields, or a 400 naming every bad field. Its code is the first bad
    cadence field's (``invalid_cadence``, ``invalid_weekdays``, ``invalid_month_day``,
    ``invalid_time_of_day``, ``invalid_mode``), else ``invalid_recurring``."""
    errors: dict[str, tuple[str, str]] = {}
    kind = _text(data, "cadence").strip().lower()
    weekdays: tuple[int, ...] = ()
    month_day: int | None = None
    if kind not in C.CADENCES:
        errors["cadence"] = ("invalid_cadence", "Choose daily, weekly or monthly.")
    elif kind == "weekly":
        days = _weekdays(_list(data, "weekdays"))
        if days is None:
            errors["weekdays"] = ("invalid_weekdays", "Choose at least one day of the week.")
        else:
            weekdays = days
    elif kind == "monthly":
        raw = _text(data, "month_day").strip()
        if not 1 <= (_number(raw) or 0) <= 31:
            errors["month_day"] = ("invalid_month_day", "A day of the month, 1 to 31.")
        else:
            month_day = _number(raw)
    match = _TIME.match(_text(data, "time_of_day").strip())
    if match is None:
        errors["time_of_day"] = ("invalid_time_of_day", "A time of day such as 08:30.")
    mode = (_text(data, "mode").strip().lower() or "draft")
    if mode not in MODES:
        errors["mode"] = ("invalid_mode", "Choose draft (for review) or publish.")
    title = RS.clean_title(_text(data, "title"))
    description = _text(data, "description").replace("\r\n", "\n").strip()
    contact = _text(data, "contact_email").strip()
    scope = (_text(data, "sync_scope") or "private").strip()
    if not description:
        errors["description"] = ("invalid_recurring", "Describe what is needed each time.")
    elif len(description) > RS.DESCRIPTION_MAX:
        errors["description"] = ("invalid_recurring", f"The description is "
                                 f"{len(description):,} characters; the limit is "
                                 f"{RS.DESCRIPTION_MAX:,}.")
    if len(title) > RS.TITLE_MAX:
        errors["title"] = ("invalid_recurring", f"The title is {len(title):,} characters; "
                           f"the limit is {RS.TITLE_MAX}.")
    try:
        RS.validate_request(title, "x", contact, "private")
    except AppError:
        errors["contact_email"] = ("invalid_recurring", "That does not look like an email "
                                   "address.")
    if scope not in RS.SCOPES:
        errors["sync_scope"] = ("invalid_recurring", "Choose private or public.")
    tags = sorted(set(_list(data, "tags")))
    if errors:
        code = next(iter(errors.values()))[0]
        raise AppError(400, code, "Please fix the highlighted fields.",
                       fields={k: v[1] for k, v in errors.items()})
    assert match is not None
    for tag in tags:
        TS.parse_name(tag)
    if len(tags) > TS.MAX_PER_REQUEST:
        raise AppError(400, "too_many_tags", f"A request carries at most "
                       f"{TS.MAX_PER_REQUEST} tags.", fields={"tags": "Too many."})
    return {"title": title, "description": description, "contact_email": contact,
            "tags": tags, "sync_scope": scope, "cadence": kind, "weekdays": list(weekdays),
            "month_day": month_day, "mode": mode,
            "time_of_day": dt.time(int(match.group(1)), int(match.group(2)))}


async def _check_in(conn: asyncpg.Connection, values: dict[str, Any]) -> None:
    unknown = sorted(set(values["tags"]) - await TQ.known(conn, values["tags"]))
    if unknown:
        raise AppError(400, "unknown_tag", f"Not in this community's list: "
                       f"{', '.join(unknown)}.", fields={"tags": "Choose from the list."})
    if values["sync_scope"] == "public" and await publication.current_mode(conn) == "off":
        raise forbidden("public_scope_off", "This node publishes nothing "
                        "(SYNC_PUBLIC_SCOPE=off); a recurring request cannot be public.")


# --------------------------------------------------------------------------- writes

async def save(pool: asyncpg.Pool, actor: RS.Actor | None, data: dict[str, Any],
               template_id: str | None = None, *, now: dt.datetime | None = None) -> str:
    """Create (``template_id`` None) or edit a template; answers its id."""
    actor = require_manager(actor)
    if template_id is not None:  # someone else's template: 404 whatever the fields say
        await _visible(pool, actor, template_id)
    values = validate(data)
    now = now or utcnow()
    async with pool.acquire() as conn, conn.transaction():
        await _check_in(conn, values)
        if template_id is not None:
            row = await _visible(conn, actor, template_id, for_update=True)
            await Q.update(conn, template_id=row["id"], now=now, values=values)
            await _audit_other(conn, actor, row, "update")
            return row["id"]
        if actor.user_id is None:
            raise AppError(401, "login_required", "A recurring request belongs to a "
                           "member; sign in to create one.")
        await Q.lock_owner(conn, actor.user_id)
        if await Q.count_for(conn, actor.user_id) >= MAX_TEMPLATES:
            raise conflict("recurring_limit", f"You keep {MAX_TEMPLATES} recurring requests "
                           "already; delete one first.")
        new_id = ulid()
        await Q.insert(conn, template_id=new_id, owner_id=actor.user_id, now=now,
                       values=values)
    log.info("recurring request created", extra={"template_id": new_id})
    return new_id


async def set_paused(pool: asyncpg.Pool, actor: RS.Actor | None, template_id: str,
                     paused: bool, *, now: dt.datetime | None = None) -> asyncpg.Record:
    """Pause, or resume from now (occurrences due while paused are never made)."""
    actor = require_manager(actor)
    async with pool.acquire() as conn, conn.transaction():
        row = await _visible(conn, actor, template_id, for_update=True)
        await Q.set_paused(conn, row["id"], paused, now or utcnow())
        await _audit_other(conn, actor, row, "pause" if paused else "resume")
    return await get(pool, actor, row["id"])


async def delete(pool: asyncpg.Pool, actor: RS.Actor | None, template_id: str) -> None:
    """Delete a template and its log; what it made stays (drafts, requests)."""
    actor = require_manager(actor)
    async with pool.acquire() as conn, conn.transaction():
        row = await _visible(conn, actor, template_id, for_update=True)
        await Q.delete(conn, row["id"])
        await _audit_other(conn, actor, row, "delete")


# --------------------------------------------------------------------------- reads

async def get(pool: asyncpg.Pool, actor: RS.Actor | None, template_id: str) -> asyncpg.Record:
    return await _visible(pool, require_manager(actor), template_id)


async def overview(pool: asyncpg.Pool, actor: RS.Actor | None) -> list[asyncpg.Record]:
    """The actor's templates (every template for an admin or the CLI)."""
    actor = require_manager(actor)
    return await Q.list_for(pool, None if actor.is_admin else actor.user_id)


async def history(pool: asyncpg.Pool, actor: RS.Actor | None, template_id: str,
                  limit: int = LOG_LIMIT) -> list[asyncpg.Record]:
    row = await get(pool, actor, template_id)
    return await Q.log(pool, row["id"], limit)


# --------------------------------------------------------------------------- the job

def _refusal(t: Any) -> str:
    if t["owner_gone"]:
        return "skipped: the owner's account is disabled"
    if not (t["owner_is_admin"] or t["owner_is_manager"]):
        return "skipped: the owner is no longer a house manager"
    return ""


async def _make(conn: asyncpg.Connection, t: Any, scope: str) -> tuple[str, str]:
    """Create the draft or the request of one occurrence; (outcome, id)."""
    if t["mode"] == "draft":
        await DQ.lock_owner(conn, t["owner_id"])
        if await DQ.count_for(conn, t["owner_id"]) >= DS.MAX_DRAFTS:
            raise conflict("draft_limit", f"The owner keeps {DS.MAX_DRAFTS} drafts already.")
        draft = await DQ.insert(conn, draft_id=ulid(), owner_id=t["owner_id"],
                                title=t["title"], description=t["description"],
                                contact_email=t["contact_email"], sync_scope=scope)
        return "draft", draft["id"]
    owner = RS.Actor(t["owner_id"], t["owner_is_admin"], True, None, "recurring",
                     frozenset({ROLE}) if t["owner_is_manager"] else frozenset())
    request_id = await RS.insert_request_in(conn, owner, title=t["title"],
                                            description=t["description"],
                                            contact_email=t["contact_email"], sync_scope=scope)
    tags = sorted(await TQ.known(conn, list(t["tags"])))
    if tags:
        await TQ.set_for_request(conn, request_id, tags)
    return "request", request_id


async def materialise(pool: asyncpg.Pool, template_id: str, zone: ZoneInfo,
                      now: dt.datetime) -> str | None:
    """Make the template's latest due occurrence, once; None when there is nothing to do
    (not due, paused, gone, or made already by this or another process)."""
    async with pool.acquire() as conn, conn.transaction():
        t = await Q.get(conn, template_id, for_update=True)
        if t is None or t["paused"]:
            return None
        cad = C.Cadence.of(t)
        due = C.latest_due(cad, zone, now, t["anchor_at"])
        if due is None or not await Q.claim_occurrence(conn, t["id"], due, now):
            return None
        notes = []
        before = await Q.previous_start(conn, t["id"], due)
        missed = C.count_between(cad, zone, max(before or t["anchor_at"], t["anchor_at"]),
                                 due)
        if missed:
            notes.append(f"{missed} earlier occurrence{'s' if missed > 1 else ''} missed "
                         "while the node was down; only this one was made")
        outcome, made_id, refusal = "skipped", None, _refusal(t)
        scope = t["sync_scope"]
        if scope == "public" and await publication.current_mode(conn) == "off":
            scope = "private"
            notes.append("made private: SYNC_PUBLIC_SCOPE=off")
        if refusal:
            notes.insert(0, refusal)
        else:
            try:
                async with conn.transaction():  # a savepoint: a refusal writes nothing
                    outcome, made_id = await _make(conn, t, scope)
            except AppError as exc:
                notes.insert(0, f"skipped: {exc.code}: {exc.message}")
        await Q.finish_occurrence(conn, t["id"], due, outcome=outcome,
                                  draft_id=made_id if outcome == "draft" else None,
                                  request_id=made_id if outcome == "request" else None,
                                  note="; ".join(notes)[:500])
    log.info("recurring occurrence", extra={"template_id": template_id, "outcome": outcome})
    return outcome


async def materialise_due(pool: asyncpg.Pool, config: Config,
                          now: dt.datetime | None = None) -> dict[str, int]:
    """One pass over every running template (the job and ``wb recurring run``)."""
    zone = zone_of(config)
    now = now or utcnow()
    counts = {"drafts": 0, "requests": 0, "skipped": 0}
    failed: Exception | None = None
    for t in await Q.active(pool):
        due = C.latest_due(C.Cadence.of(t), zone, now, t["anchor_at"])
        try:
            if due is None or await Q.has_occurrence(pool, t["id"], due):
                continue
            outcome = await materialise(pool, t["id"], zone, now)
        except Exception as exc:  # rolled back whole; the others still get their turn
            log.warning("recurring occurrence failed", extra={"template_id": t["id"]},
                        exc_info=True)
            failed = failed or exc
            continue
        if outcome is not None:
            counts[{"draft": "drafts", "request": "requests"}.get(outcome, "skipped")] += 1
    if failed is not None:
        raise failed  # the job records the failure and backs off; the next run retries
    return counts


def clock_of(extras: dict[str, Any]) -> Callable[[], dt.datetime]:
    return extras.get(CLOCK, utcnow)


# --------------------------------------------------------------------------- JSON shapes

def template_json(row: Any, zone: ZoneInfo, now: dt.datetime | None = None) -> dict[str, Any]:
    cad = C.Cadence.of(row)
    nxt = None if row["paused"] else C.next_after(cad, zone, max(now or utcnow(),
                                                                 row["anchor_at"]))
    return {"id": row["id"], "title": row["title"], "description": row["description"],
            "contact_email": row["contact_email"], "tags": list(row["tags"]),
            "sync_scope": row["sync_scope"], "cadence": row["cadence"],
            "weekdays": [C.WEEKDAYS[d] for d in sorted(row["weekdays"])],
            "month_day": row["month_day"], "time_of_day": row["time_of_day"].strftime("%H:%M"),
            "time_zone": zone.key, "describe": cad.describe(), "mode": row["mode"],
            "paused": row["paused"], "next_occurrence": nxt,
            "next_local": nxt.astimezone(zone).strftime("%Y-%m-%d %H:%M") if nxt else None,
            "owner": {"id": row["owner_id"], "username": row["owner_username"]},
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def occurrence_json(row: Any) -> dict[str, Any]:
    return {"occurrence_start": row["occurrence_start"], "made_at": row["made_at"],
            "outcome": row["outcome"], "draft_id": row["draft_id"],
            "request_id": row["request_id"], "note": row["note"]}
