"""The transparency-log runner passes against our hub, fails against a hub whose proofs
or tiles lie, and the Go reference verifies what our live hub serves."""

from __future__ import annotations

import base64
import json

from aiohttp import web

from conformance_tests.hub_runner import HubTarget, run_hub
from conformance_tests.tlog_runner import run_tlog
from protocol import tlog as L
from tests.conformance.conftest import (
    ADMIN_TOKEN,
    HUB_TOKEN,
    SUBSCRIBER_TOKEN,
    new_report,
    url_of,
)
from tests.interop.conftest import go_tlog  # noqa: F401 - the Go reference fixture


async def _filled(live_hub) -> str:
    target = HubTarget(url_of(live_hub), HUB_TOKEN, subscriber_token=SUBSCRIBER_TOKEN,
                       admin_token=ADMIN_TOKEN, timeout=10)
    await run_hub(target, new_report("hub"), )
    return url_of(live_hub)


async def test_our_hub_passes_every_tlog_check_and_go_agrees(live_hub, go_tlog):  # noqa: F811
    url = await _filled(live_hub)
    report = await run_tlog(url, new_report("tlog"))
    out = report.out.getvalue()
    assert report.failures == [] and report.skipped == [], out
    assert {r.name for r in report.results} == {
        "tlog.key", "tlog.checkpoint", "tlog.tiles", "tlog.inclusion", "tlog.consistency",
        "tlog.bad_requests"}
    # the Go reference checks the live hub's note, proofs and tiles
    key = await (await live_hub.get("/tlog/key")).text()
    note = await (await live_hub.get("/tlog/checkpoint")).read()
    cp, _ = L.verify_checkpoint(note, L.parse_verifier(key))
    assert cp.size >= 8
    entries = L.split_entry_bundle(await (await live_hub.get(
        "/tlog/" + L.tile_path("entries", 0, cp.size))).read())
    inclusion, consistency = [], []
    for i in range(cp.size):
        body = await (await live_hub.get(f"/tlog/proof/inclusion?hub_seq="
                                         f"{L.parse_leaf(entries[i]).hub_seq}")).json()
        inclusion.append({"index": body["leaf_index"], "size": cp.size,
                          "root": base64.b64encode(cp.root).decode(), "leaf": body["leaf"],
                          "proof": body["proof"]})
    for old in range(1, cp.size):
        body = await (await live_hub.get(f"/tlog/proof/consistency?old={old}")).json()
        old_root = L.frontier_root(_frontier([L.leaf_hash(e) for e in entries[:old]]))
        consistency.append({"old": old, "new": cp.size,
                            "old_root": base64.b64encode(old_root).decode(),
                            "new_root": base64.b64encode(cp.root).decode(),
                            "proof": body["proof"]})
    tile = L.tile_path(0, 0, cp.size)
    tiles = {tile: base64.b64encode(await (await live_hub.get("/tlog/" + tile)).read()).decode()}
    errors = go_tlog({"vkey": key.strip(), "notes": [note.decode()],
                      "entries": [base64.b64encode(e).decode() for e in entries],
                      "inclusion": inclusion, "consistency": consistency, "tiles": tiles,
                      "tile_size": cp.size, "tile_root": base64.b64encode(cp.root).decode()})
    assert errors == []


def _frontier(hashes: list[bytes]) -> list[bytes]:
    frontier: list[bytes] = []
    for i, h in enumerate(hashes):
        _, frontier = L.append_stored(i, frontier, h)
    return frontier


async def test_a_hub_with_lying_proofs_fails(live_hub, aiohttp_client):
    url = await _filled(live_hub)
    session = live_hub.session

    async def lying(request: web.Request) -> web.StreamResponse:
        async with session.get(url + request.path_qs) as r:
            body = await r.read()
            status, ctype = r.status, r.content_type
            cache = r.headers.get("Cache-Control", "")
        if request.path.startswith("/tlog/proof/") and status == 200:
            value = json.loads(body)
            if value["proof"]:
                raw = bytearray(base64.b64decode(value["proof"][0]))
                raw[0] ^= 1
                value["proof"][0] = base64.b64encode(bytes(raw)).decode()
            body = json.dumps(value).encode()
        return web.Response(body=body, status=status, content_type=ctype,
                            headers={"Cache-Control": cache})

    app = web.Application()
    app.router.add_get("/{tail:.*}", lying)
    front = await aiohttp_client(app)
    report = await run_tlog(url_of(front), new_report("tlog"))
    failed = {r.name for r in report.failures}
    assert {"tlog.inclusion", "tlog.consistency"} <= failed, report.out.getvalue()
    assert report.exit_code == 1
