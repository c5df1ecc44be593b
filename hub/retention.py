"""Log retention: the prune job of ``wb hub serve`` and ``wb hub prune``.

Log entries (and their stored bundles) older than ``WB_HUB_RETENTION_DAYS`` are deleted
in one transaction, except the latest bundle of each origin's chain, and
``hub_state.pruned_through`` moves forward: a reader whose cursor is below it gets
``410 outdated_cursor`` (pull), an ``outdated_cursor`` frame (stream) or a recorded
delivery error (push), never a silent gap. The record index is current state and is
not pruned, nor are the tombstones (``hub_tombstones``): a pruned bundle re-pushed later
is logged again without the records withdrawn since.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from hub import queries as Q
from hub.typedefs import HubOptions
from service.tasks import cancel_and_wait

log = logging.getLogger("wb.hub.retention")


async def prune(pool: asyncpg.Pool, *, before_seq: int | None = None,
                older_than_days: float | None = None) -> Q.Pruned:
    async with pool.acquire() as conn:
        result = await Q.prune_log(conn, before_seq=before_seq,
                                   older_than_days=older_than_days)
    if result.entries:
        log.info("log pruned", extra={"pruned_through": result.pruned_through,
                                      "entries": result.entries, "bundles": result.bundles})
    return result


class Pruner:
    """Runs :func:`prune` every ``prune_interval`` seconds while retention is on."""

    def __init__(self, pool: asyncpg.Pool, options: HubOptions) -> None:
        self.pool = pool
        self.options = options
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.options.retention_days > 0 and self.options.prune_interval > 0

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def run_once(self) -> Q.Pruned:
        return await prune(self.pool, older_than_days=self.options.retention_days)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("prune job cannot reach the database; retrying next interval")
            except Exception:
                log.exception("prune job failed")
            await asyncio.sleep(self.options.prune_interval)
