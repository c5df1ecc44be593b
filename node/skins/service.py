"""Skins: a member's choice (page, JSON, CLI share this)."""

from __future__ import annotations

import asyncpg

from node.errors import bad_request
from node.skins import catalog
from node.skins import queries as Q


def parse_skin(value: str | None, *, allow_default: bool = True) -> str | None:
    """A shipped skin name; ``""``/``"node"`` means "the node's default" (None)."""
    value = (value or "").strip().lower()
    if allow_default and value in ("", "node"):
        return None
    if not catalog.valid(value):
        raise bad_request("unknown_skin", "No such skin.",
                          skin=f"Choose one of: {', '.join(catalog.catalog())}.")
    return value


async def set_member_skin(pool: asyncpg.Pool, user_id: str, value: str | None) -> str | None:
    skin = parse_skin(value)
    await Q.set_member_skin(pool, user_id, skin)
    return skin
