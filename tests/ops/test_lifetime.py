"""Nothing outlives its parent: real `wb serve`, `wb hub serve` and `wb demo` processes on
their embedded PostgreSQL are SIGKILLed, and within 15 s no process of their tree is left
(children, verification workers, forkserver, resource tracker, watchdog, postmaster and
its backends). A postmaster left by a run killed together with its watchdog is reaped at
the next start, and a clean stop stops it too."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from ops.demo import free_port
from service.pgwatch import postmaster_pid
from tests.pg import own_tmp, scratch_mkdtemp

ROOT = Path(__file__).resolve().parents[2]
# (the watchdog notices within a second; the rest is `pg_ctl stop -m fast`, which took
# over 5 s on a 2-core machine running the suite and a benchmark at once)
GONE_WITHIN = 15.0


@pytest.fixture
def base_dir():
    """Outside pytest's temporary root: concurrent pytest runs reset that to 0700, which
    locks out the embedded server's own system user (it runs as `pgserver` under root)."""
    path = Path(scratch_mkdtemp("lifetime"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def spawn(args: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("WB_") or k == "WB_TEST_RUN_ID"}
    full.update(env)
    return subprocess.Popen([sys.executable, "-m", "ops.cli", *args], env=full, cwd=ROOT,
                            **kw)


async def wait_ready(url: str, proc: subprocess.Popen, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"server exited with {proc.returncode}"
            try:
                async with s.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready")


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree(pid: int, pgdatas: list[Path]) -> list[psutil.Process]:
    """The process, its descendants, and each postmaster (a daemon: nobody's child) with
    its backends."""
    root = psutil.Process(pid)
    found = [root, *root.children(recursive=True)]
    for pgdata in pgdatas:
        pm = postmaster_pid(pgdata)
        assert pm is not None, f"no postmaster running for {pgdata}"
        master = psutil.Process(pm)
        found += [master, *master.children(recursive=True)]
    return found


async def all_gone(procs: list[psutil.Process], limit: float = GONE_WITHIN) -> list[str]:
    """Poll until every process has exited; what is still alive after ``limit``."""
    deadline = time.monotonic() + limit
    while True:
        left = [p for p in procs if alive(p)]
        if not left or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    out = []
    for p in left:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            continue
    return out


def kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        if alive(p):
            try:
                p.kill()
            except psutil.Error:
                pass


async def test_sigkilled_node_leaves_nothing_and_a_stale_postmaster_is_reaped(base_dir):
    data = base_dir / "node"
    port = free_port()
    env = {"WB_DATA_DIR": str(data), "WB_LOG_LEVEL": "WARNING", "WB_SCHEDULER": "false",
           "SESSION_SECRET": "lifetime-test-secret"}
    url = f"http://127.0.0.1:{port}"
    pgdata = (data / "pgdata").resolve()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]

    proc = spawn(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs: list[psutil.Process] = []
    try:
        await wait_ready(url, proc)
        procs = tree(proc.pid, [pgdata])
        assert len(procs) >= 4  # server, watchdog, postmaster, backends
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert await all_gone(procs) == []
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    # killed together with its watchdog: the postmaster is left over ...
    proc = spawn(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = []
    try:
        await wait_ready(url, proc)
        stale = postmaster_pid(pgdata)
        procs = tree(proc.pid, [pgdata])
        watchdogs = [p for p in psutil.Process(proc.pid).children()
                     if "service.pgwatch" in " ".join(p.cmdline())]
        assert len(watchdogs) == 1
        watchdogs[0].kill()
        proc.kill()
        proc.wait(10)
        watchdogs[0].wait(10)
        assert stale is not None and psutil.pid_exists(stale)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    # ... and reaped by the next start, whose clean stop stops its own server
    proc = spawn(args, env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await wait_ready(url, proc)
        fresh = postmaster_pid(pgdata)
        assert fresh is not None and fresh != stale
        assert await all_gone(procs) == []  # the whole stale server is gone
        procs = tree(proc.pid, [pgdata])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert b"stale embedded PostgreSQL" in err
        assert await all_gone(procs) == []
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_sigkilled_hub_takes_its_verification_workers_and_database_along(base_dir):
    data = base_dir / "hub"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"WB_HUB_DATA_DIR": str(data), "WB_LOG_LEVEL": "WARNING",
           "WB_HUB_URL": url, **own_tmp(base_dir)}
    proc = spawn(["hub", "serve", "--host", "127.0.0.1", "--port", str(port),
                  "--verify-processes", "2"], env,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs: list[psutil.Process] = []
    try:
        await wait_ready(url, proc)
        procs = tree(proc.pid, [(data / "pgdata").resolve()])
        lines = [" ".join(p.cmdline()) for p in psutil.Process(proc.pid).children(True)]
        assert sum("forkserver" in c for c in lines) >= 1, lines
        assert sum("resource_tracker" in c for c in lines) == 1, lines
        assert sum("service.pgwatch" in c for c in lines) == 1, lines
        assert len(lines) >= 5, lines  # + two workers
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert await all_gone(procs) == []
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def test_sigkilled_demo_takes_hub_nodes_and_databases_along(base_dir):
    base = base_dir / "demo"
    proc = spawn(["demo", "--dir", str(base)], {}, stdout=subprocess.PIPE,
                 stderr=subprocess.STDOUT)
    procs: list[psutil.Process] = []
    try:
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        seen = b""
        deadline = time.monotonic() + 240
        while b"Press Ctrl-C" not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            assert proc.poll() is None, seen.decode(errors="replace")
            seen += proc.stdout.read() or b""
            await asyncio.sleep(0.2)
        urls = re.findall(rb"http://127\.0\.0\.1:\d+", seen)
        assert len(set(urls)) == 3
        pgdatas = [(base / name / "pgdata").resolve() for name in ("hub", "alpha", "beta")]
        procs = tree(proc.pid, pgdatas)
        servers = [p for p in procs if "ops.cli" in " ".join(p.cmdline()) and p.pid != proc.pid]
        assert len(servers) == 3
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert await all_gone(procs) == []
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


HOLDER = """
import sys, time
from pathlib import Path
from service import db
db.start_embedded(Path(sys.argv[1]))
print("holding", flush=True)
time.sleep(600)
"""


def spawn_holder(data: Path) -> subprocess.Popen:
    """Another process using the same embedded server (as a `wb` command would)."""
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(data)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


async def test_a_killed_server_leaves_the_database_to_another_live_user(base_dir):
    """The watchdog of a SIGKILLed `wb serve` must not stop the embedded server under
    another process still using it; that process's own death (SIGTERM: no atexit) then
    stops it through its own watchdog."""
    data = base_dir / "node"
    pgdata = (data / "pgdata").resolve()
    port = free_port()
    env = {"WB_DATA_DIR": str(data), "WB_LOG_LEVEL": "WARNING", "WB_SCHEDULER": "false",
           "SESSION_SECRET": "lifetime-test-secret"}
    proc = spawn(["serve", "--host", "127.0.0.1", "--port", str(port)], env,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holder: subprocess.Popen | None = None
    procs: list[psutil.Process] = []
    try:
        await wait_ready(f"http://127.0.0.1:{port}", proc)
        holder = await asyncio.to_thread(spawn_holder, data)
        assert holder.stdout is not None
        line = await asyncio.to_thread(holder.stdout.readline)
        assert line == b"holding\n"
        master = postmaster_pid(pgdata)
        watchdog = next(p for p in psutil.Process(proc.pid).children()
                        if "service.pgwatch" in " ".join(p.cmdline()))
        procs = tree(proc.pid, [pgdata]) + tree(holder.pid, [])
        proc.kill()
        proc.wait(10)
        assert await all_gone([watchdog]) == []  # it has done its work ...
        assert postmaster_pid(pgdata) == master  # ... and left the server running
        holder.terminate()  # default SIGTERM: no atexit, only the watchdog can act
        holder.wait(10)
        assert await all_gone(procs) == []
    finally:
        kill_all(procs)
        for p in (proc, holder):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(10)
