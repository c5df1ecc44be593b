"""``wb conformance hub``: a black-box run against a live hub over HTTP.

Only the public protocol is used (docs/protocol.md, docs/conformance.md): bundles are
built and signed here with fresh keys (or ``--key-file``), pushed to ``POST
/api/v2/bundles`` (profile ``hub``) or ``/api/v1/sync/<peer>/bundle`` as the original
client does (profile ``hub-v1``), and read back through the hub's own APIs.

Every check is declared in a table (:func:`checks`) with the checks it needs, the options
it needs and what it writes to the hub under test; every check appears in every report:
passed, failed, or skipped with the reason.

A fresh key is unknown to the hub, which parks its first bundle (``202 pending``, or the
original's ``400 peer_key_mismatch`` with a ``pending_id``) until the operator trusts it.
The runner approves it with ``--approve-cmd`` (any hub: a command given ``{key_id}``,
``{origin}``, ``{pending_id}`` and ``{peer}``) or ``--admin-token`` (a WhiteBalloon hub's
/admin form); with ``--key-file`` it signs with a key the hub already trusts for the peer.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import gzip
import io
import json
import re
import shlex
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from conformance_tests import v1wire as W
from conformance_tests.bundles import Identity, Vector, invalid_vectors, vector_body
from conformance_tests.report import CheckFailed, Report, expect
from conformance_tests.tlog_runner import TlogRunner
from protocol.bundle import Bundle
from protocol.containers import CBOR_MEDIA_TYPE, decode_frame, from_cbor, from_targz, to_targz
from protocol.signature import parse_signature
from protocol.verify import verify_bundle

#: Vectors a hub may answer differently from a plain verifier, by design of the relay:
#: an authentic bundle signed by an unknown key may be parked for the operator (202),
#: and non-public files may be dropped before verification (they become withheld).
TRUST_VECTORS = frozenset({"untrusted_key"})
SCOPE_VECTORS = frozenset({"not_public"})

#: HubTarget fields a check may need, and the option that sets each
OPTION_FLAGS = {"subscriber_token": "--subscriber-token", "peer": "--peer",
                "other_peer": "--other-peer and --other-token"}


@dataclass
class HubTarget:
    url: str
    token: str
    subscriber_token: str | None = None
    admin_token: str | None = None
    approve_cmd: str | None = None
    peer: str | None = None          # v1: the peer name the token belongs to
    timeout: float = 15.0
    key_seed: bytes | None = None    # --key-file: a key the hub already trusts
    other_peer: str | None = None    # v1: a second real peer and its token
    other_token: str | None = None


@dataclass(frozen=True)
class CheckDef:
    """One line of the report: what runs, what it needs, what it leaves on the hub."""

    name: str
    method: str
    needs: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    writes: str = "nothing"
    vector: Vector | None = None


@dataclass
class Answer:
    status: int
    body: Any
    raw: bytes

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None

    def brief(self) -> str:
        return f"{self.status} {self.raw[:200].decode('utf-8', 'replace')}"


class HubRunner:
    def __init__(self, target: HubTarget, report: Report, session: aiohttp.ClientSession):
        self.t = target
        self.base = target.url.rstrip("/")
        self.report = report
        self.http = session
        self.a = Identity(seed=target.key_seed) if target.key_seed else Identity()
        if target.key_seed:
            # a registered key keeps its origin between runs: start the chain past every
            # earlier run (milliseconds since 1970) instead of at 1, an equivocation
            self.a.sequence = int(time.time() * 1000)
            # and new record ids: a tombstone of an earlier run would hide a reused one
            self.a.counter = self.a.sequence * 1000
        self.marker = f"PRIVATE{uuid.uuid4().hex}"  # only ever in private records
        self.pushed: dict[str, int] = {}   # digest -> hub_seq of our accepted bundles
        self._tlog_runner: TlogRunner | None = None
        self.start_head = 0
        self.approved: set[str] = set()

    # ----------------------------------------------------------------- plumbing

    def _auth(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def request(self, method: str, path: str, *, token: str | None = None,
                      data: bytes | None = None, ctype: str | None = None,
                      json_body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        h = {"Accept": "application/json", **self._auth(token), **(headers or {})}
        if ctype:
            h["Content-Type"] = ctype
        async with self.http.request(method, self.base + path, data=data, json=json_body,
                                     headers=h, allow_redirects=False) as r:
            raw = await r.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            return Answer(r.status, body, raw)

    async def push(self, data: bytes, ctype: str = CBOR_MEDIA_TYPE,
                   token: str | None = None) -> Answer:
        return await self.request("POST", "/api/v2/bundles", token=token or self.t.token,
                                  data=data, ctype=ctype)

    async def reader_get(self, path: str) -> Answer:
        """A GET as the subscriber (when given) — what a receiving node would see."""
        return await self.request("GET", path, token=self.t.subscriber_token)

    async def head(self) -> int:
        ans = await self.reader_get("/api/v2/bundles?limit=1")
        if ans.status == 410 and isinstance(ans.body, dict):
            oldest = ans.body["error"].get("oldest", 1)
            ans = await self.reader_get(f"/api/v2/bundles?limit=1&since={oldest - 1}")
        expect(ans.status == 200 and isinstance(ans.body, dict)
               and isinstance(ans.body.get("head"), int),
               f"GET /api/v2/bundles must answer 200 with an integer head: {ans.brief()}")
        return ans.body["head"]

    async def log_after(self, since: int, *, limit: int = 500,
                        origin: str | None = None) -> list[dict[str, Any]]:
        """Every entry after ``since`` up to the head, following ``next``."""
        out: list[dict[str, Any]] = []
        for _ in range(10_000):
            q = f"/api/v2/bundles?since={since}&limit={limit}"
            if origin:
                q += f"&origin={origin}"
            ans = await self.reader_get(q)
            expect(ans.status == 200, f"GET {q}: {ans.brief()}")
            page = ans.body
            out.extend(page["entries"])
            nxt = page["next"]
            expect(isinstance(nxt, int) and nxt >= since, f"next={nxt!r} went back from {since}")
            if nxt >= page["head"] or (not page["entries"] and nxt == since):
                return out
            since = nxt
        raise CheckFailed("log paging did not reach the head")

    async def approve(self, key_id: str, origin: str, pending_id: str | None = None) -> str:
        """Ask the operator's side to trust ``key_id``: --approve-cmd or --admin-token."""
        if self.t.approve_cmd:
            values = {"{key_id}": key_id, "{origin}": origin,
                      "{pending_id}": pending_id or key_id, "{peer}": self.t.peer or ""}
            cmd = []
            for arg in shlex.split(self.t.approve_cmd):
                for placeholder, value in values.items():
                    arg = arg.replace(placeholder, value)
                cmd.append(arg)
            proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True,
                                           text=True, timeout=120)
            expect(proc.returncode == 0, f"approve command failed ({proc.returncode}): "
                                         f"{(proc.stdout + proc.stderr)[-300:]}")
            return "approved with --approve-cmd"
        if self.t.admin_token:
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as admin:
                async with admin.post(self.base + "/admin/login",
                                      data={"token": self.t.admin_token},
                                      allow_redirects=False) as r:
                    expect(r.status in (302, 303), f"admin login answered {r.status}")
                async with admin.get(self.base + "/admin") as r:
                    page = await r.text()
                m = re.search(r'name="csrf_token" value="([^"]+)"', page)
                expect(m is not None, "no CSRF token on /admin")
                assert m is not None
                async with admin.post(self.base + f"/admin/keys/{key_id}/approve",
                                      data={"csrf_token": m.group(1)},
                                      allow_redirects=False) as r:
                    expect(r.status in (200, 302, 303), f"admin approve answered {r.status}")
            return "approved through /admin"
        raise CheckFailed(
            f"the hub parked the conformance key {key_id} (pending id {pending_id or key_id});"
            " rerun with --approve-cmd 'wb hub keys approve {key_id}', --admin-token TOKEN "
            "or --key-file KEY (a key registered for the peer), see docs/conformance.md")

    async def accepted(self, b: Bundle, ctype: str = CBOR_MEDIA_TYPE) -> Answer:
        """Push a bundle that must be stored; handle the first-key approval once."""
        data = to_targz(b) if ctype == "application/gzip" else self._cbor(b)
        ans = await self.push(data, ctype)
        if ans.status == 202 and self.a.origin not in self.approved:
            await self.approve(self.a.origin, self.a.origin)
            self.approved.add(self.a.origin)
            ans = await self.push(data, ctype)  # now a duplicate (or stored) answer
        expect(ans.status in (200, 201), f"valid bundle not stored: {ans.brief()}")
        body = ans.body or {}
        expect(body.get("digest") == b.digest,
               f"answer digest {body.get('digest')!r} != sha256(manifest) {b.digest}")
        expect(isinstance(body.get("hub_seq"), int), f"answer lacks hub_seq: {ans.brief()}")
        self.pushed[b.digest] = body["hub_seq"]
        return ans

    @staticmethod
    def _cbor(b: Bundle) -> bytes:
        from protocol.containers import to_cbor

        return to_cbor(b)

    def _entry_bundle(self, entry: dict[str, Any]) -> Bundle:
        return from_cbor(base64.b64decode(entry["bundle"]))

    async def run(self, name: str, fn) -> bool:  # noqa: ANN001
        return await self.report.run(name, fn)

    async def run_checks(self, defs: list[CheckDef], wanted: set[str] | None) -> None:
        """Run ``defs`` in order; report each as passed, failed or skipped (not selected,
        an option missing, or a check it needs did not pass)."""
        for d in defs:
            if wanted is not None and d.name not in wanted:
                self.report.skip(d.name, "not selected (--only/-k)")
                continue
            missing = [OPTION_FLAGS.get(o, o) for o in d.options if not getattr(self.t, o)]
            if missing:
                self.report.skip(d.name, f"needs {', '.join(missing)}")
                continue
            blocked = [(n, self.report.status_of(n)) for n in d.needs
                       if self.report.status_of(n) != "passed"]
            if blocked:
                n, st = blocked[0]
                self.report.skip(d.name, f"needs {n}, which {st or 'did not run'}")
                continue
            fn = getattr(self, d.method)
            await self.run(d.name, (lambda v=d.vector, fn=fn: fn(v)) if d.vector else fn)

    # ----------------------------------------------------------------- v2 suite


    def _tlog(self) -> TlogRunner:
        if self._tlog_runner is None:
            self._tlog_runner = TlogRunner(self.base, self.report, self.http)
        return self._tlog_runner

    async def c_tlog_key(self) -> str:
        return await self._tlog().key_check()

    async def c_tlog_checkpoint(self) -> str:
        return await self._tlog().checkpoint()

    async def c_tlog_tiles(self) -> str:
        return await self._tlog().tiles()

    async def c_tlog_inclusion(self) -> str:
        return await self._tlog().inclusion()

    async def c_tlog_consistency(self) -> str:
        return await self._tlog().consistency()

    async def c_tlog_bad_requests(self) -> str:
        return await self._tlog().bad_requests()

    async def c_reachable(self) -> str:
        self.start_head = await self.head()
        return f"head={self.start_head}"

    async def c_missing_token(self) -> None:
        b = self.a.bundle([self.a.request("unauthenticated")], advance=False)
        ans = await self.request("POST", "/api/v2/bundles", data=self._cbor(b),
                                 ctype=CBOR_MEDIA_TYPE)
        expect(ans.status == 401 and ans.code == "unauthorized",
               f"want 401 unauthorized: {ans.brief()}")

    async def c_unknown_token(self) -> None:
        b = self.a.bundle([self.a.request("unauthenticated")], advance=False)
        ans = await self.push(self._cbor(b), token="wb-conformance-" + uuid.uuid4().hex)
        expect(ans.status == 401 and ans.code == "unauthorized",
               f"want 401 unauthorized: {ans.brief()}")

    async def c_first_bundle(self) -> str:
        req = self.a.request("Conformance: first request", "hello from the suite")
        self.first_request = req
        b = self.a.bundle([req, self.a.comment(req, "first comment")])
        ans = await self.accepted(b)
        body = ans.body
        expect(body.get("origin") == self.a.origin and body.get("sequence") == self.a.sequence,
               f"answer origin/sequence wrong: {ans.brief()}")
        expect(body["hub_seq"] > self.start_head, "hub_seq did not advance past the head")
        return f"origin {self.a.origin}, hub_seq {body['hub_seq']}" + (
            " (key approved)" if self.approved else "")

    async def c_ingest_cbor(self) -> None:
        b = self.a.bundle([self.a.request("Conformance: second")])
        self.second_seq = self.a.sequence
        prev = max(self.pushed.values())
        ans = await self.accepted(b)
        expect(ans.status == 201, f"a new bundle is 201: {ans.brief()}")
        expect(ans.body["hub_seq"] > prev, "hub_seq must grow with every stored bundle")
        self.second = b

    async def c_ingest_targz(self) -> None:
        b = self.a.bundle([self.a.request("Conformance: tar.gz")])
        ans = await self.accepted(b, "application/gzip")
        expect(ans.status == 201, f"a new bundle is 201: {ans.brief()}")

    async def c_log_visible(self) -> str:
        entries = await self.log_after(self.start_head)
        ours = {e["digest"]: e for e in entries if e["digest"] in self.pushed}
        expect(set(ours) == set(self.pushed),
               f"stored bundles missing from the log: {set(self.pushed) - set(ours)}")
        for digest, e in ours.items():
            expect(e["seq"] == self.pushed[digest], f"{digest}: seq {e['seq']} != hub_seq")
            expect(e["origin"] == self.a.origin, f"{digest}: wrong origin {e['origin']}")
            v = verify_bundle(self._entry_bundle(e),
                              trust=lambda o, k: o == self.a.origin and k == o)
            expect(v.digest == digest, f"entry {e['seq']} carries another bundle")
        return f"{len(ours)} bundles verified from the log"

    async def c_idempotent(self) -> None:
        b = self.second
        before = await self.head()
        for data, ctype in ((self._cbor(b), CBOR_MEDIA_TYPE), (to_targz(b), "application/gzip")):
            ans = await self.push(data, ctype)
            expect(ans.status == 200, f"re-upload must be 200 (duplicate): {ans.brief()}")
            expect(ans.body.get("digest") == b.digest
                   and ans.body.get("hub_seq") == self.pushed[b.digest],
                   f"re-upload must answer the same digest and hub_seq: {ans.brief()}")
        expect(await self.head() == before, "a re-upload added a log entry")
        entries = await self.log_after(self.start_head)
        expect([e["digest"] for e in entries].count(b.digest) == 1, "digest logged twice")

    async def c_invalid(self, v: Vector | None) -> str:
        assert v is not None
        body = vector_body(v)
        assert body is not None
        before = await self.head()
        ans = await self.push(*body)
        if v.code in TRUST_VECTORS and ans.status == 202:
            detail = "parked (202 pending), as a hub may for an unknown key"
        elif v.code in SCOPE_VECTORS and ans.status in (200, 201, 202):
            withheld = (ans.body or {}).get("withheld")
            expect(ans.status == 202 or (withheld or 0) >= 1,
                   f"private file must be withheld: {ans.brief()}")
            detail = f"accepted with the private file withheld ({ans.status})"
        else:
            expect(400 <= ans.status < 500, f"want 4xx {v.code}, got {ans.brief()}")
            expect(ans.code == v.code, f"want code {v.code}, got {ans.code!r} ({ans.status})")
            detail = f"{ans.status} {ans.code}"
        if ans.status in (200, 201):
            entries = await self.log_after(before)
            for e in entries:
                raw = base64.b64decode(e["bundle"])
                expect(b"Sync-Scope: private" not in raw, "a private record was logged")
        else:
            expect(await self.head() == before, "a rejected bundle changed the log head")
        return detail

    async def c_media_type(self) -> None:
        b = self.a.bundle([self.a.request("wrong type")], advance=False)
        ans = await self.push(self._cbor(b), "text/plain")
        expect(ans.status == 415 and ans.code == "unsupported_media_type",
               f"want 415 unsupported_media_type: {ans.brief()}")

    async def c_private(self) -> str:
        pub = self.a.request("Conformance: public next to private")
        secret = self.a.request(f"{self.marker} title", f"{self.marker} body", scope="private")
        note = self.a.comment(pub, f"{self.marker} comment", scope="private")
        chain = (self.a.sequence, self.a.previous)
        b = self.a.bundle([pub, secret, note])
        ans = await self.push(self._cbor(b))
        if 400 <= ans.status < 500:
            expect(ans.code == "not_public", f"4xx must be not_public: {ans.brief()}")
            self.a.sequence, self.a.previous = chain  # not stored: reuse the sequence
            return "rejected with not_public"
        expect(ans.status in (200, 201), f"want 2xx or 4xx not_public: {ans.brief()}")
        expect(ans.body.get("withheld") == 2, f"2 private files must be withheld: {ans.brief()}")
        self.pushed[b.digest] = ans.body["hub_seq"]
        [entry] = [e for e in await self.log_after(self.start_head) if e["digest"] == b.digest]
        stored = self._entry_bundle(entry)
        expect(self.marker.encode() not in base64.b64decode(entry["bundle"]),
               "the logged bundle carries private bytes")
        v = verify_bundle(stored, trust=lambda o, k: True)
        expect(set(v.withheld) == {secret.path, note.path} and v.digest == b.digest,
               f"withheld={v.withheld}")
        return "stored; private files withheld, signature still verifies"

    async def c_private_index(self) -> None:
        ans = await self.reader_get(f"/api/v2/records?origin={self.a.origin}&limit=500")
        expect(ans.status == 200, ans.brief())
        expect(self.marker.encode() not in ans.raw, "/api/v2/records shows a private record")
        ids = {r["id"] for r in ans.body["records"]}
        expect(self.first_request.id in ids, "the first public request is not indexed")
        ans = await self.reader_get(f"/api/v2/records?q={self.marker}")
        expect(ans.status == 200 and ans.body["records"] == [],
               f"search finds private text: {ans.brief()}")

    async def _origin_gaps(self) -> list[list[int]]:
        ans = await self.reader_get("/api/v2/origins")
        expect(ans.status == 200, ans.brief())
        mine = [o for o in ans.body["origins"] if o["origin"] == self.a.origin]
        expect(len(mine) == 1, "our origin is missing from /api/v2/origins")
        return mine[0]["gaps"]

    async def c_gap(self) -> str:
        n = self.a.sequence
        fill = self.a.bundle([self.a.request("Conformance: gap filler")])
        later = self.a.bundle([self.a.request("Conformance: after the gap")])
        await self.accepted(later)
        gaps = await self._origin_gaps()
        expect([n + 1, n + 1] in gaps, f"gap {n + 1} not reported: {gaps}")
        await self.accepted(fill)
        gaps = await self._origin_gaps()
        expect(not any(a <= n + 1 <= b for a, b in gaps), f"filled gap still reported: {gaps}")
        return f"sequence {n + 1} reported missing, then filled"

    async def c_equivocation(self) -> None:
        before = await self.head()
        second = self.second_seq
        other = self.a.bundle([self.a.request("Conformance: equivocating")], sequence=second,
                              previous=self.a.previous, advance=False)
        expect(other.digest != self.second.digest, "test bundle must differ")
        ans = await self.push(self._cbor(other))
        expect(ans.status == 409 and ans.code == "equivocation",
               f"want 409 equivocation: {ans.brief()}")
        expect(await self.head() == before, "an equivocating bundle was logged")

    async def c_tombstone(self) -> None:
        rec = self.first_request
        await self.accepted(self.a.bundle([self.a.tombstone(rec, 2)]))
        ans = await self.reader_get(f"/api/v2/records?origin={self.a.origin}&limit=500")
        expect(rec.id not in {r["id"] for r in ans.body["records"]},
               "a tombstoned record is still listed")
        stale = self.a.bundle([rec])  # revision 1 again: must not resurrect it
        await self.accepted(stale)
        ans = await self.reader_get(f"/api/v2/records?origin={self.a.origin}&limit=500")
        expect(rec.id not in {r["id"] for r in ans.body["records"]},
               "an older revision resurrected a tombstoned record")

    async def c_tombstone_log(self) -> str:
        """Tombstones are state: after ``records.tombstone`` (the record withdrawn at
        revision 2, then its revision 1 re-sent), no entry of our origin's log, the
        earlier one included, may still carry the record's live file."""
        rec = self.first_request
        entries = await self.log_after(self.start_head, origin=self.a.origin)
        carrying = []
        for e in entries:
            data = from_cbor(base64.b64decode(e["bundle"])).files.get(rec.path)
            if data is not None and b"\nDeleted: true" not in data:
                carrying.append(e["seq"])
        expect(not carrying, f"log entries {carrying} still serve the withdrawn record")
        return f"{len(entries)} entries of our origin hold no withdrawn copy"

    async def c_paging(self) -> str:
        one = await self.log_after(self.start_head, limit=1)
        big = await self.log_after(self.start_head)
        seqs = [e["seq"] for e in one]
        expect(seqs == sorted(set(seqs)), f"pages repeat or go back: {seqs}")
        expect(seqs == [e["seq"] for e in big], "limit=1 paging differs from one big page")
        expect(set(self.pushed) <= {e["digest"] for e in one}, "paging skipped our bundles")
        return f"{len(seqs)} entries, one per page"

    async def c_origin_filter(self) -> None:
        entries = await self.log_after(self.start_head, limit=2, origin=self.a.origin)
        expect({e["origin"] for e in entries} == {self.a.origin}, "filter leaked other origins")
        expect({e["digest"] for e in entries} == set(self.pushed), "filter lost entries")

    async def c_at_head(self) -> None:
        head = await self.head()
        ans = await self.reader_get(f"/api/v2/bundles?since={head}")
        expect(ans.status == 200 and ans.body["entries"] == [] and ans.body["next"] == head,
               f"since=head must be an empty page with next=head: {ans.brief()}")

    async def c_future(self) -> None:
        head = await self.head()
        ans = await self.reader_get(f"/api/v2/bundles?since={head + 1000}")
        expect(ans.status == 400 and ans.code == "future_cursor",
               f"want 400 future_cursor: {ans.brief()}")

    async def c_malformed_cursor(self) -> None:
        for bad in ("-1", "abc", "1.5"):
            ans = await self.reader_get(f"/api/v2/bundles?since={bad}")
            expect(ans.status == 400 and ans.code == "invalid_cursor",
                   f"since={bad}: want 400 invalid_cursor: {ans.brief()}")

    async def c_outdated(self) -> str:
        ans = await self.reader_get("/api/v2/bundles?since=0&limit=1")
        if ans.status == 410:
            expect(ans.code == "outdated_cursor", f"410 must be outdated_cursor: {ans.brief()}")
            return "log is pruned: since=0 is 410 outdated_cursor"
        expect(ans.status == 200, f"since=0: {ans.brief()}")
        return "nothing pruned: since=0 is served"

    # ----------------------------------------------------------------- stream

    def _ws_url(self, query: str) -> str:
        return self.base + "/api/v2/stream" + query

    async def _frames(self, ws: aiohttp.ClientWebSocketResponse, until_seq: int,
                      private_check: bool = True) -> list[Any]:
        frames = []
        while True:
            msg = await ws.receive(timeout=self.t.timeout)
            expect(msg.type == aiohttp.WSMsgType.BINARY, f"unexpected WebSocket message {msg}")
            if private_check:
                expect(self.marker.encode() not in msg.data, "a stream frame carries private data")
            f = decode_frame(msg.data)
            frames.append(f)
            if f.op == "error" or f.seq >= until_seq:
                return frames

    async def _open(self, query: str) -> aiohttp.ClientWebSocketResponse:
        return await self.http.ws_connect(self._ws_url(query),
                                          timeout=aiohttp.ClientWSTimeout(ws_close=self.t.timeout),
                                          headers=self._auth(self.t.subscriber_token))

    async def c_stream_replay(self) -> str:
        head = await self.head()
        log = await self.log_after(self.start_head)
        async with await self._open(f"?since={self.start_head}") as ws:
            info = decode_frame((await ws.receive(timeout=self.t.timeout)).data)
            expect(info.op == "info" and info.seq == self.start_head,
                   f"first frame must be info with seq={self.start_head}: {info}")
            frames = await self._frames(ws, head) if head > self.start_head else []
        got = [(f.seq, f.digest) for f in frames if f.op == "bundle"]
        want = [(e["seq"], e["digest"]) for e in log if e["seq"] <= head]
        expect(got == want, f"stream replay differs from the log: {got[:5]} vs {want[:5]}")
        for f in frames:
            expect(f.bundle is not None and f.bundle.digest == f.digest,
                   f"frame {f.seq} carries another bundle")
        return f"{len(got)} frames equal the log"

    async def c_stream_resume(self) -> None:
        log = await self.log_after(self.start_head)
        expect(len(log) >= 3, "need three log entries")
        mid = log[1]["seq"]
        async with await self._open(f"?since={mid}") as ws:
            info = decode_frame((await ws.receive(timeout=self.t.timeout)).data)
            expect(info.op == "info" and info.seq == mid, f"info frame seq != {mid}: {info}")
            frames = await self._frames(ws, log[2]["seq"])
        expect(frames[0].op == "bundle" and frames[0].seq == log[2]["seq"]
               and frames[0].digest == log[2]["digest"],
               f"resume from {mid} must start with entry {log[2]['seq']}: {frames[0]}")

    async def c_stream_live(self) -> str:
        head = await self.head()
        async with await self._open(f"?since={head}") as ws:
            info = decode_frame((await ws.receive(timeout=self.t.timeout)).data)
            expect(info.op == "info" and info.seq == head, f"info frame: {info}")
            b = self.a.bundle([self.a.request("Conformance: live")])
            ans = await self.accepted(b)
            frames = await self._frames(ws, ans.body["hub_seq"])
        bundles = [f for f in frames if f.op == "bundle"]
        expect(bundles and bundles[-1].digest == b.digest
               and bundles[-1].seq == ans.body["hub_seq"],
               f"live frame missing: {[(f.op, f.seq) for f in frames]}")
        seqs = [f.seq for f in bundles]
        expect(seqs == sorted(set(seqs)) and seqs[0] > head, f"live frames {seqs}")
        return f"live frame seq {ans.body['hub_seq']}"

    async def c_stream_future(self) -> None:
        head = await self.head()
        try:
            ws = await self._open(f"?since={head + 1000}")
        except aiohttp.WSServerHandshakeError as exc:
            expect(exc.status == 400, f"handshake refused with {exc.status}, want 400")
            return
        async with ws:
            msg = await ws.receive(timeout=self.t.timeout)
            if msg.type == aiohttp.WSMsgType.BINARY:
                f = decode_frame(msg.data)
                expect(f.op == "error" and f.code == "future_cursor",
                       f"want an error frame future_cursor: {f}")
            else:
                raise CheckFailed(f"want an error frame future_cursor, got {msg.type}")

    async def c_private_never_forwarded(self) -> str:
        entries = await self.log_after(self.start_head)
        for e in entries:
            expect(self.marker.encode() not in base64.b64decode(e["bundle"]),
                   f"log entry {e['seq']} carries private bytes")
        ans = await self.reader_get(f"/api/v2/records?q={self.marker}")
        expect(ans.status == 200 and not ans.body["records"], "search shows private text")
        return f"{len(entries)} log entries and every stream frame free of private data"

    async def c_subscriptions(self) -> None:
        tok = self.t.subscriber_token
        ans = await self.request("POST", "/api/v2/subscriptions", token=tok,
                                 json_body={"mode": "pull", "origins": [self.a.origin]})
        expect(ans.status == 201 and ans.body.get("id"), f"create: {ans.brief()}")
        sid = ans.body["id"]
        ans = await self.request("POST", "/api/v2/subscriptions", token=tok,
                                 json_body={"mode": "push", "inbox_url": "ftp://x"})
        expect(ans.status == 400 and ans.code == "invalid_subscription",
               f"bad subscription: {ans.brief()}")
        ans = await self.request("GET", "/api/v2/subscriptions", token=tok)
        expect(ans.status == 200 and sid in {s["id"] for s in ans.body["subscriptions"]},
               f"list: {ans.brief()}")
        ans = await self.request("DELETE", f"/api/v2/subscriptions/{sid}", token=tok)
        expect(ans.status == 200, f"delete: {ans.brief()}")
        ans = await self.request("DELETE", f"/api/v2/subscriptions/{sid}", token=tok)
        expect(ans.status == 404, f"second delete must be 404: {ans.brief()}")

    # ----------------------------------------------------------------- v1 profile

    def _v1(self, what: str, peer: str | None = None) -> str:
        return f"/api/v1/sync/{peer or self.t.peer}/{what}"

    def _key_header(self, key: bytes | None = None) -> dict[str, str]:
        return {W.PUBLIC_KEY_HEADER: base64.b64encode(key or self.a.public_key).decode()}

    async def v1_upload(self, archive: bytes, *, raw: bool = False,
                        key: bytes | None = None) -> tuple[Answer, W.V1Answer]:
        """Upload as the original client does (multipart ``bundle`` + X-WB-Public-Key), or
        as a raw ``application/gzip`` body."""
        if raw:
            data, ctype = archive, "application/gzip"
        else:
            data, ctype = W.multipart_body(archive, boundary=f"wbconf{uuid.uuid4().hex}")
        ans = await self.request("POST", self._v1("bundle"), token=self.t.token, data=data,
                                 ctype=ctype, headers=self._key_header(key))
        return ans, W.read_answer(ans.status, ans.raw)

    async def v1_accepted(self, b: Bundle, *, raw: bool = False) -> tuple[Answer, str]:
        """Upload ``b`` in the original's archive shape; when the hub parks it (in either
        answer form), approve once and upload again. Returns the answer and a note."""
        archive = to_targz(b) if raw else W.original_bundle_targz(b)
        ans, v1 = await self.v1_upload(archive, raw=raw)
        note = ""
        if v1.parked and self.a.origin not in self.approved:
            note = await self.approve(self.a.origin, self.a.origin, v1.pending_id)
            self.approved.add(self.a.origin)
            ans, v1 = await self.v1_upload(archive, raw=raw)
        return ans, note

    @staticmethod
    def _v1_digest(body: Any) -> str | None:
        """The stored bundle's digest in either shape (original: manifest_digest, or
        metadata.manifest_digest in /status; ours: digest)."""
        if not isinstance(body, dict):
            return None
        meta = body.get("metadata")
        if isinstance(meta, dict) and meta.get("manifest_digest"):
            return meta["manifest_digest"]
        return body.get("manifest_digest") or body.get("digest")

    async def c_v1_missing_token(self) -> None:
        ans = await self.request("GET", self._v1("status"))
        expect(ans.status == 401, f"want 401 without a token: {ans.brief()}")

    async def c_v1_wrong_token(self) -> None:
        ans = await self.request("GET", self._v1("status"),
                                 token="wb-conformance-" + uuid.uuid4().hex)
        expect(ans.status in (401, 403), f"want 401 for a wrong token: {ans.brief()}")

    async def c_v1_unknown_peer(self) -> str:
        ans = await self.request("GET", self._v1("status", f"wbconf-{uuid.uuid4().hex[:12]}"),
                                 token=self.t.token)
        expect(ans.status in (401, 403, 404), f"a peer that does not exist: {ans.brief()}")
        return f"{ans.status}"

    async def c_v1_push(self) -> str:
        b = self.a.bundle([self.a.request("Conformance: v1 upload")])
        ans, note = await self.v1_accepted(b)
        expect(200 <= ans.status < 300, f"v1 upload (multipart, the original client's "
                                         f"archive): {ans.brief()}")
        got = self._v1_digest(ans.body)
        expect(got is None or got == b.digest,
               f"answer digest {got} != sha256(manifest) {b.digest}")
        self.v1_bundle = b
        self.v1_answer = ans
        return f"{ans.status}; directory entries and duplicated files accepted" + (
            f" ({note})" if note else "")

    async def c_v1_answer_shape(self) -> None:
        ans = self.v1_answer
        body = ans.body if isinstance(ans.body, dict) else {}
        missing = [f for f in W.ACCEPTED_FIELDS if f not in body]
        expect(ans.status == 202 and not missing,
               f"the original's clients read 202 {{{', '.join(W.ACCEPTED_FIELDS)}}}; "
               f"missing {missing}: {ans.brief()}")
        expect(body["manifest_digest"] == self.v1_bundle.digest,
               f"manifest_digest {body['manifest_digest']} != {self.v1_bundle.digest}")
        files = self.v1_bundle.to_files()
        expect(body["stored_files"] == len(files),
               f"stored_files {body['stored_files']} != {len(files)} files in the bundle")
        expect(isinstance(body["stored_bytes"], int) and isinstance(body["auto_registered"],
                                                                    bool),
               f"stored_bytes is an integer, auto_registered a boolean: {ans.brief()}")

    async def _v1_status_digest(self) -> str | None:
        ans = await self.request("GET", self._v1("status"), token=self.t.token)
        expect(ans.status == 200 and isinstance(ans.body, dict), f"status: {ans.brief()}")
        expect(ans.body.get("has_bundle") is True, f"status: has_bundle is not true: "
                                                   f"{ans.brief()}")
        return self._v1_digest(ans.body)

    async def c_v1_status(self) -> str:
        got = await self._v1_status_digest()
        expect(got == self.v1_bundle.digest,
               f"status names digest {got}, the upload was {self.v1_bundle.digest}")
        return "digest matches the upload"

    async def c_v1_pull(self) -> str:
        async with self.http.get(self.base + self._v1("bundle"),
                                 headers=self._auth(self.t.token)) as r:
            data = await r.read()
            expect(r.status == 200, f"download answered {r.status}")
        got = from_targz(data, original_hub=True)
        v = verify_bundle(got, trust=lambda o, k: True)
        expect(v.digest == self.v1_bundle.digest, "downloaded bundle is not the uploaded one")
        return "the uploaded bundle, signature intact"

    async def c_v1_push_raw(self) -> str:
        b = self.a.bundle([self.a.request("Conformance: v1 raw upload")], advance=False)
        ans, v1 = await self.v1_upload(to_targz(b), raw=True)
        if ans.status in (415, 422):
            return f"raw body refused cleanly ({ans.status}); the original's form is multipart"
        expect(200 <= ans.status < 300, f"raw application/gzip upload: {ans.brief()}")
        self.a.sequence, self.a.previous = self.a.sequence + 1, b.digest
        got = await self._v1_status_digest()
        expect(got == b.digest, f"after a raw upload status names {got}, not {b.digest}")
        self.v1_bundle = b
        return f"{ans.status}; stored"

    async def c_v1_other_peer(self) -> str:
        other = self.t.other_peer
        assert other is not None
        ans = await self.request("GET", self._v1("status", other), token=self.t.other_token)
        expect(ans.status == 200, f"--other-peer {other} with --other-token must be a real "
                                  f"peer: {ans.brief()}")
        ans = await self.request("GET", self._v1("status", other), token=self.t.token)
        expect(ans.status in (401, 403), f"our token on {other}'s status must be refused "
                                         f"(401/403): {ans.brief()}")
        async with self.http.get(self.base + self._v1("bundle", other),
                                 headers=self._auth(self.t.token)) as r:
            expect(r.status in (401, 403), f"our token on {other}'s bundle: {r.status}")
        ans = await self.request("GET", self._v1("status"), token=self.t.other_token)
        expect(ans.status in (401, 403), f"{other}'s token on our status: {ans.brief()}")
        return f"{other} exists; tokens do not cross"

    async def c_v1_invalid(self, v: Vector | None) -> str:
        assert v is not None
        data = v.path.read_bytes()
        ans, v1 = await self.v1_upload(data, key=_signer_of(data) or self.a.public_key)
        expect(not v1.parked,
               f"the hub let {v.name} through its archive and signature checks and queued it "
               f"for approval (pending id {v1.pending_id}); it must be refused "
               f"({v.code}): {ans.brief()}")
        expect(400 <= ans.status < 500, f"{v.name} must be refused with 4xx ({v.code}): "
                                        f"{ans.brief()}")
        ours = ans.code
        expect(ours is None or ours == v.code,
               f"{v.name}: refused with code {ours}, want {v.code}")
        got = await self._v1_status_digest()
        expect(got == self.v1_bundle.digest, f"{v.name} replaced the stored bundle ({got})")
        return f"{ans.status} {ours or v1.message[:60]}"


def _signer_of(archive: bytes) -> bytes | None:
    """The public key in an archive's bundle.sig, read leniently (for X-WB-Public-Key)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive)), mode="r:") as tar:
            for member in tar:
                if member.name.removeprefix("./") == "bundle.sig" and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        return parse_signature(handle.read()).public_key
    except Exception:  # noqa: BLE001 - an invalid vector may be unreadable
        return None
    return None


# --------------------------------------------------------------------------- the table

def _invalid_targz() -> list[Vector]:
    return [v for v in invalid_vectors(default_limits_only=True)
            if v.path.name.endswith(".tar.gz")]


def checks(profile: str) -> list[CheckDef]:
    """Every check of ``profile`` ("hub" or "hub-v1") in run order."""
    if profile == "hub-v1":
        ok = ("v1.push",)
        return [
            CheckDef("v1.missing_token", "c_v1_missing_token", options=("peer",)),
            CheckDef("v1.wrong_token", "c_v1_wrong_token", options=("peer",)),
            CheckDef("v1.unknown_peer", "c_v1_unknown_peer", options=("peer",)),
            CheckDef("v1.push", "c_v1_push", options=("peer",),
                     writes="a bundle (one public request) under the peer, from a fresh "
                            "origin whose key is parked until approved"),
            CheckDef("v1.answer_shape", "c_v1_answer_shape", ok, ("peer",)),
            CheckDef("v1.status", "c_v1_status", ok, ("peer",)),
            CheckDef("v1.pull", "c_v1_pull", ok, ("peer",)),
            CheckDef("v1.push_raw", "c_v1_push_raw", ok, ("peer",),
                     writes="a second bundle when the hub takes raw bodies"),
            CheckDef("v1.other_peer", "c_v1_other_peer", ok, ("peer", "other_peer")),
            *[CheckDef(f"v1.invalid.{v.name}", "c_v1_invalid", ok, ("peer",),
                       writes="nothing when the hub refuses it; a queue entry if it does not",
                       vector=v) for v in _invalid_targz()],
        ]
    first = ("ingest.first_bundle",)
    up = ("hub.reachable",)
    push = "bundles of this run's origin (public requests, a comment, a tombstone)"
    return [
        CheckDef("hub.reachable", "c_reachable"),
        CheckDef("auth.missing_token", "c_missing_token", up),
        CheckDef("auth.unknown_token", "c_unknown_token", up),
        CheckDef("ingest.first_bundle", "c_first_bundle", up,
                 writes="a bundle from a fresh origin (its key parked until approved)"),
        CheckDef("ingest.cbor", "c_ingest_cbor", first, writes=push),
        CheckDef("ingest.targz", "c_ingest_targz", first, writes=push),
        CheckDef("log.visible", "c_log_visible", first),
        CheckDef("ingest.idempotent", "c_idempotent", ("ingest.cbor",)),
        *[CheckDef(f"invalid.{v.name}", "c_invalid", up,
                   writes="nothing (a parked bundle for untrusted_key)", vector=v)
          for v in invalid_vectors(default_limits_only=True)],
        CheckDef("ingest.unsupported_media_type", "c_media_type", up),
        CheckDef("scope.private_withheld", "c_private", first,
                 writes="a bundle whose private files the hub must withhold"),
        CheckDef("scope.records_index", "c_private_index", first),
        CheckDef("chain.gap", "c_gap", first, writes=push),
        CheckDef("chain.equivocation", "c_equivocation", ("ingest.cbor",),
                 writes="an equivocation record, if the hub keeps them"),
        CheckDef("records.tombstone", "c_tombstone", first, writes=push),
        CheckDef("log.tombstone_withholds", "c_tombstone_log", ("records.tombstone",),
                 writes=push),
        CheckDef("cursor.no_skip_no_duplicate", "c_paging", first),
        CheckDef("cursor.origin_filter", "c_origin_filter", first),
        CheckDef("cursor.at_head", "c_at_head", up),
        CheckDef("cursor.future", "c_future", up),
        CheckDef("cursor.malformed", "c_malformed_cursor", up),
        CheckDef("cursor.outdated", "c_outdated", up),
        CheckDef("stream.replay", "c_stream_replay", first),
        CheckDef("stream.resume", "c_stream_resume", ("ingest.cbor", "ingest.targz")),
        CheckDef("stream.live", "c_stream_live", first, writes=push),
        CheckDef("stream.future_cursor", "c_stream_future", up),
        CheckDef("scope.never_forwarded", "c_private_never_forwarded", first),
        CheckDef("subscriptions.lifecycle", "c_subscriptions", up, ("subscriber_token",),
                 writes="a subscription of the subscriber peer, deleted again"),
        # the transparency log (conformance_tests/tlog_runner.py), over what this run pushed
        CheckDef("tlog.key", "c_tlog_key", up),
        CheckDef("tlog.checkpoint", "c_tlog_checkpoint", ("tlog.key", "log.visible")),
        CheckDef("tlog.tiles", "c_tlog_tiles", ("tlog.checkpoint",)),
        CheckDef("tlog.inclusion", "c_tlog_inclusion", ("tlog.tiles",)),
        CheckDef("tlog.consistency", "c_tlog_consistency", ("tlog.tiles",)),
        CheckDef("tlog.bad_requests", "c_tlog_bad_requests", up),
    ]


def select(defs: list[CheckDef], only: Iterable[str] = (), keywords: Iterable[str] = ()
           ) -> set[str] | None:
    """Names to run: those matching ``only`` (names or globs such as ``invalid.*``) or
    containing a ``keywords`` substring, plus every check they need. None: all.
    Raises ValueError naming a pattern that matches nothing."""
    only, keywords = list(only), list(keywords)
    if not only and not keywords:
        return None
    names = [d.name for d in defs]
    chosen: set[str] = set()
    for pattern in only:
        hits = {n for n in names if fnmatch.fnmatchcase(n, pattern)}
        if not hits:
            raise ValueError(f"--only {pattern!r} matches no check (see --list)")
        chosen |= hits
    for word in keywords:
        hits = {n for n in names if word in n}
        if not hits:
            raise ValueError(f"-k {word!r} matches no check (see --list)")
        chosen |= hits
    by_name = {d.name: d for d in defs}
    todo = list(chosen)
    while todo:
        for need in by_name[todo.pop()].needs:
            if need not in chosen:
                chosen.add(need)
                todo.append(need)
    return chosen


def listing(profile: str) -> str:
    """``--list``: every check with what it needs and what it writes."""
    lines = []
    for d in checks(profile):
        needs = ", ".join([*d.needs, *(OPTION_FLAGS.get(o, o) for o in d.options)]) or "-"
        lines.append(f"{d.name}\n    needs: {needs}\n    writes: {d.writes}")
    return "\n".join(lines)


async def run_hub(target: HubTarget, report: Report, *, v1: bool = False,
                  only: Iterable[str] = (), keywords: Iterable[str] = ()) -> Report:
    """Run the ``hub`` (or, with ``v1``, the ``hub-v1``) profile; ``only``/``keywords``
    select checks (and what they need); every other check is reported skipped."""
    defs = checks("hub-v1" if v1 else "hub")
    wanted = select(defs, only, keywords)
    timeout = aiohttp.ClientTimeout(total=max(60.0, target.timeout * 4))
    async with aiohttp.ClientSession(timeout=timeout,
                                     headers={"User-Agent": "WhiteBalloon-conformance"}) as s:
        runner = HubRunner(target, report, s)
        await runner.run_checks(defs, wanted)
    return report
