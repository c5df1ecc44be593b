"""Which paths may appear inside a bundle.

Allowed paths (all ASCII, ``/``-separated, relative):

* ``manifest.sync.txt`` and ``bundle.sig``
* ``public_keys/<16 lowercase hex>.pub``
* record files ``<dir>/<name>.sync.txt`` where ``<dir>`` matches ``[a-z][a-z0-9_-]{0,31}s``
  and ``<name>`` matches :data:`protocol.records.ID_PATTERN`. Schema 2 uses
  ``<entity>s/<id>.sync.txt``; schema 1 used ``<entity>s/<entity>_<id>.sync.txt``.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from protocol.errors import ProtocolError
from protocol.records import ID_PATTERN

MANIFEST_PATH = "manifest.sync.txt"
SIGNATURE_PATH = "bundle.sig"
KEYS_DIR = "public_keys"

RECORD_PATH_RE = re.compile(r"([a-z][a-z0-9_-]{0,31})s/(" + ID_PATTERN + r")\.sync\.txt")
#: one or more record paths, each followed by LF (see :func:`all_record_paths`).
#: Without RECORD_PATH_RE's groups, which would be captured again for every line
#: (twice as slow); same language.
RECORD_PATH_BLOCK_RE = re.compile(
    r"(?:[a-z][a-z0-9_-]{0,31}s/" + ID_PATTERN + r"\.sync\.txt\n)+"
)
KEY_PATH_RE = re.compile(KEYS_DIR + r"/([0-9a-f]{16})\.pub")
_SAFE_CHARS_RE = re.compile(r"[A-Za-z0-9._/-]+")


def unsafe_reason(path: str) -> str | None:
    """Why ``path`` is unsafe (docs/protocol.md section 5), or None when it is safe."""
    if not path:
        return "empty path"
    if path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        return "absolute path"
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return f"path segment {segment!r}"
    if not _SAFE_CHARS_RE.fullmatch(path):
        return "path has characters outside [A-Za-z0-9._/-]"
    return None


def all_record_paths(paths: Collection[str]) -> bool:
    """Whether every one of ``paths`` is a record path: one match over them all, far
    cheaper than one per path. The count of LFs keeps a path holding an LF from
    passing as two record paths."""
    if not paths:
        return True
    block = "\n".join(paths) + "\n"
    return block.count("\n") == len(paths) and RECORD_PATH_BLOCK_RE.fullmatch(block) is not None


def check_safe(path: str) -> None:
    """Refuse paths that could escape a directory or confuse a file system."""
    reason = unsafe_reason(path)
    if reason is not None:
        raise ProtocolError("unsafe_path", reason, path[:200])


def check_record_path(path: str) -> None:
    """Raise unless ``path`` is a record path (a match implies :func:`check_safe`)."""
    if RECORD_PATH_RE.fullmatch(path):
        return
    check_safe(path)
    raise ProtocolError("invalid_path", "not a record path", path[:200])
