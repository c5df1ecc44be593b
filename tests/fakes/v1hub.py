"""A fake of the original implementation's v1 hub, built only from its answer table
(docs/federation.md, conformance_tests/v1wire.py), never from its code.

It keeps one bundle per peer, like the original, and answers:

- push (multipart ``bundle`` + bearer + ``X-WB-Public-Key``): 401 bad token, 404 unknown
  peer (unless ``auto_register``), 422 FastAPI-style when the form field or the header is
  missing, 400 ``{"detail": text}`` for an unsafe or invalid archive or a bad signature,
  400 ``peer_key_mismatch`` + ``pending_id`` (an integer, as the original's queue row) for
  a key the peer has not had approved, 202 with the original's fields when stored;
- pull: the stored bundle as the original serves it (``hub_metadata.json``, directory
  entries, every file twice), ``X-WB-Auto-Registered``; 404 when none;
- status: the original's shape.

``lax`` names archive checks this hub skips, to test that a conformance run notices:
``"symlink"`` (symbolic links are dropped instead of refused) and ``"duplicate"`` (a
repeated name keeps its first copy, whatever the other's bytes).
``script(...)`` queues canned answers for the next requests to one route, to test how a
client reacts. ``POST /_fake/approve/{pending_id}`` approves, like the admin would.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import io
import tarfile
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from conformance_tests import v1wire as W
from protocol.bundle import Bundle, bundle_from_files
from protocol.containers import from_targz
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS
from protocol.signature import key_id
from protocol.verify import verify_bundle


@dataclass
class Stored:
    bundle: Bundle
    signed_at: str
    stored_at: str
    auto_registered: bool


@dataclass
class Pending:
    peer: str
    public_key: bytes
    bundle: Bundle
    signed_at: str


@dataclass
class FakeV1Hub:
    tokens: dict[str, str]                                  # peer -> bearer token
    keys: dict[str, set[bytes]] = field(default_factory=dict)  # approved keys per peer
    auto_register: bool = False
    lax: frozenset[str] = frozenset()
    bundles: dict[str, Stored] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    auto: set[str] = field(default_factory=set)
    seen: list[dict[str, Any]] = field(default_factory=list)  # every request, for asserts
    scripted: dict[str, deque[tuple[int, Any]]] = field(default_factory=dict)
    archives: dict[str, bytes] = field(default_factory=dict)  # exact download bytes
    next_pending: int = 1

    # ----------------------------------------------------------------- control

    def script(self, route: str, status: int, body: Any) -> None:
        """Answer the next ``route`` request ("push" | "pull" | "status") with this."""
        self.scripted.setdefault(route, deque()).append((status, body))

    def serve_archive(self, peer: str, archive: bytes) -> None:
        """Store ``archive`` (e.g. the captured download) and serve exactly these bytes."""
        bundle = from_targz(archive, DEFAULT_LIMITS, original_hub=True)
        v = verify_bundle(bundle, trust=lambda o, k: True)
        self.bundles[peer] = Stored(bundle, v.signed_at, _now(), False)
        self.archives[peer] = archive

    def approve(self, pending_id: str) -> None:
        p = self.pending.pop(pending_id)
        self.keys.setdefault(p.peer, set()).add(p.public_key)
        self.archives.pop(p.peer, None)
        self.bundles[p.peer] = Stored(p.bundle, p.signed_at, _now(), p.peer in self.auto)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/v1/sync/{peer}/bundle", self.push)
        app.router.add_get("/api/v1/sync/{peer}/bundle", self.pull)
        app.router.add_get("/api/v1/sync/{peer}/status", self.status)
        app.router.add_post("/_fake/approve/{pending_id}", self.approve_route)
        return app

    # ----------------------------------------------------------------- plumbing

    def _canned(self, route: str) -> web.Response | None:
        queue = self.scripted.get(route)
        if queue:
            status, body = queue.popleft()
            return web.json_response(body, status=status)
        return None

    def _auth(self, request: web.Request) -> tuple[str, bool]:
        name = request.match_info["peer"]
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _detail(401, "Missing bearer token")
        if name not in self.tokens:
            if not self.auto_register or W.PUBLIC_KEY_HEADER not in request.headers:
                raise _detail(404, "Unknown peer")
            self.tokens[name] = token
            self.auto.add(name)
            return name, True
        if self.tokens[name] != token:
            raise _detail(401, "Invalid token")
        return name, False

    # ----------------------------------------------------------------- routes

    async def push(self, request: web.Request) -> web.Response:
        form_fields: list[str] = []
        record = {"route": "push", "peer": request.match_info["peer"],
                  "content_type": request.content_type, "headers": dict(request.headers),
                  "fields": form_fields}
        self.seen.append(record)
        canned = self._canned("push")
        if canned is not None:
            return canned
        archive = None
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                form_fields.append(part.name or "")
                data = await part.read()  # type: ignore[union-attr]
                if part.name == W.FIELD:
                    archive = bytes(data)
        if archive is None:
            return _missing("body", W.FIELD)
        raw_key = request.headers.get(W.PUBLIC_KEY_HEADER)
        if raw_key is None:
            return _missing("header", W.PUBLIC_KEY_HEADER.lower())
        try:
            name, auto = self._auth(request)
        except Refused as exc:
            return exc.answer
        try:
            public_key = base64.b64decode(raw_key, validate=True)
        except (binascii.Error, ValueError):
            return web.json_response({"detail": "Invalid public key"}, status=400)
        try:
            bundle = self._read(archive)
            v = verify_bundle(bundle, trust=lambda o, k: True)
        except ProtocolError as exc:
            return web.json_response({"detail": f"Invalid bundle: {exc.message}"}, status=400)
        if v.public_key != public_key:
            return web.json_response({"detail": "Public key does not match the signature"},
                                     status=400)
        if public_key not in self.keys.get(name, set()):
            pending_id = str(self.next_pending)
            self.next_pending += 1
            self.pending[pending_id] = Pending(name, public_key, bundle, v.signed_at)
            return web.json_response({"detail": {
                "error": "peer_key_mismatch",
                "message": f"Key {key_id(public_key)} is not approved for peer {name}",
                "peer": name, "pending_id": int(pending_id)}}, status=400)
        self.bundles[name] = Stored(bundle, v.signed_at, _now(), auto)
        self.archives.pop(name, None)
        files = bundle.to_files()
        return web.json_response({
            "peer": name, "manifest_digest": v.digest, "signed_at": v.signed_at,
            "stored_bytes": sum(len(d) for d in files.values()), "stored_files": len(files),
            "auto_registered": auto}, status=202)

    def _read(self, archive: bytes) -> Bundle:
        if not self.lax:
            return from_targz(archive, DEFAULT_LIMITS, original_hub=True)
        files: dict[str, bytes] = {}
        try:
            raw = gzip.decompress(archive)
            lim = DEFAULT_LIMITS  # lax about links and duplicates only, not about bombs
            if len(raw) > lim.ratio_check_after and len(raw) > lim.max_compression_ratio * len(
                    archive):
                raise ProtocolError("bundle_too_large", "compression ratio too high")
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
                for member in tar:
                    name = member.name.removeprefix("./")
                    if member.isdir():
                        continue
                    if member.issym() and "symlink" in self.lax:
                        continue  # lax: dropped instead of refused
                    if not member.isfile():
                        raise ProtocolError("unsafe_archive_member", "links are refused")
                    handle = tar.extractfile(member)
                    data = handle.read() if handle else b""
                    if name in files:
                        if files[name] != data and "duplicate" not in self.lax:
                            raise ProtocolError("duplicate_path", "name appears twice")
                        continue  # lax: the first copy wins, the other is ignored
                    files[name] = data
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise ProtocolError("malformed_archive", str(exc)) from None
        files.pop(W.HUB_METADATA, None)
        return bundle_from_files(files)

    async def pull(self, request: web.Request) -> web.Response:
        self.seen.append({"route": "pull", "peer": request.match_info["peer"],
                          "headers": dict(request.headers)})
        canned = self._canned("pull")
        if canned is not None:
            return canned
        try:
            name, auto = self._auth(request)
        except Refused as exc:
            return exc.answer
        stored = self.bundles.get(name)
        if stored is None:
            return web.json_response({"detail": "No bundle stored for this peer"}, status=404)
        meta = {"peer": name, "manifest_digest": stored.bundle.digest,
                "signed_at": stored.signed_at, "stored_at": stored.stored_at}
        body = self.archives.get(name) or W.original_bundle_targz(stored.bundle, meta)
        return web.Response(
            body=body, content_type="application/gzip",
            headers={"Content-Disposition": f"attachment; filename={name}_public_sync.tar.gz",
                     W.AUTO_HEADER: "true" if (auto or stored.auto_registered) else "false"})

    async def status(self, request: web.Request) -> web.Response:
        self.seen.append({"route": "status", "peer": request.match_info["peer"],
                          "headers": dict(request.headers)})
        canned = self._canned("status")
        if canned is not None:
            return canned
        try:
            name, _ = self._auth(request)
        except Refused as exc:
            return exc.answer
        stored = self.bundles.get(name)
        files = stored.bundle.to_files() if stored else {}
        return web.json_response({
            "peer": name, "has_bundle": stored is not None,
            "metadata": None if stored is None else {
                "peer": name, "manifest_digest": stored.bundle.digest,
                "signed_at": stored.signed_at, "stored_at": stored.stored_at},
            "file_count": len(files), "total_bytes": sum(len(d) for d in files.values())})

    async def approve_route(self, request: web.Request) -> web.Response:
        pending_id = request.match_info["pending_id"]
        if pending_id not in self.pending:
            return web.json_response({"detail": "Unknown pending id"}, status=404)
        self.approve(pending_id)
        return web.json_response({"approved": pending_id})


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Refused(Exception):
    def __init__(self, answer: web.Response) -> None:
        self.answer = answer


def _detail(status: int, text: str) -> Refused:
    return Refused(web.json_response({"detail": text}, status=status))


def _missing(where: str, name: str) -> web.Response:
    return web.json_response({"detail": [{"type": "missing", "loc": [where, name],
                                          "msg": "Field required", "input": None}]},
                             status=422)
