"""The ingest processes: pushes verified and stored outside the hub's event loop.

A big push is CPU work first (decode, verify, index rows: :func:`hub.ingest.check`) and
then database work (:func:`hub.ingest.store`). Both run in a process of this pool, which
keeps a small connection pool of its own: the hub process only reads the request and
answers with the :class:`hub.ingest.Outcome` that comes back. Before, the verified
index rows (a thousand rows of fourteen columns for a 1,000-record bundle) were pickled
back to the hub process, unpickled there and encoded again for PostgreSQL; the hub
process spent 5-6 ms of CPU per such push on that, the processes 2-3 ms more
(docs/benchmarks.md, "Session 8").

What crosses the process boundary is the received bytes one way and plain tuples the
other: rejections as ``("protocol" | "refused", ...)`` (exception objects with
required constructor arguments do not survive pickling), database failures as
``("database", lost, message)`` so that the hub's outage gate (``service.outage``)
still answers 503 for them, and anything else as ``("error", message)`` after the
process logged it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub import ingest as I
from protocol.errors import ProtocolError
from protocol.limits import Limits
from service import outage

log = logging.getLogger("wb.hub.ingest")


@dataclass(frozen=True)
class WorkerSetup:
    """What every process of the pool is started with."""

    owner: int  # the hub process: the pool's processes end with it
    # "": verification only (no store in the processes); never in a repr (a password)
    database_url: str = field(default="", repr=False)
    log_level: str = "INFO"
    log_format: str = "text"
    event_loop: str = "auto"


# this process's own connections and loop (a process of the pool serves one call at a
# time; its loop runs only during a call)
_state: dict[str, Any] = {}


def _init(setup: WorkerSetup) -> None:
    from service.lifetime import pool_worker_init
    from service.logs import setup_logging

    pool_worker_init(setup.owner)
    # Ctrl+C in a terminal reaches the whole process group: the hub stops its processes
    # itself, and a KeyboardInterrupt sent back from one would stop the hub's own loop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(setup.log_level, setup.log_format)
    _state["setup"] = setup


def _loop_and_pool() -> tuple[asyncio.AbstractEventLoop, asyncpg.Pool]:
    if "loop" not in _state:
        from multiprocessing import util

        from service.serving import event_loop_factory

        factory = event_loop_factory(_state["setup"].event_loop) or asyncio.new_event_loop
        _state["loop"] = factory()
        # closed when the process leaves (multiprocessing runs its finalizers then)
        util.Finalize(None, _close, exitpriority=10)
    loop = _state["loop"]
    if "pool" not in _state:
        from service import db

        # two connections: the push's transaction, then the group commit of the log
        # (hub.sequencer), which takes its own once the first went back
        _state["pool"] = loop.run_until_complete(
            db.create_pool(_state["setup"].database_url, max_size=2, reset_session=False))
    return loop, _state["pool"]


def _close() -> None:
    loop, pool = _state.pop("loop", None), _state.pop("pool", None)
    if loop is None or pool is None:
        return
    try:
        loop.run_until_complete(asyncio.wait_for(pool.close(), 5))
    except (Exception, TimeoutError):  # noqa: BLE001 - leaving anyway
        pool.terminate()
    loop.close()


def _refusal(exc: I.Refused | ProtocolError) -> tuple:
    if isinstance(exc, ProtocolError):
        return ("protocol", exc.code, exc.message, exc.path)
    return ("refused", exc.code, exc.message, exc.extra)


def check_in_worker(data: bytes, content_type: str, limits: Limits) -> tuple:
    """:func:`hub.ingest.check` for the pool: ``("ok", Checked)`` or a rejection."""
    try:
        return ("ok", I.check(data, content_type, limits))
    except (ProtocolError, I.Refused) as exc:
        return _refusal(exc)


async def _store(pool: asyncpg.Pool, checked: I.Checked, data: bytes, peer: str | None,
                 hops: int) -> I.Outcome:
    """:func:`hub.ingest.store`, after a few turns of this process's loop: between calls
    it does not run, so a connection the server closed meanwhile (a restart, an idle
    timeout) is only seen now, and the pool replaces it instead of handing it over."""
    for _ in range(3):
        await asyncio.sleep(0)
    return await I.store(pool, checked, data, peer=peer, hops=hops)


def ingest_in_worker(data: bytes, content_type: str, limits: Limits, peer: str | None,
                     hops: int) -> tuple:
    """Check and store one push here: ``("ok", Outcome)`` or a rejection or failure."""
    checked = check_in_worker(data, content_type, limits)
    if checked[0] != "ok":
        return checked
    digest = checked[1].digest
    try:
        loop, pool = _loop_and_pool()
        return ("ok", loop.run_until_complete(_store(pool, checked[1], data, peer, hops)))
    except (I.Refused, ProtocolError) as exc:  # (a stored copy the scrub cannot read)
        return _refusal(exc)
    except outage.SUSPECT as exc:
        return ("database", isinstance(exc, outage.LOST), f"{type(exc).__name__}: {exc}")
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the hub gets a tuple
        log.exception("storing a push failed", extra={"digest": digest})
        return ("error", f"{type(exc).__name__}: {exc}"[:300])


def _warm(with_database: bool) -> int:
    import protocol.verify  # noqa: F401 - loaded once per process

    if with_database:  # connected now rather than at the first push, if it is there
        loop, pool = _loop_and_pool()
        loop.run_until_complete(outage.reachable(pool))
    return os.getpid()


class IngestPool:
    """Processes that verify pushes and, given a database URL, store them too; a pool
    broken by a dying process is replaced."""

    def __init__(self, processes: int, setup: WorkerSetup | None = None) -> None:
        self.processes = processes
        self.setup = setup or WorkerSetup(owner=os.getpid())
        self._executor: ProcessPoolExecutor | None = None

    @property
    def stores(self) -> bool:
        """Whether the processes store what they verify (:meth:`ingest`)."""
        return bool(self.setup.database_url)

    def _get(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_init, initargs=(self.setup,))
        return self._executor

    async def warm(self) -> None:
        """Start every process now (load the protocol code, connect), so the first
        pushes after a start do not pay for process start-up."""
        executor = self._get()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(executor, _warm, self.stores)
                               for _ in range(self.processes)))

    async def _call(self, fn: Any, *args: Any) -> tuple:
        executor = self._get()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(executor, fn, *args)
        except BrokenProcessPool:
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            log.error("an ingest process died; the pool was restarted")
            raise I.Refused("verifier_unavailable",
                            "verification failed on our side; retry the push") from None
        kind = result[0]
        if kind == "protocol":
            raise ProtocolError(result[1], result[2], result[3])
        if kind == "refused":
            raise I.Refused(result[1], result[2], extra=result[3])
        if kind == "database":  # for the outage gate, as if it had happened right here
            raise (asyncpg.exceptions.ConnectionFailureError if result[1]
                   else ConnectionError)(result[2])
        if kind == "error":
            raise RuntimeError(f"an ingest process failed: {result[1]}")
        return result

    async def run(self, data: bytes, content_type: str, limits: Limits) -> I.Checked:
        """Verify only (:func:`hub.ingest.check`); the caller stores."""
        return (await self._call(check_in_worker, data, content_type, limits))[1]

    async def ingest(self, data: bytes, content_type: str, limits: Limits,
                     peer: str | None, hops: int) -> I.Outcome:
        """Verify and store (:func:`hub.ingest.check`, then :func:`hub.ingest.store`)."""
        return (await self._call(ingest_in_worker, data, content_type, limits, peer,
                                 hops))[1]

    async def close(self) -> None:
        """Stop the processes and wait for them (at most 10 s), then drop the
        pool's queues, so that nothing of it is left for the interpreter's exit: a hub
        worker (``service.workers``) leaves with ``os._exit``, which runs no exit
        handler, and a pool still running then was never joined."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(
                executor.shutdown, wait=True, cancel_futures=True), 10)
        except TimeoutError:
            log.warning("ingest processes did not stop in time")
        del executor
        gc.collect()  # the queues' finalizers release their semaphores now
