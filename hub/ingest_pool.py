"""The ingest processes: pushes verified and stored outside the hub's event loop.

A big push is CPU work first (decode, verify, index rows: :func:`hub.ingest.check`) and
then database work (:func:`hub.ingest.store`). Both run in a process of this pool, which
keeps a small connection pool of its own: the hub process only reads the request and
answers with the :class:`hub.ingest.Outcome` that comes back.

Each process talks to the hub over a socket pair that both event loops drive: a call
is one frame each way (a job number, lengths, a pickle and the push's bytes beside it,
not copied into it), and no thread carries them (with ``concurrent.futures``' process
pool, its feeder and manager threads were half of the hub process's py-spy samples:
docs/benchmarks.md, "Session 9"). A process takes
up to :data:`TURNS` pushes at a time, so it verifies one while PostgreSQL writes the
other. A process that dies fails only the calls it held (``verifier_unavailable``);
the next call starts a fresh one. When the hub goes away its processes read the end of
their socket and leave.

What crosses the process boundary is the received bytes one way and plain tuples the
other: rejections as ``("protocol" | "refused", ...)`` (exception objects with
required constructor arguments do not survive pickling), database failures as
``("database", lost, message)`` so that the hub's outage gate (``service.outage``)
still answers 503 for them, and anything else as ``("error", message)`` after the
process logged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub import ingest as I
from protocol.errors import ProtocolError
from protocol.limits import Limits
from service import outage

log = logging.getLogger("wb.hub.ingest")

#: pushes one process works on at a time: one verifying while another's transaction runs
TURNS = 2
#: how long a closing pool waits for its processes' last answers, then for them to leave
STOP_SECONDS = 10
#: the garbage collector's first threshold in an ingest process (Python's default: 700).
#: A 1,000-record push makes ~10,000 short-lived objects that reference counting frees;
#: at 700 a process collected ~2 times per push, 0.7 ms of its ~7 ms (a collection
#: walks the push's live records and, every few, everything the process imported).
#: A push stays below this many objects alive: none collects in the middle of one.
GC_THRESHOLD = 20_000
# job number, length of the pickle that follows, length of the one buffer sent after it
# out of band (a push's bytes, which pickling would copy twice; 0: none); the socket pair
# is made by the hub for the one process it starts (no one else holds either end), as
# multiprocessing's own pipes
_FRAME = struct.Struct("!QQQ")

# The forkserver imports this module once when it starts, and every process it forks has
# it already: each imported it again (hub.ingest, protocol, asyncpg), ~0.4 CPU-s a
# process. (Set at import: it has no effect on a forkserver already running.)
_FORKSERVER = multiprocessing.get_context("forkserver")
_FORKSERVER.set_forkserver_preload([__name__])


def _frame(job: int, obj: Any) -> list[bytes | memoryview]:
    """``obj`` as one frame: a :class:`pickle.PickleBuffer` in it goes out of band."""
    buffers: list[pickle.PickleBuffer] = []
    body = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    if len(buffers) > 1:
        raise ValueError("a frame carries one out-of-band buffer at most")
    raw = buffers[0].raw() if buffers else b""
    return [_FRAME.pack(job, len(body), len(raw)), body, raw]


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes, list[bytes]]:
    """The next frame: its job number, its pickle and the buffers to unpickle it with."""
    job, size, extra = _FRAME.unpack(await reader.readexactly(_FRAME.size))
    body = await reader.readexactly(size)
    return job, body, [await reader.readexactly(extra)] if extra else []


@dataclass(frozen=True)
class WorkerSetup:
    """What every process of the pool is started with."""

    owner: int  # the hub process: the pool's processes end with it
    # "": verification only (no store in the processes); never in a repr (a password)
    database_url: str = field(default="", repr=False)
    log_level: str = "INFO"
    log_format: str = "text"
    event_loop: str = "auto"


class _Died(Exception):
    """The process holding a call ended before it answered."""


def _refused() -> I.Refused:
    return I.Refused("verifier_unavailable", "verification failed on our side; retry the push")


# -- in an ingest process ------------------------------------------------------------------

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


class _Worker:
    """One ingest process's work: its connections, made at the first call that needs
    them, and what each kind of call does."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.turns = asyncio.Semaphore(TURNS)
        self._pool: asyncpg.Pool | None = None
        self._connecting = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        async with self._connecting:  # (two turns asking first: one pool)
            if self._pool is None:
                from service import db

                # a connection per turn's transaction, and one for the group commit of
                # the log (hub.sequencer), which a push takes once its transaction's went
                # back
                self._pool = await db.create_pool(self.setup.database_url,
                                                  max_size=TURNS + 1, reset_session=False)
        return self._pool

    async def ingest(self, data: bytes, content_type: str, limits: Limits, peer: str | None,
                     hops: int) -> tuple:
        """Check and store one push: ``("ok", Outcome)`` or a rejection or failure."""
        checked = check_in_worker(data, content_type, limits)
        if checked[0] != "ok":
            return checked
        try:
            pool = await self.pool()
            return ("ok", await I.store(pool, checked[1], data, peer=peer, hops=hops))
        except (I.Refused, ProtocolError) as exc:  # (a stored copy the scrub cannot read)
            return _refusal(exc)
        except outage.SUSPECT as exc:
            return ("database", isinstance(exc, outage.LOST), f"{type(exc).__name__}: {exc}")

    async def warm(self) -> None:
        """Connected now rather than at the first push (the protocol code came with
        this module)."""
        if self.setup.database_url:
            await outage.reachable(await self.pool())

    async def answer(self, writer: asyncio.StreamWriter, job: int, frame: bytes,
                     buffers: list[bytes]) -> None:
        async with self.turns:
            try:
                kind, args = pickle.loads(frame, buffers=buffers)  # noqa: S301 - the hub's
                if kind == "check":
                    result = check_in_worker(*args)
                elif kind == "ingest":
                    result = await self.ingest(*args)
                else:
                    result = ("ok", await self.warm())
                out = _frame(job, result)
            except Exception as exc:  # noqa: BLE001 - whatever it is, the hub gets a tuple
                log.exception("an ingest call failed")
                out = _frame(job, ("error", f"{type(exc).__name__}: {exc}"[:300]))
        if not writer.is_closing():
            writer.writelines(out)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (Exception, TimeoutError):  # noqa: BLE001 - leaving anyway
                pool.terminate()


async def _serve(sock: socket.socket, setup: WorkerSetup) -> None:
    """Answer the hub's calls until it closes its end (or is gone); finish those held
    (for at most :data:`STOP_SECONDS`: then the hub kills the process anyway)."""
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    worker = _Worker(setup)
    held: set[asyncio.Task] = set()
    try:
        while True:
            try:
                job, frame, buffers = await _read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            task = asyncio.create_task(worker.answer(writer, job, frame, buffers))
            held.add(task)
            task.add_done_callback(held.discard)
        if held:
            await asyncio.wait(held, timeout=STOP_SECONDS)
    finally:
        writer.close()
        await worker.close()
        with contextlib.suppress(Exception, TimeoutError):  # the last answers written out
            await asyncio.wait_for(writer.wait_closed(), 5)


def _collect_less() -> None:
    """What this process imported stays out of every collection (``gc.freeze``), and the
    young generation is collected every :data:`GC_THRESHOLD` objects, not every 700."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _main(sock: socket.socket, setup: WorkerSetup) -> None:
    """The ingest process: its own event loop serving the hub's socket."""
    from service.lifetime import pool_worker_init
    from service.logs import setup_logging
    from service.serving import event_loop_factory

    pool_worker_init(setup.owner)
    _collect_less()
    # Ctrl+C in a terminal reaches the whole process group: the hub stops its processes
    # itself (by closing their sockets)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(setup.log_level, setup.log_format)
    loop = (event_loop_factory(setup.event_loop) or asyncio.new_event_loop)()
    try:
        loop.run_until_complete(_serve(sock, setup))
    finally:
        loop.close()


# -- in the hub process --------------------------------------------------------------------

class _Process:
    """The hub's end of one ingest process: its socket and the calls it holds."""

    def __init__(self, process: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer
        self.held: dict[int, asyncio.Future] = {}
        self.alive = True
        self.reading: asyncio.Task | None = None


class IngestPool:
    """Processes that verify pushes and, given a database URL, store them too; one that
    dies is replaced at the next call."""

    def __init__(self, processes: int, setup: WorkerSetup | None = None) -> None:
        self.processes = processes
        self.setup = setup or WorkerSetup(owner=os.getpid())
        self._live: list[_Process] = []
        self._starting = asyncio.Lock()
        self._jobs = itertools.count(1)
        self._reaping: set[asyncio.Future] = set()
        self._closed = False

    @property
    def stores(self) -> bool:
        """Whether the processes store what they verify (:meth:`ingest`)."""
        return bool(self.setup.database_url)

    def pids(self) -> list[int]:
        """The process ids of the live ingest processes."""
        return [p.process.pid for p in self._live]

    def _spawn(self) -> tuple[socket.socket, Any]:
        """A started process and the hub's end of its socket (in a thread: the child's
        end is closed here only once the forkserver has its copy)."""
        ours, theirs = socket.socketpair()
        process = _FORKSERVER.Process(
            target=_main, args=(theirs, self.setup), name="wb-hub-ingest", daemon=True)
        try:
            process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours, process

    async def _start(self) -> _Process:
        spawning = asyncio.ensure_future(asyncio.to_thread(self._spawn))
        try:  # a caller cancelled meanwhile leaves the process to _abandon
            ours, process = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            spawning.add_done_callback(self._abandon)
            raise
        try:
            reader, writer = await asyncio.open_unix_connection(sock=ours)
        except BaseException:
            ours.close()  # the process reads the end and leaves
            self._reap_later(process)
            raise
        p = _Process(process, reader, writer)
        p.reading = asyncio.create_task(self._read(p))
        return p

    def _abandon(self, spawning: asyncio.Future) -> None:
        if spawning.cancelled() or spawning.exception() is not None:
            return
        ours, process = spawning.result()
        ours.close()
        self._reap_later(process)

    def _reap_later(self, process: Any) -> None:
        reap = asyncio.ensure_future(asyncio.to_thread(_reap, process, STOP_SECONDS))
        self._reaping.add(reap)
        reap.add_done_callback(self._reaping.discard)

    async def _pick(self) -> _Process:
        """The live process holding the fewest calls, after starting the missing ones."""
        if self._closed:
            raise _refused()
        if len(self._live) < self.processes:
            async with self._starting:
                while len(self._live) < self.processes:
                    try:
                        self._live.append(await self._start())
                    except Exception as exc:  # noqa: BLE001 - (OSError, or the forkserver's)
                        log.error("an ingest process could not start",
                                  extra={"error": f"{type(exc).__name__}: {exc}"[:180]})
                        if not self._live:
                            raise _refused() from None
                        break
        return min(self._live, key=lambda p: len(p.held))

    async def _read(self, p: _Process) -> None:
        try:
            while True:
                job, frame, buffers = await _read_frame(p.reader)
                result = pickle.loads(frame, buffers=buffers)  # noqa: S301 - ours
                future = p.held.pop(job, None)
                if future is not None and not future.done():
                    future.set_result(result)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - an answer that cannot be read: the process is lost
            log.exception("an ingest process's answer could not be read")
        finally:
            self._lost(p)

    def _lost(self, p: _Process) -> None:
        """``p`` ended (or its socket did): fail what it held, reap it."""
        if not p.alive:
            return
        p.alive = False
        if p in self._live:
            self._live.remove(p)
        p.writer.close()
        held, p.held = p.held, {}
        for future in held.values():
            if not future.done():
                future.set_exception(_Died())
        if held:
            log.error("ingest processes stopped before answering" if self._closed
                      else "an ingest process died; a fresh one takes the next push",
                      extra={"pid": p.process.pid, "calls": len(held)})
        self._reap_later(p.process)

    async def _call(self, kind: str, *args: Any, on: _Process | None = None) -> tuple:
        p = on or await self._pick()
        if not p.alive:  # (``on``: it may have died since)
            raise _refused()
        job = next(self._jobs)
        frame = _frame(job, (kind, args))
        future = asyncio.get_running_loop().create_future()
        p.held[job] = future
        try:
            p.writer.writelines(frame)
            await p.writer.drain()
            result = await future
        except (_Died, ConnectionError):
            self._lost(p)
            raise _refused() from None
        finally:
            p.held.pop(job, None)
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

    async def warm(self) -> None:
        """Start every process now (load the protocol code, connect), so the first
        pushes after a start do not pay for process start-up."""
        await self._pick()
        await asyncio.gather(*(self._call("warm", on=p) for p in list(self._live)))

    async def run(self, data: bytes, content_type: str, limits: Limits) -> I.Checked:
        """Verify only (:func:`hub.ingest.check`); the caller stores."""
        return (await self._call("check", pickle.PickleBuffer(data), content_type,
                                 limits))[1]

    async def ingest(self, data: bytes, content_type: str, limits: Limits,
                     peer: str | None, hops: int) -> I.Outcome:
        """Verify and store (:func:`hub.ingest.check`, then :func:`hub.ingest.store`)."""
        return (await self._call("ingest", pickle.PickleBuffer(data), content_type, limits,
                                 peer, hops))[1]

    async def close(self) -> None:
        """Take no more calls and end the hub's half of every process's socket: a
        process still gives the answers it owes (for at most :data:`STOP_SECONDS`),
        then reads the end and leaves; a call still held after that fails, and a process
        still there is killed :data:`STOP_SECONDS` later. Nothing of the pool is left for
        the interpreter's exit (a hub worker, ``service.workers``, leaves with
        ``os._exit``, which runs no exit handler)."""
        self._closed = True
        live = list(self._live)
        for p in live:
            try:
                p.writer.write_eof()
            except Exception:  # noqa: BLE001 - already closing: close it all
                p.writer.close()
        readers = [p.reading for p in live if p.reading is not None]
        if readers:
            _, late = await asyncio.wait(readers, timeout=STOP_SECONDS)
            for task in late:
                task.cancel()  # (its _lost fails what it held and reaps the process)
            if late:
                await asyncio.wait(late)
        while self._reaping:
            await asyncio.gather(*list(self._reaping))


def _reap(process: Any, timeout: float) -> None:
    """Wait for ``process`` to end (kill it after ``timeout`` s) and release it."""
    process.join(timeout)
    if process.exitcode is None:
        log.warning("an ingest process did not stop in time; killed",
                    extra={"pid": process.pid})
        process.kill()
        process.join()
    process.close()
