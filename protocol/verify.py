"""Bundle verification: one function, one fixed order, one error type.

Order (ARCHITECTURE.md section 5, normative in docs/protocol.md):

1. size and count limits
2. every path matches the allowed pattern
3. ``bundle.sig`` well-formed
4. manifest digest
5. Ed25519 signature
6. manifest parses; signing key trusted for the origin (``untrusted_key`` otherwise)
7. key files consistent; every present file listed with a matching digest (listed but
   absent files were withheld by a relay, and are allowed)
8. every record parses, belongs to the origin, and has a known schema

Nothing is written anywhere: callers store a bundle only after this returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from protocol.bundle import Bundle
from protocol.checks import any_disabled, fail
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.manifest import Manifest, parse_manifest
from protocol.paths import RECORD_PATH_RE, all_record_paths, unsafe_reason
from protocol.records import (
    EXPORTABLE_ENTITIES,
    ID_RE,
    KEY_ID_RE,
    Record,
    parse_record,
    record_path,
)
from protocol.schema1 import parse_schema1_record
from protocol.signature import key_id as compute_key_id
from protocol.signature import parse_public_key_file, parse_signature, verify_signature

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "RecordPairs",
    "TrustFn",
    "VerifiedBundle",
    "peek_origin",
    "self_certifying",
    "verify_bundle",
]

#: ``trust(origin, key_id) -> bool``
TrustFn = Callable[[str, str], bool]

#: exportable entities whose records need no check beyond origin, scope and path
_PLAIN_ENTITIES = EXPORTABLE_ENTITIES - {"key"}


class RecordPairs(Sequence[tuple[str, Record]]):
    """``(path, record)`` pairs, kept as two lists and paired as they are read.

    A 10,000-record bundle would otherwise keep 10,000 more tuples, which the garbage
    collector visits again and again while the bundle is stored (issue 24: about a
    fifth of the collector's share of :func:`verify_bundle`). Equal to any sequence
    holding the same pairs."""

    __slots__ = ("paths", "records")

    def __init__(self, paths: Sequence[str], records: Sequence[Record]) -> None:
        if len(paths) != len(records):
            raise ValueError("one path per record")
        self.paths = paths
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[tuple[str, Record]]:
        return zip(self.paths, self.records, strict=True)

    @overload
    def __getitem__(self, i: int) -> tuple[str, Record]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[str, Record]]: ...
    def __getitem__(self, i: int | slice) -> tuple[str, Record] | list[tuple[str, Record]]:
        if isinstance(i, slice):
            return list(zip(self.paths[i], self.records[i], strict=True))
        return (self.paths[i], self.records[i])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RecordPairs({list(self)!r})"


@dataclass(frozen=True)
class VerifiedBundle:
    """What a verified bundle says. ``records`` pairs each record with the path of the
    file it came from (a schema-1 request and its embedded comments share a path)."""

    digest: str
    origin: str
    instance: str | None
    sequence: int | None
    previous: str | None
    kind: str
    created_at: str | None
    schema_version: int
    key_id: str
    public_key: bytes
    signed_at: str
    records: RecordPairs
    withheld: list[str]
    verified: list[str]
    manifest: Manifest
    bundle: Bundle = field(repr=False, compare=False)


def self_certifying(origin: str, key_id: str) -> bool:
    """Default trust: the signing key is the origin's first key (``key_id == origin``)."""
    return origin == key_id


def verify_bundle(
    bundle: Bundle,
    *,
    trust: TrustFn | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedBundle:
    """Verify ``bundle`` completely or raise :class:`ProtocolError`.

    ``trust(origin, key_id)`` decides whether the (valid) signing key may speak for
    the origin; it is asked only after the signature verified, so an ``untrusted_key``
    error means "authentic but unknown key": callers may queue it for approval. When
    ``trust`` is None only the origin's own first key (``key_id == origin``) is
    trusted.
    """
    # 1. limits
    files = bundle.files
    if bundle.file_count > limits.max_files:
        fail("limits.files", f"{bundle.file_count} files > {limits.max_files}")
    total = bundle.total_bytes
    if total > limits.max_bundle_bytes:
        fail("limits.bundle_bytes", f"{total} bytes > {limits.max_bundle_bytes}")
    if len(bundle.manifest) > limits.max_manifest_bytes:
        fail("limits.manifest_bytes", f"{len(bundle.manifest)} bytes", "manifest.sync.txt")
    if len(bundle.sig) > limits.max_signature_bytes:
        fail("limits.signature_bytes",
             f"bundle.sig is larger than {limits.max_signature_bytes} bytes", "bundle.sig")
    max_record = limits.max_record_bytes
    if files and max(map(len, files.values())) > max_record:
        for path in sorted(bundle.files):
            size = len(bundle.files[path])
            if size > max_record:
                fail("limits.record_bytes", f"{size} bytes > {max_record}", path)
    for kid in sorted(bundle.keys):
        if len(bundle.keys[kid]) > limits.max_key_file_bytes:
            fail("limits.key_file_bytes", "key file too large", f"public_keys/{kid}.pub")

    # 2. paths (each check over every file, in path order). The regex over every path
    # is put off when no check is disabled: a schema-2 bundle whose every record is
    # at its own path (step 8) proves them all record paths. It runs after all when a
    # later check fails (raising its own error first, as if it had run here) or when
    # step 8 proves nothing, so every verdict is the one of the stated order.
    if any_disabled():
        if not all_record_paths(files):
            files = _check_paths(files)
        return _verify_signed(bundle, files, trust, limits)[0]
    try:
        verified, proven = _verify_signed(bundle, files, trust, limits)
    except Exception:  # whatever a bad path led to, the eager order reports the path
        if not all_record_paths(files):
            _check_paths(files)
        raise
    if not proven and not all_record_paths(files):
        _check_paths(files)
    return verified


def _verify_signed(
    bundle: Bundle, files: dict[str, bytes], trust: TrustFn | None, limits: Limits
) -> tuple[VerifiedBundle, bool]:
    """Steps 2 (key file names) to 8 of :func:`verify_bundle`, and whether the records
    prove every file path a record path (each at ``<entity>s/<ID>.sync.txt``)."""
    keys = bundle.keys
    for kid in sorted(keys):
        if not KEY_ID_RE.fullmatch(kid):
            fail("paths.key_file", "key file name is not a key id", f"public_keys/{kid}")
            keys = {k: v for k, v in keys.items() if k != kid}

    # 3-5. signature file, manifest digest, Ed25519
    sig = parse_signature(bundle.sig, limits)
    verify_signature(sig, bundle.manifest)

    # 6. manifest and trust. The digests of the files (step 7) are taken first: the
    # common manifest lists exactly these files, and is then recognised as their
    # rendering (one string comparison) instead of being split and checked line by line
    sha256 = hashlib.sha256
    paths = tuple(files)
    hexes = tuple([sha256(data).hexdigest() for data in files.values()])
    manifest = parse_manifest(bundle.manifest, limits, listing=(paths, hexes))
    origin = sig.key_id if manifest.version == 1 else manifest.origin
    assert origin is not None
    trusted = (trust or self_certifying)(origin, sig.key_id)
    if not trusted:
        fail("trust", f"key {sig.key_id} is not trusted for origin {origin}", "bundle.sig")

    # 7. key files and file digests
    for kid in sorted(keys):
        try:
            parse_public_key_file(keys[kid], kid)
        except ProtocolError as exc:
            check = "keyfile.key_id" if exc.code == "key_id_mismatch" else "keyfile.syntax"
            fail(check, exc.message, exc.path)
    listed_paths, listed_digests = manifest.columns
    if listed_paths == paths:
        # common case: every listed file present, in manifest order; no dict needed
        withheld: list[str] = []
        verified = list(listed_paths)
        contents: Iterable[bytes] = files.values()  # in the order of verified
        if listed_digests != hexes:
            files = _check_digests(files, manifest)
            contents = map(files.__getitem__, verified)
    else:
        digests = manifest.digests
        if hexes != tuple([digests.get(path) for path in files]):
            files = _check_digests(files, manifest)
        withheld = [path for path in listed_paths if path not in files]
        verified = [path for path in listed_paths if path in files]
        contents = map(files.__getitem__, verified)

    # 8. records
    if manifest.version == 1:
        pairs = [(path, rec) for path, data in zip(verified, contents, strict=True)
                 for rec in parse_schema1_record(data, origin, limits, path=path)]
        _check_unique(pairs)
        records = RecordPairs([p for p, _ in pairs], [r for _, r in pairs])
        proven = False
    else:
        plain = _PLAIN_ENTITIES
        proven = True
        kept: list[Record] = []
        append = kept.append
        for path, data in zip(verified, contents, strict=True):
            rec = parse_record(data, limits, path=path)
            # common headers are always the first eight, in order (validated by the
            # parser): 1 ID, 2 Origin, 7 Sync-Scope
            values = rec._values
            entity = rec.entity
            if (
                values[2] != origin
                or values[7] != "public"
                or entity not in plain
                or path != f"{entity}s/{values[1]}.sync.txt"
            ):
                _check_v2_record(rec, path, origin)
                proven = False
            append(rec)
        records = RecordPairs(verified, kept)

    return VerifiedBundle(
        digest=sig.manifest_digest,
        origin=origin,
        instance=manifest.instance,
        sequence=manifest.sequence,
        previous=manifest.previous,
        kind=manifest.kind or "snapshot",
        created_at=manifest.created_at,
        schema_version=manifest.version,
        key_id=sig.key_id,
        public_key=sig.public_key,
        signed_at=sig.signed_at,
        records=records,
        withheld=withheld,
        verified=verified,
        manifest=manifest,
        bundle=bundle,
    ), proven


def _check_paths(files: dict[str, bytes]) -> dict[str, bytes]:
    """``paths.unsafe`` over every file, then ``paths.record`` over every file."""
    kept: dict[str, bytes] = {}
    for path in sorted(files):
        reason = unsafe_reason(path)
        if reason is not None:
            fail("paths.unsafe", reason, path[:200])
            continue
        kept[path] = files[path]
    out: dict[str, bytes] = {}
    for path, data in kept.items():
        if not RECORD_PATH_RE.fullmatch(path):
            fail("paths.record", "not a record path", path[:200])
            continue
        out[path] = data
    return out


def _check_digests(files: dict[str, bytes], manifest: Manifest) -> dict[str, bytes]:
    """``files.listed`` over every file, then ``files.digest`` over every file."""
    digests = manifest.digests
    listed: dict[str, bytes] = {}
    for path in sorted(files):
        if path not in digests:
            fail("files.listed", "file is not listed in the manifest", path)
            continue
        listed[path] = files[path]
    out: dict[str, bytes] = {}
    for path, data in listed.items():
        if hashlib.sha256(data).hexdigest() != digests[path]:
            fail("files.digest", "file digest differs from the manifest", path)
        out[path] = data
    return out


def _check_v2_record(rec: Record, path: str, origin: str) -> None:
    if rec.origin != origin:
        fail("record.origin", f"record Origin {rec.origin} is not the bundle origin {origin}", path)
    if ID_RE.fullmatch(rec.id) and record_path(rec.entity, rec.id) != path:
        fail("record.path", f"expected {record_path(rec.entity, rec.id)}", path)
    if rec.entity not in EXPORTABLE_ENTITIES:
        fail("record.exportable", f"{rec.entity} records are never exported", path)
    if rec.scope != "public" and not rec.deleted:
        fail("record.public", "record Sync-Scope is not public", path)
    if rec.entity == "key" and not rec.deleted:
        try:
            check_key_record(rec, path)
        except ProtocolError as exc:
            fail("record.key", exc.message, path)


def check_key_record(rec: Record, path: str | None = None) -> bytes:
    """Validate a ``key`` record; returns the raw public key it announces."""
    from protocol.signature import strict_b64decode

    try:
        raw = strict_b64decode(rec["Public-Key"], "Public-Key")
    except ProtocolError:
        raise ProtocolError("invalid_key_record", "Public-Key is not base64", path) from None
    if len(raw) != 32 or compute_key_id(raw) != rec["Key-ID"]:
        raise ProtocolError("invalid_key_record", "Key-ID does not match Public-Key", path)
    return raw


def _check_unique(records: list[tuple[str, Record]]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for path, rec in records:
        if rec.key in seen:
            fail("record.duplicate", f"{rec.entity} {rec.id} appears twice", path)
        seen.add(rec.key)


def peek_origin(bundle: Bundle, limits: Limits = DEFAULT_LIMITS) -> tuple[str, str]:
    """``(claimed origin, signing key id)`` WITHOUT verifying anything.

    Lets a caller load the trust entries for one origin before calling
    :func:`verify_bundle`. Never act on the result otherwise.
    """
    sig = parse_signature(bundle.sig, limits)
    manifest = parse_manifest(bundle.manifest, limits)
    origin = manifest.origin if manifest.version == 2 and manifest.origin else sig.key_id
    return origin, sig.key_id
