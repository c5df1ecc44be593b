"""Key rotation announcements.

An origin keeps its id (the key id of its first key) for life. To hand signing over
to a new key, the node publishes a ``key`` record, signed by its *current* key:

    Entity: key / ID: <new key id> / Key-ID: <new key id> / Public-Key: <base64> /
    Previous-Key-ID: <current key id> / Valid-From: <time>

A receiver that trusts the current key for the origin may then trust the new key
for the same origin (node: ``node.sync.rotation.accept_rotations``; hub: ``hub.ingest``).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import ProtocolError
from protocol.records import Record, make_record
from protocol.signature import b64, key_id
from protocol.verify import VerifiedBundle, check_key_record


@dataclass(frozen=True)
class RotationAnnouncement:
    origin: str
    previous_key_id: str
    key_id: str
    public_key: bytes
    valid_from: str | None
    revision: int


def make_key_record(
    *,
    origin: str,
    instance: str,
    new_public_key: bytes,
    previous_key_id: str,
    revision: int,
    updated_at: str,
    valid_from: str | None = None,
) -> Record:
    """The ``key`` record announcing ``new_public_key`` as the successor of
    ``previous_key_id``; its ID is the new key id."""
    if len(new_public_key) != 32:
        raise ProtocolError("invalid_argument", "an Ed25519 public key is 32 bytes")
    new_id = key_id(new_public_key)
    return make_record(
        "key",
        {
            "ID": new_id,
            "Origin": origin,
            "Instance": instance,
            "Revision": revision,
            "Updated-At": updated_at,
            "Key-ID": new_id,
            "Public-Key": b64(new_public_key),
            "Previous-Key-ID": previous_key_id,
            "Valid-From": valid_from,
        },
    )


def rotation_announcements(verified: VerifiedBundle) -> list[RotationAnnouncement]:
    """Key records in a verified bundle that were signed by the key they replace.

    A key record whose ``Previous-Key-ID`` is not the bundle's signing key is not an
    announcement (it is history, or a forgery attempt) and is ignored here.
    """
    out: list[RotationAnnouncement] = []
    for path, rec in verified.records:
        if rec.entity != "key" or rec.deleted:
            continue
        if rec["Previous-Key-ID"] != verified.key_id:
            continue
        raw = check_key_record(rec, path)
        out.append(
            RotationAnnouncement(
                origin=verified.origin,
                previous_key_id=verified.key_id,
                key_id=rec["Key-ID"],
                public_key=raw,
                valid_from=rec.get("Valid-From"),
                revision=rec.revision,
            )
        )
    return out
