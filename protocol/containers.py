"""Bundle containers: CBOR envelope (transport), tar.gz (original hub API), stream frames.

All containers are lossless views of the same bytes as the directory view
(:meth:`protocol.bundle.Bundle.to_files`). Decoders work in memory and never touch
the file system; they refuse anything ambiguous.

CBOR envelope (deterministic encoding, RFC 8949 section 4.2.1)::

    {"v": 2, "manifest": bstr, "sig": bstr, "files": {path: bstr}, "keys": {key_id: bstr}}

tar.gz: :mod:`protocol.targz` (re-exported here). :func:`from_bytes` detects the
container by content (docs/protocol.md section 7).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cbor2

from protocol.bundle import Bundle
from protocol.checks import fail
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.targz import (  # noqa: F401 (re-exported: protocol.containers.<name>)
    ORIGINAL_HUB_METADATA,
    from_targz,
    to_targz,
)

CBOR_MEDIA_TYPE = "application/vnd.whiteballoon.bundle+cbor"
ENVELOPE_VERSION = 2
ENVELOPE_KEYS: tuple[str, ...] = ("v", "manifest", "sig", "files", "keys")
FRAME_OPS: tuple[str, ...] = ("bundle", "info", "error")
FRAME_KEYS: tuple[str, ...] = ("op", "seq", "digest", "origin", "bundle", "code", "message")

_MAX_DEPTH = 4

# --------------------------------------------------------------------------- CBOR
#
# cbor2 does the encoding and decoding; this layer adds what the spec requires on top:
# only the subset below is written; tags, indefinite lengths, duplicate keys, trailing
# bytes and over-declared maps or arrays are refused with the spec's check names.

CborValue = int | str | bytes | dict[str, "CborValue"]


def _check_encodable(value: object) -> None:
    kind = type(value)
    if kind is bytes or kind is str:
        return
    if kind is int:
        if value < 0:  # type: ignore[operator]
            raise TypeError("negative integers are not used in WhiteBalloon CBOR")
        return
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            _check_encodable(key)
            if type(item) is not bytes:
                _check_encodable(item)
        return
    if isinstance(value, bool):
        raise TypeError("booleans are not used in WhiteBalloon CBOR")
    raise TypeError(f"cannot encode {kind.__name__}")


def cbor_encode(value: CborValue) -> bytes:
    """Deterministic CBOR (RFC 8949 section 4.2.1: shortest heads, map keys sorted by their
    encoded bytes) for the subset used here: uint, bytes, text, text-keyed maps."""
    _check_encodable(value)
    return cbor2.dumps(value, canonical=True)


class _RefuseEveryTag(dict):  # type: ignore[type-arg]
    """cbor2's table of tag decoders, answering every tag number with a refusal."""

    def get(self, key: object, default: object = None) -> object:
        return _refuse_tag

    def __getitem__(self, key: object) -> object:
        return _refuse_tag

    def __contains__(self, key: object) -> bool:
        return True


def _refuse_tag(*_args: object) -> object:
    raise ValueError("CBOR tags are not allowed")


_NO_TAGS = _RefuseEveryTag()


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_over_declared(data: bytes, max_items: int) -> int | None:
    """Explain a refusal: the first map or array (in stream order, before any other
    malformation) declaring more than ``max_items`` entries, from the item heads alone."""
    pos, pending = 0, [1]  # entries still to read at each open nesting level
    while pending and pos < len(data):
        if len(pending) > _MAX_DEPTH + 1:
            return None  # nested too deeply: malformed before any declaration
        pending[-1] -= 1
        major, info = data[pos] >> 5, data[pos] & 0x1F
        pos += 1
        if info > 27 or major == 6:
            return None  # indefinite length, reserved, or a tag: malformed first
        size = 0 if info < 24 else 1 << (info - 24)
        arg = info if info < 24 else int.from_bytes(data[pos:pos + size], "big")
        pos += size
        if major in (2, 3):
            if major == 3 and not _is_utf8(data[pos:pos + arg]):
                return None
            pos += arg
        elif major in (4, 5):
            if arg > max_items:
                return arg if pos <= len(data) else None
            if pos + arg * (major - 3) > len(data):
                return None  # too short for its entries: truncated
            pending.append(arg * (major - 3))
        while pending and pending[-1] == 0:
            pending.pop()
    return None


def _check_counts(value: object, max_items: int) -> None:
    if len(value) > max_items:  # type: ignore[arg-type]
        fail("cbor.declared_count", f"map or array declares {len(value)} entries")  # type: ignore[arg-type]
    items = value.values() if isinstance(value, dict) else value
    for item in items:  # type: ignore[attr-defined]
        if type(item) in (dict, list, tuple):
            _check_counts(item, max_items)


def _cbor2_decode(data: bytes, *, allow_duplicate_keys: bool) -> tuple[object, int]:
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(stream, semantic_decoders=_NO_TAGS, tag_hook=_refuse_tag,
                                max_depth=_MAX_DEPTH, allow_indefinite=False,
                                allow_duplicate_keys=allow_duplicate_keys)
    return decoder.decode(), stream.tell()


def cbor_decode(data: bytes, max_items: int = DEFAULT_LIMITS.max_files) -> object:
    """Decode exactly one definite-length CBOR item; refuse truncation and trailing bytes.

    A map or array declaring more than ``max_items`` entries is refused
    (``too_many_files``) whether or not its entries follow.
    """
    try:
        value, end = _cbor2_decode(data, allow_duplicate_keys=False)
    except cbor2.CBORDecodeError as exc:
        declared = _first_over_declared(data, max_items)
        if declared is not None:
            fail("cbor.declared_count", f"map or array declares {declared} entries")
        if "Duplicate map key" not in str(exc):
            fail("cbor.well_formed", str(exc)[:120])
            raise AssertionError("terminal check") from exc
        fail("cbor.duplicate_key", str(exc)[:120])
        try:  # reached only with that check disabled (conformance_tests/test_one_problem)
            value, end = _cbor2_decode(data, allow_duplicate_keys=True)
        except cbor2.CBORDecodeError as again:
            fail("cbor.well_formed", str(again)[:120])
            raise AssertionError("terminal check") from again
    if end != len(data):
        fail("cbor.trailing", f"{len(data) - end} bytes after the CBOR item")
    if type(value) in (dict, list, tuple):
        _check_counts(value, max_items)
    return value


_TYPE_NAMES = {bool: "simple value", float: "float", list: "array", tuple: "array",
               type(None): "simple value"}


def _type_name(value: object) -> str:
    if type(value) is int and value < 0:  # type: ignore[operator]
        return "negative integer"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _is_uint(value: object) -> bool:
    return type(value) is int and value >= 0  # type: ignore[operator]


def _as_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes):
        return value
    fail("cbor.types", f"expected a byte string, not {_type_name(value)}")
    return value.encode() if isinstance(value, str) else None


def _bytes_map(value: object, what: str) -> dict[str, bytes]:
    if not isinstance(value, dict):
        fail("cbor.types", f"{what} must be a map, not {_type_name(value)}")
        return {}
    out: dict[str, bytes] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            fail("cbor.types", f"{what} keys must be text strings")
            continue
        data = _as_bytes(item)
        if data is not None:
            out[key] = data
    return out


_ABSENT: dict[str, object] = {"v": ENVELOPE_VERSION, "files": {}, "keys": {}}


def _envelope_to_bundle(value: object) -> Bundle:
    """Shape checks of a decoded envelope, in the order of protocol.checks."""
    if not isinstance(value, dict):
        # only inside a stream frame: a top-level envelope starts with a map head
        # (from_cbor refuses anything else as container.kind)
        raise ProtocolError("wrong_type", f"envelope must be a map, not {_type_name(value)}")
    for key in value:
        if key not in ENVELOPE_KEYS:
            fail("cbor.unknown_field", f"unknown envelope key {str(key)[:60]!r}")
    for key in ENVELOPE_KEYS:
        if key not in value:
            fail("cbor.missing_field", f"envelope lacks {key!r}")
    # (with cbor.missing_field disabled: an absent map is empty, an absent v is 2, an
    # absent manifest or sig is an absent file)
    if "manifest" not in value:
        fail("bundle.manifest_present", "envelope has no manifest")
        raise AssertionError("terminal check")
    if "sig" not in value:
        fail("bundle.signature_present", "envelope has no sig")
        raise AssertionError("terminal check")
    value = {**_ABSENT, **value}
    version = value["v"]
    if not _is_uint(version):
        fail("cbor.version_type", "envelope v must be an unsigned integer")
    elif version != ENVELOPE_VERSION:
        fail("cbor.version", f"envelope v={version}")
    manifest = _as_bytes(value["manifest"]) or b""
    sig = _as_bytes(value["sig"]) or b""
    files = _bytes_map(value["files"], "files")
    keys = _bytes_map(value["keys"], "keys")
    return Bundle(manifest=manifest, sig=sig, files=files, keys=keys)


def _bundle_to_envelope(bundle: Bundle) -> dict[str, CborValue]:
    return {
        "v": ENVELOPE_VERSION,
        "manifest": bundle.manifest,
        "sig": bundle.sig,
        "files": dict(bundle.files),
        "keys": dict(bundle.keys),
    }


def to_cbor(bundle: Bundle) -> bytes:
    """Deterministic CBOR envelope of ``bundle``."""
    return cbor_encode(_bundle_to_envelope(bundle))


def canonical_order(files: Mapping[str, bytes]) -> list[str]:
    """The paths of ``files`` in the order :func:`to_cbor` writes them (its map keys
    sorted by their encoded bytes, shortest first)."""
    return sorted(files, key=lambda path: (len(key := cbor2.dumps(path)), key))


def file_offsets(container: bytes, files: Mapping[str, bytes],
                 order: Iterable[str]) -> dict[str, int]:
    """Where ``container`` (an envelope) holds the bytes of each of ``files``, for the
    paths in ``order``, the order the envelope holds them in. Each is expected right
    after the previous one, past its path and the two heads of shortest encoding, and
    otherwise looked for from there by its first bytes (what lies between two files
    never holds a record's first bytes), so the container is read once; from the first
    file not found so on (an envelope holding them in another order), none is placed.
    A place found holds exactly the file's bytes (whichever copy of them it is)."""
    found: dict[str, int] = {}
    find, holds = container.find, container.startswith
    pos = 0
    for path in order:
        data = files[path]
        n, m = len(path), len(data)  # (a record path is ASCII: n is its bytes)
        at = pos + n + (1 if n < 24 else 2 if n < 256 else 3) \
            + (1 if m < 24 else 2 if m < 256 else 3 if m < 65536 else 5)
        if not holds(data, at):
            at = find(data[:_LEAD], pos)
            if at < 0 or not holds(data, at):
                break
        found[path] = at
        pos = at + m
    return found


#: how many first bytes of a file :func:`file_offsets` looks for when it is not where
#: expected (a short needle is found by a plain scan; a long one costs CPython a table
#: of it first)
_LEAD = 24


def from_cbor(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Bundle:
    """Decode a CBOR envelope strictly. Verification is a separate step.

    An envelope is a CBOR map: input whose first byte is not a map head (major type 5)
    is ``unknown_container`` (``container.kind``), also when a transport declared the
    CBOR media type."""
    if not is_cbor_map(data):
        fail("container.kind", "not a CBOR map (first byte not a0-bf)")
        raise AssertionError("terminal check")
    if len(data) > limits.container_bytes:
        fail("cbor.size", f"{len(data)}-byte CBOR envelope > {limits.container_bytes}")
    # the envelope's own five keys never count against max_files: a bundle of fewer
    # files than that must read in every container (docs/protocol.md section 7)
    return _envelope_to_bundle(cbor_decode(data, max(limits.max_files, len(ENVELOPE_KEYS))))


def is_gzip(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


def is_cbor_map(data: bytes) -> bool:
    return bool(data) and data[0] >> 5 == 5


def from_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS, *,
               original_hub: bool = False) -> Bundle:
    """Read a container detected by its content, never its name (docs/protocol.md
    section 7): gzip magic ``1f 8b`` is tar.gz, a CBOR map head (``a0``-``bf``) is a
    CBOR envelope, anything else is ``unknown_container``."""
    if is_gzip(data):
        return from_targz(data, limits, original_hub=original_hub)
    if is_cbor_map(data):
        return from_cbor(data, limits)
    fail("container.kind", "neither gzip data nor a CBOR map")
    raise AssertionError("terminal check")


# --------------------------------------------------------------------------- stream frames


@dataclass(frozen=True)
class Frame:
    """One WebSocket stream frame. ``seq`` is the hub sequence (the cursor)."""

    op: str
    seq: int
    digest: str | None = None
    origin: str | None = None
    bundle: Bundle | None = None
    code: str | None = None
    message: str | None = None


def encode_frame(frame: Frame) -> bytes:
    if frame.op not in FRAME_OPS:
        raise ProtocolError("invalid_argument", f"unknown frame op {frame.op!r}")
    value: dict[str, CborValue] = {"op": frame.op, "seq": frame.seq}
    for name in ("digest", "origin", "code", "message"):
        text = getattr(frame, name)
        if text is not None:
            value[name] = text
    if frame.bundle is not None:
        value["bundle"] = _bundle_to_envelope(frame.bundle)
    return cbor_encode(value)


def _head(major: int, arg: int) -> bytes:
    """A CBOR item head (RFC 8949 section 3) in its shortest form, for splicing frames."""
    if arg < 24:
        return bytes([(major << 5) | arg])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([(major << 5) | extra]) + arg.to_bytes(size, "big")
    raise ValueError("CBOR argument too large")


def encode_bundle_frame(seq: int, digest: str, origin: str, envelope: bytes) -> bytes:
    """The ``bundle`` frame for an already encoded CBOR envelope, without decoding it.

    The envelope bytes become the ``bundle`` value as they are (a CBOR map is one item),
    so for a deterministic envelope the result equals ``encode_frame`` of the decoded
    bundle, byte for byte, at the cost of a copy instead of a decode and an encode.
    """
    # keys in the deterministic order (bytewise by encoding): op, seq, bundle, digest, origin
    return b"".join((_BUNDLE_FRAME_HEAD, _head(0, seq), _KEY_BUNDLE, envelope,
                     _KEY_DIGEST, _text(digest), _KEY_ORIGIN, _text(origin)))


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _head(3, len(raw)) + raw


_BUNDLE_FRAME_HEAD = _head(5, 5) + _text("op") + _text("bundle") + _text("seq")
_KEY_BUNDLE, _KEY_DIGEST, _KEY_ORIGIN = _text("bundle"), _text("digest"), _text("origin")


def decode_frame(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Frame:
    if len(data) > limits.container_bytes + 4096:
        raise ProtocolError("bundle_too_large", f"{len(data)}-byte frame")
    value = cbor_decode(data, max(limits.max_files, len(FRAME_KEYS)))
    if not isinstance(value, dict):
        raise ProtocolError("wrong_type", "frame must be a map")
    for key in value:
        if key not in FRAME_KEYS:
            raise ProtocolError("unknown_field", f"unknown frame key {str(key)[:60]!r}")
    op, seq = value.get("op"), value.get("seq")
    if op not in FRAME_OPS:
        raise ProtocolError("wrong_type", "frame op must be bundle, info or error")
    if not _is_uint(seq):
        raise ProtocolError("wrong_type", "frame seq must be an unsigned integer")
    texts: dict[str, str | None] = {}
    for name in ("digest", "origin", "code", "message"):
        item = value.get(name)
        if item is not None and not isinstance(item, str):
            raise ProtocolError("wrong_type", f"frame {name} must be text")
        texts[name] = item
    bundle = _envelope_to_bundle(value["bundle"]) if "bundle" in value else None
    if op == "bundle" and bundle is None:
        raise ProtocolError("wrong_type", "bundle frame lacks its bundle")
    assert isinstance(op, str) and isinstance(seq, int)
    return Frame(op=op, seq=seq, bundle=bundle, **texts)
