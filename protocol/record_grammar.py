"""The grammar of schema-2 records: entities, their headers in order, and the patterns
every header value must match (docs/protocol.md sections 1-3). Pure data; the parser and
builder live in :mod:`protocol.records`, which re-exports every public name here.
"""

from __future__ import annotations

import re
from collections.abc import Callable

SCHEMA_VERSION = "2"

COMMON_HEADERS: tuple[str, ...] = (
    "Entity",
    "ID",
    "Origin",
    "Instance",
    "Schema-Version",
    "Revision",
    "Updated-At",
    "Sync-Scope",
    "Deleted",
)

_ENTITY_SPECIFIC: dict[str, tuple[str, ...]] = {
    "user": ("Username", "Display-Name", "Invited-By", "Created-At", "Contact-Email"),
    "request": ("Title", "Status", "Created-By", "Created-At", "Completed-At", "Tags"),
    "comment": ("Request", "Created-By", "Created-At"),
    "invite": (
        "Created-By",
        "Created-At",
        "Expires-At",
        "Max-Uses",
        "Use-Count",
        "Auto-Approve",
        "Suggested-Username",
    ),
    "vouch": ("Inviter", "Invitee", "Created-At"),
    "key": ("Key-ID", "Public-Key", "Previous-Key-ID", "Valid-From"),
}

#: Canonical header order per entity (common headers first).
ENTITY_HEADERS: dict[str, tuple[str, ...]] = {
    entity: COMMON_HEADERS + specific for entity, specific in _ENTITY_SPECIFIC.items()
}

ENTITIES: tuple[str, ...] = tuple(ENTITY_HEADERS)

#: Entities a schema-2 bundle may carry (a node never exports invites).
EXPORTABLE_ENTITIES: frozenset[str] = frozenset(ENTITIES) - {"invite"}

REQUIRED_COMMON: tuple[str, ...] = COMMON_HEADERS[:-1]  # all but Deleted

#: Entity headers required on live (non-tombstone) records.
REQUIRED_HEADERS: dict[str, tuple[str, ...]] = {
    "user": ("Username",),
    "request": ("Title", "Status", "Created-By"),
    "comment": ("Request", "Created-By"),
    "invite": ("Created-By",),
    "vouch": ("Inviter", "Invitee"),
    "key": ("Key-ID", "Public-Key", "Previous-Key-ID"),
}

SCOPES: frozenset[str] = frozenset({"public", "private"})

#: Entities whose body MUST be empty.
EMPTY_BODY_ENTITIES: frozenset[str] = frozenset({"vouch", "key"})

#: IDs (and therefore file names) are path-safe: ASCII letters, digits, ``.``, ``_``
#: and ``-``, starting with a letter or digit, at most 128 characters.
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ID_RE = re.compile(ID_PATTERN)
KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
REF_RE = re.compile(r"[0-9a-f]{16}/" + ID_PATTERN)
# RFC 3339 UTC timestamps with calendar validity (docs/protocol.md section 1): ASCII
# digits, month 01-12, a day that exists in that month (Gregorian leap years), hour
# 00-23, minute and second 00-59 (no leap second), 1-9 fraction digits, "Z".
_DAY_OF_YEAR = (
    r"(?:[0-9]{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)"
)
DATE_TIME_PATTERN = _DAY_OF_YEAR + r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
TIMESTAMP_PATTERN = DATE_TIME_PATTERN + "Z"
TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
REVISION_RE = re.compile(r"[1-9][0-9]{0,17}")
COUNT_RE = re.compile(r"0|[1-9][0-9]{0,17}")
# Instance: an absolute http or https URL of at most 2048 printable ASCII characters,
# with a non-empty authority (no user info) and an optional path, query or fragment.
INSTANCE_PATTERN = (
    r"(?=[!-~]{1,2048}(?![!-~]))https?://[A-Za-z0-9._~%!$&'()*+,;=:\[\]-]+(?:[/?#][!-~]*)?"
)
INSTANCE_RE = re.compile(INSTANCE_PATTERN)
URL_RE = INSTANCE_RE
TOKEN_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
BOOL_RE = re.compile(r"true|false")
#: ``Tags`` of a request: 1 to 8 tag names (lower-case letters, digits, hyphens; at most
#: 32 characters each), separated by single spaces. Optional for readers.
TAG_LIST_PATTERN = r"[a-z0-9][a-z0-9-]{0,31}(?: [a-z0-9][a-z0-9-]{0,31}){0,7}"
TAG_LIST_RE = re.compile(TAG_LIST_PATTERN)
PUBLIC_KEY_RE = re.compile(r"[A-Za-z0-9+/]{43}=")
#: Header names: ASCII letters and digits in hyphen-separated words, first letter upper.
HEADER_NAME_RE = re.compile(r"[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
#: Control characters (never allowed in a header block): Unicode category Cc except
#: LF (U+0000-U+0009, U+000B-U+001F, U+007F-U+009F) and the line and paragraph
#: separators U+2028, U+2029.
CONTROL_CLASS = "\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029"
#: White space that may not start or end a value (Unicode White_Space that is not a
#: control character): space, U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, U+3000.
SPACE_CLASS = " \xa0\u1680\u2000-\u200a\u202f\u205f\u3000"
SPACE_CHARS = " \xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
_BAD_HEADER_CHAR_RE = re.compile(f"[{CONTROL_CLASS}]")
_EDGE_SPACE_RE = re.compile(f"^[{SPACE_CLASS}\n]|[{SPACE_CLASS}\n]$")

_Check = Callable[[str], object]

_VALUE_CHECKS: dict[str, _Check] = {
    "Origin": KEY_ID_RE.fullmatch,
    "Revision": REVISION_RE.fullmatch,
    "Updated-At": TIMESTAMP_RE.fullmatch,
    "Sync-Scope": SCOPES.__contains__,
    "Deleted": "true".__eq__,
    "Invited-By": REF_RE.fullmatch,
    "Created-By": REF_RE.fullmatch,
    "Request": REF_RE.fullmatch,
    "Inviter": REF_RE.fullmatch,
    "Invitee": REF_RE.fullmatch,
    "Created-At": TIMESTAMP_RE.fullmatch,
    "Completed-At": TIMESTAMP_RE.fullmatch,
    "Expires-At": TIMESTAMP_RE.fullmatch,
    "Valid-From": TIMESTAMP_RE.fullmatch,
    "Status": TOKEN_RE.fullmatch,
    "Tags": TAG_LIST_RE.fullmatch,
    "Max-Uses": COUNT_RE.fullmatch,
    "Use-Count": COUNT_RE.fullmatch,
    "Auto-Approve": BOOL_RE.fullmatch,
    "Key-ID": KEY_ID_RE.fullmatch,
    "Previous-Key-ID": KEY_ID_RE.fullmatch,
    "Public-Key": PUBLIC_KEY_RE.fullmatch,
}

_POSITIONS: dict[str, dict[str, int]] = {
    entity: {name: i for i, name in enumerate(names)} for entity, names in ENTITY_HEADERS.items()
}
_COMMON_SET = frozenset(COMMON_HEADERS)
