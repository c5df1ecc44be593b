"""Shared fixtures for protocol tests: fixed seeds and small bundles."""

from __future__ import annotations

import hashlib

from protocol.bundle import Bundle, build_bundle
from protocol.records import Record, make_record
from protocol.signature import key_id, public_key_from_seed

SEED_A = hashlib.sha256(b"tests seed A").digest()
SEED_B = hashlib.sha256(b"tests seed B").digest()
KEY_A = key_id(public_key_from_seed(SEED_A))
KEY_B = key_id(public_key_from_seed(SEED_B))
INSTANCE = "https://node-a.example"
T0 = "2026-02-03T04:05:06Z"


def user(uid: str = "01HUSER", origin: str = KEY_A, **extra: str | int | None) -> Record:
    fields: dict[str, str | int | None] = {
        "ID": uid,
        "Origin": origin,
        "Instance": INSTANCE,
        "Revision": 1,
        "Updated-At": T0,
        "Username": f"user{uid.lower()}",
    }
    fields.update(extra)
    return make_record("user", fields, "bio\n")


def request(rid: str = "01HREQ", origin: str = KEY_A, body: str = "help\n") -> Record:
    return make_record(
        "request",
        {
            "ID": rid,
            "Origin": origin,
            "Instance": INSTANCE,
            "Revision": 3,
            "Updated-At": T0,
            "Title": "Need a ladder",
            "Status": "open",
            "Created-By": f"{origin}/01HUSER",
            "Created-At": T0,
        },
        body,
    )


def small_bundle(records: list[Record] | None = None, *, seed: bytes = SEED_A,
                 origin: str = KEY_A, sequence: int = 1, previous: str | None = None) -> Bundle:
    if records is None:
        records = [user(), user("01HUSER2"), request()]
    return build_bundle(records, seed=seed, origin=origin, instance=INSTANCE, sequence=sequence,
                        previous=previous, kind="snapshot" if sequence == 1 else "delta",
                        created_at=T0, signed_at="2026-02-03T04:05:07+00:00")


def public_key_from_seed_b() -> bytes:
    return public_key_from_seed(SEED_B)
