"""``wb conformance node``: a black-box run against a live node's inbox and public endpoints.

The token is the *inbox token* a hub presents when it pushes (`wb sync peers add hub
--hub URL --inbox-token T`). Bundles are signed here with a fresh key, so the node
parks the first one as pending (202) unless ``--approve-cmd`` trusts the key, after
which the applied/duplicate/equivocation answers are checked too.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from conformance_tests.bundles import Identity, Vector, invalid_vectors, vector_body
from conformance_tests.hub_runner import SCOPE_VECTORS, TRUST_VECTORS, Answer
from conformance_tests.report import Report, expect
from protocol.bundle import Bundle
from protocol.containers import CBOR_MEDIA_TYPE, to_cbor

Approver = Callable[[str, str], Awaitable[None]]  # (digest, key_id)


@dataclass
class NodeTarget:
    url: str
    token: str
    approve_cmd: str | None = None
    approve: Approver | None = None    # for embedding (tests); the CLI uses approve_cmd
    timeout: float = 15.0


class NodeRunner:
    def __init__(self, target: NodeTarget, report: Report, session: aiohttp.ClientSession):
        self.t = target
        self.base = target.url.rstrip("/")
        self.report = report
        self.http = session
        self.a = Identity()
        self.trusted = False

    async def request(self, method: str, path: str, *, token: str | None = None,
                      data: bytes | None = None, ctype: str | None = None) -> Answer:
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        if ctype:
            h["Content-Type"] = ctype
        async with self.http.request(method, self.base + path, data=data, headers=h,
                                     allow_redirects=False) as r:
            raw = await r.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            return Answer(r.status, body, raw)

    async def post(self, data: bytes, token: str | None = "") -> Answer:
        return await self.request("POST", "/sync/inbox", data=data, ctype=CBOR_MEDIA_TYPE,
                                  token=self.t.token if token == "" else token)

    async def run(self) -> None:
        if not await self.report.run("node.healthz", self.c_healthz):
            return
        await self.report.run("node.csrf", self.c_csrf)
        await self.report.run("node.openapi", self.c_openapi)
        await self.report.run("inbox.missing_token", self.c_missing_token)
        await self.report.run("inbox.unknown_token", self.c_unknown_token)
        if not await self.report.run("inbox.valid", self.c_valid):
            return
        await self.report.run("inbox.duplicate", self.c_duplicate)
        await self.report.run("inbox.garbage", self.c_garbage)
        await self.report.run("inbox.forged_file", self.c_forged)
        await self.report.run("inbox.equivocation", self.c_equivocation)
        for v in invalid_vectors(default_limits_only=True):
            if vector_body(v, prefer="cbor") is not None:
                await self.report.run(f"inbox.invalid.{v.name}", lambda v=v: self.c_invalid(v))

    async def c_healthz(self) -> None:
        ans = await self.request("GET", "/healthz")
        expect(ans.status == 200, f"/healthz: {ans.brief()}")

    async def c_csrf(self) -> None:
        ans = await self.request("GET", "/api/csrf")
        expect(ans.status == 200 and isinstance(ans.body, dict)
               and isinstance(ans.body.get("csrf_token"), str) and ans.body["csrf_token"],
               f"/api/csrf must give a csrf_token: {ans.brief()}")

    async def c_openapi(self) -> str:
        ans = await self.request("GET", "/openapi.json")
        expect(ans.status == 200 and isinstance(ans.body, dict), f"/openapi.json: {ans.brief()}")
        expect(str(ans.body.get("openapi", "")).startswith("3."), "not an OpenAPI 3 document")
        expect("post" in ans.body.get("paths", {}).get("/sync/inbox", {}),
               "POST /sync/inbox is not documented")
        return f"{len(ans.body['paths'])} paths"

    async def c_missing_token(self) -> None:
        ans = await self.post(to_cbor(self._fresh()), token=None)
        expect(ans.status == 401, f"want 401 without a token: {ans.brief()}")

    async def c_unknown_token(self) -> None:
        ans = await self.post(to_cbor(self._fresh()), token="wb-conf-" + uuid.uuid4().hex)
        expect(ans.status == 401, f"want 401 for an unknown token: {ans.brief()}")

    def _fresh(self) -> Bundle:
        return self.a.bundle([self.a.request("never stored")], advance=False)

    async def _approve(self, digest: str) -> bool:
        if self.t.approve is not None:
            await self.t.approve(digest, self.a.origin)
            return True
        if self.t.approve_cmd:
            cmd = [a.replace("{digest}", digest).replace("{key_id}", self.a.origin)
                   for a in shlex.split(self.t.approve_cmd)]
            proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True,
                                           text=True, timeout=120)
            expect(proc.returncode == 0, f"approve command failed: {proc.stderr[-300:]}")
            return True
        return False

    async def c_valid(self) -> str:
        req = self.a.request("Conformance: inbox", "hello node")
        self.first = b = self.a.bundle([req, self.a.comment(req, "and a comment")])
        ans = await self.post(to_cbor(b))
        expect(ans.status in (201, 202), f"valid bundle: want 201 or 202: {ans.brief()}")
        expect((ans.body or {}).get("digest") == b.digest, f"answer digest: {ans.brief()}")
        if ans.status == 202 and await self._approve(b.digest):
            self.trusted = True
            ans = await self.post(to_cbor(b))
            expect(ans.status == 200, f"after approval the bundle is a duplicate: {ans.brief()}")
            return "pending (202), approved, then applied"
        self.trusted = ans.status == 201
        return "applied (201)" if self.trusted else "pending (202): key awaits the operator"

    async def c_duplicate(self) -> None:
        for _ in range(2):
            ans = await self.post(to_cbor(self.first))
            want = 200 if self.trusted else 202
            expect(ans.status == want and ans.body.get("digest") == self.first.digest,
                   f"re-delivery must be {want} with the same digest: {ans.brief()}")

    async def c_garbage(self) -> str:
        ans = await self.post(b"\xff\x00 not a bundle")
        expect(400 <= ans.status < 500 and ans.code, f"want 4xx with a code: {ans.brief()}")
        return f"{ans.status} {ans.code}"

    async def c_forged(self) -> None:
        b = self.a.bundle([self.a.request("forged")], advance=False)
        forged = Bundle(b.manifest, b.sig, {**b.files, "requests/EXTRA.sync.txt": b"x"}, b.keys)
        ans = await self.post(to_cbor(forged))
        expect(ans.status == 400 and ans.code == "unlisted_file",
               f"want 400 unlisted_file: {ans.brief()}")

    async def c_equivocation(self) -> str:
        other = self.a.bundle([self.a.request("Conformance: equivocating")], sequence=1,
                              advance=False)
        ans = await self.post(to_cbor(other))
        if not self.trusted:
            expect(ans.status == 202, f"unknown key: want 202 pending: {ans.brief()}")
            return "key not trusted: parked (pass --approve-cmd to check 409)"
        expect(ans.status == 409 and ans.code == "equivocation",
               f"want 409 equivocation: {ans.brief()}")
        return "409 equivocation"

    async def c_invalid(self, v: Vector) -> str:
        body = vector_body(v, prefer="cbor")
        assert body is not None
        ans = await self.post(body[0])
        if v.code in TRUST_VECTORS and ans.status == 202:
            return "parked (202 pending)"
        if v.code in SCOPE_VECTORS and ans.status == 202:
            return "parked (202 pending); private files are refused on approval"
        expect(400 <= ans.status < 500, f"want 4xx {v.code}: {ans.brief()}")
        expect(ans.code == v.code, f"want code {v.code}, got {ans.code!r} ({ans.status})")
        return f"{ans.status} {ans.code}"


async def run_node(target: NodeTarget, report: Report) -> Report:
    timeout = aiohttp.ClientTimeout(total=max(60.0, target.timeout * 4))
    async with aiohttp.ClientSession(timeout=timeout,
                                     headers={"User-Agent": "WhiteBalloon-conformance"}) as s:
        await NodeRunner(target, report, s).run()
    return report

