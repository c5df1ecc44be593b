"""Promote a comment to its own request: its author or an admin, once per comment.

The new request is written by the comment's author (their words), carries the comment's
text, starts **private** whatever the comment's scope (promoting never publishes), and is
linked both ways (``comment_promotions``, local only). Remote and deleted comments, and
comments on requests the actor cannot see, cannot be promoted.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from node.errors import AppError, conflict, forbidden, not_found
from node.promotions import queries as Q
from node.requests import queries as RQ
from node.requests import service as RS
from service.ids import ulid

TITLE_FROM_BODY = 80


def may_promote(actor: RS.Actor | None, comment: Any) -> bool:
    return (actor is not None and actor.active and comment["origin"] is None
            and comment["deleted_at"] is None
            and (actor.is_admin or (actor.user_id is not None
                                    and comment["created_by"] == actor.user_id)))


def default_title(body: str) -> str:
    line = RS.clean_title(body)
    return line if len(line) <= TITLE_FROM_BODY else line[:TITLE_FROM_BODY - 1].rstrip() + "…"


async def promote(pool: asyncpg.Pool, actor: RS.Actor | None, comment_id: str, *,
                  title: str = "") -> asyncpg.Record:
    if actor is None or not actor.active:
        raise forbidden("session_not_approved", "Sign in on an approved device first.")
    comment_id = RS.check_id(comment_id)
    if not isinstance(title, str):
        raise AppError(400, "invalid_field", "title must be a string.",
                       fields={"title": "Not text."})
    async with pool.acquire() as conn, conn.transaction():
        if await Q.lock_comment(conn, comment_id) is None:
            raise not_found("comment_not_found", "No such comment.")
        comment = await RQ.get_comment(conn, comment_id)
        assert comment is not None
        await RS.get_visible(conn, actor, comment["request_id"])  # 404 unless visible
        if comment["origin"] is not None:
            raise conflict("comment_remote", "A comment from another community cannot be "
                           "promoted here.")
        if not may_promote(actor, comment):
            raise forbidden("cannot_promote", "Only the comment's author or an admin may "
                            "promote it.")
        if await Q.existing(conn, comment_id) is not None:
            raise conflict("comment_already_promoted", "This comment is a request already.")
        title, description, _, _ = RS.validate_request(
            title.strip() or default_title(comment["body"]), comment["body"], "", "private")
        request_id = ulid()
        await RQ.insert_request(conn, request_id=request_id, title=title,
                                description=description, status="open",
                                created_by=comment["created_by"], contact_email=None,
                                sync_scope="private")
        inserted = await Q.insert(conn, comment_id=comment_id, request_id=request_id,
                                  promoted_by=actor.user_id)
        assert inserted  # the comment row lock serialises promotions of one comment
        await RQ.audit(conn, actor_id=actor.user_id, action="comment.promote",
                       target=comment_id, ip=actor.ip,
                       details={"request_id": request_id, "via": actor.via})
    row = await RQ.get_request(pool, request_id)
    assert row is not None
    return row


async def links(pool: asyncpg.Pool, request_id: str,
                comment_ids: list[str]) -> dict[str, Any]:
    """For a request page: which of its comments became requests, and where it came from."""
    return {"promoted": await Q.by_comments(pool, comment_ids) if comment_ids else {},
            "source": await Q.source_of(pool, request_id)}
