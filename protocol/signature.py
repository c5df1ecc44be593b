"""``bundle.sig``: an Ed25519 signature over the exact manifest bytes.

Byte-compatible with the original WhiteBalloon implementation: six ``Name: value``
lines in this order, each ending in LF::

    Signature-Version: 1
    Key-ID: <first 16 hex of sha256(raw public key)>
    Public-Key: <base64 of the 32-byte public key>
    Manifest-Digest: <sha256 hex of manifest.sync.txt>
    Signed-At: <RFC 3339 time, e.g. 2026-11-25T21:07:32.335150+00:00>
    Signature: <base64 of the 64-byte Ed25519 signature over manifest.sync.txt>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey, VerifyKey

from protocol.checks import fail
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.records import DATE_TIME_PATTERN, HEADER_NAME_RE, KEY_ID_RE

SIGNATURE_VERSION = "1"
SIGNATURE_HEADERS: tuple[str, ...] = (
    "Signature-Version",
    "Key-ID",
    "Public-Key",
    "Manifest-Digest",
    "Signed-At",
    "Signature",
)
#: RFC 3339 with calendar validity, "Z" or a "+hh:mm"/"-hh:mm" offset (hh 00-23, mm 00-59)
SIGNED_AT_RE = re.compile(DATE_TIME_PATTERN + r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
_HEX_RE = re.compile(r"[0-9A-Fa-f]{64}")
_PATH = "bundle.sig"
#: canonical standard base64 of 32 bytes
PUBLIC_KEY_B64_RE = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
_MAX_SIG_BYTES = 4096


def key_id(public_key_raw: bytes) -> str:
    """First 16 hex characters of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key_raw).hexdigest()[:16]


def public_key_from_seed(seed: bytes) -> bytes:
    _check_seed(seed)
    return bytes(SigningKey(seed).verify_key)


def _check_seed(seed: bytes) -> None:
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise ProtocolError("invalid_argument", "an Ed25519 seed is exactly 32 bytes")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def strict_b64decode(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        fail("sig.base64", f"{what} is not valid base64", _PATH)
        raw = base64.b64decode(text.encode("ascii", "ignore"))
    if base64.b64encode(raw).decode("ascii") != text:
        fail("sig.base64", f"{what} is not canonical base64", _PATH)
    return raw


def public_key_file(public_key_raw: bytes) -> bytes:
    """Contents of ``public_keys/<key-id>.pub`` (same lines as the original)."""
    return f"Key-ID: {key_id(public_key_raw)}\nPublic-Key: {b64(public_key_raw)}\n".encode()


def parse_public_key_file(data: bytes, expected_key_id: str | None = None) -> bytes:
    """Raw public key from a ``.pub`` file; checks it matches its own Key-ID and name."""
    path = f"public_keys/{expected_key_id}.pub" if expected_key_id else None
    if len(data) > _MAX_SIG_BYTES:
        raise ProtocolError("malformed_key_file", "key file too large", path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    lines = text.split("\n")
    kid_name, _, kid = lines[0].partition(": ")
    pk_name, _, pk = lines[1].partition(": ") if len(lines) > 1 else ("", "", "")
    raw = b""
    if len(lines) == 3 and lines[2] == "" and kid_name == "Key-ID" and pk_name == "Public-Key":
        if PUBLIC_KEY_B64_RE.fullmatch(pk):
            raw = base64.b64decode(pk)
    if len(raw) != 32:
        raise ProtocolError(
            "malformed_key_file", "expected Key-ID and 32-byte base64 Public-Key lines", path
        )
    if key_id(raw) != kid or (expected_key_id is not None and kid != expected_key_id):
        raise ProtocolError("key_id_mismatch", "key file Key-ID does not match its key", path)
    return raw


@dataclass(frozen=True)
class Signature:
    version: str
    key_id: str
    public_key: bytes
    manifest_digest: str
    signed_at: str
    signature: bytes


def render_signature(sig: Signature) -> bytes:
    values = (
        sig.version,
        sig.key_id,
        b64(sig.public_key),
        sig.manifest_digest,
        sig.signed_at,
        b64(sig.signature),
    )
    return "".join(
        f"{name}: {value}\n" for name, value in zip(SIGNATURE_HEADERS, values, strict=True)
    ).encode()


def sign_manifest(manifest_bytes: bytes, seed: bytes, signed_at: str) -> bytes:
    """The ``bundle.sig`` bytes for ``manifest_bytes`` signed with the 32-byte ``seed``."""
    _check_seed(seed)
    if not SIGNED_AT_RE.fullmatch(signed_at):
        raise ProtocolError("invalid_argument", "signed_at must be an RFC 3339 time")
    signing_key = SigningKey(seed)
    public = bytes(signing_key.verify_key)
    sig = Signature(
        version=SIGNATURE_VERSION,
        key_id=key_id(public),
        public_key=public,
        manifest_digest=hashlib.sha256(manifest_bytes).hexdigest(),
        signed_at=signed_at,
        signature=signing_key.sign(manifest_bytes).signature,
    )
    return render_signature(sig)


def parse_signature(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Signature:
    """Parse ``bundle.sig`` strictly: exactly the six headers, once each, in order, every
    line (also the last) ending in LF. Evaluates the ``sig.*`` checks in order.

    The lengths of the key (32 bytes) and the signature (64) are judged by
    :func:`verify_signature` (``sig.ed25519``): a key or signature of another length
    cannot verify, so a separate check could never fail alone."""
    if len(data) > limits.max_signature_bytes:
        fail("limits.signature_bytes", "bundle.sig is too large", _PATH)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fail("sig.text", "bundle.sig is not UTF-8", _PATH)
        text = data.decode("utf-8", "ignore")
    if "\x00" in text or "\r" in text:
        fail("sig.text", "bundle.sig holds NUL or CR", _PATH)
        text = text.replace("\x00", "").replace("\r", "")
    if text.endswith("\n"):
        text = text[:-1]
    else:
        fail("sig.final_lf", "bundle.sig does not end with LF", _PATH)
    parsed: list[tuple[str, str]] = []
    for line in text.split("\n"):
        name, sep, value = line.partition(": ")
        if not sep and line.endswith(":"):
            name, sep, value = line[:-1], ":", ""
        if not sep or not HEADER_NAME_RE.fullmatch(name):
            fail("sig.line", f"bad line {line[:60]!r}", _PATH)
            continue
        parsed.append((name, value))
    known: list[tuple[str, str]] = []
    for name, value in parsed:
        if name not in SIGNATURE_HEADERS:
            fail("sig.unknown_header", f"unknown header {name[:40]!r}", _PATH)
            continue
        known.append((name, value))
    headers: dict[str, str] = {}
    for name, value in known:
        if name in headers:
            fail("sig.duplicate_header", f"{name} appears twice", _PATH)
            continue
        headers[name] = value
    for name in SIGNATURE_HEADERS:
        if not headers.get(name):
            fail("sig.missing_header", f"missing {name}", _PATH)
            raise AssertionError("unreachable")  # a missing header cannot be repaired
    if tuple(headers) != SIGNATURE_HEADERS:
        fail("sig.order", "headers are not in the fixed order", _PATH)
    if headers["Signature-Version"] != SIGNATURE_VERSION:
        fail(
            "sig.version",
            f"Signature-Version {headers['Signature-Version'][:20]!r}",
            _PATH,
        )
    public = strict_b64decode(headers["Public-Key"], "Public-Key")
    signature = strict_b64decode(headers["Signature"], "Signature")
    kid = headers["Key-ID"]
    if not KEY_ID_RE.fullmatch(kid) or kid != key_id(public):
        fail("sig.key_id", "Key-ID is not the key id of Public-Key", _PATH)
        kid = key_id(public)
    digest = headers["Manifest-Digest"]
    if not _DIGEST_RE.fullmatch(digest):
        fail("sig.digest_syntax", "Manifest-Digest is not sha256 hex", _PATH)
    if not SIGNED_AT_RE.fullmatch(headers["Signed-At"]):
        fail("sig.signed_at", "Signed-At is not an RFC 3339 time", _PATH)
    return Signature(
        version=headers["Signature-Version"],
        key_id=kid,
        public_key=public,
        manifest_digest=digest,
        signed_at=headers["Signed-At"],
        signature=signature,
    )


def verify_signature(sig: Signature | bytes, manifest_bytes: bytes) -> Signature:
    """Check the manifest digest, then the Ed25519 signature; raise on failure.

    ``sig`` is a parsed :class:`Signature` or the raw ``bundle.sig`` bytes.
    """
    if isinstance(sig, bytes):
        sig = parse_signature(sig)
    # compared as the bytes the hex encodes: sig.digest_syntax has judged the spelling
    if _hex_bytes(sig.manifest_digest) != hashlib.sha256(manifest_bytes).digest():
        fail("sig.manifest_digest", "Manifest-Digest does not match the manifest", _PATH)
    if len(sig.public_key) != 32:
        fail("sig.ed25519", "Public-Key is not 32 bytes", _PATH)
    elif len(sig.signature) != 64:
        fail("sig.ed25519", "Signature is not 64 bytes", _PATH)
    else:
        try:
            VerifyKey(sig.public_key).verify(manifest_bytes, sig.signature)
        except (BadSignatureError, CryptoError, ValueError):
            fail("sig.ed25519", "Ed25519 signature does not verify", _PATH)
    return sig


def _hex_bytes(text: str) -> bytes | None:
    if len(text) != 64 or not _HEX_RE.fullmatch(text):
        return None
    return bytes.fromhex(text)
