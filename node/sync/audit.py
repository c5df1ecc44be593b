"""Auditing a hub's transparency log (docs/transparency.md).

For each v2 hub peer the node keeps the newest signed checkpoint it has seen (and the
hub's note key, pinned at the first audit), and:

- checks every new checkpoint's signature and its consistency with the one kept (a
  same-size checkpoint with another root, or a hub unable to prove consistency, is a
  ``fork``: the two signed notes together are a portable proof of misbehaviour);
- checks that each bundle the hub acknowledged (its ``hub_seq``) is included, as the
  acknowledged (origin, sequence, digest), in a signed checkpoint within
  ``WB_SYNC_AUDIT_DELAY`` seconds (else an ``omission`` or ``wrong_leaf``);
- checks that a pulled range is complete: every ``hub_seq`` the hub skipped in a page
  must be absent from its tree too (``omission`` otherwise).

Incidents are rows of ``sync_hub_incidents`` with their evidence as JSON; the sync
control center shows them and ``wb sync audit [HUB]`` runs the checks by hand.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

from node.sync import peers as P
from node.sync import queries_audit as Q
from node.sync.errors import SyncError
from protocol import tlog as L

log = logging.getLogger("wb.node.sync.audit")

Conn = asyncpg.Connection | asyncpg.Pool

MAX_ANSWER = 1 << 20  # a checkpoint or proof is a few kB; a hub may not make us buffer more


@dataclass
class AuditReport:
    peer: str
    size: int = 0
    checkpoint: str | None = None
    included: int = 0
    waiting: int = 0
    incidents: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"peer": self.peer, "size": self.size, "checkpoint": self.checkpoint,
                "included": self.included, "waiting": self.waiting,
                "incidents": self.incidents, "error": self.error}


class HubUnreachable(Exception):
    pass


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


# ------------------------------------------------------------------------- queries

async def record_ack(conn: Conn, peer: str, answer: dict[str, Any]) -> None:
    """Remember a hub's answer to a push (``stored`` or ``duplicate`` with hub_seq)."""
    hub_seq = answer.get("hub_seq")
    if not isinstance(hub_seq, int) or not isinstance(answer.get("digest"), str) \
            or not isinstance(answer.get("origin"), str):
        return
    await Q.insert_ack(conn, peer, hub_seq, answer["origin"], answer.get("sequence"),
                       answer["digest"])


async def record_skipped(conn: Conn, peer: str, skipped: list[int]) -> None:
    """``hub_seq`` values a pulled page skipped: each must be absent from the tree."""
    if skipped:
        await Q.insert_skipped(conn, peer, skipped)


MAX_SKIPPED = 10_000


def skipped_of(since: int, seqs: list[int], following: int) -> list[int]:
    """The hub sequences in ``(since, following]`` that a page did not carry."""
    have = set(seqs)
    top = max([following, *seqs]) if seqs else following
    return [s for s in range(since + 1, min(top, since + MAX_SKIPPED) + 1) if s not in have]


async def incidents(conn: Conn, peer: str | None = None, limit: int = 50
                    ) -> list[asyncpg.Record]:
    return await Q.select_incidents(conn, peer, limit)


async def latest_checkpoints(conn: Conn) -> list[asyncpg.Record]:
    return await Q.select_latest_checkpoints(conn)


async def _incident(conn: Conn, report: AuditReport, kind: str, message: str,
                    evidence: dict[str, Any]) -> None:
    dup = await Q.incident_exists(conn, report.peer, kind, json.dumps(evidence))
    if dup is None:
        await Q.insert_incident(conn, report.peer, kind, message, json.dumps(evidence))
        log.warning("hub audit incident", extra={"peer": report.peer, "kind": kind,
                                                 "detail": message})
    report.incidents.append({"kind": kind, "message": message, "evidence": evidence})


# ---------------------------------------------------------------------------- HTTP

async def _get(session: aiohttp.ClientSession, url: str, **params: Any
               ) -> tuple[int, bytes]:
    try:
        async with session.get(url, params={k: str(v) for k, v in params.items()}) as r:
            body = await r.content.read(MAX_ANSWER + 1)
            while len(body) <= MAX_ANSWER and not r.content.at_eof():
                body += await r.content.read(MAX_ANSWER + 1 - len(body))
            if len(body) > MAX_ANSWER:
                raise HubUnreachable(f"{url}: answer larger than {MAX_ANSWER} bytes")
            return r.status, body
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise HubUnreachable(f"{url}: {exc}") from None


async def _json(session: aiohttp.ClientSession, url: str, **params: Any
                ) -> tuple[int, dict[str, Any]]:
    status, body = await _get(session, url, **params)
    try:
        value = json.loads(body)
    except ValueError:
        value = {}
    return status, value if isinstance(value, dict) else {}


def _hashes(items: Any) -> list[bytes]:
    if not isinstance(items, list):
        raise L.TlogError("proof is not a list")
    try:
        return [base64.b64decode(x, validate=True) for x in items]
    except (ValueError, TypeError):
        raise L.TlogError("proof hash is not base64") from None


# --------------------------------------------------------------------------- audit

@dataclass(frozen=True)
class Policy:
    delay: float = 300.0
    witnesses: tuple[L.NoteVerifier, ...] = ()
    quorum: int = 0


def policy_of(config: Any) -> Policy:
    """``WB_SYNC_AUDIT_DELAY``, ``WB_SYNC_WITNESSES`` and ``WB_SYNC_WITNESS_QUORUM``."""
    witnesses = tuple(L.parse_verifier(item) for item in
                      config["WB_SYNC_WITNESSES"].replace(",", " ").split())
    return Policy(float(config.get_int("WB_SYNC_AUDIT_DELAY")), witnesses,
                  config.get_int("WB_SYNC_WITNESS_QUORUM"))


async def audit_hub(pool: asyncpg.Pool, peer: asyncpg.Record, session: aiohttp.ClientSession,
                    *, policy: Policy, extra_notes: list[bytes] = ()) -> AuditReport:
    """Run every check against one hub; ``extra_notes`` are checkpoints of the same
    hub that other nodes saw (gossip): each must be consistent with ours."""
    name, base = peer["name"], peer["location"].rstrip("/")
    report = AuditReport(name)
    kept = await Q.select_hub_log(pool, name)
    if kept is None:
        status, body = await _get(session, f"{base}/tlog/key")
        if status != 200:
            report.error = f"the hub has no transparency log ({status} on /tlog/key)"
            return report
        try:
            verifier = L.parse_verifier(body.decode("utf-8", "replace"))
        except L.TlogError as exc:
            report.error = f"the hub's log key is malformed: {exc.message}"
            return report
        await Q.insert_hub_log(pool, name, verifier.text())
        kept = await Q.select_hub_log(pool, name)
    verifier = L.parse_verifier(kept["verifier"])
    status, note = await _get(session, f"{base}/tlog/checkpoint")
    if status != 200:
        report.error = f"/tlog/checkpoint answered {status}"
        return report
    notes = [note, *extra_notes]
    current = kept
    for i, n in enumerate(notes):
        try:
            cp, parsed = L.verify_checkpoint(n, verifier)
        except L.TlogError as exc:
            if i == 0:
                await _incident(pool, report, "bad_checkpoint",
                                f"the hub served a checkpoint that does not verify: "
                                f"{exc.message}", {"note": n.decode("utf-8", "replace"),
                                                   "verifier": verifier.text()})
            continue  # a gossiped note that does not verify proves nothing
        adopt = i == 0
        if adopt and policy.quorum > 0:
            got = L.count_cosignatures(parsed, policy.witnesses)
            if got < policy.quorum:  # still checked for a fork: the hub signed it
                adopt = False
                report.error = (f"checkpoint of size {cp.size} has {got} of the "
                                f"{policy.quorum} witness cosignatures required; kept the "
                                f"previous one")
        current = await _check_against(pool, session, base, report, current, cp, n,
                                       adopt=adopt)
        if current is None:
            return report
    report.size = current["size"]
    report.checkpoint = None if current["note"] is None else bytes(current["note"]).decode()
    if current["note"] is not None:
        await _check_acks(pool, session, base, report, current, policy.delay)
    return report


async def _check_against(pool: asyncpg.Pool, session: aiohttp.ClientSession, base: str,
                         report: AuditReport, kept: asyncpg.Record, cp: L.Checkpoint,
                         note: bytes, *, adopt: bool,
                         source: str | None = None) -> asyncpg.Record | None:
    """Check ``cp`` against the kept checkpoint; keep it if it is newer and ``adopt``.
    ``source``: the node that told us of ``note`` (gossip), named in the evidence."""
    old_note = None if kept["note"] is None else bytes(kept["note"])
    old_size, old_root = kept["size"], None if kept["root"] is None else bytes(kept["root"])
    evidence = {"checkpoint_a": None if old_note is None else old_note.decode(),
                "checkpoint_b": note.decode(), "verifier": kept["verifier"]}
    if source is not None:
        evidence["gossip_source"] = source
    if old_note is None:
        pass
    elif cp.size == old_size:
        if cp.root != old_root:
            await _incident(pool, report, "fork", f"two signed checkpoints of size {cp.size} "
                            "with different roots", evidence)
            return None
    else:
        small, big = (old_size, cp.size) if cp.size > old_size else (cp.size, old_size)
        small_root, big_root = (old_root, cp.root) if cp.size > old_size \
            else (cp.root, old_root)
        status, body = await _json(session, f"{base}/tlog/proof/consistency",
                                   old=small, size=big)
        if status >= 500 or status == 429:  # unavailable, not a refusal: ask again later
            raise HubUnreachable(f"{base}/tlog/proof/consistency answered {status}")
        try:
            if status != 200:
                raise L.TlogError(f"the hub gave no consistency proof ({status})")
            assert small_root is not None and big_root is not None
            L.verify_consistency(small, small_root, big, big_root, _hashes(body.get("proof")))
        except L.TlogError as exc:
            evidence["proof"] = body.get("proof")
            await _incident(pool, report, "fork", f"checkpoints of size {small} and {big} "
                            f"are not consistent: {exc.message}", evidence)
            return None
        if cp.size < old_size:
            return kept  # an older checkpoint served again: consistent, keep ours
    if not adopt:
        return kept
    await Q.update_hub_log_checkpoint(pool, report.peer, cp.size, cp.root, note)
    return await Q.select_hub_log(pool, report.peer)


async def check_checkpoint(pool: asyncpg.Pool, peer: Any, session: aiohttp.ClientSession,
                           note: bytes, *, policy: Policy, adopt: bool,
                           source: str | None = None) -> AuditReport:
    """Check one signed checkpoint of ``peer``'s log against the one kept: a note the
    hub streamed (``adopt``: kept when newer, consistent and cosigned as the policy asks)
    or one another node told us of (``source``: never adopted, a fork is evidence).
    The hub's key must be pinned already (by :func:`audit_hub`)."""
    report = AuditReport(peer["name"])
    kept = await Q.select_hub_log(pool, peer["name"])
    if kept is None or kept["note"] is None:
        report.error = "no checkpoint of this hub kept yet: run the audit first"
        return report
    try:
        cp, parsed = L.verify_checkpoint(note, L.parse_verifier(kept["verifier"]))
    except L.TlogError as exc:
        if source is None:  # the hub itself sent it: its own answer is the evidence
            await _incident(pool, report, "bad_checkpoint",
                            f"the hub streamed a checkpoint that does not verify: "
                            f"{exc.message}", {"note": note.decode("utf-8", "replace"),
                                               "verifier": kept["verifier"]})
        else:
            report.error = f"not a checkpoint of this hub's log: {exc.message}"
        return report
    if adopt and policy.quorum > 0 \
            and L.count_cosignatures(parsed, policy.witnesses) < policy.quorum:
        adopt = False
    current = await _check_against(pool, session, peer["location"].rstrip("/"), report,
                                   kept, cp, note, adopt=adopt, source=source)
    if current is not None:
        report.size = current["size"]
        report.checkpoint = bytes(current["note"]).decode()
    return report


async def _check_acks(pool: asyncpg.Pool, session: aiohttp.ClientSession, base: str,
                      report: AuditReport, kept: asyncpg.Record, delay: float) -> None:
    size, root, note = kept["size"], bytes(kept["root"]), bytes(kept["note"]).decode()
    rows = await Q.select_unchecked_acks(pool, report.peer)
    for row in rows:
        skipped = row["digest"] == ""
        status, body = await _json(session, f"{base}/tlog/proof/inclusion",
                                   hub_seq=row["hub_seq"], size=size)
        code = body.get("error", {}).get("code") if isinstance(body.get("error"), dict) \
            else None
        evidence: dict[str, Any] = {"checkpoint": note, "hub_seq": row["hub_seq"],
                                    "verifier": kept["verifier"]}
        if status == 200:
            try:
                leaf = base64.b64decode(body.get("leaf", ""), validate=True)
                index = body.get("leaf_index")
                if not isinstance(index, int):
                    raise L.TlogError("no leaf_index")
                L.verify_inclusion(L.leaf_hash(leaf), index, size,
                                   _hashes(body.get("proof")), root)
                facts = L.parse_leaf(leaf)
            except (L.TlogError, ValueError) as exc:
                message = getattr(exc, "message", str(exc))
                evidence.update(leaf=body.get("leaf"), proof=body.get("proof"))
                await _incident(pool, report, "bad_proof", f"hub_seq {row['hub_seq']}: the "
                                f"inclusion proof does not verify: {message}", evidence)
                await _flag(pool, report.peer, row["hub_seq"])
                continue
            evidence.update(leaf=body.get("leaf"), leaf_index=index, proof=body.get("proof"))
            if skipped:
                await _incident(pool, report, "omission",
                                f"hub_seq {row['hub_seq']} is in the signed log but the "
                                f"hub left it out of a pulled page", evidence)
            elif (facts.hub_seq, facts.origin, facts.sequence, facts.digest) != \
                    (row["hub_seq"], row["origin"], row["sequence"], row["digest"]):
                evidence["acknowledged"] = {"origin": row["origin"],
                                            "sequence": row["sequence"],
                                            "digest": row["digest"]}
                await _incident(pool, report, "wrong_leaf",
                                f"hub_seq {row['hub_seq']} was acknowledged for "
                                f"{row['digest']} but the signed log holds another bundle",
                                evidence)
            await Q.mark_ack_included(pool, report.peer, row["hub_seq"])
            report.included += 1
            continue
        if skipped and code == "not_in_log":
            await Q.mark_ack_included(pool, report.peer, row["hub_seq"])
            continue
        if row["age"] >= delay and not skipped:
            evidence["acknowledged"] = {"origin": row["origin"], "sequence": row["sequence"],
                                        "digest": row["digest"], "answer": code or status}
            await _incident(pool, report, "omission",
                            f"hub_seq {row['hub_seq']} ({row['digest']}) was acknowledged "
                            f"{int(row['age'])} s ago and is not in the signed log of size "
                            f"{size}", evidence)
            await _flag(pool, report.peer, row["hub_seq"])
            continue
        report.waiting += 1


async def _flag(pool: asyncpg.Pool, peer: str, hub_seq: int) -> None:
    await Q.mark_ack_flagged(pool, peer, hub_seq)


# ------------------------------------------------------------------------- service

async def audit(pool: asyncpg.Pool, config: Any, name: str | None = None, *,
                session: aiohttp.ClientSession | None = None,
                notes: list[bytes] = (), request_timeout: float = 30) -> list[AuditReport]:
    """Audit one hub peer (``name``) or every v2 hub peer; ``notes`` are gossiped
    checkpoints to check against ``name``'s log."""
    if name is not None:
        peer = await P.get_peer(pool, name)
        if peer["kind"] != "hub" or peer["api"] != "v2":
            raise SyncError("not_auditable", f"peer {name} is not a v2 hub: only v2 hubs "
                                             "keep a transparency log")
        peers = [peer]
    else:
        peers = [p for p in await P.list_peers(pool) if p["kind"] == "hub" and p["api"] == "v2"]
    policy = policy_of(config)
    own = session or aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=request_timeout, connect=10))
    reports = []
    try:
        for peer in peers:
            try:
                reports.append(await audit_hub(pool, peer, own, policy=policy,
                                               extra_notes=list(notes) if name else []))
            except HubUnreachable as exc:
                reports.append(AuditReport(peer["name"], error=str(exc)))
    finally:
        if session is None:
            await own.close()
    return reports


async def check_streamed(pool: asyncpg.Pool, config: Any, peer: Any,
                         session: aiohttp.ClientSession, note: bytes) -> AuditReport | None:
    """A checkpoint the hub's stream sent (an ``info`` frame, code ``checkpoint``): checked
    against the one kept and kept when newer (the first one pins the hub's key through a
    full audit). Never fails the stream: a hub out of reach is checked at the next pull."""
    try:
        if (await Q.select_hub_log(pool, peer["name"])) is None:
            return await audit_hub(pool, peer, session, policy=policy_of(config),
                                   extra_notes=[note])
        return await check_checkpoint(pool, peer, session, note, policy=policy_of(config),
                                      adopt=True)
    except (HubUnreachable, asyncpg.PostgresError, L.TlogError, ValueError) as exc:
        log.warning("streamed checkpoint not checked",
                    extra={"peer": peer["name"], "error": str(exc)})
        return None


async def audit_after_pull(pool: asyncpg.Pool, config: Any, peer: Any,
                           session: aiohttp.ClientSession) -> None:
    """The audit a pull of a v2 hub ends with: never fails the pull."""
    try:
        await audit_hub(pool, peer, session, policy=policy_of(config))
    except (HubUnreachable, asyncpg.PostgresError, L.TlogError, ValueError) as exc:
        log.warning("hub audit did not run", extra={"peer": peer["name"], "error": str(exc)})
