"""Rules of request drafts, shared by pages, the JSON API and the CLI.

A draft belongs to its author alone: nobody else sees it (admins neither), it is never
exported, fed or shown to the copilot. A draft may be unfinished (only the limits hold);
publishing checks it like a new request and, in one transaction, posts the request and
removes the draft, so a draft is published at most once however often the button is hit.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from node.drafts import queries as Q
from node.errors import AppError, conflict, forbidden, not_found, text_field
from node.requests import queries as RQ
from node.requests import service as RS
from service.ids import ulid

MAX_DRAFTS = 50
LIST_LIMIT = 100
_ID = re.compile(r"^[0-9A-Za-z]{1,40}$")


def _member(actor: RS.Actor | None) -> str:
    if actor is None or actor.user_id is None:
        raise AppError(401, "login_required", "Sign in first.")
    if not actor.active:
        raise forbidden("session_not_approved", "Drafts are for approved devices.")
    return actor.user_id


def _check_id(value: str) -> str:
    if not _ID.match(value or ""):
        raise not_found("draft_not_found", "No such draft.")
    return value


def _text(data: dict[str, Any], name: str) -> str:
    return text_field(data.get(name, ""), name)


def validate(data: dict[str, Any]) -> dict[str, str]:
    """A draft may be unfinished; the limits of a request still hold."""
    title = RS.clean_title(_text(data, "title"))
    description = _text(data, "description").replace("\r\n", "\n").strip()
    contact = _text(data, "contact_email").strip()
    scope = (_text(data, "sync_scope") or "private").strip()
    errors: dict[str, str] = {}
    if not title and not description:
        errors["description"] = "Write a title or a description to keep."
    if len(title) > RS.TITLE_MAX:
        errors["title"] = f"The title is {len(title):,} characters; the limit is {RS.TITLE_MAX}."
    if len(description) > RS.DESCRIPTION_MAX:
        errors["description"] = (f"The description is {len(description):,} characters; "
                                 f"the limit is {RS.DESCRIPTION_MAX:,}.")
    if len(contact) > RS.EMAIL_MAX:
        errors["contact_email"] = "That does not look like an email address."
    if scope not in RS.SCOPES:
        errors["sync_scope"] = "Choose private or public."
    if errors:
        raise AppError(400, "invalid_draft", "Please fix the highlighted fields.",
                       fields=errors)
    return {"title": title, "description": description, "contact_email": contact,
            "sync_scope": scope}


async def save(pool: asyncpg.Pool, actor: RS.Actor | None, data: dict[str, Any],
               draft_id: str | None = None) -> asyncpg.Record:
    owner = _member(actor)
    values = validate(data)
    async with pool.acquire() as conn, conn.transaction():
        if draft_id is not None:
            row = await Q.update(conn, draft_id=_check_id(draft_id), owner_id=owner, **values)
            if row is None:
                raise not_found("draft_not_found", "No such draft.")
            return row
        await Q.lock_owner(conn, owner)
        if await Q.count_for(conn, owner) >= MAX_DRAFTS:
            raise conflict("draft_limit", f"You keep {MAX_DRAFTS} drafts already; publish or "
                           "delete one first.")
        return await Q.insert(conn, draft_id=ulid(), owner_id=owner, **values)


async def get(pool: asyncpg.Pool, actor: RS.Actor | None, draft_id: str) -> asyncpg.Record:
    row = await Q.get_own(pool, _check_id(draft_id), _member(actor))
    if row is None:  # someone else's draft looks exactly like no draft
        raise not_found("draft_not_found", "No such draft.")
    return row


async def mine(pool: asyncpg.Pool, actor: RS.Actor | None) -> list[asyncpg.Record]:
    return await Q.list_own(pool, _member(actor), LIST_LIMIT)


async def delete(pool: asyncpg.Pool, actor: RS.Actor | None, draft_id: str) -> None:
    if not await Q.delete_own(pool, _check_id(draft_id), _member(actor)):
        raise not_found("draft_not_found", "No such draft.")


async def publish(pool: asyncpg.Pool, actor: RS.Actor | None,
                  draft_id: str) -> asyncpg.Record:
    """Post the draft as a request and remove it, in one transaction."""
    owner = _member(actor)
    assert actor is not None
    async with pool.acquire() as conn, conn.transaction():
        draft = await Q.get_own(conn, _check_id(draft_id), owner, for_update=True)
        if draft is None:
            raise not_found("draft_not_found", "No such draft (already published?).")
        request_id = await RS.insert_request_in(
            conn, actor, title=draft["title"], description=draft["description"],
            contact_email=draft["contact_email"], sync_scope=draft["sync_scope"])
        await Q.delete_own(conn, draft["id"], owner)
    row = await RQ.get_request(pool, request_id)
    assert row is not None
    return row


def draft_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "title": row["title"], "description": row["description"],
            "contact_email": row["contact_email"], "sync_scope": row["sync_scope"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}
