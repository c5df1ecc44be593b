"""Schema-2 records and the ``.sync.txt`` text format.

A record file is UTF-8 text with LF line endings: a block of ``Name: value`` header
lines in the entity's fixed order, one blank line, then the body (the rest of the
file, verbatim). Rendering is canonical, so ``render_record(parse_record(b)) == b``
for every accepted ``b`` and a record's SHA-256 is stable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from itertools import compress

from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits

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
    "request": ("Title", "Status", "Created-By", "Created-At", "Completed-At"),
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

#: IDs (and therefore file names) are path-safe: ASCII letters, digits, ``.``, ``_``
#: and ``-``, starting with a letter or digit, at most 128 characters.
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
ID_RE = re.compile(ID_PATTERN)
KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
REF_RE = re.compile(r"[0-9a-f]{16}/" + ID_PATTERN)
TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z")
REVISION_RE = re.compile(r"[1-9][0-9]{0,17}")
COUNT_RE = re.compile(r"0|[1-9][0-9]{0,17}")
URL_RE = re.compile(r"https?://[!-~]+")
# Instance should be the node's public URL; schema-1 nodes sometimes wrote a bare
# name, so records only require printable ASCII without spaces.
INSTANCE_RE = re.compile(r"[!-~]{1,2048}")
TOKEN_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
BOOL_RE = re.compile(r"true|false")
PUBLIC_KEY_RE = re.compile(r"[A-Za-z0-9+/]{43}=")
# Anything but printable text in a header block: C0 controls except LF, and DEL.
_BAD_HEADER_CHAR_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")

_Check = Callable[[str], object]

_VALUE_CHECKS: dict[str, _Check] = {
    "ID": ID_RE.fullmatch,
    "Origin": KEY_ID_RE.fullmatch,
    "Instance": INSTANCE_RE.fullmatch,
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
_new_slots = object.__new__


class _RecordSlots:
    """Storage of :class:`Record`. The parser fills an instance of this (mutable)
    class with plain attribute stores and then turns it into a Record by assigning
    ``__class__`` (same layout): far cheaper than one ``object.__setattr__`` per slot.
    """

    __slots__ = ("entity", "body", "_names", "_values", "_index", "_headers", "_raw")

    entity: str
    body: str
    _names: tuple[str, ...]
    _values: tuple[str | None, ...]
    _index: Mapping[str, int]
    _headers: tuple[tuple[str, str], ...] | None
    #: the exact bytes this record was parsed from (canonical by construction), or None
    _raw: bytes | None


class Record(_RecordSlots):
    """One record: its entity, its ordered headers (``Entity`` first) and its body.

    Immutable and hashable; equal when entity, headers and body are equal. Build
    records with :func:`make_record`, :func:`make_tombstone` or :func:`parse_record`;
    the constructor itself does not validate.
    """

    __slots__ = ()

    def __init__(self, entity: str, headers: tuple[tuple[str, str], ...], body: str = "") -> None:
        headers = tuple(headers)
        init = object.__setattr__
        init(self, "entity", entity)
        init(self, "body", body)
        init(self, "_names", tuple(name for name, _ in headers))
        init(self, "_values", tuple(value for _, value in headers))
        init(self, "_index", {name: i for i, (name, _) in enumerate(headers)})
        init(self, "_headers", headers)
        init(self, "_raw", None)

    @classmethod
    def _from_groups(
        cls,
        entity: str,
        names: tuple[str, ...],
        index: Mapping[str, int],
        values: tuple[str | None, ...],
        body: str,
        raw: bytes | None = None,
    ) -> Record:
        """Fast constructor for the parser: ``values`` aligned with ``names``, ``None``
        for absent optional headers; ``headers`` is materialised on first use.
        ``raw``, when given, must be the canonical rendering of the record."""
        rec = _new_slots(_RecordSlots)
        rec.entity = entity
        rec.body = body
        rec._names = names
        rec._values = values
        rec._index = index
        rec._headers = None
        rec._raw = raw
        rec.__class__ = Record
        return rec  # type: ignore[return-value]

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        headers = self._headers
        if headers is None:
            values = self._values
            headers = tuple(compress(zip(self._names, values, strict=True), values))  # type: ignore[arg-type]
            object.__setattr__(self, "_headers", headers)
        return headers

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Record is immutable (cannot set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Record is immutable (cannot delete {name})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.entity == other.entity
            and self.body == other.body
            and self.headers == other.headers
        )

    def __hash__(self) -> int:
        return hash((self.entity, self.headers, self.body))

    def __repr__(self) -> str:
        return f"Record(entity={self.entity!r}, headers={self.headers!r}, body={self.body!r})"

    def __reduce__(self) -> tuple[type[Record], tuple[str, tuple[tuple[str, str], ...], str]]:
        return (Record, (self.entity, self.headers, self.body))

    def get(self, name: str, default: str | None = None) -> str | None:
        i = self._index.get(name)
        if i is None:
            return default
        value = self._values[i]
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    @property
    def id(self) -> str:
        return self["ID"]

    @property
    def origin(self) -> str:
        return self["Origin"]

    @property
    def instance(self) -> str:
        return self["Instance"]

    @property
    def revision(self) -> int:
        return int(self["Revision"])

    @property
    def updated_at(self) -> str:
        return self["Updated-At"]

    @property
    def scope(self) -> str:
        return self["Sync-Scope"]

    @property
    def deleted(self) -> bool:
        return self.get("Deleted") == "true"

    @property
    def schema_version(self) -> int:
        return int(self["Schema-Version"])

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the record: ``(origin, entity, id)``."""
        return (self["Origin"], self.entity, self["ID"])

    @property
    def ref(self) -> str:
        """Cross-node reference ``origin/id`` as used by ``Request:``, ``Created-By:``..."""
        return f"{self['Origin']}/{self['ID']}"

    @property
    def path(self) -> str:
        return record_path(self.entity, self["ID"])

    def as_dict(self) -> dict[str, str]:
        return dict(self.headers)


def record_path(entity: str, record_id: str) -> str:
    """Path of a schema-2 record inside a bundle: ``<entity>s/<id>.sync.txt``."""
    return f"{entity}s/{record_id}.sync.txt"


def render_record(rec: Record) -> bytes:
    """Canonical bytes of a record."""
    raw = rec._raw
    if raw is not None:
        return raw
    head = "\n".join(f"{name}: {value}" for name, value in rec.headers)
    return f"{head}\n\n{rec.body}".encode()


# --------------------------------------------------------------------------- parsing


def decode_text(data: bytes, path: str | None = None) -> str:
    """Decode strict UTF-8 and refuse NUL and CR; shared by every text file reader."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("not_utf8", f"invalid UTF-8 at byte {exc.start}", path) from None
    if "\x00" in text:
        raise ProtocolError("nul_byte", "NUL byte in text file", path)
    if "\r" in text:
        raise ProtocolError("bad_line_ending", "CR found; only LF line endings are allowed", path)
    return text


def split_header_block(
    text: str, limits: Limits = DEFAULT_LIMITS, path: str | None = None
) -> tuple[list[str], str]:
    """Split decoded record text into header lines and body."""
    head, sep, body = text.partition("\n\n")
    if not sep:
        raise ProtocolError("malformed_record", "no blank line after the headers", path)
    if not head:
        raise ProtocolError("malformed_record", "empty header block", path)
    if len(head) > limits.max_header_bytes:
        raise ProtocolError(
            "header_too_large", f"header block exceeds {limits.max_header_bytes} bytes", path
        )
    if _BAD_HEADER_CHAR_RE.search(head):
        raise ProtocolError("invalid_header_value", "control character in header block", path)
    lines = head.split("\n")
    if len(lines) > limits.max_headers:
        raise ProtocolError(
            "header_too_large", f"more than {limits.max_headers} header lines", path
        )
    return lines, body


def split_header_line(line: str, path: str | None = None) -> tuple[str, str]:
    name, sep, value = line.partition(": ")
    if not sep:
        if line.endswith(":") and ":" not in line[:-1]:
            raise ProtocolError("invalid_header_value", f"empty value for {line[:-1]}", path)
        raise ProtocolError("malformed_record", f"not a 'Name: value' line: {line[:60]!r}", path)
    return name, value


_FastPattern = tuple[re.Pattern[str], tuple[str], tuple[str, ...], re.Pattern[str], dict[str, int]]


def _build_fast_patterns() -> dict[str, _FastPattern]:
    """One anchored regex per entity for the common, valid case.

    The regex accepts a subset of what :func:`_parse_slow` accepts (same value
    syntax, canonical order, required headers); anything it does not match goes
    through the slow path, which is authoritative and names the precise error.
    """
    generic = r"[^\x00-\x1f\x7f ](?:[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f ])?"
    ref = r"[0-9a-f]{16}/" + ID_PATTERN
    # ASCII digits only: a subset of the slow path's \d, which stays authoritative
    ts = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z"
    syntax = {
        "ID": ID_PATTERN,
        "Origin": r"[0-9a-f]{16}",
        "Instance": r"[!-~]{1,2048}",
        "Schema-Version": "2",
        "Revision": r"[1-9][0-9]{0,17}",
        "Updated-At": ts,
        "Invited-By": ref,
        "Created-By": ref,
        "Request": ref,
        "Inviter": ref,
        "Invitee": ref,
        "Created-At": ts,
        "Completed-At": ts,
        "Expires-At": ts,
        "Valid-From": ts,
        "Status": r"[a-z][a-z0-9_-]{0,31}",
        "Max-Uses": r"0|[1-9][0-9]{0,17}",
        "Use-Count": r"0|[1-9][0-9]{0,17}",
        "Auto-Approve": "true|false",
        "Key-ID": r"[0-9a-f]{16}",
        "Previous-Key-ID": r"[0-9a-f]{16}",
        "Public-Key": r"[A-Za-z0-9+/]{43}=",
    }
    out = {}
    for entity, specific in _ENTITY_SPECIFIC.items():
        live = [n for n in COMMON_HEADERS if n != "Deleted"] + list(specific)
        parts = [f"Entity: ({entity})"]
        for name in live[1:]:
            value = "public|private" if name == "Sync-Scope" else syntax.get(name, generic)
            piece = f"\n{name}: ({value})"
            required = name in REQUIRED_COMMON or name in REQUIRED_HEADERS[entity]
            parts.append(piece if required else f"(?:{piece})?")
        tomb = [f"Entity: ({entity})"]
        for name in COMMON_HEADERS[1:]:
            value = {"Sync-Scope": "public", "Deleted": "true"}.get(name) or syntax[name]
            tomb.append(f"\n{name}: ({value})")
        out[entity] = (
            re.compile("".join(parts)),
            (entity,),
            tuple(live),
            re.compile("".join(tomb)),
            {name: i for i, name in enumerate(live)},
        )
    return out


_FAST = _build_fast_patterns()
_MAX_FAST_HEADERS = max(len(names) for names in ENTITY_HEADERS.values())


def parse_record(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, path: str | None = None
) -> Record:
    """Parse and validate one schema-2 record file (strict)."""
    if len(data) > limits.max_record_bytes:
        raise ProtocolError(
            "record_too_large", f"{len(data)} bytes exceeds {limits.max_record_bytes}", path
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _parse_slow(data, limits, path)
    end = text.find("\n\n")
    fast = _FAST.get(text[8 : text.find("\n")])
    if (
        fast is not None
        and 0 < end <= limits.max_header_bytes
        and "\x00" not in text
        and "\r" not in text
        and (
            limits.max_headers >= _MAX_FAST_HEADERS or text.count("\n", 0, end) < limits.max_headers
        )
    ):
        m = fast[0].fullmatch(text, 0, end)
        if m is not None:
            # inlined Record._from_groups (this is the hot loop of verification)
            rec = _new_slots(_RecordSlots)
            rec.entity = fast[1][0]
            rec.body = text[end + 2 :]
            rec._names = fast[2]
            rec._values = m.groups()
            rec._index = fast[4]
            rec._headers = None
            rec._raw = data if type(data) is bytes else None
            rec.__class__ = Record
            return rec  # type: ignore[return-value]
        if end + 2 == len(text):
            m = fast[3].fullmatch(text, 0, end)
            if m is not None:
                return Record(fast[1][0], tuple(zip(COMMON_HEADERS, m.groups(), strict=True)))
    return _parse_slow(data, limits, path)


def _parse_slow(data: bytes, limits: Limits, path: str | None) -> Record:
    if len(data) > limits.max_record_bytes:
        raise ProtocolError(
            "record_too_large", f"{len(data)} bytes exceeds {limits.max_record_bytes}", path
        )
    text = decode_text(data, path)
    lines, body = split_header_block(text, limits, path)
    first_name, entity = split_header_line(lines[0], path)
    if first_name != "Entity":
        if any(line.startswith("Entity: ") for line in lines):
            raise ProtocolError("header_order", "Entity must be the first header", path)
        raise ProtocolError("missing_header", "missing Entity header", path)
    positions = _POSITIONS.get(entity)
    if positions is None:
        raise ProtocolError("unknown_entity", f"unknown entity {entity[:40]!r}", path)
    headers: list[tuple[str, str]] = [("Entity", entity)]
    last = 0
    for line in lines[1:]:
        name, value = split_header_line(line, path)
        pos = positions.get(name)
        if pos is None:
            raise ProtocolError("unknown_header", f"{name[:40]!r} is not a {entity} header", path)
        if pos <= last:
            if any(n == name for n, _ in headers):
                raise ProtocolError("duplicate_header", f"{name} appears twice", path)
            raise ProtocolError("header_order", f"{name} is out of canonical order", path)
        last = pos
        headers.append((name, value))
    rec = Record(entity, tuple(headers), body)
    _validate(rec, path)
    return rec


def _validate(rec: Record, path: str | None) -> None:
    hmap = dict(rec.headers)
    version = hmap.get("Schema-Version")
    if version is not None and version != SCHEMA_VERSION:
        if version == "1":
            raise ProtocolError(
                "schema_mismatch", "schema-1 record (read it with protocol.schema1)", path
            )
        raise ProtocolError("unsupported_schema", f"Schema-Version {version[:20]!r}", path)
    for name in REQUIRED_COMMON:
        if name not in hmap:
            raise ProtocolError("missing_header", f"missing {name} header", path)
    for name, value in rec.headers:
        if not value or value != value.strip(" "):
            raise ProtocolError(
                "invalid_header_value", f"{name} is empty or has surrounding spaces", path
            )
        check = _VALUE_CHECKS.get(name)
        if check is not None and not check(value):
            code = "invalid_id" if name == "ID" else "invalid_header_value"
            raise ProtocolError(code, f"invalid {name}: {value[:80]!r}", path)
    if "Deleted" in hmap:
        for name, _ in rec.headers:
            if name not in _COMMON_SET:
                raise ProtocolError(
                    "malformed_record", f"tombstone carries entity header {name}", path
                )
        if rec.body:
            raise ProtocolError("malformed_record", "tombstone has a body", path)
        if hmap["Sync-Scope"] != "public":
            raise ProtocolError("invalid_header_value", "tombstone Sync-Scope must be public", path)
    else:
        for name in REQUIRED_HEADERS[rec.entity]:
            if name not in hmap:
                raise ProtocolError("missing_header", f"{rec.entity} lacks {name}", path)


# --------------------------------------------------------------------------- building


def _normalise_value(name: str, value: str | int | bool) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ProtocolError("invalid_header_value", f"{name}: unsupported value type")
    if "\n" in text or "\r" in text:
        raise ProtocolError("invalid_header_value", f"{name} would span several lines")
    if _BAD_HEADER_CHAR_RE.search(text):
        raise ProtocolError("invalid_header_value", f"{name} contains a control character")
    return text


def make_record(
    entity: str, fields: Mapping[str, str | int | bool | None], body: str = ""
) -> Record:
    """Validate and order ``fields`` canonically; ``None`` and empty values are omitted.

    ``Schema-Version`` defaults to 2 and ``Sync-Scope`` to ``public``. Line breaks in
    header values are refused (``invalid_header_value``); CRLF/CR in the body are
    normalised to LF; NUL is refused.
    """
    positions = _POSITIONS.get(entity)
    if positions is None:
        raise ProtocolError("unknown_entity", f"unknown entity {entity!r}")
    values: dict[str, str] = {"Schema-Version": SCHEMA_VERSION, "Sync-Scope": "public"}
    for name, raw in fields.items():
        if name not in positions:
            raise ProtocolError("unknown_header", f"{name!r} is not a {entity} header")
        if raw is None:
            values.pop(name, None)
            continue
        if name == "Deleted" and raw in (False, "false"):
            continue
        text = _normalise_value(name, raw)
        if text:
            values[name] = text
        else:
            values.pop(name, None)
    if values.setdefault("Entity", entity) != entity:
        raise ProtocolError("invalid_header_value", "Entity field disagrees with entity")
    if "\x00" in body:
        raise ProtocolError("nul_byte", "NUL byte in body")
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    ordered = tuple(sorted(values.items(), key=lambda item: positions[item[0]]))
    rec = Record(entity, ordered, body)
    _validate(rec, None)
    return rec


def make_tombstone(
    entity: str,
    record_id: str,
    *,
    origin: str,
    instance: str,
    revision: int,
    updated_at: str,
) -> Record:
    """A tombstone: common headers, ``Deleted: true``, no entity headers, empty body."""
    return make_record(
        entity,
        {
            "ID": record_id,
            "Origin": origin,
            "Instance": instance,
            "Revision": revision,
            "Updated-At": updated_at,
            "Sync-Scope": "public",
            "Deleted": "true",
        },
    )


def replace_fields(rec: Record, changes: Mapping[str, str | int | bool | None]) -> Record:
    """A copy of ``rec`` with some headers changed (``None`` removes), re-validated."""
    merged: dict[str, str | int | bool | None] = dict(rec.headers)
    merged.update(changes)
    return make_record(rec.entity, merged, rec.body)
