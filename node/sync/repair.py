"""``wb sync repair``: check the node's sync state and fix what can be fixed.

Each check reports findings in plain language (``text``) and as data; ``dry_run`` only
reports. The kinds, in the order they run:

- ``outbox_missing`` / ``outbox_corrupt`` / ``outbox_chain``: every link 1..N of our own
  chain is in ``sync_outbox``, decodes, has the digest it is filed under and names its
  predecessor. A missing or damaged link is restored byte for byte from a copy whose
  digest fits the chain: ``WB_DATA_DIR/bundles``, a directory peer, or a hub peer.
- ``outbox_index`` / ``outbox_withdrawn``: the scrub's path index of each stored bundle
  lists every record in it, and no stored bundle still carries a record withdrawn since
  it was signed where the scrub believes it gone (a bundle just restored, a damaged
  index); the index is rebuilt and the file withheld again.
- ``publication_state``: each local row's ``published`` flag agrees with what our outbox
  last said about it (live or tombstone). A row that disagrees is marked for the next
  export, so a withdrawn record that is still live out there gets its tombstone.
- ``received_gap`` / ``pending_trusted``: holes in what we received from other origins
  are (re)recorded and fetched from the peers (``pull`` with every gap); queued bundles
  whose key is trusted now are re-applied (imports are idempotent).
- ``chain_break``: a Previous that does not match; listed for the operator.
- ``invite_map_cache``: cached invite maps that differ from the source tables are dropped
  (recomputed on the next view).
- ``revoked_origin``: rows applied from an origin one of whose keys was revoked after it
  signed bundles we applied; listed, and withdrawn with ``drop_revoked``.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from node.i18n import plural
from node.profiles import invite_map
from node.sync import gaps as G
from node.sync import peer_http as H
from node.sync import peers as P
from node.sync import queries_repair as QR
from node.sync import transport as TR
from node.sync.errors import SyncError
from node.sync.gap_fill import GAP_MAX_PAGES
from node.sync.outbox_scrub import record_files, scrub_outbox_now, still_held
from node.sync.replay import replay_trusted_pending
from node.sync.service import job, our_origin
from protocol.bundle import Bundle
from protocol.containers import from_cbor, to_cbor
from protocol.errors import ProtocolError
from protocol.verify import VerifiedBundle, verify_bundle
from service.bundle_io import read_bundle
from service.settings import Config

log = logging.getLogger("wb.node.sync")

TABLES = {"user": "users", "request": "requests", "comment": "comments"}


@dataclass
class Finding:
    kind: str
    subject: str
    text: str
    status: str  # fixed | would_fix | not_fixed | needs_operator

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "text": self.text,
                "status": self.status}


@dataclass
class RepairReport:
    dry_run: bool
    peer: str | None
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    def add(self, kind: str, subject: str, text: str, status: str) -> None:
        self.findings.append(Finding(kind, subject, text, status))

    @property
    def healthy(self) -> bool:
        return all(f.status == "fixed" for f in self.findings)

    def as_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.status] = counts.get(f.status, 0) + 1
        return {"dry_run": self.dry_run, "peer": self.peer, "checked": self.checked,
                "findings": [f.as_json() for f in self.findings], "counts": counts,
                "healthy": not self.findings}

    def text(self) -> str:
        head = "Dry run: nothing was changed." if self.dry_run else ""
        if not self.findings:
            return "\n".join(x for x in (head, "Sync state is healthy: " + ", ".join(
                self.checked) + " checked.") if x)
        lines = [head] if head else []
        for f in self.findings:
            lines.append(f"[{f.status}] {f.text}")
        return "\n".join(lines)


def _status(dry_run: bool) -> str:
    return "would_fix" if dry_run else "fixed"


# --------------------------------------------------------------------------- outbox

def _verify_own(bundle: Bundle, origin: str) -> VerifiedBundle | None:
    try:
        vb = verify_bundle(bundle, trust=lambda o, _k: o == origin)
    except ProtocolError:
        return None
    return vb if vb.origin == origin else None


async def _candidates(pool: asyncpg.Pool, config: Config, origin: str, sequence: int,
                      peer_name: str | None) -> list[tuple[str, Bundle]]:
    """Copies of our bundle ``sequence`` that might be around: the export directory,
    directory peers, hub peers (v2)."""
    found: list[tuple[str, Bundle]] = []
    local = config.path("WB_DATA_DIR") / "bundles" / f"{sequence:010d}"
    for path in (local, local.with_suffix(".cbor"), local.with_suffix(".tar.gz")):
        if path.exists():
            try:
                found.append((f"{path}", read_bundle(path)))
            except (ProtocolError, OSError):
                pass
    for peer in await P.list_peers(pool):
        if peer_name is not None and peer["name"] != peer_name:
            continue
        if peer["kind"] == "dir":
            path = Path(peer["location"]) / f"{origin}-{sequence:010d}.cbor"
            if path.is_file():
                try:
                    found.append((f"peer {peer['name']}", from_cbor(path.read_bytes())))
                except (ProtocolError, OSError):
                    pass
        elif peer["api"] == "v2":
            found.extend(await _from_hub(peer, origin, sequence))
    return found


async def _from_hub(peer: Any, origin: str, sequence: int) -> list[tuple[str, Bundle]]:
    since = 0
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            for _ in range(GAP_MAX_PAGES):
                status, body, _ = await H.request(
                    s, "GET", f"{peer['location']}/api/v2/bundles",
                    params={"origin": origin, "since": str(since), "limit": "500"},
                    headers=H.json_headers(peer))
                if status != 200:
                    return []
                page = json.loads(body)
                for entry in page.get("entries", []):
                    if entry.get("origin") == origin and entry.get("sequence") == sequence:
                        return [(f"peer {peer['name']}",
                                 from_cbor(base64.b64decode(entry["bundle"])))]
                nxt = int(page.get("next", since))
                if nxt <= since or nxt >= int(page.get("head", nxt)):
                    return []
                since = nxt
    except (aiohttp.ClientError, TimeoutError, ValueError, ProtocolError, SyncError,
            H.TransientError):
        return []
    return []


async def check_outbox(pool: asyncpg.Pool, config: Config, origin: str, report: RepairReport,
                       peer_name: str | None) -> bool:
    """True when the whole chain is present and sound afterwards."""
    report.checked.append("outbox")
    state = await QR.export_head(pool)
    top = state["sequence"] if state else 0
    rows = {r["sequence"]: r for r in await QR.outbox_bundles(pool)}
    sound: dict[int, VerifiedBundle] = {}
    bad: dict[int, str] = {}
    for seq in range(1, top + 1):
        row = rows.get(seq)
        if row is None:
            bad[seq] = "outbox_missing"
            continue
        try:
            vb = _verify_own(from_cbor(bytes(row["envelope"])), origin)
        except ProtocolError:
            vb = None
        if vb is None or vb.digest != row["digest"] or vb.sequence != seq:
            bad[seq] = "outbox_corrupt"
        else:
            sound[seq] = vb
    for seq, vb in sound.items():
        before = sound.get(seq - 1)
        if before is not None and vb.previous != before.digest:
            report.add("outbox_chain", f"outbox #{seq}",
                       f"Our bundle #{seq} does not name #{seq - 1} as its predecessor: the "
                       "chain was rewritten. Not repairable here; peers will record a chain "
                       "break.", "needs_operator")
    if top and sound.get(top) is not None and state["last_digest"] != sound[top].digest:
        report.add("outbox_chain", "node_sync_state",
                   "The recorded head digest differs from the last bundle in the outbox.",
                   _status(report.dry_run))
        if not report.dry_run:
            await QR.update_node_sync_state_set_last_digest(pool, sound[top].digest)
    all_ok = True
    for seq, kind in sorted(bad.items()):
        what = "is missing" if kind == "outbox_missing" else "is damaged"
        before, after = sound.get(seq - 1), sound.get(seq + 1)
        restored = None
        for source, bundle in await _candidates(pool, config, origin, seq, peer_name):
            vb = _verify_own(bundle, origin)
            if vb is None or vb.sequence != seq:
                continue
            if before is not None and vb.previous != before.digest:
                continue
            if after is not None and after.previous != vb.digest:
                continue
            restored = (source, vb)
            break
        if restored is None:
            all_ok = False
            report.add(kind, f"outbox #{seq}",
                       f"Our bundle #{seq} {what} and no copy was found (export directory, "
                       "directory peers, hubs). Peers that lack it will see a gap; a "
                       "snapshot export (wb sync export --snapshot) re-publishes the "
                       "current state.", "not_fixed")
            continue
        source, vb = restored
        report.add(kind, f"outbox #{seq}",
                   f"Our bundle #{seq} {what}; restored from {source} (digest "
                   f"{vb.digest[:12]}, fits the chain).", _status(report.dry_run))
        if not report.dry_run:
            await QR.insert_sync_outbox(pool, seq, vb.digest, vb.kind, len(vb.records),
                                        to_cbor(vb.bundle))
        sound[seq] = vb
    # A dry run restored nothing: the publication check would read a broken chain.
    return all_ok and not (bad and report.dry_run)


async def check_publication_state(pool: asyncpg.Pool, report: RepairReport) -> None:
    """Replay our outbox: each local row's ``published`` must match its last record."""
    report.checked.append("publication state")
    last: dict[tuple[str, str], bool] = {}
    for row in await QR.outbox_envelopes(pool):
        vb = _verified(bytes(row["envelope"]))
        if vb is None:
            continue
        # A file our outbox withheld after a withdrawal (node.sync.outbox_scrub) left
        # live with this bundle: peers hold it until a tombstone follows. Tombstones are
        # never withheld. Reading it as "never sent" would drop the tombstone.
        for path in vb.withheld:
            key = _path_key(path)
            if key is not None:
                last[key] = True
        for _path, rec in vb.records:
            if rec.entity in TABLES:
                last[(rec.entity, rec.id)] = not rec.deleted
    for entity, table in TABLES.items():
        rows = await QR.local_publication_state(pool, table)
        for r in rows:
            out_there = last.get((entity, r["id"]), False)
            if bool(r["published"]) == out_there:
                continue
            text = (f"{entity} {r['id']} is live out there but marked withdrawn here; the "
                    "next export settles it (a tombstone if it is no longer public)"
                    if out_there else
                    f"{entity} {r['id']} is marked published but our outbox never sent it "
                    "(or withdrew it); the next export settles it")
            report.add("publication_state", f"{entity}:{r['id']}", text,
                       _status(report.dry_run))
            if not report.dry_run:
                await QR.set_published(pool, table, r["id"], out_there)


def _verified(envelope: bytes) -> VerifiedBundle | None:
    try:
        return verify_bundle(from_cbor(envelope), trust=lambda _o, _k: True)
    except ProtocolError:
        return None


_DIRS = {f"{table}/": entity for entity, table in TABLES.items()}


def _path_key(path: str) -> tuple[str, str] | None:
    """``requests/R1.sync.txt`` -> ``("request", "R1")``."""
    for prefix, entity in _DIRS.items():
        if path.startswith(prefix) and path.endswith(".sync.txt"):
            return entity, path[len(prefix):-len(".sync.txt")]
    return None


async def check_outbox_withdrawn(pool: asyncpg.Pool, report: RepairReport) -> None:
    """Nothing withdrawn is still in our outbox. A bundle restored byte for byte above
    can carry a record made private or deleted since, in a part of the outbox the scrub
    bookkeeping believes clean; so can a bundle whose path index (``paths``, derived data
    the scrub searches) lost an entry. A peer added later would receive it. The index is
    rebuilt and the file withheld again (the signature holds). Scrubs still pending run
    before any push anyway."""
    report.checked.append("withdrawn records in the outbox")
    withdrawn = await QR.withdrawn_paths(pool)
    index = await QR.outbox_paths(pool)
    found = False
    for row in await QR.outbox_bundles(pool):
        seq = row["sequence"]
        files = record_files(bytes(row["envelope"]))
        indexed = index.get(seq)
        if indexed is not None and not set(files) <= set(indexed):
            report.add("outbox_index", f"outbox #{seq}",
                       f"The scrub's index of our bundle #{seq} misses some of its records; "
                       "a withdrawal would not reach them. Rebuilt from the bundle.",
                       _status(report.dry_run))
            if not report.dry_run:
                await QR.reset_outbox_paths(pool, [seq])
        # only where the scrub believes the bundle clean: a pending scrub runs anyway
        clean = {p for p, through in withdrawn.items() if through >= seq}
        held = still_held(files, clean) if clean else []
        if not held:
            continue
        found = True
        report.add("outbox_withdrawn", f"outbox #{seq}",
                   f"Our bundle #{seq} still carries " + plural(
                       len(held), "%(num)d record", "%(num)d records")
                   + f" withdrawn since ({', '.join(held[:5])}"
                   + (", ..." if len(held) > 5 else "") + "); a peer added later would "
                   "receive it. Withheld from the stored bundle (its signature still holds).",
                   _status(report.dry_run))
        if not report.dry_run:
            await QR.reset_outbox_paths(pool, [seq])
            await QR.rewind_scrub(pool, held, seq - 1)
    if found and not report.dry_run:
        await scrub_outbox_now(pool)


# --------------------------------------------------------------------------- received

async def check_received(pool: asyncpg.Pool, config: Config, origin: str,
                         report: RepairReport, peer_name: str | None) -> None:
    report.checked.append("received chains")
    holes = await QR.select_sync_received_by_sequence(pool)
    recorded = {(r["origin"], r["sequence"]) for r in await QR.select_sync_gaps(pool)}
    wanted = {(h["origin"], h["sequence"]) for h in holes} | recorded
    new = [h for h in holes if (h["origin"], h["sequence"]) not in recorded]
    if new and not report.dry_run:
        await QR.insert_sync_gaps(pool, [(h["origin"], h["sequence"]) for h in new])
    pending = await QR.select_sync_pending_by_exists(pool)
    if report.dry_run:
        for o, s in sorted(wanted):
            report.add("received_gap", f"{o} #{s}",
                       f"Bundle #{s} of origin {o} was never applied (a gap"
                       f"{'' if (o, s) in recorded else ', not recorded until now'}); "
                       "it would be fetched from the peers.", "would_fix")
        for p in pending:
            report.add("pending_trusted", f"{p['origin']} #{p['sequence']}",
                       f"Bundle #{p['sequence']} of origin {p['origin']} waits in the queue "
                       "although its key is trusted now; it would be applied.", "would_fix")
        return
    peers = [p for p in await P.list_peers(pool)
             if peer_name is None or p["name"] == peer_name]
    if peer_name is not None and not peers:
        raise SyncError("not_found", f"no peer named {peer_name}")
    errors: list[str] = []
    if wanted:
        for peer in peers:
            try:
                out = await TR.pull(pool, config, peer["name"], actor="repair",
                                    fetch_all_gaps=True)
                errors += [e["message"] for e in out.errors]
            except (SyncError, ProtocolError) as exc:
                errors.append(f"{peer['name']}: {exc.message}")
    applied = {(r.origin, r.sequence) for r in await replay_trusted_pending(pool, origin)}
    still = {(r["origin"], r["sequence"]) for r in await QR.select_sync_gaps(pool)}
    for o, s in sorted(wanted):
        if (o, s) in still:
            report.add("received_gap", f"{o} #{s}",
                       f"Bundle #{s} of origin {o} is still missing: no peer"
                       f"{' (' + peer_name + ')' if peer_name else ''} had it"
                       f"{'; ' + errors[0] if errors else ''}.", "not_fixed")
        else:
            report.add("received_gap", f"{o} #{s}",
                       f"Bundle #{s} of origin {o} was missing; fetched and applied.",
                       "fixed")
    for p in pending:
        key = (p["origin"], p["sequence"])
        report.add("pending_trusted", f"{p['origin']} #{p['sequence']}",
                   f"Queued bundle #{p['sequence']} of origin {p['origin']} had a trusted "
                   "key; re-applied." if key in applied or key not in still else
                   "Queued bundle could not be applied.", "fixed")


async def check_chain_breaks(pool: asyncpg.Pool, report: RepairReport) -> None:
    report.checked.append("chain breaks")
    for b in await G.chain_breaks(pool, limit=100):
        report.add("chain_break", f"{b['origin']} #{b['sequence']}",
                   f"Origin {b['origin']} bundle #{b['sequence']} names a predecessor "
                   f"{(b['previous'] or '-')[:12]} but we hold {b['expected'][:12]}: "
                   "the origin rewrote its chain. Ask its operator; nothing is changed "
                   "here.", "needs_operator")


# --------------------------------------------------------------------------- derived

async def check_invite_maps(pool: asyncpg.Pool, report: RepairReport) -> None:
    report.checked.append("invite maps")
    rows = await QR.select_invite_map_cache_by_graph_version(pool)
    for r in rows:
        _version, nodes = await invite_map.compute(pool, viewer_id=r["viewer_id"],
                                                   is_admin=r["is_admin"], depth=r["depth"])
        if json.loads(r["nodes"]) == json.loads(json.dumps(nodes, default=str)):
            continue
        report.add("invite_map_cache", f"{r['viewer_id']} depth {r['depth']}",
                   f"The cached invite map of member {r['viewer_id']} (depth {r['depth']}) "
                   "differs from the source tables; dropped, it is recomputed on the next "
                   "view.", _status(report.dry_run))
        if not report.dry_run:
            await QR.delete_invite_map_cache_by_viewer_id(pool, r["viewer_id"], r["depth"])


async def check_revoked(pool: asyncpg.Pool, report: RepairReport, drop: bool) -> None:
    report.checked.append("revoked keys")
    rows = await QR.count_sync_key_revocations(pool)
    for r in rows:
        counts = {}
        for entity, table in TABLES.items():
            counts[entity] = await QR.count_live_rows_of_origin(pool, table, r["origin"])
        total = sum(counts.values())
        if not total:
            continue
        listing = ", ".join(plural(n, f"%(num)d {e}", f"%(num)d {e}s")
                            for e, n in counts.items() if n)
        signed = plural(r["bundles"], "%(num)d bundle", "%(num)d bundles")
        if drop and not report.dry_run:
            for table in TABLES.values():
                await QR.withdraw_rows_of_origin(pool, table, r["origin"])
            status = "fixed"
            text = (f"Origin {r['origin']}: key {r['key_id']} was revoked after it signed "
                    f"{signed} we applied; withdrew {listing} of that "
                    "origin.")
        else:
            status = "would_fix" if drop else "needs_operator"
            text = (f"Origin {r['origin']}: key {r['key_id']} was revoked after it signed "
                    f"{signed} we applied; {listing} of that origin may "
                    "carry its records. Run with --drop-revoked to withdraw them.")
        report.add("revoked_origin", f"{r['origin']}/{r['key_id']}", text, status)


# --------------------------------------------------------------------------- entry point

async def repair(pool: asyncpg.Pool, config: Config, *, dry_run: bool = False,
                 peer: str | None = None, drop_revoked: bool = False,
                 actor: str = "cli") -> RepairReport:
    """Every check above, in order; logged as one ``repair`` sync job."""
    if peer is not None:
        await P.get_peer(pool, peer)  # a clean not_found before anything runs
    report = RepairReport(dry_run, peer)
    origin = await our_origin(pool, config)
    async with job(pool, "repair", actor, peer) as j:
        chain_ok = await check_outbox(pool, config, origin, report, peer)
        await check_outbox_withdrawn(pool, report)
        if chain_ok:
            await check_publication_state(pool, report)
        await check_received(pool, config, origin, report, peer)
        await check_chain_breaks(pool, report)
        await check_invite_maps(pool, report)
        await check_revoked(pool, report, drop_revoked)
        j.result = "noop" if dry_run or not report.findings else "ok"
        j.details = report.as_json()["counts"]
    log.info("sync repair", extra={"dry_run": dry_run, "findings": len(report.findings)})
    return report
