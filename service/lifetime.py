"""Processes that die with their parent.

Three tools, one per kind of child a WhiteBalloon server has:

- ``die_with_parent`` (called in the child): the kernel sends the child a signal when
  its parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere a thread that polls the parent
  pid). The hub's verification workers call it from their pool initializer, so a
  SIGKILLed hub takes its workers with it (and with them the forkserver and the
  resource tracker, which exit when their last user is gone).
- ``preexec_die_with_parent`` (for ``subprocess.Popen``): the same for a server process
  that ``wb demo`` starts.
- The embedded PostgreSQL is not a child at all (``pg_ctl`` daemonizes it), so
  ``service.pgwatch`` guards it with a watchdog process instead; see there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


# Looked up once, before any fork: a preexec function must not load libraries.
_PRCTL = _load_prctl()


def _prctl_deathsig(sig: int) -> bool:
    """Ask the kernel for ``sig`` when the parent dies; False where that is not possible."""
    return _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(sig: int = signal.SIGKILL, *, parent: int | None = None) -> None:
    """Make this process receive ``sig`` as soon as its parent process dies.

    ``parent`` is the pid the caller expects as parent (or ancestor, for a pool worker
    whose direct parent is a forkserver): if it is already gone when this runs, the
    process exits at once, closing the race between fork and this call.
    """
    expected = os.getppid() if parent is None else parent
    if not _prctl_deathsig(sig):
        start_ppid = os.getppid()

        def watch() -> None:
            while os.getppid() == start_ppid and pid_alive(expected):
                time.sleep(0.5)
            os.kill(os.getpid(), sig)

        threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    if not pid_alive(expected) or (parent is None and os.getppid() != expected):
        os._exit(1)


def preexec_die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets ``sig`` when the
    *thread* that started it exits (a kernel rule), so start it from the main thread."""
    parent = os.getpid()

    def preexec() -> None:
        if _prctl_deathsig(sig) and os.getppid() != parent:
            os._exit(1)

    return preexec


def pool_worker_init(owner: int) -> None:
    """``initializer`` of a forkserver process pool: the worker exits when ``owner`` (the
    process that made the pool) dies, and so do the forkserver and resource tracker.

    The forkserver exits when the pipe it shares with the owner reads EOF, but it hands
    that pipe's write end to every child it forks (so they could fork in turn): while a
    worker lives, the forkserver never sees EOF, and the worker's parent never dies. The
    worker closes its copy (it forks nothing), asks for SIGKILL when the forkserver dies,
    and watches ``owner`` itself as well (in case the forkserver outlives it anyway).
    """
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        fd = getattr(server, "_forkserver_alive_fd", None)
        if isinstance(fd, int):
            os.close(fd)
            server._forkserver_alive_fd = None  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        pass
    die_with_parent(signal.SIGKILL, parent=owner)
    watch_owner(owner)


def watch_owner(owner: int, interval: float = 0.5) -> None:
    """A daemon thread that ends this process when ``owner`` is gone."""

    def watch() -> None:
        while pid_alive(owner):
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="watch-owner", daemon=True).start()
