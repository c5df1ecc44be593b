"""The embedded PostgreSQL stops when the process that started it dies, however it dies.

pgserver stops its server from an ``atexit`` hook when the last process using it exits
(it keeps a list of handle pids in ``pgdata/.handle_pids.json``). A SIGKILL skips
``atexit``, and ``pg_ctl`` daemonizes the postmaster, so it is nobody's child: it used to
run on with nobody to stop it, and the dead pid left in the handle list kept the next
clean exit from stopping it too.

Two guards close that:

- ``guard(pgdata)`` starts (once per process) a small watchdog process,
  ``python -m service.pgwatch <owner pid>``, and hands it each guarded data directory
  over a pipe. Only the owner holds the pipe's write end, so the watchdog reads EOF the
  moment the owner dies, by a signal or otherwise. It then does what pgserver's exit hook
  would have done: drop the owner (and any dead pid) from the handle list and, when no
  live process uses the server any more, stop it (``pg_ctl stop -m fast``). It ignores
  SIGINT/SIGTERM/SIGHUP so a signal sent to the whole process group cannot stop it
  before its work is done; it exits right after.
- ``reap_stale(pgdata)`` runs before every start: a postmaster of this data directory
  that no live process holds (left by a run killed together with its watchdog) is stopped
  and the handle list cleaned, so the new run starts from a known state.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger("wb.db")

STOP_TIMEOUT = 20.0

_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None
_guarded: set[Path] = set()


def _pgserver_lock():
    from pgserver.postgres_server import PostgresServer

    return PostgresServer._lock


def _handles(pgdata: Path):
    from pgserver.utils import DiskList

    return DiskList(pgdata / ".handle_pids.json")


def _live(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the running postmaster of ``pgdata`` (checked against its command
    line, so a reused pid is not mistaken for it), or None."""
    import psutil

    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        pid = int(first)
    except (OSError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if str(pgdata) not in " ".join(proc.cmdline()):
            return None
    except psutil.Error:
        return None
    return pid


def stop_server(pgdata: Path) -> bool:
    """Stop the postmaster of ``pgdata`` (fast shutdown, then SIGKILL); True if one ran."""
    import psutil
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    pid = postmaster_pid(pgdata)
    if pid is None:
        return False
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        # -w: returns once the postmaster has exited (its pid file is gone)
        pg_ctl(["-w", "-t", str(int(STOP_TIMEOUT)), "-m", "fast", "stop"], pgdata=pgdata,
               user=user, timeout=STOP_TIMEOUT + 5)
        return True
    except (subprocess.SubprocessError, OSError):
        pass
    try:
        proc = psutil.Process(pid)
        proc.terminate()
        proc.wait(2)
    except psutil.TimeoutExpired:
        proc.kill()
    except psutil.Error:
        pass
    return True


def release(pgdata: Path, owner: int) -> bool:
    """Drop ``owner`` and dead pids from the handle list; stop the server when no live
    process holds it any more. True when it was stopped."""
    if not (pgdata / "PG_VERSION").exists():  # deleted meanwhile (a test's server)
        return False
    with _pgserver_lock():
        handles = _handles(pgdata)
        remaining = [p for p in handles.get() if p != owner and _live(p)]
        handles.put(remaining)
        if remaining:
            return False
        return stop_server(pgdata)


def reap_stale(pgdata: Path) -> None:
    """Before a start: stop a postmaster of ``pgdata`` that no live process holds."""
    if not (pgdata / "PG_VERSION").exists():
        return
    with _pgserver_lock():
        handles = _handles(pgdata)
        before = handles.get()
        live = [p for p in before if _live(p)]
        if live != before:
            handles.put(live)
        if live:
            return
        pid = postmaster_pid(pgdata)
        if pid is None:
            return
        log.warning("stopping a stale embedded PostgreSQL left by a killed run",
                    extra={"pgdata": str(pgdata), "pid": pid})
        stop_server(pgdata)


def guard(pgdata: Path) -> None:
    """Have the watchdog stop the server of ``pgdata`` if this process dies."""
    global _watchdog
    pgdata = pgdata.resolve()
    with _lock:
        if pgdata in _guarded and _watchdog is not None and _watchdog.poll() is None:
            return
        _guarded.add(pgdata)
        if _watchdog is None or _watchdog.poll() is not None:
            # (re)started: it is told every directory this process guards
            _watchdog = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "service.pgwatch", str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                cwd=str(Path(__file__).resolve().parents[1]), close_fds=True)
            todo = sorted(_guarded)
        else:
            todo = [pgdata]
        assert _watchdog.stdin is not None
        _watchdog.stdin.write(b"".join(os.fsencode(d) + b"\n" for d in todo))
        _watchdog.stdin.flush()


def watchdog_main(owner: int) -> int:
    """The watchdog: read guarded data directories until EOF, then release them."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    import warnings

    with warnings.catch_warnings():  # loaded now, so that the stop is quick later
        warnings.simplefilter("ignore")
        import pgserver._commands  # noqa: F401
        import pgserver.postgres_server  # noqa: F401
    dirs: list[Path] = []
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        path = line.rstrip(b"\n")
        if path:
            dirs.append(Path(os.fsdecode(path)))

    def one(pgdata: Path) -> None:
        try:
            release(pgdata, owner)
        except Exception as exc:  # noqa: BLE001 - the others still need stopping
            print(f"wb pgwatch: could not stop {pgdata}: {exc}", file=sys.stderr)

    # in parallel: `wb demo` guards three servers, each takes a shutdown checkpoint
    threads = [threading.Thread(target=one, args=(d,)) for d in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(watchdog_main(int(sys.argv[1])))
