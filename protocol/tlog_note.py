"""The text formats of a transparency log: C2SP ``tlog-checkpoint``, ``signed-note`` and
``tlog-cosignature/v1`` (the Merkle tree math is :mod:`protocol.tlog`, which re-exports every
public name here).

Pure: bytes in, bytes out, byte for byte what the Go reference ``golang.org/x/mod/sumdb/note``
and the C2SP specs produce:

- ``tlog-checkpoint``: ``<origin>\\n<size>\\n<base64 root>\\n`` (extension lines may follow);
- ``signed-note``: the text, a blank line, then ``— <name> <base64(key hash || sig)>``
  lines; the Ed25519 key hash is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``;
- ``tlog-cosignature/v1``: a witness's signature over ``cosignature/v1``, the time and the
  checkpoint, carried as an 8-byte timestamp before the Ed25519 signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from protocol.errors import ProtocolError

HASH_SIZE = 32  # a SHA-256 hash: a tree node and a checkpoint's root
ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_NOTE_BYTES = 1 << 20


class TlogError(ProtocolError):
    """A proof, checkpoint or note that does not verify (code ``tlog_invalid``)."""

    def __init__(self, message: str) -> None:
        super().__init__("tlog_invalid", message)


# ---------------------------------------------------------------------- checkpoints

@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(),
                 *self.extensions]
        return ("\n".join(lines) + "\n").encode()


def parse_checkpoint(text: bytes) -> Checkpoint:
    """A C2SP ``tlog-checkpoint`` body (the part of a note above the signatures)."""
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        raise TlogError("checkpoint is not UTF-8") from None
    if not s.endswith("\n"):
        raise TlogError("checkpoint must end with a newline")
    lines = s[:-1].split("\n")
    if len(lines) < 3 or not lines[0] or any(not line for line in lines):
        raise TlogError("checkpoint needs origin, size and root lines")
    origin, size_text, root_text = lines[:3]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")) \
            or len(size_text) > 19:
        raise TlogError("checkpoint size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise TlogError("checkpoint root is not base64") from None
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise TlogError("checkpoint root is not a SHA-256 hash")
    return Checkpoint(origin, int(size_text), root, tuple(lines[3:]))


# ----------------------------------------------------------------------- signed notes

def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise ProtocolError("invalid_argument", f"bad note key name {name[:60]!r}")


def key_hash(name: str, alg: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    """A note verifier key: ``<name>+<hex key hash>+<base64(alg || public key)>``."""

    name: str
    alg: int
    public_key: bytes

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.alg, self.public_key)

    def text(self) -> str:
        return (f"{self.name}+{self.hash.hex()}+"
                f"{base64.b64encode(bytes([self.alg]) + self.public_key).decode()}")


def verifier_for(name: str, public_key: bytes, alg: int = ALG_ED25519) -> NoteVerifier:
    _check_name(name)
    if len(public_key) != 32:
        raise ProtocolError("invalid_argument", "an Ed25519 public key is 32 bytes")
    return NoteVerifier(name, alg, public_key)


def parse_verifier(text: str) -> NoteVerifier:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise TlogError("a verifier key is name+hash+key")
    name, hash_hex, key_b64 = parts
    try:
        _check_name(name)
        raw = base64.b64decode(key_b64, validate=True)
        want = bytes.fromhex(hash_hex)
    except (ProtocolError, ValueError, binascii.Error):
        raise TlogError("verifier key is malformed") from None
    if len(hash_hex) != 8 or len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise TlogError("verifier key is not an Ed25519 key")
    v = NoteVerifier(name, raw[0], raw[1:])
    if v.hash != want:
        raise TlogError("verifier key hash does not match its key")
    return v


@dataclass(frozen=True)
class NoteSignature:
    name: str
    hash: bytes
    sig: bytes  # the signature bytes after the 4-byte key hash

    def line(self) -> str:
        return f"\u2014 {self.name} {base64.b64encode(self.hash + self.sig).decode()}\n"


@dataclass(frozen=True)
class Note:
    text: bytes
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return self.text + b"\n" + "".join(s.line() for s in self.signatures).encode()


def sign_note(text: bytes, name: str, seed: bytes) -> NoteSignature:
    """An Ed25519 signed-note signature of ``text`` by key ``name`` (32-byte seed)."""
    _check_text(text)
    key = SigningKey(seed)
    pub = bytes(key.verify_key)
    return NoteSignature(name, key_hash(name, ALG_ED25519, pub), key.sign(text).signature)


def _check_text(text: bytes) -> None:
    if not text.endswith(b"\n") or b"\n\n" in text:
        raise ProtocolError("invalid_argument", "note text must end in one newline, "
                                                "with no blank line")
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("invalid_argument", "note text is not UTF-8") from None
    if any(not c.isprintable() and c != "\n" for c in s):
        raise ProtocolError("invalid_argument", "note text has control characters")


def parse_note(data: bytes) -> Note:
    """Split a signed note into its text and signature lines (nothing verified yet)."""
    if len(data) > MAX_NOTE_BYTES:
        raise TlogError("note is too large")
    cut = data.rfind(b"\n\n")
    if cut < 0 or not data.endswith(b"\n"):
        raise TlogError("note has no signature block")
    text, block = data[:cut + 1], data[cut + 2:]
    try:
        _check_text(text)
        lines = block.decode("utf-8").split("\n")
    except (ProtocolError, UnicodeDecodeError):
        raise TlogError("note text is malformed") from None
    sigs = []
    for line in lines[:-1]:
        if not line.startswith("\u2014 "):
            raise TlogError("note signature line must start with an em dash")
        parts = line[2:].split(" ")
        if len(parts) != 2:
            raise TlogError("note signature line is malformed")
        try:
            _check_name(parts[0])
            raw = base64.b64decode(parts[1], validate=True)
        except (ProtocolError, binascii.Error):
            raise TlogError("note signature is malformed") from None
        if len(raw) < 5:
            raise TlogError("note signature is too short")
        sigs.append(NoteSignature(parts[0], raw[:4], raw[4:]))
    if not sigs or lines[-1] != "":
        raise TlogError("note has no signatures")
    return Note(text, tuple(sigs))


def signature_by(note: Note, verifier: NoteVerifier) -> NoteSignature | None:
    for s in note.signatures:
        if s.name == verifier.name and s.hash == verifier.hash:
            return s
    return None


def verify_note(data: bytes, verifier: NoteVerifier) -> Note:
    """The note, if ``verifier``'s Ed25519 key signed its text; else :class:`TlogError`."""
    note = parse_note(data)
    s = signature_by(note, verifier)
    if s is None or verifier.alg != ALG_ED25519:
        raise TlogError(f"note is not signed by {verifier.name}")
    try:
        VerifyKey(verifier.public_key).verify(note.text, s.sig)
    except BadSignatureError:
        raise TlogError(f"bad signature by {verifier.name}") from None
    return note


def verify_checkpoint(data: bytes, verifier: NoteVerifier, origin: str | None = None
                      ) -> tuple[Checkpoint, Note]:
    note = verify_note(data, verifier)
    cp = parse_checkpoint(note.text)
    if cp.origin != (verifier.name if origin is None else origin):
        raise TlogError(f"checkpoint is for log {cp.origin!r}")
    return cp, note


# -------------------------------------------------------- C2SP tlog-cosignature/v1

def cosignature_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + checkpoint_text


def cosign(checkpoint_text: bytes, name: str, seed: bytes, timestamp: int) -> NoteSignature:
    """A ``tlog-cosignature/v1`` by witness ``name``: 8-byte time, then the signature."""
    key = SigningKey(seed)
    pub = bytes(key.verify_key)
    sig = key.sign(cosignature_message(checkpoint_text, timestamp)).signature
    return NoteSignature(name, key_hash(name, ALG_COSIGNATURE_V1, pub),
                         timestamp.to_bytes(8, "big") + sig)


def verify_cosignature(note: Note, witness: NoteVerifier) -> int:
    """The timestamp of ``witness``'s valid cosignature on ``note``; else TlogError."""
    s = signature_by(note, witness)
    if s is None or witness.alg != ALG_COSIGNATURE_V1 or len(s.sig) != 72:
        raise TlogError(f"no cosignature by {witness.name}")
    timestamp = int.from_bytes(s.sig[:8], "big")
    try:
        VerifyKey(witness.public_key).verify(cosignature_message(note.text, timestamp),
                                             s.sig[8:])
    except BadSignatureError:
        raise TlogError(f"bad cosignature by {witness.name}") from None
    return timestamp


def count_cosignatures(note: Note, witnesses: Iterable[NoteVerifier]) -> int:
    count = 0
    for w in witnesses:
        try:
            verify_cosignature(note, w)
        except TlogError:
            continue
        count += 1
    return count
