"""The JSON shapes of requests and comments (re-exported by ``node.requests.service``)."""

from __future__ import annotations

from typing import Any

from node.requests.permissions import Actor, can_complete, can_see_contact


def creator_of(row: Any) -> dict[str, Any] | None:
    if row["created_by"] is None:
        return None
    return {"id": row["created_by"], "username": row["creator_username"],
            "display_name": row["creator_display_name"] or row["creator_username"],
            "instance": row["creator_instance"]}


def request_json(actor: Actor | None, row: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "status": row["status"],
        "creator": creator_of(row),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "completed_at": row["completed_at"],
        "sync_scope": row["sync_scope"],
        "origin": None if row["origin"] is None else {
            "origin": row["origin"], "id": row["origin_id"], "instance": row["instance"]},
        "can_complete": can_complete(actor, row),
    }
    if "comment_count" in row.keys():  # noqa: SIM118 (asyncpg Record)
        body["comment_count"] = row["comment_count"]
    if "tags" in row.keys():  # noqa: SIM118 (asyncpg Record)
        body["tags"] = list(row["tags"])
    if can_see_contact(actor, row):
        body["contact_email"] = row["contact_email"]
    if row["deleted_at"] is not None:
        body["deleted_at"] = row["deleted_at"]
    return body


def comment_json(row: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row["id"], "request_id": row["request_id"], "body": row["body"],
        "creator": creator_of(row), "created_at": row["created_at"],
        "sync_scope": row["sync_scope"],
        "origin": None if row["origin"] is None else {"origin": row["origin"],
                                                      "instance": row["instance"]},
    }
    if row["deleted_at"] is not None:
        body["deleted_at"] = row["deleted_at"]
    return body
