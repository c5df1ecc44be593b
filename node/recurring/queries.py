"""All SQL of recurring request templates and their occurrences."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

Conn = asyncpg.Pool | asyncpg.Connection

#: a template with what the job needs to know about its owner
_WITH_OWNER = """
SELECT t.*, u.username AS owner_username, u.is_admin AS owner_is_admin,
       (u.disabled OR u.deleted_at IS NOT NULL) AS owner_gone,
       EXISTS (SELECT 1 FROM member_roles mr WHERE mr.user_id = u.id
                AND mr.role = 'house_manager') AS owner_is_manager
  FROM recurring_templates t JOIN users u ON u.id = t.owner_id"""

_FIELDS = ("title", "description", "contact_email", "tags", "sync_scope", "cadence",
           "weekdays", "month_day", "time_of_day", "mode")


async def lock_owner(conn: asyncpg.Connection, owner_id: str) -> None:
    """One template creation per member at a time (the per-member limit holds under races)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('recurring:' || $1))", owner_id)


async def count_for(conn: Conn, owner_id: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM recurring_templates WHERE owner_id = $1",
                               owner_id)


async def insert(conn: Conn, *, template_id: str, owner_id: str, now: dt.datetime,
                 values: dict[str, Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO recurring_templates (id, owner_id, title, description, contact_email, "
        "tags, sync_scope, cadence, weekdays, month_day, time_of_day, mode, anchor_at, "
        "created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $13) "
        "RETURNING id", template_id, owner_id, *(values[f] for f in _FIELDS), now)


async def update(conn: Conn, *, template_id: str, now: dt.datetime,
                 values: dict[str, Any]) -> bool:
    """Save the fields; a changed cadence starts afresh from ``now`` (``anchor_at``)."""
    row = await conn.fetchrow(
        """UPDATE recurring_templates
              SET anchor_at = CASE WHEN (cadence, weekdays, month_day, time_of_day)
                                        IS DISTINCT FROM ($7, $8::smallint[], $9::smallint,
                                                          $10::time)
                                   THEN $12 ELSE anchor_at END,
                  title = $2, description = $3, contact_email = $4, tags = $5,
                  sync_scope = $6, cadence = $7, weekdays = $8, month_day = $9,
                  time_of_day = $10, mode = $11, updated_at = $12
            WHERE id = $1 RETURNING id""",
        template_id, *(values[f] for f in _FIELDS), now)
    return row is not None


async def get(conn: Conn, template_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
    lock = " FOR UPDATE OF t" if for_update else ""
    return await conn.fetchrow(f"{_WITH_OWNER} WHERE t.id = $1{lock}", template_id)


async def list_for(conn: Conn, owner_id: str | None) -> list[asyncpg.Record]:
    """A member's templates, or every template (``owner_id`` None: admins and the CLI)."""
    return await conn.fetch(
        f"{_WITH_OWNER} WHERE ($1::text IS NULL OR t.owner_id = $1) "
        "ORDER BY t.created_at, t.id", owner_id)


async def active(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch(f"{_WITH_OWNER} WHERE NOT t.paused ORDER BY t.id")


async def set_paused(conn: Conn, template_id: str, paused: bool, now: dt.datetime) -> bool:
    """Pause, or resume from ``now`` (what was due while paused is never made)."""
    row = await conn.fetchrow(
        "UPDATE recurring_templates SET paused = $2, updated_at = $3, "
        "anchor_at = CASE WHEN paused AND NOT $2 THEN $3 ELSE anchor_at END "
        "WHERE id = $1 RETURNING id", template_id, paused, now)
    return row is not None


async def delete(conn: Conn, template_id: str) -> bool:
    return await conn.fetchval(
        "DELETE FROM recurring_templates WHERE id = $1 RETURNING true", template_id) or False


async def has_occurrence(conn: Conn, template_id: str, start: dt.datetime) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM recurring_occurrences WHERE template_id = $1 "
        "AND occurrence_start = $2)", template_id, start)


async def claim_occurrence(conn: asyncpg.Connection, template_id: str, start: dt.datetime,
                           now: dt.datetime) -> bool:
    """The exactly-once guard: True for the one transaction that inserted the row (a racing
    one waits for it, then finds the conflict)."""
    row = await conn.fetchrow(
        "INSERT INTO recurring_occurrences (template_id, occurrence_start, made_at, outcome) "
        "VALUES ($1, $2, $3, 'skipped') ON CONFLICT DO NOTHING RETURNING template_id",
        template_id, start, now)
    return row is not None


async def previous_start(conn: Conn, template_id: str, before: dt.datetime) -> dt.datetime | None:
    return await conn.fetchval(
        "SELECT max(occurrence_start) FROM recurring_occurrences WHERE template_id = $1 "
        "AND occurrence_start < $2", template_id, before)


async def finish_occurrence(conn: asyncpg.Connection, template_id: str, start: dt.datetime, *,
                            outcome: str, draft_id: str | None = None,
                            request_id: str | None = None, note: str = "") -> None:
    await conn.execute(
        "UPDATE recurring_occurrences SET outcome = $3, draft_id = $4, request_id = $5, "
        "note = $6 WHERE template_id = $1 AND occurrence_start = $2",
        template_id, start, outcome, draft_id, request_id, note)


async def log(conn: Conn, template_id: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM recurring_occurrences WHERE template_id = $1 "
        "ORDER BY occurrence_start DESC LIMIT $2", template_id, limit)


async def last_made(conn: Conn, template_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (template_id) * FROM recurring_occurrences "
        "WHERE template_id = ANY($1) ORDER BY template_id, occurrence_start DESC",
        template_ids)
    return {r["template_id"]: r for r in rows}
