"""Group commit of the log: stored pushes get their hub sequences in batches.

A push's transaction stores its bundle and index rows with a ``hub_log_pending`` row and
commits alongside other pushes (:func:`hub.queries.store_bundle`); the push is answered
once the log has it. While any push of this process waits, one task per pool runs
:func:`hub.queries.sequence_pending` (one short transaction under the ``hub_state`` row
lock, one WAL flush for every push committed so far) and hands each waiter its
sequence. Before, every push held that lock through its own commit.
"""

from __future__ import annotations

import asyncio

import asyncpg

from hub import queries as Q


class _Sequencer:
    """Gives stored pushes their log sequences, for one pool: while any push of this
    process waits, one task runs :func:`hub.queries.sequence_pending` again and again,
    each run logging every push committed so far (one WAL flush for the batch), and
    resolves the waiters. A push logged by another process's run (whose row lock ours
    waited for) is looked up; it is an error only if its entry vanished (pruned) between
    its commit and its sequencing."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.waiting: dict[str, list[asyncio.Future[int]]] = {}
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        misses: dict[str, int] = {}
        try:
            while self.waiting:  # (a waiter may come while the connection goes back)
                async with self.pool.acquire() as conn:
                    while self.waiting:
                        await self._once(conn, misses)
        except BaseException as exc:  # the database went away, or we were cancelled
            for digest in list(self.waiting):
                self._settle(digest, exc=exc if isinstance(exc, Exception)
                             else RuntimeError("sequencing stopped"))
            if not isinstance(exc, Exception):
                raise
        finally:
            if _sequencers.get(id(self.pool)) is self:
                del _sequencers[id(self.pool)]

    async def _once(self, conn: asyncpg.Connection, misses: dict[str, int]) -> None:
        found = await Q.sequence_pending(conn)
        rest = [d for d in self.waiting if d not in found]
        if rest:
            found.update(await Q.logged_seqs(conn, rest))
        for digest in list(self.waiting):
            seq = found.get(digest)
            if seq is not None:
                self._settle(digest, seq=seq)
                continue
            misses[digest] = misses.get(digest, 0) + 1
            if misses[digest] >= 5:
                self._settle(digest, exc=RuntimeError(
                    f"bundle {digest} is stored but has no log entry"))

    def _settle(self, digest: str, *, seq: int | None = None,
                exc: Exception | None = None) -> None:
        for fut in self.waiting.pop(digest, []):
            if fut.done():  # its push was cancelled (the peer hung up)
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(seq)  # type: ignore[arg-type]


#: The active sequencer of each pool (by id: asyncpg pools cannot be weakly referenced;
#: an entry lives only while its task runs).
_sequencers: dict[int, _Sequencer] = {}


async def sequence(pool: asyncpg.Pool, digest: str) -> int:
    """The hub sequence of a stored bundle, once the log has it (group commit of the
    log: see :class:`_Sequencer`)."""
    sequencer = _sequencers.get(id(pool))
    if sequencer is None or sequencer.pool is not pool:
        sequencer = _sequencers[id(pool)] = _Sequencer(pool)
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    sequencer.waiting.setdefault(digest, []).append(fut)
    if sequencer.task is None:
        sequencer.task = asyncio.create_task(sequencer.run())
    return await fut
