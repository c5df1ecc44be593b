"""Avatar images: verified and re-encoded with Pillow, stored under a random name.

The type comes from the magic bytes (never the file name or the client's Content-Type)
and must agree with what Pillow finds; the dimensions are checked from the header before
any pixel is decoded; then the whole image is decoded and *re-encoded* from its pixels
alone. What is stored is our own encoding: EXIF (GPS positions), text chunks, ICC
profiles, trailing bytes and polyglot payloads in the upload never reach the disk.
Files are served with the type of that encoding and ``nosniff``.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

MAX_SIDE = 4096
MIN_SIDE = 8
MAX_PIXELS = 4096 * 4096

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
NAME_RE = re.compile(r"^[0-9a-f]{32}\.(png|jpg|webp)$")
PILLOW_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
JPEG_QUALITY = 90
WEBP_QUALITY = 90


class AvatarError(ValueError):
    """The upload is not an acceptable avatar; the message is shown on the form."""


@dataclass(frozen=True)
class ImageInfo:
    kind: str  # png | jpg | webp
    width: int
    height: int
    data: bytes = b""  # the re-encoded image: what is stored and served

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


KIND_NAMES = {"png": "PNG", "jpg": "JPEG", "webp": "WebP"}


def _damaged(kind: str) -> AvatarError:
    return AvatarError(f"This {KIND_NAMES[kind]} file is damaged or cut short.")


def _open(data: bytes, kind: str) -> Image.Image:
    """Open (headers only) as exactly the sniffed format; refuse decompression bombs."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[kind]])
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise AvatarError(f"The image has far too many pixels; each side must be between "
                              f"{MIN_SIDE} and {MAX_SIDE}.") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise _damaged(kind) from None
    if image.format != PILLOW_FORMATS[kind]:
        raise _damaged(kind)
    return image


def _decode(data: bytes, kind: str) -> Image.Image:
    """Verify the file's structure (checksums), then decode every pixel of frame one."""
    try:
        _open(data, kind).verify()
        image = _open(data, kind)
        image.load()
    except AvatarError:
        raise
    except Exception:  # Pillow's decoders raise many types on hostile input
        raise _damaged(kind) from None
    if kind == "jpg" and b"\xff\xd9" not in data[2:]:
        # no end-of-image marker: cut short, even if libjpeg filled in the rest. Bytes
        # after it (phones append motion-photo video there) are dropped by re-encoding.
        raise _damaged(kind)
    return image


def _encode(image: Image.Image, kind: str) -> bytes:
    """The pixels alone, in a fresh image (no info dict: no EXIF, text, ICC, comments)."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if has_alpha and kind != "jpg" else "RGB"
    pixels = image.convert(mode)
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    if kind == "png":
        clean.save(out, "PNG", optimize=False)
    elif kind == "jpg":
        clean.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        clean.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()


def inspect(data: bytes, max_bytes: int) -> ImageInfo:
    """Validate an upload and re-encode it; raise AvatarError with a message for the form."""
    if not data:
        raise AvatarError("Choose an image file to upload.")
    if len(data) > max_bytes:
        raise AvatarError(f"The image is too large: at most {max_bytes // 1024} KiB.")
    kind = sniff(data)
    if kind is None:
        raise AvatarError("Only PNG, JPEG and WebP images are accepted; this file is none "
                          "of them, whatever its name says.")
    width, height = _open(data, kind).size
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) \
            or width * height > MAX_PIXELS:
        raise AvatarError(f"The image is {width}×{height} pixels; each side must be between "
                          f"{MIN_SIDE} and {MAX_SIDE}.")
    image = _decode(data, kind)
    return ImageInfo(kind, width, height, _encode(image, kind))


def avatar_dir(data_dir: Path) -> Path:
    return data_dir / "avatars"


def store(data_dir: Path, info: ImageInfo) -> str:
    """Write the re-encoded image under a new random name (atomically); return the name."""
    directory = avatar_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(16)}.{info.kind}"
    tmp = directory / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(info.data)
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
