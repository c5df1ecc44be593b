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

from protocol.errors import ProtocolError
from protocol.records import KEY_ID_RE, decode_text

SIGNATURE_VERSION = "1"
SIGNATURE_HEADERS: tuple[str, ...] = (
    "Signature-Version",
    "Key-ID",
    "Public-Key",
    "Manifest-Digest",
    "Signed-At",
    "Signature",
)
SIGNED_AT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")
_PATH = "bundle.sig"
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
        raise ProtocolError("bad_base64", f"{what} is not valid base64", _PATH) from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise ProtocolError("bad_base64", f"{what} is not canonical base64", _PATH)
    return raw


def public_key_file(public_key_raw: bytes) -> bytes:
    """Contents of ``public_keys/<key-id>.pub`` (same lines as the original)."""
    return f"Key-ID: {key_id(public_key_raw)}\nPublic-Key: {b64(public_key_raw)}\n".encode()


def parse_public_key_file(data: bytes, expected_key_id: str | None = None) -> bytes:
    """Raw public key from a ``.pub`` file; checks it matches its own Key-ID."""
    path = f"public_keys/{expected_key_id}.pub" if expected_key_id else None
    if len(data) > _MAX_SIG_BYTES:
        raise ProtocolError("malformed_key_file", "key file too large", path)
    try:
        text = decode_text(data, path)
    except ProtocolError as exc:
        raise ProtocolError("malformed_key_file", exc.message, path) from None
    lines = text.split("\n")
    if len(lines) != 3 or lines[2] != "":
        raise ProtocolError("malformed_key_file", "expected Key-ID and Public-Key lines", path)
    kid_name, _, kid = lines[0].partition(": ")
    pk_name, _, pk = lines[1].partition(": ")
    if kid_name != "Key-ID" or pk_name != "Public-Key":
        raise ProtocolError("malformed_key_file", "expected Key-ID and Public-Key lines", path)
    try:
        raw = strict_b64decode(pk, "Public-Key")
    except ProtocolError:
        raise ProtocolError("malformed_key_file", "Public-Key is not valid base64", path) from None
    if len(raw) != 32:
        raise ProtocolError("malformed_key_file", "Public-Key is not 32 bytes", path)
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


def parse_signature(data: bytes) -> Signature:
    """Parse ``bundle.sig`` strictly (all six headers, each once, nothing else)."""
    if len(data) > _MAX_SIG_BYTES:
        raise ProtocolError("malformed_signature", "bundle.sig is too large", _PATH)
    try:
        text = decode_text(data, _PATH)
    except ProtocolError as exc:
        raise ProtocolError("malformed_signature", exc.message, _PATH) from None
    if text.endswith("\n"):
        text = text[:-1]
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        name, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":") and line[:-1] in SIGNATURE_HEADERS:
                name, value = line[:-1], ""
            else:
                raise ProtocolError("malformed_signature", f"bad line {line[:60]!r}", _PATH)
        if name not in SIGNATURE_HEADERS:
            raise ProtocolError("malformed_signature", f"unknown header {name[:40]!r}", _PATH)
        if name in headers:
            raise ProtocolError("malformed_signature", f"{name} appears twice", _PATH)
        headers[name] = value
    for name in SIGNATURE_HEADERS:
        if not headers.get(name):
            raise ProtocolError("missing_signature_header", f"missing {name}", _PATH)
    if headers["Signature-Version"] != SIGNATURE_VERSION:
        raise ProtocolError(
            "unsupported_signature_version",
            f"Signature-Version {headers['Signature-Version'][:20]!r}",
            _PATH,
        )
    public = strict_b64decode(headers["Public-Key"], "Public-Key")
    signature = strict_b64decode(headers["Signature"], "Signature")
    if len(public) != 32:
        raise ProtocolError("bad_public_key", "Public-Key is not 32 bytes", _PATH)
    if len(signature) != 64:
        raise ProtocolError("bad_public_key", "Signature is not 64 bytes", _PATH)
    kid = headers["Key-ID"]
    if not KEY_ID_RE.fullmatch(kid) or kid != key_id(public):
        raise ProtocolError("key_id_mismatch", "Key-ID is not the key id of Public-Key", _PATH)
    digest = headers["Manifest-Digest"]
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ProtocolError("malformed_signature", "Manifest-Digest is not sha256 hex", _PATH)
    if not SIGNED_AT_RE.fullmatch(headers["Signed-At"]):
        raise ProtocolError("malformed_signature", "Signed-At is not an RFC 3339 time", _PATH)
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
    if hashlib.sha256(manifest_bytes).hexdigest() != sig.manifest_digest:
        raise ProtocolError(
            "manifest_digest_mismatch", "Manifest-Digest does not match the manifest", _PATH
        )
    try:
        VerifyKey(sig.public_key).verify(manifest_bytes, sig.signature)
    except (BadSignatureError, CryptoError, ValueError):
        raise ProtocolError("bad_signature", "Ed25519 signature does not verify", _PATH) from None
    return sig
