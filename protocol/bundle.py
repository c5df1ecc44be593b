"""The bundle value: manifest bytes, signature bytes, key files and record files.

A :class:`Bundle` holds exact bytes as received or built; containers
(:mod:`protocol.containers`) and the directory view (:meth:`Bundle.to_files`) are
lossless views of the same bytes. Nothing here verifies; see :mod:`protocol.verify`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

from protocol.checks import fail
from protocol.errors import ProtocolError
from protocol.manifest import make_manifest, render_manifest
from protocol.paths import KEY_PATH_RE, KEYS_DIR, MANIFEST_PATH, SIGNATURE_PATH
from protocol.records import EXPORTABLE_ENTITIES, Record, render_record
from protocol.signature import key_id, public_key_file, public_key_from_seed, sign_manifest


@dataclass(frozen=True)
class Bundle:
    """Exact bytes of one bundle.

    ``files`` maps record paths (``users/<id>.sync.txt``...) to bytes; ``keys`` maps a
    key id to the bytes of ``public_keys/<key-id>.pub``. The manifest and the
    signature are kept separately.
    """

    manifest: bytes
    sig: bytes
    files: dict[str, bytes]
    keys: dict[str, bytes]

    @cached_property
    def digest(self) -> str:
        """SHA-256 hex of the manifest bytes: the bundle's identity."""
        return hashlib.sha256(self.manifest).hexdigest()

    def to_files(self) -> dict[str, bytes]:
        """The directory view: relative path -> bytes, sorted by path."""
        out: dict[str, bytes] = {MANIFEST_PATH: self.manifest, SIGNATURE_PATH: self.sig}
        for kid, data in self.keys.items():
            out[f"{KEYS_DIR}/{kid}.pub"] = data
        out.update(self.files)
        return dict(sorted(out.items()))

    def withhold(self, paths: Iterable[str]) -> Bundle:
        """The same signed bundle without the record files at ``paths``: they become
        "withheld" (listed in the manifest, absent), so the signature still verifies.
        How a relay or an outbox forgets a record that was withdrawn after signing."""
        gone = set(paths)
        return Bundle(manifest=self.manifest, sig=self.sig, keys=dict(self.keys),
                      files={p: d for p, d in self.files.items() if p not in gone})

    @property
    def total_bytes(self) -> int:
        return (
            len(self.manifest)
            + len(self.sig)
            + sum(len(v) for v in self.files.values())
            + sum(len(v) for v in self.keys.values())
        )

    @property
    def file_count(self) -> int:
        return 2 + len(self.files) + len(self.keys)


def bundle_from_files(mapping: Mapping[str, bytes]) -> Bundle:
    """Build a :class:`Bundle` from the directory view (relative path -> bytes).

    Only splits: ``manifest.sync.txt``, ``bundle.sig`` and ``public_keys/*.pub`` are
    taken out, everything else stays in ``files`` so verification can judge it.
    """
    manifest = mapping.get(MANIFEST_PATH)
    if manifest is None:
        fail("bundle.manifest_present", "bundle has no manifest.sync.txt")
        raise AssertionError("terminal check")
    sig = mapping.get(SIGNATURE_PATH)
    if sig is None:
        fail("bundle.signature_present", "bundle has no bundle.sig")
        raise AssertionError("terminal check")
    files: dict[str, bytes] = {}
    keys: dict[str, bytes] = {}
    for path, data in mapping.items():
        if path in (MANIFEST_PATH, SIGNATURE_PATH):
            continue
        m = KEY_PATH_RE.fullmatch(path)
        if m is not None:
            keys[m.group(1)] = data
        else:
            files[path] = data
    return Bundle(manifest=manifest, sig=sig, files=files, keys=keys)


def build_bundle(
    records: Iterable[Record],
    *,
    seed: bytes,
    origin: str,
    instance: str,
    sequence: int,
    previous: str | None,
    kind: str,
    created_at: str,
    signed_at: str,
) -> Bundle:
    """Render, list and sign ``records`` as a schema-2 bundle for ``origin``.

    Every record must belong to ``origin``, be ``public`` (tombstones are public) and
    be an exportable entity; two records may not share a path.
    """
    files: dict[str, bytes] = {}
    for rec in records:
        path = rec.path
        if rec.origin != origin:
            raise ProtocolError("origin_mismatch", f"record origin {rec.origin} != {origin}", path)
        if rec.scope != "public":
            raise ProtocolError("not_public", "only public records may leave a node", path)
        if rec.entity not in EXPORTABLE_ENTITIES:
            raise ProtocolError(
                "entity_not_allowed", f"{rec.entity} records are not exported", path
            )
        if path in files:
            raise ProtocolError("duplicate_record", "two records with the same path", path)
        files[path] = render_record(rec)
    entries = [(path, hashlib.sha256(data).hexdigest()) for path, data in files.items()]
    manifest = render_manifest(
        make_manifest(
            entries,
            origin=origin,
            instance=instance,
            sequence=sequence,
            previous=previous,
            created_at=created_at,
            kind=kind,
        )
    )
    sig = sign_manifest(manifest, seed, signed_at)
    public = public_key_from_seed(seed)
    return Bundle(
        manifest=manifest,
        sig=sig,
        files=dict(sorted(files.items())),
        keys={key_id(public): public_key_file(public)},
    )


def sign_files(
    files: Mapping[str, bytes], manifest: bytes, *, seed: bytes, signed_at: str
) -> Bundle:
    """Sign already-rendered ``manifest`` bytes and wrap them with ``files``.

    Low-level helper (used for schema-1 bundles and test vectors).
    """
    public = public_key_from_seed(seed)
    return Bundle(
        manifest=manifest,
        sig=sign_manifest(manifest, seed, signed_at),
        files=dict(files),
        keys={key_id(public): public_key_file(public)},
    )
