"""What a receiver (a node's importer, a hub's index) keeps of a verified bundle.

ONE mapping, used by both, so a schema-1 bundle lands the same way everywhere:

- invites are never kept: a node never stores another node's invites and a hub never
  publishes them (schema 1 carries them with their personal messages);
- schema-1 records lose their ``Contact-Email``: schema 1 has no opt-in, so an address
  in an original bundle is not known to be meant for the public (schema 2 carries one
  only when its owner opted in, and it is kept);
- each record comes with the header block to show for it: for schema 2 the signed
  bytes' own header block; for schema 1 the header block of the mapped schema-2
  record, so a comment embedded in a request carries its own headers (``Request``,
  ``Created-By``, ...), not the request's.

:func:`unsafe_paths` names the schema-1 files whose signed bytes hold something the
mapping drops: a relay that stores and forwards bundle bytes withholds those files
(they stay listed in the signed manifest, so the bundle still verifies).
"""

from __future__ import annotations

from typing import NamedTuple

from protocol.records import Record, render_record
from protocol.verify import VerifiedBundle

#: Entities a receiver keeps (indexes, stores, forwards in its answers).
KEPT_ENTITIES: frozenset[str] = frozenset({"user", "request", "comment", "vouch", "key"})

#: Headers a schema-1 record never keeps.
SCHEMA1_DROPPED_HEADERS: tuple[str, ...] = ("Contact-Email",)


class Storable(NamedTuple):
    """One record as a receiver keeps it (a tuple: a hub makes 1,000 per push)."""

    path: str  # the file it came from (a schema-1 request and its comments share one)
    record: Record
    head: str  # its header block (no trailing blank line)
    body: str  # its body (what follows the first blank line)


_new_tuple = tuple.__new__


def storable_records(verified: VerifiedBundle) -> list[Storable]:
    """The records of ``verified`` a receiver keeps, mapped (see the module docs).

    A schema-2 record's head and body come from one decoding of its signed bytes, split
    at the first blank line (no header value holds an LF); the parser checked they are
    UTF-8. (Decoding the head here and the body in ``Record.body`` cost twice as much:
    the hub's index of a 1,000-record push, issue 24.)"""
    files = verified.bundle.files
    out: list[Storable] = []
    append = out.append
    if verified.schema_version == 1:
        for path, rec in verified.records:
            if rec.entity not in KEPT_ENTITIES:
                continue
            if any(rec.get(name) for name in SCHEMA1_DROPPED_HEADERS):
                rec = _without_dropped(rec)
            append(Storable(path, rec, _head(render_record(rec)), rec.body))
        return out
    new = _new_tuple
    for path, rec in verified.records:
        if rec.entity not in KEPT_ENTITIES:
            continue
        head, _, body = files[path].decode().partition("\n\n")
        append(new(Storable, (path, rec, head, body)))
    return out


def unsafe_paths(verified: VerifiedBundle) -> set[str]:
    """Files whose signed bytes carry what :func:`storable_records` drops: schema-1
    invites and schema-1 files with a non-empty dropped header (their own or, for a
    request, in the file itself). Schema-2 files are always safe to relay."""
    if verified.schema_version != 1:
        return set()
    unsafe: set[str] = set()
    for path, data in verified.bundle.files.items():
        head = _head(data)
        lines = head.split("\n")
        if "Entity: invite" in lines:
            unsafe.add(path)
            continue
        for line in lines:
            name, sep, value = line.partition(":")
            if sep and name in SCHEMA1_DROPPED_HEADERS and value.strip():
                unsafe.add(path)
                break
    return unsafe


def _without_dropped(rec: Record) -> Record:
    headers = tuple((n, v) for n, v in rec.headers if n not in SCHEMA1_DROPPED_HEADERS)
    return Record(rec.entity, headers, rec.body)


def _head(data: bytes) -> str:
    cut = data.find(b"\n\n")
    return (data if cut < 0 else data[:cut]).decode("utf-8", "replace")
