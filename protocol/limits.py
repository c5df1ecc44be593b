"""Size and count limits applied before any parsing work is done."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on untrusted input. Every verifier entry point takes one.

    The defaults are safe for a node or hub on a small machine and large enough for a
    snapshot of a community with tens of thousands of public records.
    """

    #: total bytes of manifest + signature + key files + record files
    max_bundle_bytes: int = 32 * MiB
    #: number of files in the bundle (records + manifest + signature + key files)
    max_files: int = 50_000
    #: bytes of any one record file
    max_record_bytes: int = 256 * 1024
    #: bytes of manifest.sync.txt
    max_manifest_bytes: int = 8 * MiB
    #: bytes of bundle.sig
    max_signature_bytes: int = 4096
    #: bytes of one public_keys/<key id>.pub file
    max_key_file_bytes: int = 4096
    #: bytes of a record's header block (everything before the blank line)
    max_header_bytes: int = 16 * 1024
    #: header lines in one record
    max_headers: int = 64
    #: decompressed bytes of a tar stream (tar adds ~1 KiB of framing per file)
    max_archive_bytes: int = 128 * MiB
    #: decompressed/compressed ratio refused once more than ``ratio_check_after``
    #: bytes have been inflated (gzip bombs)
    max_compression_ratio: int = 200
    ratio_check_after: int = 1 * MiB
    #: bytes of a CBOR envelope or tar.gz file read as a bundle; None: derived,
    #: ``max_bundle_bytes + 512 * max_files + 4096`` (the bundle plus framing per file)
    max_container_bytes: int | None = None

    @property
    def container_bytes(self) -> int:
        """The cap on a container's bytes (``max_container_bytes`` or its derived value)."""
        if self.max_container_bytes is not None:
            return self.max_container_bytes
        return self.max_bundle_bytes + 512 * self.max_files + 4096

    @property
    def envelope_bytes(self) -> int:
        """Largest transport container (CBOR envelope or tar.gz) worth reading for a
        bundle within these limits: the bundle bytes plus framing for every file. A
        reader stops at this many bytes instead of buffering an unbounded body."""
        return self.max_bundle_bytes + 64 * 1024 + 64 * self.max_files


DEFAULT_LIMITS = Limits()

#: how the limits table of docs/protocol.md shows a derived default
DERIVED_DEFAULTS = {"max_container_bytes": "max_bundle_bytes + 512 × max_files + 4096"}


def limits_from_mapping(values: Mapping[str, object], base: Limits = DEFAULT_LIMITS) -> Limits:
    """``base`` with some limits changed by name (a conformance vector's ``limits``
    object, ``wb sync verify --limit NAME=VALUE``). Every value must be a positive
    integer; an unknown name is a ValueError."""
    known = {f.name for f in fields(Limits)}
    changes: dict[str, int] = {}
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"unknown limit {name!r} (known: {', '.join(sorted(known))})")
        if type(value) is str and value.isascii() and value.isdigit():
            value = int(value)  # ASCII digits only (int() would also take other digits)
        if type(value) is not int or value <= 0:
            raise ValueError(f"limit {name} must be a positive integer, not {value!r}")
        changes[name] = value
    return replace(base, **changes)
