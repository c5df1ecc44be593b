"""The tar.gz container (the original hub API): deterministic writing, bounded reading.

Regular files only, the bundle directory's files at the archive root. Readers also
accept every file under one common top directory, ``./`` prefixes and directory
entries, so archives made by ``tar czf x.tar.gz bundle/`` or by the original hub read.
Re-exported by :mod:`protocol.containers`.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib

from protocol.bundle import Bundle, bundle_from_files
from protocol.checks import fail
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.paths import MANIFEST_PATH, unsafe_reason

ORIGINAL_HUB_METADATA = "hub_metadata.json"


def to_targz(bundle: Bundle) -> bytes:
    """Deterministic tar.gz: regular files at the archive root, sorted, zeroed metadata."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in bundle.to_files().items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def _gunzip(data: bytes, limits: Limits) -> bytes:
    """Inflate every gzip member with hard bounds (size and compression ratio)."""
    if len(data) < 2 or data[:2] != b"\x1f\x8b":
        fail("targz.gzip", "not gzip data")
    out = bytearray()
    remaining = data
    chunk = 64 * 1024
    while remaining:
        inflater = zlib.decompressobj(wbits=31)
        pending = remaining
        while True:
            try:
                piece = inflater.decompress(pending, chunk)
            except zlib.error as exc:
                fail("targz.gzip", f"gzip: {exc}")
                raise AssertionError("terminal check") from None
            out += piece
            if len(out) > limits.max_archive_bytes:
                fail("targz.inflate", f"archive inflates beyond {limits.max_archive_bytes} bytes")
            consumed = len(data) - len(inflater.unused_data) - len(inflater.unconsumed_tail)
            if len(out) > limits.ratio_check_after and len(
                out
            ) > limits.max_compression_ratio * max(consumed, 1):
                fail("targz.inflate", "compression ratio too high (gzip bomb)")
            if inflater.eof:
                break
            pending = inflater.unconsumed_tail
            if not pending and not piece:
                fail("targz.gzip", "truncated gzip stream")
        remaining = inflater.unused_data
        if remaining and remaining.strip(b"\x00") == b"":
            break  # zero padding after the last member
    return bytes(out)


def from_targz(
    data: bytes,
    limits: Limits = DEFAULT_LIMITS,
    *,
    original_hub: bool = False,
) -> Bundle:
    """Read a tar.gz bundle in memory. Never extracts; refuses links, devices, FIFOs,
    absolute or ``..`` paths, duplicate names and decompression bombs.

    ``original_hub=True`` reads the download of the original hub's
    ``/api/v1/sync/<peer>/bundle``, which stores each file twice (identical bytes)
    and adds ``hub_metadata.json``: identical duplicates are merged and that file is
    dropped. Duplicates with different bytes are still refused.
    """
    if len(data) > limits.container_bytes:
        fail("targz.size", f"{len(data)}-byte archive > {limits.container_bytes}")
    raw = _gunzip(data, limits)
    files: dict[str, bytes] = {}
    members = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                members += 1
                if members > limits.max_files + 1000:
                    fail("targz.member_count", "archive has too many members")
                name = member.name
                while name.startswith("./"):
                    name = name[2:]
                if member.isdir():
                    # "." is the archive root itself (tar czf b.tar.gz -C bundle .)
                    if name not in (".", ""):
                        reason = unsafe_reason(name.rstrip("/"))
                        if reason is not None:
                            fail("targz.member_path", reason, name[:200])
                    continue
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    fail("targz.member_type", f"archive holds a {kind}", name[:200])
                    continue
                reason = unsafe_reason(name)
                if reason is not None:
                    fail("targz.member_path", reason, name[:200])
                    continue
                if len(files) >= limits.max_files:
                    fail("targz.member_count", f"more than {limits.max_files} files")
                if member.size > max(limits.max_record_bytes, limits.max_manifest_bytes):
                    fail("targz.member_size", f"{member.size} bytes", name)
                if name in files and not original_hub:
                    fail("targz.duplicate", "name appears twice in the archive", name)
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    fail("targz.tar", "unreadable member", name)
                    continue
                content = handle.read()
                if len(content) != member.size:
                    fail("targz.tar", "truncated member", name)
                if name in files and files[name] != content:
                    fail("targz.duplicate", "name appears twice, differently", name)
                    continue
                files[name] = content
    except ProtocolError:
        raise
    except (tarfile.TarError, EOFError, ValueError, OSError, UnicodeError) as exc:
        fail("targz.tar", f"tar: {exc}")
        raise AssertionError("terminal check") from None
    if original_hub:
        files.pop(ORIGINAL_HUB_METADATA, None)
    return bundle_from_files(_strip_top_dir(files))


def _strip_top_dir(files: dict[str, bytes]) -> dict[str, bytes]:
    if MANIFEST_PATH in files or not files:
        return files
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) == 1:
        top = tops.pop()
        if all("/" in path for path in files) and f"{top}/{MANIFEST_PATH}" in files:
            return {path.split("/", 1)[1]: data for path, data in files.items()}
    return files
