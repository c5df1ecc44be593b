"""The original implementation's v1 hub API on the wire, as data and small helpers.

Facts (from its client's upload and its hub's download, captured; see
docs/federation.md "Mixing with original (v1) nodes and hubs"):

- push: ``POST /api/v1/sync/<peer>/bundle``, ``multipart/form-data`` with one file field
  ``bundle`` (filename ``bundle.tar.gz``, type ``application/gzip``), headers
  ``Authorization: Bearer <token>`` and ``X-WB-Public-Key: <base64 key>``;
- its tar.gz has a directory entry per folder and then every file a second time with
  identical bytes; a hub download also carries ``hub_metadata.json`` (not in the manifest);
- accepted: ``202 {"peer", "manifest_digest", "signed_at", "stored_bytes",
  "stored_files", "auto_registered"}``; key not trusted yet: ``400 {"detail": {"error":
  "peer_key_mismatch", "message", "peer", "pending_id"}}``; other errors ``{"detail":
  "<text>"}`` (401 token, 404 unknown peer or no bundle, 400 bad archive, 422 a missing
  form field or header).

Used by the conformance runner, by the node's v1 client tests and by the fake v1 hub
in the tests; pure apart from building bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any

from protocol.bundle import Bundle

FIELD = "bundle"
FILENAME = "bundle.tar.gz"
PUBLIC_KEY_HEADER = "X-WB-Public-Key"
AUTO_HEADER = "X-WB-Auto-Registered"
ACCEPTED_FIELDS = ("peer", "manifest_digest", "signed_at", "stored_bytes", "stored_files",
                   "auto_registered")
STATUS_FIELDS = ("peer", "has_bundle", "metadata", "file_count", "total_bytes")
METADATA_FIELDS = ("peer", "manifest_digest", "signed_at", "stored_at")
HUB_METADATA = "hub_metadata.json"


def original_targz(files: dict[str, bytes], metadata: dict[str, Any] | None = None,
                   *, mtime: int = 1764635695) -> bytes:
    """A tar.gz shaped like the original's: ``hub_metadata.json`` first (when given), a
    directory entry before each folder's files, then every file of a folder once more
    (identical bytes)."""
    raw = io.BytesIO()

    def add(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
        info = tarfile.TarInfo(name)
        info.mtime = mtime
        info.uname = info.gname = "root"
        if data is None:
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
            return
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        if metadata is not None:
            add(tar, HUB_METADATA, json.dumps(metadata, indent=2).encode())
        folders: dict[str, list[str]] = {}
        for path in sorted(files):
            folder = path.rsplit("/", 1)[0] if "/" in path else ""
            folders.setdefault(folder, []).append(path)
        for folder, paths in folders.items():
            if folder:
                add(tar, folder + "/", None)
            for path in paths:
                add(tar, path, files[path])
        for folder, paths in folders.items():
            if folder:
                for path in paths:
                    add(tar, path, files[path])
    return gzip.compress(raw.getvalue(), mtime=0)


def original_bundle_targz(bundle: Bundle, metadata: dict[str, Any] | None = None) -> bytes:
    return original_targz(bundle.to_files(), metadata)


def multipart_body(archive: bytes, boundary: str = "wb-conformance-boundary",
                   field: str = FIELD) -> tuple[bytes, str]:
    """``(body, content_type)`` of the original client's upload form."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{FILENAME}\"\r\nContent-Type: application/gzip\r\n\r\n").encode()
    body = head + archive + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass(frozen=True)
class V1Answer:
    """A v1 answer read in either shape: the original's ``{"detail": ...}`` or ours
    (``{"error": {"code", "message"}}``, which our v1 routes also add)."""

    status: int
    code: str | None       # peer_key_mismatch, unauthorized, ... (None on success)
    message: str
    pending_id: str | None
    body: Any

    @property
    def parked(self) -> bool:
        """The hub holds the bundle until its admin trusts the key."""
        if self.code == "peer_key_mismatch":
            return True
        return (self.status == 202 and isinstance(self.body, dict)
                and self.body.get("status") == "pending")


def read_answer(status: int, raw: bytes) -> V1Answer:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    code: str | None = None
    message = ""
    pending: str | None = None
    if isinstance(body, dict):
        detail = body.get("detail")
        err = body.get("error")
        if isinstance(detail, dict):
            code = str(detail.get("error") or detail.get("code") or "") or None
            message = str(detail.get("message", ""))
            if detail.get("pending_id") is not None:
                pending = str(detail["pending_id"])
        elif isinstance(detail, list):
            code = "validation_error"
            message = "; ".join(
                f"{'.'.join(str(x) for x in d.get('loc', []))}: {d.get('msg', '')}"
                for d in detail if isinstance(d, dict))
        elif isinstance(detail, str):
            message = detail
        if isinstance(err, dict):
            code = code or err.get("code")
            message = message or str(err.get("message", ""))
        elif isinstance(err, str) and code is None:
            code = err
        if body.get("status") == "pending":
            pending = pending or body.get("key_id")
    if code is None and status >= 400:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                413: "bundle_too_large", 422: "validation_error"}.get(status, "hub_error")
    if not message:
        message = raw[:200].decode("utf-8", "replace")
    return V1Answer(status, code, message, pending, body)
