"""Signed test bundles from fixed seeds, and a registered peer for them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass, field

from protocol.bundle import Bundle, sign_files
from protocol.containers import CBOR_MEDIA_TYPE, to_cbor
from protocol.manifest import make_manifest, render_manifest
from protocol.records import Record, make_record, make_tombstone, render_record
from protocol.signature import key_id, public_key_from_seed

TS = "2026-01-02T03:04:05Z"


@dataclass
class Origin:
    """A node's signing identity and its hash chain."""

    seed: bytes
    instance: str = "https://node.example"
    sequence: int = 0
    previous: str | None = None
    counter: int = field(default=0)

    @property
    def public_key(self) -> bytes:
        return public_key_from_seed(self.seed)

    @property
    def origin(self) -> str:
        return key_id(self.public_key)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()

    def request(self, rid: str | None = None, *, revision: int = 1, title: str = "Need help",
                body: str = "please", scope: str = "public") -> Record:
        self.counter += 1
        rid = rid or f"R{self.counter:08d}"
        return make_record("request", {
            "ID": rid, "Origin": self.origin, "Instance": self.instance,
            "Revision": revision, "Updated-At": TS, "Sync-Scope": scope, "Title": title,
            "Status": "open", "Created-By": f"{self.origin}/U1", "Created-At": TS}, body)

    def comment(self, cid: str, request_ref: str, body: str = "I can help",
                scope: str = "public") -> Record:
        return make_record("comment", {
            "ID": cid, "Origin": self.origin, "Instance": self.instance, "Revision": 1,
            "Updated-At": TS, "Sync-Scope": scope, "Request": request_ref,
            "Created-By": f"{self.origin}/U1", "Created-At": TS}, body)

    def tombstone(self, entity: str, rid: str, revision: int) -> Record:
        return make_tombstone(entity, rid, origin=self.origin, instance=self.instance,
                              revision=revision, updated_at=TS)

    def bundle(self, records: list[Record], *, sequence: int | None = None,
               advance: bool = True, signer: bytes | None = None) -> Bundle:
        """Sign ``records`` (any scope) as the next bundle of this origin's chain."""
        seq = sequence if sequence is not None else self.sequence + 1
        files = {rec.path: render_record(rec) for rec in records}
        manifest = render_manifest(make_manifest(
            [(p, hashlib.sha256(d).hexdigest()) for p, d in files.items()],
            origin=self.origin, instance=self.instance, sequence=seq,
            previous=self.previous, created_at=TS, kind="delta"))
        b = sign_files(files, manifest, seed=signer or self.seed, signed_at=TS)
        if advance:
            self.sequence = seq
            self.previous = b.digest
        return b

    def many(self, n: int, **kw: object) -> Bundle:
        return self.bundle([self.request(**kw) for _ in range(n)])  # type: ignore[arg-type]


def seed(i: int) -> bytes:
    return hashlib.sha256(f"hub-test-seed-{i}".encode()).digest()


def cbor_headers(token: str) -> dict[str, str]:
    return {"Content-Type": CBOR_MEDIA_TYPE, "Authorization": f"Bearer {token}"}


def envelope(b: Bundle) -> bytes:
    return to_cbor(b)


async def until(check, what: str, limit: float = 120.0):  # noqa: ANN001, ANN201
    """The first truthy value of ``await check()``, polled every 50 ms; AssertionError
    naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
