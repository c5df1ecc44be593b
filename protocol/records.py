"""Schema-2 records and the ``.sync.txt`` text format.

A record file is UTF-8 text with LF line endings: a block of ``Name: value`` header
lines in the entity's fixed order, one blank line, then the body (the rest of the
file, verbatim). Rendering is canonical, so ``render_record(parse_record(b)) == b``
for every accepted ``b`` and a record's SHA-256 is stable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from protocol.checks import fail
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.record_grammar import (  # noqa: F401 (re-exported: protocol.records.<name>)
    _BAD_HEADER_CHAR_RE,
    _COMMON_SET,
    _EDGE_SPACE_RE,
    _ENTITY_SPECIFIC,
    _POSITIONS,
    _VALUE_CHECKS,
    BOOL_RE,
    COMMON_HEADERS,
    CONTROL_CLASS,
    COUNT_RE,
    DATE_TIME_PATTERN,
    EMPTY_BODY_ENTITIES,
    ENTITIES,
    ENTITY_HEADERS,
    EXPORTABLE_ENTITIES,
    HEADER_NAME_RE,
    ID_PATTERN,
    ID_RE,
    INSTANCE_PATTERN,
    INSTANCE_RE,
    KEY_ID_RE,
    PUBLIC_KEY_RE,
    REF_RE,
    REQUIRED_COMMON,
    REQUIRED_HEADERS,
    REVISION_RE,
    SCHEMA_VERSION,
    SCOPES,
    SPACE_CHARS,
    SPACE_CLASS,
    TAG_LIST_PATTERN,
    TAG_LIST_RE,
    TIMESTAMP_PATTERN,
    TIMESTAMP_RE,
    TOKEN_RE,
    URL_RE,
)
from protocol.record_model import (  # noqa: F401 (re-exported: protocol.records.<name>)
    Record,
    _new_slots,
    _RecordSlots,
    header_values,
    record_path,
    render_record,
)

# --------------------------------------------------------------------------- parsing


def decode_text(data: bytes, path: str | None = None, kind: str = "record") -> str:
    """Decode strict UTF-8 and refuse NUL and CR; shared by every text file reader.

    ``kind`` names the checks (``record`` or ``manifest``: ``<kind>.utf8``,
    ``<kind>.nul``, ``<kind>.cr``). A disabled check drops the offending bytes.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{kind}.utf8", f"invalid UTF-8 at byte {exc.start}", path)
        text = data.decode("utf-8", "ignore")
    if "\x00" in text:
        fail(f"{kind}.nul", "NUL byte in text file", path)
        text = text.replace("\x00", "")
    if "\r" in text:
        fail(f"{kind}.cr", "CR found; only LF line endings are allowed", path)
        text = text.replace("\r", "")
    return text


def split_header_block(
    text: str, limits: Limits = DEFAULT_LIMITS, path: str | None = None
) -> tuple[list[str], str]:
    """Split decoded record text into header lines and body (checks ``record.separator``,
    ``record.header_bytes``, ``record.header_count``, ``record.control``)."""
    head, sep, body = text.partition("\n\n")
    if not sep or not head:
        fail("record.separator", "no header block ended by a blank line", path)
    if len(head.encode("utf-8")) > limits.max_header_bytes:
        fail("record.header_bytes", f"header block exceeds {limits.max_header_bytes} bytes", path)
    lines = head.split("\n") if head else []
    if len(lines) > limits.max_headers:
        fail("record.header_count", f"more than {limits.max_headers} header lines", path)
    if _BAD_HEADER_CHAR_RE.search(head):
        fail("record.control", "control character in header block", path)
        lines = [_BAD_HEADER_CHAR_RE.sub("", line) for line in lines]
    return lines, body


def split_header_line(line: str, path: str | None = None) -> tuple[str, str] | None:
    """``Name: value`` or ``Name:`` (an empty value, refused later); None when the line
    is malformed and ``record.line`` is disabled."""
    name, sep, value = line.partition(": ")
    if not sep and line.endswith(":"):
        name, sep, value = line[:-1], ":", ""
    if not sep or not HEADER_NAME_RE.fullmatch(name):
        fail("record.line", f"not a 'Name: value' line: {line[:60]!r}", path)
        return None
    return name, value


_FastPattern = tuple[re.Pattern[str], tuple[str], tuple[str, ...], re.Pattern[str], dict[str, int]]


def _build_fast_patterns() -> dict[str, _FastPattern]:
    """One anchored regex per entity for the common, valid case.

    The regex accepts a subset of what :func:`_parse_slow` accepts (same value
    syntax, canonical order, required headers); anything it does not match goes
    through the slow path, which is authoritative and names the precise error.
    """
    edge = f"[^\\n{CONTROL_CLASS}{SPACE_CLASS}]"
    generic = f"{edge}(?:[^\\n{CONTROL_CLASS}]*{edge})?"
    ref = r"[0-9a-f]{16}/" + ID_PATTERN
    ts = TIMESTAMP_PATTERN
    syntax = {
        "ID": ID_PATTERN,
        "Origin": r"[0-9a-f]{16}",
        "Instance": INSTANCE_PATTERN,
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
        "Tags": TAG_LIST_PATTERN,
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
        # each pattern ends where the blank line starts: no value holds an LF, so a
        # match ends at the first blank line, as if matched against the header block
        out[entity] = (
            re.compile("".join(parts) + r"(?=\n\n)"),
            (entity,),
            tuple(live),
            re.compile("".join(tomb) + r"(?=\n\n)"),
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
        return _parse_slow(data, limits, path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _parse_slow(data, limits, path)
    fast = _FAST.get(text[8 : text.find("\n")])
    if fast is None or "\x00" in text or "\r" in text:
        return _parse_slow(data, limits, path)
    # the match finds the end of the header block (saves searching for it first); it
    # looks no further than a header block within the limit and its blank line
    m = fast[0].match(text, 0, limits.max_header_bytes + 2)
    end = text.find("\n\n") if m is None else m.end()
    if (
        0 < end <= limits.max_header_bytes
        and (len(text) == len(data) or data.find(b"\n\n") <= limits.max_header_bytes)
        and (
            limits.max_headers >= _MAX_FAST_HEADERS or text.count("\n", 0, end) < limits.max_headers
        )
    ):
        if m is not None and (end + 2 == len(text) or fast[1][0] not in EMPTY_BODY_ENTITIES):
            # inlined Record._from_groups (this is the hot loop of verification)
            raw = data if type(data) is bytes else None
            rec = _new_slots(_RecordSlots)
            rec.entity = fast[1][0]
            rec._body = None if raw is not None else text[end + 2 :]  # see Record.body
            rec._names = fast[2]
            rec._values = m.groups()
            rec._index = fast[4]
            rec._headers = None
            rec._raw = raw
            rec.__class__ = Record
            return rec  # type: ignore[return-value]
        if end + 2 == len(text):
            m = fast[3].match(text)
            if m is not None:
                return Record(fast[1][0], tuple(zip(COMMON_HEADERS, m.groups(), strict=True)))
    return _parse_slow(data, limits, path)


def _parse_slow(data: bytes, limits: Limits, path: str | None) -> Record:
    """The authoritative parser: evaluates the ``record.*`` checks in the order of
    :data:`protocol.checks.CHECKS`, each over all header lines before the next."""
    if len(data) > limits.max_record_bytes:
        fail(
            "limits.record_bytes", f"{len(data)} bytes exceeds {limits.max_record_bytes}", path
        )
    text = decode_text(data, path)
    lines, body = split_header_block(text, limits, path)
    parsed = [nv for nv in (split_header_line(line, path) for line in lines) if nv is not None]
    names = [name for name, _ in parsed]
    if "Entity" not in names:
        fail("record.entity_missing", "missing Entity header", path)
    if names[0] != "Entity":
        fail("record.entity_first", "Entity must be the first header", path)
        first = names.index("Entity")
        parsed.insert(0, parsed.pop(first))
    entity = parsed[0][1]
    positions = _POSITIONS.get(entity)
    if positions is None:
        fail("record.entity_known", f"unknown entity {entity[:40]!r}", path)
        raise AssertionError("terminal check")  # pragma: no cover
    _check_schema(dict(reversed(parsed)).get("Schema-Version"), path)
    kept: list[tuple[str, str]] = []
    for name, value in parsed[1:]:
        if name not in positions:
            fail("record.unknown_header", f"{name[:40]!r} is not a {entity} header", path)
            continue
        kept.append((name, value))
    seen = {"Entity"}
    unique: list[tuple[str, str]] = []
    for name, value in kept:
        if name in seen:
            fail("record.duplicate_header", f"{name} appears twice", path)
            continue
        seen.add(name)
        unique.append((name, value))
    order = [positions[name] for name, _ in unique]
    if order != sorted(order):
        fail("record.header_order", "headers are out of canonical order", path)
        unique.sort(key=lambda item: positions[item[0]])
    rec = Record(entity, (("Entity", entity), *unique), body)
    _validate(rec, path)
    return rec


def _check_schema(version: str | None, path: str | None) -> None:
    if version is not None and version != SCHEMA_VERSION:
        if version == "1":
            fail("record.schema_1", "schema-1 record (read it with protocol.schema1)", path)
        else:
            fail("record.schema_version", f"Schema-Version {version[:20]!r}", path)


def _validate(rec: Record, path: str | None) -> None:
    hmap = dict(rec.headers)
    _check_schema(hmap.get("Schema-Version"), path)
    for name in REQUIRED_COMMON:
        if name not in hmap:
            fail("record.required_common", f"missing {name} header", path)
    for name, value in rec.headers:
        if not value or _EDGE_SPACE_RE.search(value):
            fail("record.value_space", f"{name} is empty or has surrounding spaces", path)
    record_id = hmap.get("ID")
    if record_id is not None and not ID_RE.fullmatch(record_id):
        fail("record.id", f"invalid ID {record_id[:80]!r}", path)
    instance = hmap.get("Instance")
    if instance is not None and not INSTANCE_RE.fullmatch(instance):
        fail("record.instance", f"Instance is not an http(s) URL: {instance[:80]!r}", path)
    for name, value in rec.headers:
        check = _VALUE_CHECKS.get(name)
        if check is not None and value and not check(value):
            fail("record.value_syntax", f"invalid {name}: {value[:80]!r}", path)
    if "Deleted" in hmap:
        for name, _ in rec.headers:
            if name not in _COMMON_SET:
                fail("record.tombstone_headers", f"tombstone carries entity header {name}", path)
                break
        if rec.body:
            fail("record.tombstone_body", "tombstone has a body", path)
        if hmap.get("Sync-Scope") != "public":
            fail("record.tombstone_scope", "tombstone Sync-Scope must be public", path)
    else:
        for name in REQUIRED_HEADERS[rec.entity]:
            if name not in hmap:
                fail("record.required_entity", f"{rec.entity} lacks {name}", path)
        if rec.body and rec.entity in EMPTY_BODY_ENTITIES:
            fail("record.empty_body", f"a {rec.entity} record has no body", path)


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
