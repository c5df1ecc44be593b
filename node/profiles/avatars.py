"""Avatar images: sniffed from their bytes, validated, stored under a random name.

No image library is needed: the type comes from the magic bytes (never the file name or
the client's Content-Type), the dimensions are parsed from the format's header, and the
file's structure is checked end to end (PNG chunk walk to IEND, JPEG markers to SOS and
a final EOI, WebP RIFF length). Anything else is refused before a byte is written.
Files are served with the sniffed type and ``nosniff``, so a polyglot cannot be run as
HTML by a browser.
"""

from __future__ import annotations

import os
import re
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

MAX_SIDE = 4096
MIN_SIDE = 8
MAX_PIXELS = 4096 * 4096

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpg|webp)$")


class AvatarError(ValueError):
    """The upload is not an acceptable avatar; the message is shown on the form."""


@dataclass(frozen=True)
class ImageInfo:
    kind: str  # png | jpg | webp
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


def sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _png(data: bytes) -> tuple[int, int]:
    pos = 8
    size: tuple[int, int] | None = None
    while pos + 12 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            break
        if size is None:
            if ctype != b"IHDR" or length != 13:
                raise AvatarError("This PNG file is damaged (no image header).")
            size = struct.unpack(">II", data[pos + 8:pos + 16])
        if ctype == b"IEND":
            return size
        pos = end
    raise AvatarError("This PNG file is damaged or cut short.")


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> tuple[int, int]:
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise AvatarError("This JPEG file is damaged or cut short.")
    pos = 2
    size: tuple[int, int] | None = None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise AvatarError("This JPEG file is damaged.")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise AvatarError("This JPEG file is damaged.")
        if marker in _SOF:
            if length < 7:
                raise AvatarError("This JPEG file is damaged.")
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise AvatarError("This JPEG file has no image header.")
            return size
        pos += 2 + length
    raise AvatarError("This JPEG file is damaged or cut short.")


def _webp(data: bytes) -> tuple[int, int]:
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 != len(data) and riff_size + 9 != len(data):  # odd sizes are padded
        raise AvatarError("This WebP file is damaged or cut short.")
    chunk = data[12:16]
    body = data[20:]
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(body) >= 10:
        width = int.from_bytes(body[4:7], "little") + 1
        height = int.from_bytes(body[7:10], "little") + 1
        return width, height
    raise AvatarError("This WebP file is damaged or of an unknown kind.")


def inspect(data: bytes, max_bytes: int) -> ImageInfo:
    """Validate an upload; raise AvatarError with a message for the form."""
    if not data:
        raise AvatarError("Choose an image file to upload.")
    if len(data) > max_bytes:
        raise AvatarError(f"The image is too large: at most {max_bytes // 1024} KiB.")
    kind = sniff(data)
    if kind is None:
        raise AvatarError("Only PNG, JPEG and WebP images are accepted; this file is none "
                          "of them, whatever its name says.")
    try:
        width, height = {"png": _png, "jpg": _jpeg, "webp": _webp}[kind](data)
    except (struct.error, IndexError):
        raise AvatarError("This image file is damaged or cut short.") from None
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) \
            or width * height > MAX_PIXELS:
        raise AvatarError(f"The image is {width}×{height} pixels; each side must be between "
                          f"{MIN_SIDE} and {MAX_SIDE}.")
    return ImageInfo(kind, width, height)


def avatar_dir(data_dir: Path) -> Path:
    return data_dir / "avatars"


def store(data_dir: Path, data: bytes, info: ImageInfo) -> str:
    """Write the bytes under a new random name (atomically); return the name."""
    directory = avatar_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{info.kind}"
    tmp = directory / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return name


def path_of(data_dir: Path, name: str) -> Path | None:
    """The file of a stored avatar, or None for a name that cannot be one of ours."""
    if not NAME_RE.match(name):
        return None
    return avatar_dir(data_dir) / name


def remove(data_dir: Path, name: str | None) -> None:
    if not name:
        return
    path = path_of(data_dir, name)
    if path is not None:
        path.unlink(missing_ok=True)


def content_type_of(name: str) -> str:
    return CONTENT_TYPES[name.rsplit(".", 1)[1]]
