"""The total order of verification checks (normative: docs/protocol.md section 6).

Every rejection names one *check*: a stable id, the error code it raises and what it
tests. Readers and the verifier evaluate the checks in the order of :data:`CHECKS`
and stop at the first that fails, so a bundle with several defects always gets the
code of the earliest one. ``docs/protocol.md`` renders this table
(:func:`checks_table`); ``tests/protocol/test_spec_tables.py`` keeps them equal.

A check can be *disabled* for one evaluation (:func:`disabled`): the reader then
proceeds as if that defect were absent (it skips the offending element or reads it
with the obvious repair). The conformance suite uses this to prove that every
invalid vector has exactly one problem: with its check disabled it verifies. Checks
marked *terminal* stop reading (nothing after them can be evaluated), so disabling
them has no effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from protocol.errors import ProtocolError


@dataclass(frozen=True)
class Check:
    id: str
    code: str
    what: str
    terminal: bool = False


_C = Check

#: Every check, in evaluation order.
CHECKS: tuple[Check, ...] = (
    # -- container detection (section 7)
    _C("container.kind", "unknown_container",
       "input is not a directory, gzip data (`1f 8b`) or a CBOR map (first byte `a0`-`bf`)",
       True),
    # -- container: CBOR envelope (section 7)
    _C("cbor.size", "bundle_too_large", "envelope larger than the container cap"),
    _C("cbor.well_formed", "malformed_cbor",
       "truncated item, indefinite length, reserved value, tag, non-UTF-8 text, "
       "nesting deeper than 4", True),
    _C("cbor.declared_count", "too_many_files",
       "a map or array declares more than max(max_files, 5) entries (before reading them)",
       True),
    _C("cbor.duplicate_key", "duplicate_key", "a map repeats a key"),
    _C("cbor.trailing", "trailing_bytes", "bytes after the top-level item"),
    _C("cbor.unknown_field", "unknown_field", "a top-level key other than the five"),
    _C("cbor.missing_field", "wrong_type", "one of the five top-level keys is absent"),
    _C("cbor.version_type", "wrong_type", "`v` is not an unsigned integer"),
    _C("cbor.version", "unsupported_container_version", "`v` is not 2"),
    _C("cbor.types", "wrong_type",
       "`manifest`/`sig` not byte strings; `files`/`keys` not maps of text to bytes"),
    # -- container: tar.gz (section 7)
    _C("targz.size", "bundle_too_large", "compressed archive larger than the container cap"),
    _C("targz.gzip", "malformed_archive", "not a complete gzip stream", True),
    _C("targz.inflate", "bundle_too_large",
       "inflates beyond max_archive_bytes, or beyond the ratio limit"),
    _C("targz.tar", "malformed_archive", "not a readable tar stream", True),
    _C("targz.member_count", "too_many_files",
       "more than max_files + 1000 members, or more than max_files regular members"),
    _C("targz.member_type", "unsafe_archive_member",
       "a link, device, FIFO or other non-regular, non-directory member"),
    _C("targz.member_path", "unsafe_path", "an unsafe member name (section 5)"),
    _C("targz.member_size", "record_too_large",
       "a member larger than max(max_record_bytes, max_manifest_bytes)"),
    _C("targz.duplicate", "duplicate_path", "a name that appears twice"),
    # -- directory view to bundle (all containers)
    _C("bundle.manifest_present", "missing_manifest", "no manifest.sync.txt", True),
    _C("bundle.signature_present", "missing_signature", "no bundle.sig", True),
    # -- 1. limits
    _C("limits.files", "too_many_files", "more than max_files files"),
    _C("limits.bundle_bytes", "bundle_too_large", "more than max_bundle_bytes in total"),
    _C("limits.manifest_bytes", "manifest_too_large", "manifest larger than max_manifest_bytes"),
    _C("limits.signature_bytes", "record_too_large", "bundle.sig larger than max_signature_bytes"),
    _C("limits.record_bytes", "record_too_large", "a record file larger than max_record_bytes"),
    _C("limits.key_file_bytes", "record_too_large", "a key file larger than max_key_file_bytes"),
    # -- 2. paths
    _C("paths.unsafe", "unsafe_path", "a file path that is unsafe (section 5)"),
    _C("paths.record", "invalid_path", "a file path that is not a record path"),
    _C("paths.key_file", "invalid_path", "a key file name that is not a key id"),
    # -- 3. bundle.sig
    _C("sig.text", "malformed_signature", "bundle.sig not UTF-8, or holds NUL or CR"),
    _C("sig.final_lf", "malformed_signature", "bundle.sig does not end with LF"),
    _C("sig.line", "malformed_signature", "a line that is not `Name: value` (header grammar)"),
    _C("sig.unknown_header", "malformed_signature", "a header other than the six"),
    _C("sig.duplicate_header", "malformed_signature", "a header that appears twice"),
    _C("sig.missing_header", "missing_signature_header", "one of the six is absent or empty", True),
    _C("sig.order", "malformed_signature", "the six headers are not in their fixed order"),
    _C("sig.version", "unsupported_signature_version", "Signature-Version is not 1"),
    _C("sig.base64", "bad_base64", "Public-Key or Signature is not canonical base64"),
    _C("sig.key_id", "key_id_mismatch", "Key-ID is not the key id of Public-Key"),
    _C("sig.digest_syntax", "malformed_signature", "Manifest-Digest is not 64 lowercase hex"),
    _C("sig.signed_at", "malformed_signature", "Signed-At is not a valid RFC 3339 time"),
    # -- 4, 5. digest and signature
    _C("sig.manifest_digest", "manifest_digest_mismatch",
       "Manifest-Digest differs (compared as the 32 bytes its hex encodes)"),
    _C("sig.ed25519", "bad_signature",
       "Public-Key not 32 bytes, Signature not 64 bytes, or the Ed25519 signature does "
       "not verify"),
    # -- 6. manifest and trust
    _C("manifest.utf8", "not_utf8", "manifest is not UTF-8"),
    _C("manifest.nul", "nul_byte", "manifest holds NUL"),
    _C("manifest.cr", "bad_line_ending", "manifest holds CR"),
    _C("manifest.version", "unsupported_manifest_version", "Manifest-Version is not 2"),
    _C("manifest.header_block", "malformed_manifest",
       "v2 header block: not exactly the seven headers in order, or no blank line", True),
    _C("manifest.header_values", "malformed_manifest",
       "Origin, Instance, Sequence, Previous, Created-At or Kind malformed"),
    _C("manifest.final_lf", "malformed_manifest", "the last file line does not end with LF"),
    _C("manifest.line", "malformed_manifest", "a file line is not `<64 hex>  <path>`"),
    _C("manifest.path_unsafe", "unsafe_path", "a listed path is unsafe"),
    _C("manifest.path_record", "invalid_path", "a listed path is not a record path"),
    _C("manifest.duplicate_path", "duplicate_path", "a path listed on an earlier line"),
    _C("manifest.sorted", "malformed_manifest", "a path that sorts before the previous line"),
    _C("trust", "untrusted_key", "the signing key is not trusted for the origin"),
    # -- 7. files
    _C("keyfile.syntax", "malformed_key_file", "a key file that is not the two .pub lines"),
    _C("keyfile.key_id", "key_id_mismatch", "a key file disagrees with its name or key"),
    _C("files.listed", "unlisted_file", "a present file is not listed"),
    _C("files.digest", "digest_mismatch", "a present file's SHA-256 differs from its line"),
    # -- 8. records, one file at a time in path order (schema 2)
    _C("record.utf8", "not_utf8", "record is not UTF-8"),
    _C("record.nul", "nul_byte", "record holds NUL"),
    _C("record.cr", "bad_line_ending", "record holds CR"),
    _C("record.separator", "malformed_record",
       "the file does not start with a header block ended by an empty line", True),
    _C("record.header_bytes", "header_too_large", "header block larger than max_header_bytes"),
    _C("record.header_count", "header_too_large", "more than max_headers header lines"),
    _C("record.control", "invalid_header_value", "a control character in the header block"),
    _C("record.line", "malformed_record", "a header line that is not `Name: value`"),
    _C("record.entity_missing", "missing_header", "no Entity header", True),
    _C("record.entity_first", "header_order", "Entity is not the first header"),
    _C("record.entity_known", "unknown_entity", "Entity is not one of the six", True),
    _C("record.schema_1", "schema_mismatch", "Schema-Version is 1"),
    _C("record.schema_version", "unsupported_schema", "Schema-Version is not 1 or 2"),
    _C("record.unknown_header", "unknown_header", "a header the entity does not define"),
    _C("record.duplicate_header", "duplicate_header", "a header that appears twice"),
    _C("record.header_order", "header_order", "headers out of the entity's order"),
    _C("record.required_common", "missing_header", "a required common header is absent"),
    _C("record.value_space", "invalid_header_value",
       "a value that is empty or starts or ends with white space"),
    _C("record.id", "invalid_id", "ID does not match the ID grammar"),
    _C("record.instance", "invalid_instance", "Instance is not an absolute http(s) URL"),
    _C("record.value_syntax", "invalid_header_value", "a value that fails its syntax"),
    _C("record.tombstone_headers", "malformed_record", "a tombstone with entity headers"),
    _C("record.tombstone_body", "malformed_record", "a tombstone with a body"),
    _C("record.tombstone_scope", "not_public", "a tombstone whose Sync-Scope is not public"),
    _C("record.required_entity", "missing_header", "a required entity header is absent"),
    _C("record.empty_body", "malformed_record", "a vouch or key record with a body"),
    _C("record.origin", "origin_mismatch", "record Origin is not the bundle origin"),
    _C("record.path", "path_mismatch", "record is not at <entity>s/<ID>.sync.txt"),
    _C("record.exportable", "entity_not_allowed", "an invite in a schema-2 bundle"),
    _C("record.public", "not_public", "Sync-Scope is not public"),
    _C("record.key", "invalid_key_record", "a key record whose Key-ID is not its key's id"),
    # -- 8'. records of a schema-1 bundle (section 9), one file at a time in path order;
    # record.utf8 ... record.control apply first, the mapped records' value checks after
    _C("schema1.line", "malformed_record", "a header line without a colon or with a bad name"),
    _C("schema1.duplicate_header", "duplicate_header", "a header that appears twice"),
    _C("schema1.entity_missing", "missing_header", "no Entity header", True),
    _C("schema1.entity_known", "unknown_entity", "Entity is not user, request or invite", True),
    _C("schema1.unknown_header", "unknown_header", "a header schema 1 does not define"),
    _C("schema1.required", "missing_header", "a required schema-1 header is absent", True),
    _C("schema1.schema_2", "schema_mismatch", "Schema-Version is 2"),
    _C("schema1.schema_version", "unsupported_schema", "Schema-Version is not 1 or 2"),
    _C("schema1.id", "invalid_id",
       "ID does not match the ID grammar (the mapped records' ID is not judged again)"),
    _C("schema1.path", "path_mismatch", "record is not at <entity>s/<entity>_<ID>.sync.txt"),
    _C("schema1.public", "not_public", "Sync-Scope is not public"),
    _C("schema1.time", "malformed_schema1", "a time that is not ISO 8601 / RFC 3339", True),
    _C("schema1.comment", "malformed_schema1", "an embedded comment that cannot be mapped"),
    _C("record.duplicate", "duplicate_record", "two records share (Origin, Entity, ID)"),
)

CHECK_BY_ID: dict[str, Check] = {check.id: check for check in CHECKS}
CHECK_ORDER: dict[str, int] = {check.id: i for i, check in enumerate(CHECKS)}

_DISABLED: ContextVar[frozenset[str]] = ContextVar("wb_disabled_checks", default=frozenset())


def fail(check_id: str, message: str, path: str | None = None) -> None:
    """Raise the error of ``check_id``, unless that check is disabled (then return)."""
    check = CHECK_BY_ID[check_id]
    if check_id in _DISABLED.get() and not check.terminal:
        return
    error = ProtocolError(check.code, message, path)
    error.check = check_id
    raise error


def is_disabled(check_id: str) -> bool:
    return check_id in _DISABLED.get()


def any_disabled() -> bool:
    return bool(_DISABLED.get())


@contextmanager
def disabled(*check_ids: str) -> Iterator[None]:
    """Evaluate with ``check_ids`` disabled (the one-problem proof of the vectors)."""
    unknown = [c for c in check_ids if c not in CHECK_BY_ID]
    if unknown:
        raise ValueError(f"unknown checks: {unknown}")
    token = _DISABLED.set(_DISABLED.get() | frozenset(check_ids))
    try:
        yield
    finally:
        _DISABLED.reset(token)


def checks_table() -> str:
    """The Markdown table of :data:`CHECKS` that docs/protocol.md section 6 embeds."""
    lines = ["| # | check | code | fails when |", "|---|---|---|---|"]
    for i, check in enumerate(CHECKS, 1):
        mark = " (terminal)" if check.terminal else ""
        lines.append(f"| {i} | `{check.id}` | `{check.code}` | {check.what}{mark} |")
    return "\n".join(lines) + "\n"


def limits_table() -> str:
    """The Markdown table of the default limits that docs/protocol.md section 8 embeds."""
    from dataclasses import fields

    from protocol.limits import DEFAULT_LIMITS, DERIVED_DEFAULTS

    lines = ["| limit | default |", "|---|---|"]
    for f in fields(DEFAULT_LIMITS):
        value = getattr(DEFAULT_LIMITS, f.name)
        shown = f"`{DERIVED_DEFAULTS[f.name]}`" if value is None else f"{value:,}"
        lines.append(f"| `{f.name}` | {shown} |")
    return "\n".join(lines) + "\n"
