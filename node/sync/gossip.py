"""Checkpoint gossip between nodes (docs/transparency.md, "Gossip").

A hub that shows two subscribers two different histories (a split view) cannot be caught
by either alone: each one's view is consistent. So nodes tell each other the newest
signed checkpoint they hold of each hub:

- ``GET /sync/checkpoints`` (public) answers this node's kept checkpoint of each hub it
  audits: the note and the hub's note key. Both are public statements signed by the hub
  (the same bytes the hub serves at ``/tlog/checkpoint``); no peer name, location or token.
- The ``sync:gossip`` job (every ``WB_SYNC_GOSSIP_INTERVAL`` seconds) asks the nodes in
  ``WB_SYNC_GOSSIP_PEERS`` and the instances of the origins this node trusts. Every note
  that verifies under the pinned key of one of our hubs is checked against the checkpoint
  we hold of it (:func:`node.sync.audit.check_checkpoint`, never adopted): a same-size
  note with another root, or one the hub cannot prove consistent with ours, is a ``fork``
  incident whose evidence is the two signed notes and the node that told us.

A note already checked (same source, hub, size and root) is not checked again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from node import typedefs as T
from node.errors import AppError
from node.scheduler import Job, register_job
from node.sync import audit as A
from node.sync import peers as P
from node.sync import queries_audit as Q
from node.sync.service import our_origin
from protocol import tlog as L

log = logging.getLogger("wb.node.sync.gossip")

JOB_ID = "sync:gossip"
PATH = "/sync/checkpoints"
MAX_NOTES = 64  # checkpoints read from one answer (a node audits a few hubs)
MAX_ANSWER = 256 * 1024
MAX_SOURCES = 16  # nodes asked per round, configured ones first


@dataclass
class GossipResult:
    asked: int = 0
    checked: int = 0
    incidents: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        out = f"asked {self.asked} node(s), checked {self.checked} checkpoint(s)"
        if self.incidents:
            out += f", {len(self.incidents)} incident(s)"
        if self.errors:
            out += f", {len(self.errors)} unreachable"
        return out


def interval(config: Any) -> int:
    return config.get_int("WB_SYNC_GOSSIP_INTERVAL")


# --------------------------------------------------------------------- serving

async def our_notes(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """What this node tells others: its kept checkpoint of each audited hub."""
    return [{"log": L.parse_verifier(r["verifier"]).name, "verifier": r["verifier"],
             "size": r["size"], "note": bytes(r["note"]).decode()}
            for r in await A.latest_checkpoints(pool)][:MAX_NOTES]


async def checkpoints_view(request: web.Request) -> web.Response:
    if interval(request.app[T.config_key]) <= 0:
        raise AppError(404, "not_found", "this node does not take part in checkpoint gossip")
    body = {"checkpoints": await our_notes(request.app[T.pool_key])}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# --------------------------------------------------------------------- asking

def configured_sources(config: Any) -> list[str]:
    return [u.rstrip("/") for u in config["WB_SYNC_GOSSIP_PEERS"].replace(",", " ").split()
            if u.startswith(("http://", "https://"))]


async def sources(pool: asyncpg.Pool, config: Any) -> list[str]:
    """The nodes to ask: ``WB_SYNC_GOSSIP_PEERS``, then the instances of trusted origins
    (never this node itself), at most ``MAX_SOURCES``."""
    own = config.site_url.rstrip("/")
    found = configured_sources(config)
    origin = await our_origin(pool, config)
    for url in await Q.select_trusted_instances(pool, origin, MAX_SOURCES):
        if url.startswith(("http://", "https://")):
            found.append(url.rstrip("/"))
    out: list[str] = []
    for url in found:
        if url != own and url not in out:
            out.append(url)
    return out[:MAX_SOURCES]


class GossipError(Exception):
    pass


async def fetch(session: aiohttp.ClientSession, source: str) -> list[bytes]:
    """The signed notes ``source`` holds (at most ``MAX_NOTES``)."""
    try:
        async with session.get(source + PATH, headers={"Accept": "application/json"},
                               allow_redirects=False) as r:
            if r.status != 200:
                raise GossipError(f"{PATH} answered {r.status}")
            body = await r.content.read(MAX_ANSWER + 1)
            while len(body) <= MAX_ANSWER and not r.content.at_eof():
                body += await r.content.read(MAX_ANSWER + 1 - len(body))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise GossipError(f"unreachable: {type(exc).__name__}") from None
    if len(body) > MAX_ANSWER:
        raise GossipError(f"answer larger than {MAX_ANSWER} bytes")
    try:
        items = json.loads(body)["checkpoints"]
        if not isinstance(items, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise GossipError("not a checkpoint list") from None
    notes = [item["note"].encode() for item in items[:MAX_NOTES]
             if isinstance(item, dict) and isinstance(item.get("note"), str)]
    return notes


def _newest_per_hub(notes: list[bytes], logs: list[tuple[Any, L.NoteVerifier]]
                    ) -> list[tuple[Any, L.Checkpoint, bytes]]:
    """The largest note of each of our hubs' logs among ``notes`` (signed by the key we
    pinned); other notes prove nothing to us. One per hub and source: a source cannot
    make us ask a hub for more than one consistency proof per round."""
    best: dict[str, tuple[Any, L.Checkpoint, bytes]] = {}
    for note in notes:
        for row, verifier in logs:
            try:
                cp, _ = L.verify_checkpoint(note, verifier)
            except L.TlogError:
                continue  # another hub's log, or not signed by the key we pinned
            kept = best.get(row["peer"])
            if kept is None or cp.size > kept[1].size:
                best[row["peer"]] = (row, cp, note)
    return list(best.values())


async def exchange(pool: asyncpg.Pool, config: Any,
                   session: aiohttp.ClientSession) -> GossipResult:
    """One gossip round: ask every source, check its newest note of each of our hubs."""
    result = GossipResult()
    logs = [(r, L.parse_verifier(r["verifier"])) for r in await A.latest_checkpoints(pool)]
    if not logs:
        return result  # no hub audited yet: nothing to compare with
    policy = A.policy_of(config)
    for source in await sources(pool, config):
        result.asked += 1
        try:
            notes = await fetch(session, source)
        except GossipError as exc:
            result.errors[source] = str(exc)
            await Q.source_asked(pool, source, 0, str(exc)[:300])
            continue
        newest = _newest_per_hub(notes, logs)
        matched = len(newest)
        for row, cp, note in newest:
            seen = await Q.select_gossip(pool, source, row["peer"])
            if seen is not None and seen["size"] == cp.size \
                    and bytes(seen["root"]) == cp.root:
                continue
            try:
                peer = await P.get_peer(pool, row["peer"])
                report = await A.check_checkpoint(pool, peer, session, note,
                                                  policy=policy, adopt=False,
                                                  source=source)
            except A.HubUnreachable as exc:
                result.errors[row["peer"]] = str(exc)
                continue  # checked again next round
            if report.error is not None and not report.incidents:
                continue
            result.checked += 1
            result.incidents += report.incidents
            await Q.upsert_gossip(pool, source, row["peer"], cp.size, cp.root, note)
        await Q.source_asked(pool, source, matched, None)
    return result


async def gossip_job(app: web.Application) -> str:
    res = await exchange(app[T.pool_key], app[T.config_key], app[T.client_key])
    if res.incidents:
        log.warning("checkpoint gossip found a split view",
                    extra={"incidents": len(res.incidents)})
    return res.summary()


async def source_states(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await Q.select_gossip_sources(pool)


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, checkpoints_view, name="sync_checkpoints")
    every = interval(app[T.config_key])
    if every > 0:
        register_job(app, Job(JOB_ID, gossip_job, interval=float(every), timeout=120.0))
