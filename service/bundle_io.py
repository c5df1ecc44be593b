"""File-system side of bundles (kept out of the pure ``protocol`` package).

``read_bundle`` accepts a bundle directory, a ``.cbor`` envelope or a ``.tar.gz``
(recognised by content, not by name). Reading never follows symlinks and never
extracts archives; all limits apply before bytes are kept.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path

from protocol.bundle import Bundle, bundle_from_files
from protocol.checks import fail
from protocol.containers import from_bytes, is_cbor_map, is_gzip, to_cbor, to_targz
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.paths import MANIFEST_PATH, SIGNATURE_PATH

CBOR_SUFFIXES = (".cbor",)
TARGZ_SUFFIXES = (".tar.gz", ".tgz")


def container_kind(path: str | os.PathLike[str]) -> str:
    """``"cbor"``, ``"targz"`` or ``"dir"``, by the destination's name."""
    name = os.fspath(path).lower().rstrip("/")
    if name.endswith(CBOR_SUFFIXES):
        return "cbor"
    if name.endswith(TARGZ_SUFFIXES):
        return "targz"
    return "dir"


def _read_capped(path: Path, cap: int, *, oversize_ok: bool = False) -> bytes:
    """At most ``cap + 1`` bytes of ``path``; more than ``cap`` is ``bundle_too_large``
    (a file that grew while the bundle was read) unless ``oversize_ok``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ProtocolError("not_found", f"cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(cap + 1)
    if len(data) > cap and not oversize_ok:
        raise ProtocolError("bundle_too_large", f"{path} is larger than {cap} bytes")
    return data


def read_bundle_dir(path: Path, limits: Limits = DEFAULT_LIMITS) -> Bundle:
    """The directory view, judged in the order of docs/protocol.md section 6: the
    listing first (sizes from ``lstat``, nothing read), then the presence of the
    manifest and the signature, the file count and the total size; only then are the
    files read (at most ``max_bundle_bytes`` in all). The per-file limits and
    everything after them are :func:`protocol.verify.verify_bundle`'s."""
    sizes: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in sorted(dirnames + filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(path).as_posix()
            info = os.lstat(full)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise ProtocolError("unsafe_archive_member", "not a regular file", rel)
            sizes[rel] = info.st_size
    for required, check in ((MANIFEST_PATH, "bundle.manifest_present"),
                            (SIGNATURE_PATH, "bundle.signature_present")):
        if required not in sizes:
            fail(check, f"bundle has no {required}")
            raise AssertionError("terminal check")
    if len(sizes) > limits.max_files:
        fail("limits.files", f"{len(sizes)} files > {limits.max_files}")
    total = sum(sizes.values())
    if total > limits.max_bundle_bytes:
        fail("limits.bundle_bytes", f"{total} bytes > {limits.max_bundle_bytes}")
    files = {rel: _read_capped(path / rel, size) for rel, size in sorted(sizes.items())}
    return bundle_from_files(files)


def read_bundle(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS, *,
                original_hub: bool = False) -> Bundle:
    """Read a bundle from a directory, a CBOR envelope or a tar.gz, detected by content:
    gzip magic ``1f 8b`` is tar.gz, a first byte of CBOR major type 5 (a map) is CBOR.

    ``original_hub``: a tar.gz may be the original implementation's (its client's upload
    or its hub's download): identical duplicate entries and ``hub_metadata.json`` are
    tolerated; a duplicate with other bytes is still ``duplicate_path``."""
    target = Path(path)
    try:
        info = os.lstat(target)
    except OSError:
        raise ProtocolError("not_found", f"no such file or directory: {target}") from None
    if stat.S_ISLNK(info.st_mode):
        info = os.stat(target)  # a symlink given explicitly by the operator is followed
    if stat.S_ISDIR(info.st_mode):
        return read_bundle_dir(target, limits)
    if not stat.S_ISREG(info.st_mode):
        raise ProtocolError("unknown_container", f"{target} is not a file or directory")
    # detection is by content only (docs/protocol.md section 7): the name never decides;
    # past the container cap only the first bytes are needed to name the check
    cap = limits.container_bytes
    if info.st_size > cap:
        head = _read_capped(target, 2, oversize_ok=True)[:2]
        if is_gzip(head):
            fail("targz.size", f"{target} is larger than {cap} bytes")
        elif is_cbor_map(head):
            fail("cbor.size", f"{target} is larger than {cap} bytes")
        else:
            return from_bytes(head, limits)  # container.kind
        cap = info.st_size  # only with that check disabled (the one-problem proof)
    # (a file that grew meanwhile is cut at cap + 1 bytes: the container's size check)
    data = _read_capped(target, cap, oversize_ok=True)
    return from_bytes(data, limits, original_hub=original_hub)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bundle_dir(bundle: Bundle, path: str | os.PathLike[str]) -> Path:
    """Write the directory view. ``path`` must not exist or be an empty directory;
    files appear all at once (written to a sibling temp dir, then renamed)."""
    target = Path(path)
    if target.exists():
        if not target.is_dir() or any(target.iterdir()):
            raise FileExistsError(f"{target} exists and is not an empty directory")
        target.rmdir()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    tmp.mkdir()
    try:
        for rel, data in bundle.to_files().items():
            dest = tmp.joinpath(*rel.split("/"))
            if tmp.resolve() not in dest.resolve().parents:  # defence in depth
                raise ProtocolError("unsafe_path", "path escapes the bundle directory", rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def write_bundle(bundle: Bundle, path: str | os.PathLike[str]) -> Path:
    """Write ``bundle`` as CBOR (``.cbor``), tar.gz (``.tar.gz``/``.tgz``) or a directory."""
    target = Path(path)
    kind = container_kind(target)
    if kind == "dir":
        return write_bundle_dir(bundle, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(target, to_cbor(bundle) if kind == "cbor" else to_targz(bundle))
    return target
