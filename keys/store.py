"""Private key files.

Format (UTF-8 text, LF, mode 0600)::

    WhiteBalloon-Signing-Key: 1
    Key-ID: <16 hex>
    Seed: <base64 of the 32-byte Ed25519 seed>

The file is created with ``os.open(..., 0o600)`` under a temporary name in the
target directory and then hard-linked into place, so it never exists with wider
permissions and an existing key is never overwritten (unless ``force``). Loading
refuses files readable or writable by group or others.

The public half is written next to it as ``<path>.pub`` in the same format as a
bundle's ``public_keys/<key-id>.pub``.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from protocol.signature import b64, public_key_file, public_key_from_seed
from protocol.signature import key_id as _key_id

FORMAT_LINE = "WhiteBalloon-Signing-Key: 1"


class KeyFileError(Exception):
    """A key file is missing, insecure, malformed or already exists.

    ``code`` is one of ``key_not_found``, ``insecure_key_file``, ``malformed_key_file``,
    ``key_exists``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SigningKeyPair:
    seed: bytes
    public_key: bytes
    key_id: str
    path: Path | None = None

    def __repr__(self) -> str:  # never print the seed
        return f"SigningKeyPair(key_id={self.key_id!r}, path={self.path!r})"

    @property
    def public_key_b64(self) -> str:
        return b64(self.public_key)


def key_id(public_key_raw: bytes) -> str:
    """First 16 hex characters of SHA-256 of the raw public key."""
    return _key_id(public_key_raw)


def public_key_text(public_key_raw: bytes) -> str:
    """``Key-ID: ...`` / ``Public-Key: ...`` lines (the ``.pub`` file format)."""
    return public_key_file(public_key_raw).decode("ascii")


def keypair_from_seed(seed: bytes, path: Path | None = None) -> SigningKeyPair:
    public = public_key_from_seed(seed)
    return SigningKeyPair(seed=seed, public_key=public, key_id=key_id(public), path=path)


def _render(pair: SigningKeyPair) -> bytes:
    return f"{FORMAT_LINE}\nKey-ID: {pair.key_id}\nSeed: {b64(pair.seed)}\n".encode("ascii")


def _write_exclusive(path: Path, data: bytes, mode: int, force: bool) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyFileError("key_exists", f"{path} already exists") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def generate_keypair(
    path: str | os.PathLike[str], *, force: bool = False, seed: bytes | None = None
) -> SigningKeyPair:
    """Create a new Ed25519 key at ``path`` (0600) and its public half at ``path.pub``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if target.exists() and not force:
        raise KeyFileError("key_exists", f"{target} already exists (use --force to replace)")
    pair = keypair_from_seed(seed if seed is not None else secrets.token_bytes(32), target)
    _write_exclusive(target, _render(pair), 0o600, force)
    pub = target.with_name(target.name + ".pub")
    _write_exclusive(pub, public_key_file(pair.public_key), 0o644, True)
    return pair


def load_signing_key(path: str | os.PathLike[str]) -> SigningKeyPair:
    """Load a private key file, refusing group/world-accessible files."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError("key_not_found", f"no key file at {target}") from None
    except OSError as exc:
        raise KeyFileError("key_not_found", f"cannot open {target}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError("malformed_key_file", f"{target} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                "insecure_key_file",
                f"{target} has mode {stat.S_IMODE(info.st_mode):04o}; "
                f"it must not be accessible by group or others (chmod 600 {target})",
            )
        data = handle.read(4096)
    return parse_key_file(data, target)


def parse_key_file(data: bytes, path: Path | None = None) -> SigningKeyPair:
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise KeyFileError("malformed_key_file", f"{path} is not a key file") from None
    if len(lines) != 4 or lines[0] != FORMAT_LINE or lines[3] != "":
        raise KeyFileError("malformed_key_file", f"{path} is not a WhiteBalloon key file")
    kid_name, _, kid = lines[1].partition(": ")
    seed_name, _, seed_text = lines[2].partition(": ")
    if kid_name != "Key-ID" or seed_name != "Seed":
        raise KeyFileError("malformed_key_file", f"{path} lacks Key-ID or Seed")
    try:
        seed = base64.b64decode(seed_text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError("malformed_key_file", f"{path}: Seed is not base64") from None
    if len(seed) != 32:
        raise KeyFileError("malformed_key_file", f"{path}: Seed is not 32 bytes")
    pair = keypair_from_seed(seed, path)
    if pair.key_id != kid:
        raise KeyFileError("malformed_key_file", f"{path}: Key-ID does not match the seed")
    return pair
