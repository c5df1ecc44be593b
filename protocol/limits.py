"""Size and count limits applied before any parsing work is done."""

from __future__ import annotations

from dataclasses import dataclass

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
    #: bytes of any one record file (also bounds bundle.sig and .pub files)
    max_record_bytes: int = 256 * 1024
    #: bytes of manifest.sync.txt
    max_manifest_bytes: int = 8 * MiB
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

    @property
    def envelope_bytes(self) -> int:
        """Largest transport container (CBOR envelope or tar.gz) worth reading for a
        bundle within these limits: the bundle bytes plus framing for every file. A
        reader stops at this many bytes instead of buffering an unbounded body."""
        return self.max_bundle_bytes + 64 * 1024 + 64 * self.max_files


DEFAULT_LIMITS = Limits()
