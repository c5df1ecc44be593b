"""Push delivery: each push subscription has a cursor in PostgreSQL; a worker POSTs the
log entries after it to the subscriber's inbox in batches and moves the cursor only after
the inbox answered. At least once: a receiver dedupes by digest.

Failures back off exponentially with jitter; after ``circuit_failures`` consecutive
failures the circuit opens and the subscriber is left alone for ``circuit_pause`` seconds,
then tried again from its cursor. Each subscription runs in its own task under a
concurrency cap, and claims are leases in PostgreSQL (``FOR UPDATE SKIP LOCKED``), so a
dead subscriber costs one timeout per attempt and never delays the others, and several
hub processes on one database never deliver the same subscription at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from typing import Any

import aiohttp
import asyncpg

from hub import queries as Q
from hub.typedefs import HubOptions
from protocol.containers import CBOR_MEDIA_TYPE

log = logging.getLogger("wb.hub.delivery")

#: the receiver will never take this bundle (it is invalid for it): skip it. A 413 is NOT
#: among them: the bundle is valid, only too large for this subscriber's limit, so the
#: delivery fails (visibly, with its reason) and retries until the subscriber takes it
#: or pulls it; skipping it would lose it for good.
PERMANENT = frozenset({400, 409, 410, 415, 422})


def backoff(failures: int, options: HubOptions) -> float:
    """Seconds to wait after ``failures`` consecutive failures (jittered, capped)."""
    if failures >= options.circuit_failures:
        return options.circuit_pause * (0.8 + 0.4 * random.random())
    delay = min(options.backoff_max, options.backoff_base * (2 ** (failures - 1)))
    return delay * (0.5 + random.random() / 2)


class Delivery:
    #: seconds between looks for due subscriptions when nothing wakes the worker
    TICK = 1.0

    def __init__(self, pool: asyncpg.Pool, client: aiohttp.ClientSession,
                 options: HubOptions, metrics: Any) -> None:
        self.pool = pool
        self.client = client
        self.options = options
        self.metrics = metrics
        self._event = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._main: asyncio.Task[None] | None = None
        # no push subscription existed at the last look: a push's wake-up skips the
        # claim query until the next look (a hub with none paid one query per push)
        self._idle = False
        self._looked = -math.inf  # (self._clock) when look() last ran
        self._clock = time.monotonic

    def wake(self) -> None:
        self._event.set()

    def subscribed(self) -> None:
        """A push subscription was just added here: look now, not at the next tick."""
        self._idle = False
        self._event.set()

    def start(self) -> None:
        if self.options.delivery:
            self._main = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        if self._main is not None:
            tasks.append(self._main)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def look(self) -> None:
        """At most once a tick: is there any push subscription at all? (One added by
        another process, e.g. the CLI, is seen here.)"""
        self._looked = self._clock()
        self._idle = not self._tasks and not await Q.has_push_subscriptions(self.pool)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self.TICK)
            self._event.clear()
            try:
                # by the clock, not by a quiet tick: pushes that wake the worker more
                # often than once a tick would never let one pass (and every push
                # paid the claim query on a hub without subscriptions)
                if self._clock() - self._looked >= self.TICK:
                    await self.look()
                if self._idle:
                    continue
                await self.dispatch()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("delivery dispatcher cannot reach the database")
            except Exception:
                log.exception("delivery dispatcher failed")

    async def dispatch(self) -> None:
        free = self.options.delivery_concurrency - len(self._tasks)
        if free <= 0:
            return
        for sub in await Q.claim_subscriptions(self.pool, free, lease_seconds=self._lease()):
            if sub["id"] in self._tasks:  # finishing here: hand the claim back; the task's
                await Q.release_subscription(self.pool, sub["id"])  # end re-dispatches
                continue
            task = asyncio.create_task(self._deliver(sub))
            self._tasks[sub["id"]] = task
            task.add_done_callback(lambda t, sid=sub["id"]: self._done(sid, t))

    def _done(self, sub_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(sub_id) is task:
            del self._tasks[sub_id]
        self._event.set()  # a slot is free: look for more due subscriptions

    def _lease(self) -> float:
        return self.options.delivery_timeout * 2 + 30

    async def _deliver(self, sub: asyncpg.Record) -> None:
        """Deliver batches until the subscriber is caught up or fails."""
        cursor = sub["cursor"]
        try:
            while True:
                head, _ = await Q.log_state(self.pool)
                rows = await Q.log_after(self.pool, cursor, self.options.delivery_batch,
                                         origins=sub["origins"], entities=sub["entities"],
                                         upto=head)
                _, pruned = await Q.log_state(self.pool)  # after the read: sees a prune
                if cursor < pruned:  # never skip silently; the operator must resync it
                    raise _Failed(f"outdated_cursor: entries up to {pruned} were pruned; "
                                  f"the subscriber must resync from a snapshot")
                if not rows:
                    await Q.advance_cursor(self.pool, sub["id"], head, 0, release=True)
                    return
                delivered = 0
                for row in rows:
                    if row["received_from"] != sub["peer_name"] \
                            and row["hops"] < self.options.hop_limit:
                        await self._post(sub, row)
                        delivered += 1
                    cursor = row["seq"]
                last = len(rows) < self.options.delivery_batch
                await Q.advance_cursor(self.pool, sub["id"], head if last else cursor,
                                       delivered, release=last, lease_seconds=self._lease())
                self.metrics.deliveries.labels("ok").inc(delivered)
                if last:
                    return
        except _Failed as exc:
            failures = sub["failures"] + 1
            delay = backoff(failures, self.options)
            # keep the progress made before the failure; one statement, so the
            # subscription is never due (claimable) while this task still runs
            await Q.delivery_failed(self.pool, sub["id"], cursor, str(exc), delay)
            self.metrics.deliveries.labels("failed").inc()
            log.info("push delivery failed", extra={"subscription": sub["id"],
                                                   "peer": sub["peer_name"], "error": str(exc),
                                                   "retry_in": round(delay, 1)})

    async def _post(self, sub: asyncpg.Record, row: asyncpg.Record) -> None:
        headers = {"Content-Type": CBOR_MEDIA_TYPE, "X-WB-Hub-Seq": str(row["seq"]),
                   "X-WB-Digest": row["digest"], "X-WB-Hops": str(row["hops"] + 1)}
        if sub["inbox_token"]:
            headers["Authorization"] = f"Bearer {sub['inbox_token']}"
        try:
            async with self.client.post(
                    sub["inbox_url"], data=bytes(row["container"]), headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.options.delivery_timeout)) as r:
                await r.read()
                if r.status < 300:
                    return
                if r.status in PERMANENT:  # the receiver will never take it: skip it
                    self.metrics.deliveries.labels("refused").inc()
                    log.info("inbox refused a bundle", extra={
                        "subscription": sub["id"], "digest": row["digest"],
                        "status": r.status})
                    return
                if r.status == 413:
                    raise _Failed(
                        f"bundle_too_large: the inbox refused hub seq {row['seq']} "
                        f"({len(row['container'])} bytes, digest {row['digest'][:16]}) as "
                        f"too large; raise the subscriber's WB_MAX_BUNDLE_BYTES or let it "
                        f"pull /api/v2/bundles?since={row['seq'] - 1}")
                raise _Failed(f"inbox answered {r.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Failed(f"{type(exc).__name__}: {exc}") from None


class _Failed(Exception):
    pass
