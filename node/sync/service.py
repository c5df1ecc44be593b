"""Sync operations shared by the CLI, the inbox handler and the scheduler: each one
runs, is timed, and is logged to ``sync_jobs`` (and the app's metrics when given)."""

from __future__ import annotations

import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from node.sync import queries as Q
from node.sync import queries_peers as QP
from node.sync.export import ExportResult, export
from node.sync.identity import ensure_state, load_or_create_key
from node.sync.importer import ImportResult, SyncError, import_bundle
from protocol.bundle import Bundle
from protocol.errors import ProtocolError
from protocol.limits import Limits
from service.limits import limits_from_config
from service.settings import Config

log = logging.getLogger("wb.node.sync")


@dataclass
class Job:
    kind: str
    actor: str
    peer: str | None = None
    result: str = "ok"
    error_code: str | None = None
    bundle_bytes: int = 0
    bundles: int = 0
    records_in: int = 0
    records_applied: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def add_import(self, res: ImportResult) -> None:
        self.bundles += 1
        self.bundle_bytes += res.bundle_bytes
        self.records_in += res.records_in
        self.records_applied += res.applied_total


@asynccontextmanager
async def job(pool: asyncpg.Pool, kind: str, actor: str, peer: str | None = None,
              metrics: Any = None):
    """Time a sync job and log it, whatever its outcome."""
    j = Job(kind, actor, peer)
    started = time.perf_counter()
    try:
        yield j
    except (ProtocolError, SyncError) as exc:
        j.result, j.error_code = "rejected", exc.code
        raise
    except Exception as exc:
        j.result, j.error_code = "error", type(exc).__name__
        raise
    finally:
        ms = int((time.perf_counter() - started) * 1000)
        try:
            await QP.insert_sync_jobs(pool, ms, j.actor, j.peer, j.kind, j.result, j.error_code,
                                      j.bundle_bytes, j.bundles, j.records_in, j.records_applied,
                                      json.dumps(j.details))
        except Exception:  # noqa: BLE001 - the job log must never hide the real outcome
            log.exception("could not log sync job")
        if metrics is not None:
            metrics.sync_jobs.labels(kind=kind, result=j.result).inc()
        log.info("sync job", extra={"kind": kind, "peer": peer, "result": j.result,
                                    "ms": ms, "records": j.records_in})


async def our_origin(pool: asyncpg.Pool, config: Config) -> str:
    return await ensure_state(pool, load_or_create_key(config))


async def run_export(pool: asyncpg.Pool, config: Config, *, snapshot: bool = False,
                     actor: str = "cli", metrics: Any = None) -> ExportResult:
    async with job(pool, "export", actor, metrics=metrics) as j:
        res = await export(pool, config, snapshot=snapshot)
        j.result = "ok" if res.sequence else "noop"
        j.records_in = j.records_applied = res.record_count
        j.bundle_bytes = len(res.envelope or b"")
        j.bundles = 1 if res.sequence else 0
        j.details = {"sequence": res.sequence, "kind": res.kind, "counts": res.counts}
        return res


async def run_import(pool: asyncpg.Pool, config: Config, bundles: list[Bundle], *,
                     kind: str = "import", actor: str = "cli", peer: str | None = None,
                     metrics: Any = None, limits: Limits | None = None
                     ) -> list[ImportResult]:
    """Import ``bundles`` against ``limits`` (default: the node's, from its settings)."""
    origin = await our_origin(pool, config)
    limits = limits or limits_from_config(config)
    results: list[ImportResult] = []
    async with job(pool, kind, actor, peer, metrics=metrics) as j:
        for bundle in bundles:
            res = await import_bundle(pool, bundle, our_origin=origin, peer=peer,
                                      limits=limits)
            j.add_import(res)
            results.append(res)
        outcomes = {r.result for r in results}
        j.result = ("pending" if outcomes == {"pending"} else
                    "duplicate" if outcomes == {"duplicate"} else
                    "ok" if results else "noop")
        j.details = {"digests": [r.digest for r in results][:50]}
    return results


# --------------------------------------------------------------------------- grace period

def leaves_in_text(seconds: int) -> str:
    """``100`` -> ``"1 min 40 s"``; ``120`` -> ``"2 min"``; ``40`` -> ``"40 s"``."""
    seconds = max(0, int(seconds))
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


async def publish_holds(pool: asyncpg.Pool, config: Config, *,
                        requests: list[str] | tuple[str, ...] = (),
                        comments: list[str] | tuple[str, ...] = (),
                        users: list[str] | tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """The given local records still inside the publishing grace period, keyed
    ``"kind:id"``: ``seconds`` left, ``text`` ("1 min 40 s") and ``published`` (an edit of
    a record that is already out, so undoing it means withdrawing the record)."""
    from node.sync.export import publish_delay

    delay = publish_delay(config)
    out: dict[str, dict[str, Any]] = {}
    for kind, ids in (("request", requests), ("comment", comments), ("user", users)):
        for row in await Q.held(pool, delay, kind, list(ids)):
            seconds = max(1, row["leaves_in"] or 1)
            out[f"{kind}:{row['id']}"] = {"seconds": seconds, "text": leaves_in_text(seconds),
                                          "published": bool(row["published"])}
    return out
