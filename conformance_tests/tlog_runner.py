"""``wb conformance tlog``: checks a live hub's transparency log (read-only, no token).

Everything a node's audit or an outside monitor relies on (docs/transparency.md): the
note key, a signed C2SP checkpoint, inclusion proofs by ``hub_seq`` and by
origin+sequence, consistency proofs, C2SP tiles that match the signed root, and precise
errors for malformed proof requests. Every check appears in every report.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp

from conformance_tests.report import Report, expect
from protocol import tlog as L

SAMPLE = 8


def _h(items: Any) -> list[bytes]:
    expect(isinstance(items, list), f"proof is not a list: {str(items)[:80]}")
    return [base64.b64decode(x, validate=True) for x in items]


def _root(leaf_hashes: list[bytes]) -> bytes:
    if not leaf_hashes:
        return L.EMPTY_ROOT
    stored: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    for i, h in enumerate(leaf_hashes):
        rows, frontier = L.append_stored(i, frontier, h)
        stored.update({(lv, ix): x for lv, ix, x in rows})
    return L.frontier_root(frontier)


class TlogRunner:
    def __init__(self, url: str, report: Report, session: aiohttp.ClientSession) -> None:
        self.base = url.rstrip("/")
        self.report = report
        self.http = session
        self.key: L.NoteVerifier | None = None
        self.cp: L.Checkpoint | None = None
        self.note = b""
        self.entries: list[bytes] = []

    async def get(self, path: str, **params: Any) -> tuple[int, bytes, str]:
        async with self.http.get(self.base + path,
                                 params={k: str(v) for k, v in params.items()}) as r:
            return r.status, await r.read(), r.headers.get("Cache-Control", "")

    async def get_json(self, path: str, **params: Any) -> tuple[int, Any]:
        status, body, _ = await self.get(path, **params)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    async def key_check(self) -> str:
        status, body, _ = await self.get("/tlog/key")
        expect(status == 200, f"/tlog/key answered {status}")
        self.key = L.parse_verifier(body.decode())
        return self.key.text()

    async def checkpoint(self) -> str:
        assert self.key is not None
        status, note, cache = await self.get("/tlog/checkpoint")
        expect(status == 200, f"/tlog/checkpoint answered {status}")
        self.cp, _ = L.verify_checkpoint(note, self.key)
        self.note = note
        expect("no-store" in cache or "max-age" in cache,
               "the checkpoint needs an explicit Cache-Control")
        status, again, _ = await self.get(f"/tlog/checkpoints/{self.cp.size}")
        expect(status == 200 and again == note,
               "the checkpoint is not served again at /tlog/checkpoints/<size>")
        return f"size {self.cp.size}"

    async def tiles(self) -> str:
        assert self.cp is not None
        n = min(self.cp.size, L.TILE_WIDTH)
        if n == 0:
            return "empty log"
        status, data, _ = await self.get("/tlog/" + L.tile_path("entries", 0, n))
        expect(status == 200, f"entry bundle 0 answered {status}")
        self.entries = L.split_entry_bundle(data)
        expect(len(self.entries) == n, f"entry bundle holds {len(self.entries)}, not {n}")
        status, tile, _ = await self.get("/tlog/" + L.tile_path(0, 0, n))
        expect(status == 200, f"tile 0/0 answered {status}")
        hashes = [L.leaf_hash(e) for e in self.entries]
        expect(tile == b"".join(hashes), "tile 0/0 is not the hashes of entry bundle 0")
        if self.cp.size <= L.TILE_WIDTH:
            expect(_root(hashes) == self.cp.root, "the tiles do not add up to the signed root")
        status, _, _ = await self.get("/tlog/" + L.tile_path(0, 0, n) + "0")
        expect(status == 404, f"a tile beyond the tree answered {status}")
        return f"{n} entries"

    async def inclusion(self) -> str:
        assert self.cp is not None
        size = self.cp.size
        if size == 0:
            return "empty log"
        picks = sorted({0, size // 2, size - 1, *range(0, min(size, SAMPLE))})
        proven = 0
        for index in picks:
            leaf = self.entries[index] if index < len(self.entries) else None
            if leaf is None:
                continue
            facts = L.parse_leaf(leaf)
            queries: list[dict[str, Any]] = [{"hub_seq": facts.hub_seq}]
            if facts.sequence is not None:
                queries.append({"origin": facts.origin, "sequence": facts.sequence})
            for q in queries:
                status, body = await self.get_json("/tlog/proof/inclusion", size=size, **q)
                expect(status == 200, f"inclusion {q} answered {status}: {body}")
                expect(base64.b64decode(body["leaf"]) == leaf,
                       f"inclusion {q}: the leaf differs from the entry bundle's")
                expect(body["leaf_index"] == index, f"inclusion {q}: wrong leaf_index")
                L.verify_inclusion(L.leaf_hash(leaf), index, size, _h(body["proof"]),
                                   self.cp.root)
                proven += 1
        return f"{proven} proofs"

    async def consistency(self) -> str:
        assert self.cp is not None
        size = self.cp.size
        olds = sorted({o for o in (1, size // 2, size - 1) if 0 < o <= len(self.entries)})
        for old in olds:
            status, body = await self.get_json("/tlog/proof/consistency", old=old, size=size)
            expect(status == 200, f"consistency {old}->{size} answered {status}")
            old_root = _root([L.leaf_hash(e) for e in self.entries[:old]])
            L.verify_consistency(old, old_root, size, self.cp.root, _h(body["proof"]))
        return f"{len(olds)} proofs"

    async def bad_requests(self) -> str:
        for query, code in [({}, "invalid_proof_request"),
                            ({"hub_seq": "x"}, "invalid_proof_request"),
                            ({"hub_seq": 1, "size": "-1"}, "invalid_proof_request")]:
            status, body = await self.get_json("/tlog/proof/inclusion", **query)
            expect(400 <= status < 500, f"inclusion {query} answered {status}")
            got = body.get("error", {}).get("code") if isinstance(body, dict) else None
            expect(got == code, f"inclusion {query}: code {got}, not {code}")
        status, _ = await self.get_json("/tlog/proof/consistency", old=10 ** 15)
        expect(400 <= status < 500, f"consistency beyond the tree answered {status}")
        return "precise 4xx"


CHECKS = (("tlog.key", "key_check", ()), ("tlog.checkpoint", "checkpoint", ("tlog.key",)),
          ("tlog.tiles", "tiles", ("tlog.checkpoint",)),
          ("tlog.inclusion", "inclusion", ("tlog.tiles",)),
          ("tlog.consistency", "consistency", ("tlog.tiles",)),
          ("tlog.bad_requests", "bad_requests", ()))


async def run_tlog(url: str, report: Report, *, request_timeout: float = 15.0) -> Report:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=request_timeout)) as s:
        runner = TlogRunner(url, report, s)
        for name, method, needs in CHECKS:
            missing = [n for n in needs if report.status_of(n) != "passed"]
            if missing:
                report.skip(name, f"needs {', '.join(missing)}")
                continue
            await report.run(name, getattr(runner, method))
    return report
