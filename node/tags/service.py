"""Rules of tags, shared by pages, the JSON API and the CLI.

Admins keep the community's list (at most ``MAX_TAGS``): a name (lower-case letters,
digits and hyphens) and a background colour; the text colour, black or white, is the one
with the higher WCAG 2.1 contrast on it (coloraide), and a colour on which neither
reaches 4.5:1 is refused. A request's author or an admin sets its tags (at most
``MAX_PER_REQUEST``, from the list); the feed filters by one tag.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from node.errors import AppError, bad_request, conflict, forbidden, not_found
from node.requests import queries as RQ
from node.requests import service as RS
from node.tags import queries as Q

MAX_TAGS = 50
MAX_PER_REQUEST = 5
MIN_CONTRAST = 4.5
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
COLOUR_RE = re.compile(r"#[0-9a-fA-F]{6}")
TEXT_COLOURS = ("#000000", "#ffffff")


def parse_name(value: Any) -> str:
    name = value.strip().lower() if isinstance(value, str) else ""
    if not NAME_RE.fullmatch(name):
        raise bad_request("invalid_tag", "A tag is 1-32 lower-case letters, digits or hyphens.",
                          name="Like food or school-run.")
    return name


def text_colour_for(colour: str) -> tuple[str, float]:
    """The text colour (black or white) with the higher contrast on ``colour``."""
    from coloraide import Color  # ~0.15 s to import: only when a tag's colour is set

    background = Color(colour)
    best = max(TEXT_COLOURS, key=lambda t: background.contrast(Color(t), method="wcag21"))
    return best, round(background.contrast(Color(best), method="wcag21"), 2)


def parse_colour(value: Any) -> tuple[str, str]:
    if not isinstance(value, str) or not COLOUR_RE.fullmatch(value.strip()):
        raise bad_request("invalid_colour", "A colour is #rrggbb.", colour="Like #1f6feb.")
    colour = value.strip().lower()
    text, ratio = text_colour_for(colour)
    if ratio < MIN_CONTRAST:
        raise bad_request("tag_colour_contrast",
                          f"Neither black nor white text reaches {MIN_CONTRAST}:1 on {colour} "
                          f"(best {ratio}:1); choose a lighter or darker colour.",
                          colour="Too little contrast.")
    return colour, text


def _admin(actor: RS.Actor | None) -> RS.Actor:
    if actor is None or not actor.active or not actor.is_admin:
        raise forbidden("tags_admin_only", "Only admins manage the tag list.")
    return actor


async def catalog(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await Q.all_tags(pool)


async def save_tag(pool: asyncpg.Pool, actor: RS.Actor | None, name: Any,
                   colour: Any) -> asyncpg.Record:
    actor = _admin(actor)
    name = parse_name(name)
    colour, text = parse_colour(colour)
    async with pool.acquire() as conn, conn.transaction():
        await Q.lock_catalog(conn)
        if not await Q.exists(conn, name) and await Q.count(conn) >= MAX_TAGS:
            raise conflict("tag_limit", f"A community keeps at most {MAX_TAGS} tags.")
        row = await Q.upsert(conn, name, colour, text)
        await RQ.audit(conn, actor_id=actor.user_id, action="tag.save", target=name,
                       ip=actor.ip, details={"colour": colour, "via": actor.via})
    return row


async def delete_tag(pool: asyncpg.Pool, actor: RS.Actor | None, name: str) -> None:
    actor = _admin(actor)
    name = parse_name(name)
    async with pool.acquire() as conn, conn.transaction():
        affected = await Q.requests_with(conn, name)
        if not await Q.delete(conn, name):
            raise not_found("tag_not_found", "No such tag.")
        await Q.sync_header(conn, affected)
        await RQ.audit(conn, actor_id=actor.user_id, action="tag.delete", target=name,
                       ip=actor.ip, details={"via": actor.via})


async def set_request_tags(pool: asyncpg.Pool, actor: RS.Actor | None, request_id: str,
                           names: Any) -> list[str]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise AppError(400, "invalid_field", "tags is a list of tag names.",
                       fields={"tags": "A list of names."})
    wanted = sorted({parse_name(n) for n in names if n.strip()})
    if len(wanted) > MAX_PER_REQUEST:
        raise bad_request("too_many_tags", f"A request carries at most {MAX_PER_REQUEST} tags.",
                          tags=f"At most {MAX_PER_REQUEST}.")
    async with pool.acquire() as conn, conn.transaction():
        req = await RS.get_visible(conn, actor, request_id)
        if not RS.can_change_scope(actor, req["created_by"], req["origin"]) \
                or req["deleted_at"] is not None:
            raise forbidden("cannot_tag", "Only the request's author or an admin may tag it.")
        unknown = sorted(set(wanted) - await Q.known(conn, wanted))
        if unknown:
            raise bad_request("unknown_tag",
                              f"Not in this community's list: {', '.join(unknown)}.",
                              tags="Choose from the list.")
        await RQ.get_request(conn, req["id"], for_update=True)
        await Q.set_for_request(conn, req["id"], wanted)
    return wanted


async def of_request(pool: asyncpg.Pool, request_id: str) -> list[str]:
    return await Q.of_request(pool, request_id)


def stylesheet(rows: list[Any]) -> str:
    """One rule per tag (the pages' CSP allows no inline style)."""
    return "".join(f".tag-{r['name']}{{background:{r['colour']};color:{r['text_colour']}}}\n"
                   for r in rows)


def tag_json(row: Any) -> dict[str, Any]:
    out = {"name": row["name"], "colour": row["colour"], "text_colour": row["text_colour"]}
    if "uses" in row.keys():  # noqa: SIM118 (asyncpg Record)
        out["uses"] = row["uses"]
    return out
