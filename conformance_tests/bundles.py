"""Fresh signing identities and bundles for black-box runs, built with the protocol library.

Every run generates new Ed25519 keys, so its origins and chains never collide with an
earlier run against the same hub or node.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from protocol.bundle import Bundle, sign_files
from protocol.containers import to_cbor, to_targz
from protocol.manifest import make_manifest, render_manifest
from protocol.records import Record, make_record, make_tombstone, render_record
from protocol.signature import key_id, public_key_from_seed

VECTORS = Path(__file__).resolve().parent / "vectors"
INSTANCE = "https://conformance.invalid"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Identity:
    """A fresh origin: its seed, key id and hash chain."""

    seed: bytes = field(default_factory=lambda: os.urandom(32))
    sequence: int = 0
    previous: str | None = None
    counter: int = 0

    @property
    def public_key(self) -> bytes:
        return public_key_from_seed(self.seed)

    @property
    def origin(self) -> str:
        return key_id(self.public_key)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()

    def _common(self, rid: str, scope: str, revision: int) -> dict[str, str | int]:
        return {"ID": rid, "Origin": self.origin, "Instance": INSTANCE, "Revision": revision,
                "Updated-At": now(), "Sync-Scope": scope}

    def request(self, title: str, body: str = "conformance", *, scope: str = "public",
                rid: str | None = None, revision: int = 1) -> Record:
        self.counter += 1
        rid = rid or f"CONF{self.counter:06d}"
        return make_record("request", {**self._common(rid, scope, revision), "Title": title,
                                       "Status": "open", "Created-By": f"{self.origin}/U1",
                                       "Created-At": now()}, body)

    def comment(self, request: Record, body: str, *, scope: str = "public") -> Record:
        self.counter += 1
        return make_record("comment", {**self._common(f"CONFC{self.counter:06d}", scope, 1),
                                       "Request": f"{self.origin}/{request.id}",
                                       "Created-By": f"{self.origin}/U1",
                                       "Created-At": now()}, body)

    def tombstone(self, rec: Record, revision: int) -> Record:
        return make_tombstone(rec.entity, rec.id, origin=self.origin, instance=INSTANCE,
                              revision=revision, updated_at=now())

    def bundle(self, records: list[Record], *, sequence: int | None = None,
               previous: str | None = None, advance: bool = True) -> Bundle:
        """Sign ``records`` (any scope) as bundle ``sequence`` (default: the next one)."""
        seq = self.sequence + 1 if sequence is None else sequence
        prev = previous if previous is not None else (self.previous if seq > 1 else None)
        if seq > 1 and prev is None:
            prev = hashlib.sha256(f"missing {seq - 1}".encode()).hexdigest()
        files = {rec.path: render_record(rec) for rec in records}
        manifest = render_manifest(make_manifest(
            [(p, hashlib.sha256(d).hexdigest()) for p, d in files.items()],
            origin=self.origin, instance=INSTANCE, sequence=seq, previous=prev,
            created_at=now(), kind="delta"))
        b = sign_files(files, manifest, seed=self.seed, signed_at=now())
        if advance:
            self.sequence, self.previous = seq, b.digest
        return b


def cbor(b: Bundle) -> bytes:
    return to_cbor(b)


def targz(b: Bundle) -> bytes:
    return to_targz(b)


# --------------------------------------------------------------------------- vectors

@dataclass(frozen=True)
class Vector:
    name: str
    code: str
    container: str      # dir | cbor | tar.gz (as stored)
    path: Path
    #: verifier limits the vector is judged under (empty: the defaults)
    limits: dict[str, int] = field(default_factory=dict)


def invalid_vectors(*, default_limits_only: bool = False) -> list[Vector]:
    """The invalid vectors; ``default_limits_only`` leaves out those judged under lowered
    limits (valid bundles under the defaults, so a live hub or node must accept them)."""
    cases = json.loads((VECTORS / "cases.json").read_text())["cases"]
    return [Vector(c["name"], c["code"], c["container"], VECTORS / c["path"],
                   c.get("limits", {}))
            for c in cases if not (default_limits_only and c.get("limits"))]


def verifier_command(template: str, path: Path, trusted: dict[str, list[str]],
            limits: dict[str, int] | None = None) -> list[str]:
    """The argument list of a verifier command template (conformance_tests/README.md):
    ``{path}``, ``{trust_args}`` (``--trust-key-id ID`` pairs) and ``{limits_args}``
    (``--limit NAME=VALUE`` pairs)."""
    trust_args = [
        arg for keys in trusted.values() for kid in keys for arg in ("--trust-key-id", kid)
    ]
    limits_args = [
        arg for name, value in sorted((limits or {}).items())
        for arg in ("--limit", f"{name}={value}")
    ]
    out: list[str] = []
    for token in shlex.split(template):
        if token == "{trust_args}":
            out.extend(trust_args)
        elif token == "{limits_args}":
            out.extend(limits_args)
        else:
            out.append(token.replace("{path}", str(path)))
    return out



def raw_targz(directory: Path) -> bytes:
    """A tar.gz of a vector directory exactly as it is on disk (no validation), with the
    deterministic settings of docs/protocol.md section 7."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(directory.rglob("*")):
            if p.is_symlink() or not p.is_file():
                continue
            data = p.read_bytes()
            info = tarfile.TarInfo(p.relative_to(directory).as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def vector_body(v: Vector, prefer: str = "any") -> tuple[bytes, str] | None:
    """The bytes to upload for a vector and their Content-Type.

    ``prefer="cbor"`` (a node inbox takes only the envelope): directories are wrapped in
    a CBOR envelope when their files can be read; tar.gz vectors give None."""
    from protocol.containers import CBOR_MEDIA_TYPE

    if v.path.is_dir():
        if prefer == "cbor":
            from protocol.errors import ProtocolError
            from service.bundle_io import read_bundle_dir

            try:
                return to_cbor(read_bundle_dir(v.path)), CBOR_MEDIA_TYPE
            except ProtocolError:
                return None
        return raw_targz(v.path), "application/gzip"
    data = v.path.read_bytes()
    if v.path.name.endswith(".cbor"):
        return data, CBOR_MEDIA_TYPE
    return (None if prefer == "cbor" else (data, "application/gzip"))
