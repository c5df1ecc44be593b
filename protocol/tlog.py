"""Transparency-log math: RFC 6962/9162 Merkle trees, proofs, C2SP checkpoints and notes.

Pure: bytes and integers in, bytes and integers out. Storage is the caller's: every
function that needs tree hashes takes a ``read(level, index) -> hash`` callable over the
*stored hashes* (the hash of every complete subtree: level 0 is the leaf hashes, the
node at ``(level, index)`` covers leaves ``[index << level, (index + 1) << level)``),
which is what a log writes once and never changes. :func:`needed` runs the same code
with a recording reader, so a caller can fetch every hash a proof needs in one query.

Formats (byte for byte what the Go reference ``golang.org/x/mod/sumdb/{note,tlog}``
and the C2SP specs produce):

- leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``;
- inclusion and consistency proofs as in RFC 9162 section 2.1.3 and 2.1.4;
- ``tlog-checkpoint``, ``signed-note`` and ``tlog-cosignature/v1``: in
  :mod:`protocol.tlog_note` (re-exported here);
- ``tlog-tiles``: tiles of height 8 (256 hashes), paths ``tile/<L>/<N>[.p/<W>]`` and
  ``tile/entries/<N>[.p/<W>]`` with ``N`` in three-digit groups (``x001/x234/067``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from protocol.errors import ProtocolError
from protocol.tlog_note import (  # noqa: F401 (re-exported: protocol.tlog.<name>)
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    HASH_SIZE,
    MAX_NOTE_BYTES,
    Checkpoint,
    Note,
    NoteSignature,
    NoteVerifier,
    TlogError,
    cosign,
    cosignature_message,
    count_cosignatures,
    key_hash,
    parse_checkpoint,
    parse_note,
    parse_verifier,
    sign_note,
    signature_by,
    verifier_for,
    verify_checkpoint,
    verify_cosignature,
    verify_note,
)

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
LEAF_FORMAT = "whiteballoon-hub-log-entry/1"

Read = Callable[[int, int], bytes]


# ----------------------------------------------------------------------------- hashing

def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_entry(hub_seq: int, origin: str, sequence: int | None, digest: str) -> bytes:
    """The content of one log leaf: the signed facts of one stored bundle.

    Only what the origin signed (its name, sequence and manifest digest) and the hub's
    sequence, so scrubbing withdrawn files or pruning a bundle never changes a leaf.
    """
    for name, value in (("origin", origin), ("digest", digest)):
        if not value or any(c in value for c in "\n\r ") or len(value) > 512:
            raise ProtocolError("invalid_argument", f"log leaf {name} {value[:60]!r}")
    if hub_seq < 1 or (sequence is not None and sequence < 0):
        raise ProtocolError("invalid_argument", "log leaf sequence out of range")
    seq_text = "-" if sequence is None else str(sequence)
    return (f"{LEAF_FORMAT}\nhub-seq {hub_seq}\norigin {origin}\nsequence {seq_text}\n"
            f"digest {digest}\n").encode()


@dataclass(frozen=True)
class LeafFacts:
    hub_seq: int
    origin: str
    sequence: int | None
    digest: str


def parse_leaf(entry: bytes) -> LeafFacts:
    try:
        lines = entry.decode("ascii").split("\n")
        if len(lines) != 6 or lines[0] != LEAF_FORMAT or lines[5] != "":
            raise ValueError
        fields = dict(line.split(" ", 1) for line in lines[1:5])
        seq_text = fields["sequence"]
        facts = LeafFacts(int(fields["hub-seq"]), fields["origin"],
                          None if seq_text == "-" else int(seq_text), fields["digest"])
    except (ValueError, KeyError, UnicodeDecodeError):
        raise TlogError("not a hub log leaf") from None
    if leaf_entry(facts.hub_seq, facts.origin, facts.sequence, facts.digest) != entry:
        raise TlogError("hub log leaf is not in canonical form")
    return facts


# ------------------------------------------------------------------- stored hashes

def append_stored(size: int, frontier: Sequence[bytes], leaf: bytes
                  ) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """Append leaf number ``size`` (its leaf hash) to a tree.

    ``frontier`` is the hashes of the complete subtrees of the tree of ``size`` leaves,
    largest first (one per set bit of ``size``). Returns the stored hashes to write
    (``(level, index, hash)``, the leaf first) and the new frontier.
    """
    if len(frontier) != bin(size).count("1"):
        raise ProtocolError("invalid_argument", "frontier does not match the tree size")
    out = [(0, size, leaf)]
    new = list(frontier)
    h, level, index = leaf, 0, size
    while index & 1:
        h = node_hash(new.pop(), h)
        level, index = level + 1, index >> 1
        out.append((level, index, h))
    new.append(h)
    return out, new


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    if not frontier:
        return EMPTY_ROOT
    h = frontier[-1]
    for left in reversed(frontier[:-1]):
        h = node_hash(left, h)
    return h


def frontier_coordinates(size: int) -> list[tuple[int, int]]:
    """``(level, index)`` of the frontier hashes of a tree of ``size`` leaves."""
    out = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((level, start >> level))
            start += 1 << level
    return out


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(read: Read, lo: int, hi: int) -> bytes:
    """Hash of leaves ``[lo, hi)`` as RFC 6962 defines it (lo aligned as in the tree)."""
    n = hi - lo
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        return read(n.bit_length() - 1, lo // n)
    k = _split(n)
    return node_hash(subtree_hash(read, lo, lo + k), subtree_hash(read, lo + k, hi))


def tree_hash(read: Read, size: int) -> bytes:
    return subtree_hash(read, 0, size)


def inclusion_proof(read: Read, index: int, size: int) -> list[bytes]:
    """RFC 9162 ``PATH(index, D[size])``."""
    if not 0 <= index < size:
        raise ProtocolError("invalid_argument", f"leaf {index} is not in a tree of {size}")

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = _split(hi - lo)
        if m < lo + k:
            return path(m, lo, lo + k) + [subtree_hash(read, lo + k, hi)]
        return path(m, lo + k, hi) + [subtree_hash(read, lo, lo + k)]

    return path(index, 0, size)


def consistency_proof(read: Read, old: int, new: int) -> list[bytes]:
    """RFC 9162 ``PROOF(old, D[new])`` (empty when ``old`` is 0 or equals ``new``)."""
    if not 0 <= old <= new:
        raise ProtocolError("invalid_argument", f"no consistency proof from {old} to {new}")
    if old == 0 or old == new:
        return []

    def sub(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [subtree_hash(read, lo, hi)]
        k = _split(n)
        if m <= k:
            return sub(m, lo, lo + k, whole) + [subtree_hash(read, lo + k, hi)]
        return sub(m - k, lo + k, hi, False) + [subtree_hash(read, lo, lo + k)]

    return sub(old, 0, new, True)


def needed(compute: Callable[[Read], object]) -> set[tuple[int, int]]:
    """The stored hashes ``compute(read)`` reads (its control flow never depends on them)."""
    seen: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        seen.add((level, index))
        return b"\0" * HASH_SIZE

    compute(record)
    return seen


def reader_of(hashes: dict[tuple[int, int], bytes]) -> Read:
    def read(level: int, index: int) -> bytes:
        try:
            return hashes[(level, index)]
        except KeyError:
            raise ProtocolError("invalid_argument",
                                f"stored hash ({level}, {index}) is missing") from None
    return read


# ------------------------------------------------------------------- verification

def _lsb(n: int) -> int:
    return n & 1


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> None:
    """RFC 9162 2.1.3.2; raise :class:`TlogError` unless ``leaf`` (its hash) is leaf
    ``index`` of the tree of ``size`` leaves whose root is ``root``."""
    if not 0 <= index < size:
        raise TlogError(f"leaf {index} cannot be in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            raise TlogError("inclusion proof has the wrong shape")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            if not _lsb(fn):
                while fn and not _lsb(fn):
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise TlogError("inclusion proof is too short")
    if r != root:
        raise TlogError(f"leaf {index} is not in the tree of {size} with that root")


def verify_consistency(old: int, old_root: bytes, new: int, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2; raise :class:`TlogError` unless the tree of ``old`` leaves with
    ``old_root`` is a prefix of the tree of ``new`` leaves with ``new_root``."""
    if not 0 <= old <= new:
        raise TlogError(f"a tree of {new} cannot extend one of {old}")
    if old == new:
        if proof or old_root != new_root:
            raise TlogError(f"two different roots for the same tree size {old}")
        return
    if old == 0:
        if proof or old_root != EMPTY_ROOT:
            raise TlogError("the empty tree has a fixed root")
        return
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        raise TlogError("consistency proof has the wrong shape")
    path = list(proof)
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while _lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise TlogError("consistency proof is too long")
        if _lsb(fn) or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not _lsb(fn):
                while fn and not _lsb(fn):
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise TlogError(f"the tree of {new} does not extend the tree of {old}")


# ----------------------------------------------------------------------------- tiles

def tile_index_path(n: int) -> str:
    """``N`` of a tile path: three-digit groups, all but the last prefixed with ``x``."""
    if n < 0:
        raise ProtocolError("invalid_argument", "negative tile index")
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``; ``level`` may be ``"entries"``."""
    path = f"tile/{level}/{tile_index_path(index)}"
    if width != TILE_WIDTH:
        path += f".p/{width}"
    return path


@dataclass(frozen=True)
class TileRef:
    level: int | None  # None: an entry bundle
    index: int
    width: int


def parse_tile_path(path: str) -> TileRef:
    """The tile named by ``tile/...`` (raises TlogError on any other spelling)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TlogError("not a tile path")
    level: int | None
    if parts[1] == "entries":
        level = None
    elif parts[1].isdigit() and len(parts[1]) <= 2 and str(int(parts[1])) == parts[1]:
        level = int(parts[1])
    else:
        raise TlogError("bad tile level")
    rest = parts[2:]
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not w.isdigit() or str(int(w)) != w or not 1 <= int(w) < TILE_WIDTH:
            raise TlogError("bad partial tile width")
        width = int(w)
        rest = rest[:-2] + [rest[-2][:-2]]
    n = 0
    for i, group in enumerate(rest):
        last = i == len(rest) - 1
        digits = group if last else group[1:]
        if (not last and not group.startswith("x")) or len(digits) != 3 \
                or not digits.isdigit():
            raise TlogError("bad tile index")
        n = n * 1000 + int(digits)
    if tile_index_path(n) != "/".join(rest):
        raise TlogError("tile index is not in canonical form")
    return TileRef(level, n, width)


def entry_bundle(entries: Iterable[bytes]) -> bytes:
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise ProtocolError("invalid_argument", "log entry longer than 65535 bytes")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def split_entry_bundle(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise TlogError("truncated entry bundle")
        n = int.from_bytes(data[at:at + 2], "big")
        if at + 2 + n > len(data):
            raise TlogError("truncated entry bundle")
        out.append(data[at + 2:at + 2 + n])
        at += 2 + n
    return out
