"""Several serving processes on one listening socket: ``wb hub serve --workers N``.

One Python process serves on one core. A hub already runs as several processes on one
database (docs/scaling.md); this puts them behind one port on one host without a load
balancer. The supervisor (the process the command started) binds the socket, then forks
the workers, which all accept from it: a busy worker takes fewer new connections, so the
load spreads by itself. Each worker builds its own app after the fork (its own database
pools, LISTEN connection, stream caches and verification processes), so nothing with a
thread, a connection or an event loop crosses a fork.

The supervisor:

- forwards SIGTERM, SIGINT and SIGHUP to the workers and waits for them (each shuts
  down cleanly, as a single process would), at most 25 s: then it kills the rest;
- starts a worker again when one dies (logged as an error), unless five died within
  their first ten seconds in a row: then it stops the others and exits 1, so that the
  service manager sees the failure instead of a restart loop;
- gives the workers a directory for their Prometheus metrics, so that any of them
  answers a scrape with the sum over all (removed when it exits);
- holds one end of a pipe whose other end every worker watches: if the supervisor is
  killed (SIGKILL leaves no chance to forward anything), the workers see the pipe close
  and stop by themselves, the port is free again, and the last of them to leave has
  removed the metrics directory.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator

from prometheus_client import multiprocess, values

log = logging.getLogger("wb.http")

QUICK_DEATH_SECONDS = 10.0
QUICK_DEATHS_TO_GIVE_UP = 5
STOP_SECONDS = 25.0  # then SIGKILL (systemd's unit gives the whole service 30 s)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every worker accepts from (non-blocking, inherited through fork)."""
    sock = socket.create_server((host, port), backlog=1024)
    sock.setblocking(False)
    return sock


def supervise(serve: Callable[[int, socket.socket, int], None], sock: socket.socket,
              workers: int, *, stop_seconds: float = STOP_SECONDS) -> int:
    """Fork ``workers`` processes that each call ``serve(index, sock, parent_fd)`` and
    return when it does; return the exit status for the supervisor (0: stopped by a
    signal, 1: workers kept dying). ``parent_fd`` becomes readable (EOF) when the
    supervisor is gone. The workers' Prometheus metrics are shared (see
    ``shared_metrics``)."""
    with shared_metrics() as metrics_dir:
        return _supervise(serve, sock, workers, stop_seconds, metrics_dir)


@contextlib.contextmanager
def shared_metrics() -> Iterator[str]:
    """A private directory for prometheus_client's multiprocess mode, in
    ``PROMETHEUS_MULTIPROC_DIR`` for the workers to inherit: each keeps its values in
    files there and a scrape sums them all. Removed afterwards."""
    path = tempfile.mkdtemp(prefix="wb-metrics-")  # 0700
    before = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()  # chosen when the module was imported
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before
        values.ValueClass = values.get_value_class()
        shutil.rmtree(path, ignore_errors=True)


def _multiprocessing_dir() -> str | None:
    """The ``pymp-*`` directory multiprocessing keeps for this process (for a forkserver's
    socket), if it made one: ``_config["tempdir"]``, where multiprocessing.util keeps it.
    A forked process sees its parent's until it makes its own."""
    return multiprocessing.process.current_process()._config.get("tempdir")


def _remove_multiprocessing_dir(inherited: str | None) -> None:
    """Remove the ``pymp-*`` directory this worker made (for its ingest processes'
    forkserver), as multiprocessing's exit handler would: a worker leaves with
    ``os._exit``, which runs none (and must not: a worker once hung for ever in
    multiprocessing's). ``inherited``, the supervisor's own, is never touched."""
    tempdir = _multiprocessing_dir()
    if tempdir and tempdir != inherited:
        shutil.rmtree(tempdir, ignore_errors=True)


def _closed(fd: int) -> bool:
    """Whether the pipe ``fd`` reads the end now (nothing is ever written to it: readable
    means its write end, the supervisor's, is closed)."""
    return bool(select.select([fd], [], [], 0)[0])


def _supervise(serve: Callable[[int, socket.socket, int], None], sock: socket.socket,
               workers: int, stop_seconds: float, metrics_dir: str) -> int:
    watched, held = os.pipe()  # workers watch the read end; only the supervisor holds
    # the write end, so the read end reaches EOF when the supervisor is gone
    children: dict[int, tuple[int, float]] = {}  # pid -> (index, started at)
    stopping_since: float | None = None  # None: not stopping

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            inherited = _multiprocessing_dir()
            try:
                os.close(held)
                for sig in STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                serve(index, sock, watched)
                code = 0
            except BaseException:  # noqa: BLE001 - reported, then the worker exits
                log.exception("hub worker %d failed", index)
            finally:
                if _closed(watched):  # the supervisor is gone (killed): nobody else
                    shutil.rmtree(metrics_dir, ignore_errors=True)  # removes the directory
                _remove_multiprocessing_dir(inherited)
                # no interpreter exit: the supervisor's exit handlers (the embedded
                # server's stop among them) must not run here, so the app stops what it
                # started itself (the hub joins its verification processes)
                logging.shutdown()
                os._exit(code)
        children[pid] = (index, time.monotonic())

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping_since
        if stopping_since is None:
            stopping_since = time.monotonic()
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    for index in range(workers):
        spawn(index)
    # the supervisor keeps the socket (it never accepts) for a worker started again later
    status = 0
    quick_deaths = 0
    while children:
        if stopping_since is not None and time.monotonic() - stopping_since > stop_seconds:
            log.error("hub workers did not stop in time; killing them",
                      extra={"workers": len(children)})
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            stopping_since = float("inf")  # killed: now just reap them
        try:  # polled: a blocking wait would outlast a stop signal if a worker hung
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.2 if stopping_since is None else 0.05)
            continue
        if pid not in children:
            continue
        index, started = children.pop(pid)
        multiprocess.mark_process_dead(pid, metrics_dir)  # its live gauges no longer count
        if stopping_since is not None:
            continue
        code = os.waitstatus_to_exitcode(wait_status)
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_SECONDS \
            else 0
        if quick_deaths >= QUICK_DEATHS_TO_GIVE_UP:
            log.error("hub workers keep dying at start; stopping",
                      extra={"worker": index, "exit": code})
            stop(signal.SIGTERM, None)
            status = 1
            continue
        log.error("hub worker died; starting another", extra={"worker": index, "exit": code})
        spawn(index)
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    os.close(held)
    os.close(watched)
    sock.close()
    return status
