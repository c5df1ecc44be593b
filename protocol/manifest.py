"""``manifest.sync.txt``: the signed list of files in a bundle.

Version 2 starts with a fixed header block; version 1 (the original format) is only
the file lines. Each file line is ``<sha256 hex>  <path>`` (two spaces), lines sorted
by path (byte order), every line ending in LF.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from functools import cached_property
from itertools import islice

from protocol.checks import fail
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.paths import RECORD_PATH_RE, all_record_paths, unsafe_reason
from protocol.records import KEY_ID_RE, TIMESTAMP_RE, URL_RE, decode_text

MANIFEST_HEADERS: tuple[str, ...] = (
    "Manifest-Version",
    "Origin",
    "Instance",
    "Sequence",
    "Previous",
    "Created-At",
    "Kind",
)
KINDS: tuple[str, ...] = ("delta", "snapshot")
NO_PREVIOUS = "none"

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
#: 64 lower-case hex, two spaces, a path of one or more characters other than U+0020
_LINE_RE = re.compile(r"([0-9a-f]{64})  ([^ ]+)")
_SEQUENCE_RE = re.compile(r"[1-9][0-9]{0,17}")


@dataclass(frozen=True)
class Manifest:
    """A parsed or to-be-rendered manifest.

    ``entries`` is a tuple of ``(path, sha256 hex)`` sorted by path. For version 1 the
    header fields are ``None``.
    """

    version: int
    entries: tuple[tuple[str, str], ...]
    origin: str | None = None
    instance: str | None = None
    sequence: int | None = None
    previous: str | None = None
    created_at: str | None = None
    kind: str | None = None

    @cached_property
    def digests(self) -> dict[str, str]:
        """path -> sha256 hex"""
        return dict(self.entries)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.entries]

    @cached_property
    def columns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(paths, digests)``: ``entries`` as two aligned columns (the parser fills
        this from the columns it already split, so reading it costs nothing)."""
        if not self.entries:
            return (), ()
        paths, digests = zip(*self.entries, strict=True)
        return paths, digests


class _ListedManifest(Manifest):
    """A manifest whose file lines were recognised as a caller's listing (see
    :func:`parse_manifest`): it holds ``columns`` and builds ``entries`` (one tuple per
    file) on first use, as verification itself reads only the columns. Otherwise it is
    a :class:`Manifest`: equal to, hashed, shown and pickled as the plain one."""

    def __getattr__(self, name: str) -> tuple[tuple[str, str], ...]:
        # called only for an attribute not found: ``entries`` not built yet
        if name != "entries":
            raise AttributeError(name)
        entries = tuple(zip(*self.__dict__["columns"], strict=True))
        self.__dict__["entries"] = entries
        return entries

    def _plain(self) -> Manifest:
        return Manifest(**{f.name: getattr(self, f.name) for f in fields(Manifest)})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(Manifest))

    __hash__ = Manifest.__hash__

    def __repr__(self) -> str:
        return repr(self._plain())

    def __reduce__(self) -> str | tuple[object, ...]:
        return self._plain().__reduce__()


def make_manifest(
    entries: Iterable[tuple[str, str]],
    *,
    origin: str,
    instance: str,
    sequence: int,
    previous: str | None,
    created_at: str,
    kind: str,
) -> Manifest:
    """A validated version-2 manifest; ``entries`` are sorted here."""
    manifest = Manifest(
        2,
        tuple(sorted(entries)),
        origin=origin,
        instance=instance,
        sequence=sequence,
        previous=previous,
        created_at=created_at,
        kind=kind,
    )
    _check_v2_fields(manifest)
    return replace(manifest, entries=_check_entries(manifest.entries))


def render_manifest(manifest: Manifest) -> bytes:
    lines = "".join(f"{digest}  {path}\n" for path, digest in manifest.entries)
    if manifest.version == 1:
        return lines.encode()
    if manifest.version != 2:
        raise ProtocolError("unsupported_manifest_version", f"version {manifest.version}")
    values = (
        "2",
        manifest.origin,
        manifest.instance,
        str(manifest.sequence),
        manifest.previous or NO_PREVIOUS,
        manifest.created_at,
        manifest.kind,
    )
    head = "".join(
        f"{name}: {value}\n" for name, value in zip(MANIFEST_HEADERS, values, strict=True)
    )
    return (head + "\n" + lines).encode()


#: ``(paths, sha256 hexes)`` of files a caller holds, aligned, the paths distinct (the
#: keys of a dict) and each already matched by ``RECORD_PATH_RE``
Listing = tuple[tuple[str, ...], tuple[str, ...]]


def parse_manifest(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, listing: Listing | None = None
) -> Manifest:
    """Parse ``manifest.sync.txt``; evaluates the ``manifest.*`` checks in order.

    Version 2 iff the text starts with ``Manifest-Version:``; anything else is read as
    version 1 (file lines only).

    ``listing`` is an optional guess of the file lines (what :func:`verify_bundle`
    holds): when the file lines are exactly its rendering, they are taken as they are
    after only the sort check, since a rendered listing is well-formed by
    construction. Any other text is parsed as without it, so the verdict is the same.
    """
    path = "manifest.sync.txt"
    if len(data) > limits.max_manifest_bytes:
        fail("limits.manifest_bytes", f"{len(data)} bytes", path)
    text = decode_text(data, path, "manifest")
    if not text.startswith("Manifest-Version:"):
        return _with_lines(Manifest(1, ()), text, path, listing)
    head, sep, rest = text.partition("\n\n")
    lines = head.split("\n")
    name, colon, version = lines[0].partition(": ")
    if colon and version != "2":
        fail("manifest.version", f"Manifest-Version {version[:20]!r}", path)
    values: list[str] = []
    for i, line in enumerate(lines):
        name, colon, value = line.partition(": ")
        if not colon or i >= len(MANIFEST_HEADERS) or name != MANIFEST_HEADERS[i]:
            break
        values.append(value)
    if not sep or len(values) != len(MANIFEST_HEADERS) or len(lines) != len(values):
        fail(
            "manifest.header_block",
            f"expected the headers {', '.join(MANIFEST_HEADERS)} and a blank line",
            path,
        )
    sequence = int(values[3]) if _SEQUENCE_RE.fullmatch(values[3]) else 0
    manifest = Manifest(
        2,
        (),
        origin=values[1],
        instance=values[2],
        sequence=sequence,
        previous=None if values[4] == NO_PREVIOUS else values[4],
        created_at=values[5],
        kind=values[6],
    )
    _check_v2_fields(manifest)
    return _with_lines(manifest, rest, path, listing)


def _with_lines(manifest: Manifest, text: str, path: str, listing: Listing | None) -> Manifest:
    """``manifest`` with the file lines of ``text``, its ``columns`` filled when known."""
    columns: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    if listing is not None and listing[0] and text == "".join(
        [f"{digest}  {file_path}\n" for file_path, digest in zip(*listing, strict=True)]
    ):
        # the listing's own rendering: 64-hex digests, record paths (no spaces), one LF
        # each; distinct paths, so sorted means strictly increasing
        paths = listing[0]
        if list(paths) == sorted(paths):
            columns = listing
    if columns is None:
        return replace(manifest, entries=_parse_lines(text, path))
    out = object.__new__(_ListedManifest)
    out.__dict__.update(
        {f.name: getattr(manifest, f.name) for f in fields(Manifest) if f.name != "entries"},
        columns=columns,
    )
    return out


_HEX_DIGITS = b"0123456789abcdef"


def _parse_lines(text: str, path: str) -> tuple[tuple[str, str], ...]:
    """Fast path for well-formed file lines; anything else goes through the slow,
    authoritative parser, which names the precise error.

    Split once and check the columns in bulk instead of one regex per line: the 64
    first characters of every line joined are ``64 * n`` hex digits (so every line
    starts with exactly 64 hex digits), the rest after two more characters is a
    record path (no spaces), and the text holds exactly ``2 * n`` spaces, so the
    two separator characters of every line are spaces. Paths strictly increasing
    means sorted without duplicates.
    """
    if not text:
        return ()
    lines = text.split("\n")
    if lines.pop() == "":  # the text ends with LF
        n = len(lines)
        digests = [line[:64] for line in lines]
        paths = [line[66:] for line in lines]
        hexes = "".join(digests)
        if (
            len(hexes) == 64 * n
            and text.count(" ") == 2 * n
            and hexes.isascii()
            and not hexes.encode().translate(None, _HEX_DIGITS)  # nothing but hex digits
            and all_record_paths(paths)
            and all(map(str.__lt__, paths, islice(paths, 1, None)))
        ):
            return tuple(zip(paths, digests, strict=True))
    return _parse_lines_slow(text, path)


def _parse_lines_slow(text: str, path: str) -> tuple[tuple[str, str], ...]:
    if not text.endswith("\n"):
        fail("manifest.final_lf", "last line does not end with LF", path)
        text += "\n"
    entries: list[tuple[str, str]] = []
    match = _LINE_RE.fullmatch
    for line in text[:-1].split("\n"):
        m = match(line)
        if m is None:
            fail("manifest.line", f"bad line {line[:100]!r}", path)
            continue
        entries.append((m.group(2), m.group(1)))
    return _check_entries(tuple(entries))


def _check_entries(entries: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Path checks of the file lines, each over all lines: unsafe, not a record path,
    listed twice, unsorted. Returns the entries a disabled check lets through."""
    kept: list[tuple[str, str]] = []
    for file_path, digest in entries:
        reason = unsafe_reason(file_path)
        if reason is not None:
            fail("manifest.path_unsafe", reason, file_path[:200])
            continue
        kept.append((file_path, digest))
    records: list[tuple[str, str]] = []
    for file_path, digest in kept:
        if not RECORD_PATH_RE.fullmatch(file_path):
            fail("manifest.path_record", "not a record path", file_path[:200])
            continue
        if not _DIGEST_RE.fullmatch(digest):
            fail("manifest.line", "digest is not 64 lowercase hex", file_path)
            continue
        records.append((file_path, digest))
    seen: set[str] = set()
    unique: list[tuple[str, str]] = []
    for file_path, digest in records:
        if file_path in seen:
            fail("manifest.duplicate_path", "path listed twice", file_path)
            continue
        seen.add(file_path)
        unique.append((file_path, digest))
    for previous, (file_path, _) in zip(unique, unique[1:], strict=False):
        if file_path < previous[0]:
            fail("manifest.sorted", "lines are not sorted by path", file_path)
            unique.sort()
            break
    return tuple(unique)


def _check_v2_fields(m: Manifest) -> None:
    path = "manifest.sync.txt"

    def bad(message: str) -> None:
        fail("manifest.header_values", message, path)

    if not (m.origin and KEY_ID_RE.fullmatch(m.origin)):
        bad("Origin is not a 16-hex key id")
    if not (m.instance and URL_RE.fullmatch(m.instance)):
        bad("Instance is not an absolute http(s) URL")
    if not (isinstance(m.sequence, int) and m.sequence >= 1):
        bad("Sequence must be a positive integer")
    if m.sequence == 1:
        if m.previous is not None:
            bad("Sequence 1 must have Previous: none")
    elif not (m.previous and _DIGEST_RE.fullmatch(m.previous)):
        bad("Previous must be a sha256 hex digest")
    if not (m.created_at and TIMESTAMP_RE.fullmatch(m.created_at)):
        bad("Created-At is not an RFC 3339 UTC time")
    if m.kind not in KINDS:
        bad("Kind must be delta or snapshot")
