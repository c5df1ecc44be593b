"""Reader for schema 1, the original WhiteBalloon ``.sync.txt`` format.

Schema-1 records have integer IDs (invite tokens for invites), no ``Origin`` and no
``Revision``; comments are embedded in the request body. They are mapped into
schema-2 :class:`~protocol.records.Record` values namespaced by the key that signed
the bundle (``Origin`` = signer key id), so integer IDs from different nodes never
collide. The mapping is specified in ``docs/protocol.md`` ("Schema 1").
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from datetime import UTC, datetime

from protocol.checks import disabled, fail
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.records import (
    HEADER_NAME_RE,
    ID_RE,
    SPACE_CHARS,
    Record,
    decode_text,
    make_record,
    split_header_block,
)

SCHEMA1_COMMON: tuple[str, ...] = (
    "Entity",
    "ID",
    "Instance",
    "Schema-Version",
    "Updated-At",
    "Sync-Scope",
)

#: Headers the original implementation writes, per entity (any order is accepted).
SCHEMA1_HEADERS: dict[str, frozenset[str]] = {
    "user": frozenset(SCHEMA1_COMMON + ("Username", "Contact-Email", "Created-At")),
    "request": frozenset(
        SCHEMA1_COMMON
        + ("Title", "Status", "Contact-Email", "Created-By", "Created-At", "Completed-At")
    ),
    "invite": frozenset(
        SCHEMA1_COMMON
        + (
            "Created-By",
            "Created-At",
            "Expires-At",
            "Max-Uses",
            "Use-Count",
            "Auto-Approve",
            "Suggested-Username",
        )
    ),
}

_SCHEMA1_PATH_RE = re.compile(
    r"(user|request|invite)s/\1_([A-Za-z0-9][A-Za-z0-9._-]{0,127})\.sync\.txt"
)
#: the one-line comment separator: "---", then " key=value" tokens without U+0020
_COMMENT_META_RE = re.compile(r"--- (?:[^ ]+=[^ ]*)(?: [^ ]+=[^ ]*)*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: schema-1 times (docs/protocol.md section 9), after removing one trailing "Z"
_SCHEMA1_TIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?(?:[+-][0-9]{2}:[0-9]{2})?"
)


def normalise_time(value: str, what: str, path: str | None) -> str:
    """Schema-1 times (naive ISO, ``...Z``, or with an offset) as RFC 3339 UTC ``Z``."""
    text = value.strip(SPACE_CHARS)
    if text.endswith("Z"):
        text = text[:-1]
    try:
        if not _SCHEMA1_TIME_RE.fullmatch(text):
            raise ValueError(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail("schema1.time", f"{what} is not a time: {value[:40]!r}", path)
        raise AssertionError("terminal check") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    frac = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def _revision(updated_at: str) -> int:
    moment = datetime.fromisoformat(updated_at[:-1]).replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return max(1, (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _headers(
    lines: list[str], entity_allowed: frozenset[str] | None, path: str | None
) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not HEADER_NAME_RE.fullmatch(name):
            fail("schema1.line", f"not a 'Name: value' line: {line[:60]!r}", path)
            continue
        if value.startswith(" "):
            value = value[1:]
        if name in headers:
            fail("schema1.duplicate_header", f"{name} appears twice", path)
            continue
        if entity_allowed is not None and name not in entity_allowed:
            fail("schema1.unknown_header", f"{name[:40]!r} is not a schema-1 header", path)
            continue
        headers[name] = value.strip(SPACE_CHARS)
    return headers


#: Schema-1 user id that an empty request ``Created-By`` maps to (no real user has it).
UNKNOWN_CREATOR = "0"


def _ref(origin: str, value: str | None, what: str, path: str | None) -> str | None:
    if not value:
        return None
    if not ID_RE.fullmatch(value):
        raise ProtocolError("malformed_schema1", f"{what} is not an ID: {value[:40]!r}", path)
    return f"{origin}/{value}"


def _text_block(text: str) -> str:
    text = text.strip("\n")
    return text + "\n" if text else ""


def parse_schema1_record(
    data: bytes,
    origin: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    path: str | None = None,
) -> list[Record]:
    """Map one schema-1 file to schema-2 records (a request yields its comments too).

    Records whose ``Sync-Scope`` is not ``public`` are refused (``not_public``);
    embedded comments that are not public are skipped.
    """
    if len(data) > limits.max_record_bytes:
        raise ProtocolError(
            "record_too_large", f"{len(data)} bytes exceeds {limits.max_record_bytes}", path
        )
    text = decode_text(data, path)
    lines, body = split_header_block(text, limits, path)
    headers = _headers(lines, None, path)
    entity = headers.get("Entity")
    if entity is None:
        fail("schema1.entity_missing", "missing Entity header", path)
        raise AssertionError("terminal check")
    allowed = SCHEMA1_HEADERS.get(entity)
    if allowed is None:
        fail("schema1.entity_known", f"unknown schema-1 entity {entity[:40]!r}", path)
        raise AssertionError("terminal check")
    for name in list(headers):
        if name not in allowed:
            fail("schema1.unknown_header", f"{name[:40]!r} is not a schema-1 {entity} header", path)
            del headers[name]
    for name in SCHEMA1_COMMON:
        if not headers.get(name):
            fail("schema1.required", f"missing {name} header", path)
    version = headers["Schema-Version"]
    if version != "1":
        if version == "2":
            fail("schema1.schema_2", "Schema-Version 2 in a schema-1 bundle", path)
        else:
            fail("schema1.schema_version", f"Schema-Version {version[:20]!r}", path)
    record_id = headers["ID"]
    id_ok = ID_RE.fullmatch(record_id) is not None
    if not id_ok:
        fail("schema1.id", f"invalid ID {record_id[:40]!r}", path)
    if path is not None and ID_RE.fullmatch(record_id):
        m = _SCHEMA1_PATH_RE.fullmatch(path)
        if m is None or m.group(1) != entity or m.group(2) != record_id:
            fail("schema1.path", f"expected {entity}s/{entity}_{record_id}.sync.txt", path)
    if headers["Sync-Scope"] != "public":
        fail("schema1.public", "record Sync-Scope is not public", path)
    updated_at = normalise_time(headers["Updated-At"], "Updated-At", path)
    common: dict[str, str | int | bool | None] = {
        "ID": record_id,
        "Origin": origin,
        "Instance": headers["Instance"],
        "Revision": _revision(updated_at),
        "Updated-At": updated_at,
        "Sync-Scope": "public",
    }

    def timefield(name: str) -> str | None:
        value = headers.get(name)
        return normalise_time(value, name, path) if value else None

    # the mapped records keep the ID that schema1.id judged; record.id does not judge it
    # again (they can differ only while schema1.id is disabled, in the one-problem proof)
    with nullcontext() if id_ok else disabled("record.id"):
        try:
            if entity == "user":
                return [
                    make_record(
                        "user",
                        {
                            **common,
                            "Username": headers.get("Username"),
                            "Created-At": timefield("Created-At"),
                            "Contact-Email": headers.get("Contact-Email"),
                        },
                        _text_block(body),
                    )
                ]
            if entity == "invite":
                auto = headers.get("Auto-Approve")
                return [
                    make_record(
                        "invite",
                        {
                            **common,
                            "Created-By": _ref(origin, headers.get("Created-By"),
                                               "Created-By", path),
                            "Created-At": timefield("Created-At"),
                            "Expires-At": timefield("Expires-At"),
                            "Max-Uses": headers.get("Max-Uses"),
                            "Use-Count": headers.get("Use-Count"),
                            "Auto-Approve": auto.lower() if auto else None,
                            "Suggested-Username": headers.get("Suggested-Username"),
                        },
                        _text_block(body),
                    )
                ]
            description, comments = split_request_body(body, path)
            # the original writes ``Created-By:`` empty when the creator is not shared; schema 2
            # needs a reference, so it names user 0 (schema-1 user ids start at 1): "unknown"
            creator = headers.get("Created-By") or UNKNOWN_CREATOR
            request = make_record(
                "request",
                {
                    **common,
                    "Title": headers.get("Title"),
                    "Status": headers.get("Status"),
                    "Created-By": _ref(origin, creator, "Created-By", path),
                    "Created-At": timefield("Created-At"),
                    "Completed-At": timefield("Completed-At"),
                },
                description,
            )
        except ProtocolError as exc:
            if exc.path is None:
                located = ProtocolError(exc.code, exc.message, path)
                located.check = exc.check
                raise located from None
            raise
    out = [request]
    for meta, comment_body in comments:
        if meta.get("Sync-Scope", "public") != "public":
            continue
        comment_id = meta.get("Comment-ID", "")
        if not ID_RE.fullmatch(comment_id):
            fail("schema1.comment", f"bad Comment-ID {comment_id[:40]!r}", path)
            continue
        created = meta.get("Created-At")
        try:
            out.append(
                make_record(
                    "comment",
                    {
                        **common,
                        "ID": comment_id,
                        "Request": f"{origin}/{record_id}",
                        "Created-By": _ref(origin, meta.get("User-ID"), "User-ID", path),
                        "Created-At": normalise_time(created, "Created-At", path)
                        if created
                        else None,
                    },
                    comment_body,
                )
            )
        except ProtocolError as exc:
            fail("schema1.comment", f"comment {comment_id}: {exc.message}", path)
    return out


# comment meta keys of the older one-line form "--- id=1 user_id=2 ..." -> block names
_META_KEYS = {
    "id": "Comment-ID",
    "user_id": "User-ID",
    "username": "Username",
    "created_at": "Created-At",
    "sync_scope": "Sync-Scope",
}
_BLOCK_KEYS = frozenset({"Comment-ID", "User-ID", "Username", "Created-At", "Sync-Scope"})


def split_request_body(
    body: str, path: str | None = None
) -> tuple[str, list[tuple[dict[str, str], str]]]:
    """Split a schema-1 request body into its description and embedded comments.

    The comments section starts at the first line ``Comments:`` that is directly
    followed by a separator. A separator is either a line ``---`` followed by a
    ``Comment-ID:`` line (a header block, a blank line, then the comment text), or a
    one-line ``--- id=.. user_id=.. ...`` header. Any other ``---`` line is comment
    text, which resolves schema 1's ambiguity without losing text.
    """
    lines = body.split("\n")
    start = None
    for i, line in enumerate(lines):
        if line == "Comments:" and i + 1 < len(lines) and _is_separator(lines, i + 1):
            start = i
            break
    desc_lines = lines if start is None else lines[:start]
    if desc_lines and desc_lines[0] == "Description:":
        desc_lines = desc_lines[1:]
    description = _text_block("\n".join(desc_lines))
    comments: list[tuple[dict[str, str], str]] = []
    if start is None:
        return description, comments
    i = start + 1
    while i < len(lines):
        line = lines[i]
        meta: dict[str, str] = {}
        if line == "---":
            i += 1
            while i < len(lines) and lines[i] != "":
                name, sep, value = lines[i].partition(": ")
                if not sep or name not in _BLOCK_KEYS or name in meta:
                    fail("schema1.comment", f"bad comment header {lines[i][:60]!r}", path)
                meta[name] = value.strip(SPACE_CHARS)
                i += 1
            i += 1  # the blank line
        else:
            for part in line[4:].split(" "):
                key, _, value = part.partition("=")
                if key in _META_KEYS:
                    meta[_META_KEYS[key]] = value
            i += 1
        text_lines: list[str] = []
        while i < len(lines) and not _is_separator(lines, i):
            text_lines.append(lines[i])
            i += 1
        comments.append((meta, _text_block("\n".join(text_lines))))
    return description, comments


def _is_separator(lines: list[str], i: int) -> bool:
    line = lines[i]
    if line == "---":
        return i + 1 < len(lines) and lines[i + 1].startswith("Comment-ID: ")
    return (
        line.startswith("--- ")
        and _COMMENT_META_RE.fullmatch(line) is not None
        and " id=" in f" {line[4:]}"
    )
