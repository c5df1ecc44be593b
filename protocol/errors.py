"""One exception type with stable, documented error codes.

Every rejection in the protocol package is a :class:`ProtocolError` whose ``code`` is
one of :data:`ERROR_CODES`. Codes are part of the wire contract (the conformance
vectors and the ``wb sync verify --json`` output use them) and never change meaning.
``docs/protocol.md`` lists each code; ``tests/protocol/test_errors.py`` checks that.
"""

from __future__ import annotations

# Code -> one-line meaning. The order follows the verification order.
ERROR_DESCRIPTIONS: dict[str, str] = {
    # containers
    "malformed_cbor": "CBOR envelope is not well-formed (truncated, indefinite length, tag...)",
    "trailing_bytes": "bytes follow the CBOR envelope",
    "duplicate_key": "a CBOR map repeats a key",
    "unknown_field": "the CBOR envelope or frame has a key this version does not define",
    "wrong_type": "a CBOR value has the wrong type",
    "unsupported_container_version": "CBOR envelope `v` is not 2",
    "malformed_archive": "tar.gz is not a readable gzip-compressed tar archive",
    "unsafe_archive_member": "tar member is a link, device, FIFO or other non-regular file",
    "unknown_container": "input is neither a bundle directory, CBOR envelope nor tar.gz",
    "not_found": "the bundle path does not exist or cannot be read",
    # limits
    "bundle_too_large": "bundle exceeds max_bundle_bytes, its container max_container_bytes, "
    "or its decompressed archive max_archive_bytes or the compression ratio",
    "too_many_files": "bundle holds more files than max_files",
    "record_too_large": "a file exceeds max_record_bytes (bundle.sig: max_signature_bytes, "
    "a key file: max_key_file_bytes)",
    "manifest_too_large": "manifest.sync.txt exceeds max_manifest_bytes",
    "header_too_large": "a header block exceeds max_header_bytes or max_headers",
    # paths
    "unsafe_path": "absolute path, `..`, `.`, empty segment, backslash or control character",
    "invalid_path": "path does not match the allowed bundle path pattern",
    "duplicate_path": "the same path appears twice (archive, manifest or files)",
    "missing_manifest": "manifest.sync.txt is absent",
    # signature
    "missing_signature": "bundle.sig is absent",
    "malformed_signature": "bundle.sig is not a well-formed header block",
    "missing_signature_header": "bundle.sig lacks a required header",
    "unsupported_signature_version": "Signature-Version is not 1",
    "bad_base64": "Public-Key or Signature is not valid base64",
    "bad_public_key": "(no longer produced by verification: a key or signature of the "
    "wrong length is `bad_signature`)",
    "key_id_mismatch": "Key-ID is not the key id of Public-Key (or .pub file disagrees)",
    "manifest_digest_mismatch": "Manifest-Digest is not the SHA-256 of manifest.sync.txt",
    "bad_signature": "Ed25519 signature does not verify over the manifest bytes",
    # manifest
    "malformed_manifest": "manifest.sync.txt does not follow the manifest grammar",
    "unsupported_manifest_version": "Manifest-Version is not 2 (v1 has no header block)",
    # trust
    "untrusted_key": "signature is valid but the key is not trusted for the origin",
    # files
    "unlisted_file": "a file is present but not listed in the manifest",
    "digest_mismatch": "a file's SHA-256 differs from its manifest line",
    "malformed_key_file": "a public_keys/<key-id>.pub file is malformed",
    # records
    "not_utf8": "a text file is not valid UTF-8",
    "nul_byte": "a text file contains a NUL byte",
    "bad_line_ending": "a text file contains CR (only LF line endings are allowed)",
    "malformed_record": "record lacks the header/body separator or has a malformed line",
    "duplicate_header": "a header name appears twice",
    "unknown_header": "a header is not defined for the entity",
    "missing_header": "a required header is absent",
    "header_order": "headers are not in the entity's canonical order",
    "invalid_header_value": "a header value is empty, multi-line or fails its syntax",
    "invalid_id": "an ID is not path-safe",
    "invalid_instance": "an Instance header is not an absolute http or https URL",
    "unknown_entity": "Entity is not one of the defined entities",
    "entity_not_allowed": "entity may not appear in a bundle of this schema (e.g. invite in v2)",
    "unsupported_schema": "Schema-Version is not 1 or 2",
    "schema_mismatch": "record schema differs from the manifest version",
    "origin_mismatch": "record Origin is not the bundle origin",
    "path_mismatch": "record path does not match its Entity and ID",
    "not_public": "record Sync-Scope is not public",
    "duplicate_record": "two records share (Origin, Entity, ID)",
    "invalid_key_record": "a key record's Key-ID does not match its Public-Key",
    "malformed_schema1": "a schema-1 record cannot be mapped",
    # transparency log
    "tlog_invalid": "a log proof, checkpoint, signed note or tile does not verify",
    # building
    "invalid_argument": "a builder argument is invalid (seed length, sequence, kind...)",
}

ERROR_CODES: tuple[str, ...] = tuple(ERROR_DESCRIPTIONS)


class ProtocolError(Exception):
    """A bundle, record or argument was rejected.

    ``code`` is a stable snake_case identifier from :data:`ERROR_CODES`; ``message``
    is for humans; ``path`` names the offending file inside the bundle, if any.
    """

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        if code not in ERROR_DESCRIPTIONS:
            raise ValueError(f"unknown protocol error code {code!r}")
        self.code = code
        self.message = message
        self.path = path
        #: the id of the check that failed (protocol.checks), when raised through it
        self.check: str | None = None
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f" [{self.path}]" if self.path else ""
        return f"{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, path={self.path!r})"

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "path": self.path}
