"""`wb hub serve --workers N`: several processes on one port (service/workers.py).

A real supervisor with real workers: a worker that dies is replaced and the port keeps
answering; SIGTERM stops everything with status 0 and frees the port; a SIGKILLed
supervisor leaves nothing (its workers see their pipe close and stop, the embedded
PostgreSQL it started stops with it); workers that keep dying at start make it give up
with status 1 instead of looping."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from ops.demo import free_port
from service import workers
from tests.ops.test_lifetime import alive, all_gone, base_dir, kill_all, spawn, tree, wait_ready
from tests.pg import own_tmp

__all__ = ["base_dir"]  # the fixture, imported for this module's tests


def hub_workers(pid: int) -> list[psutil.Process]:
    """The supervisor's live children that are workers (forked: same command line)."""
    root = psutil.Process(pid)
    found = []
    for p in root.children():
        try:
            if alive(p) and p.cmdline() == root.cmdline():
                found.append(p)
        except psutil.Error:  # exited meanwhile (a zombie until the supervisor reaps it)
            continue
    return found


def start_workers(base_dir, hub_db_url: str | None, workers: int, *, verify: int = 0,
                  stderr: int = subprocess.DEVNULL) -> tuple[int, str, subprocess.Popen]:
    """`wb hub serve` with ``workers`` workers (None: on its embedded PostgreSQL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"WB_HUB_DATA_DIR": str(base_dir / "hub"), "WB_LOG_LEVEL": "WARNING",
           "WB_HUB_URL": url, "WB_HUB_WORKERS": str(workers),
           "WB_HUB_VERIFY_PROCESSES": str(verify), **own_tmp(base_dir)}
    if hub_db_url is not None:
        env["WB_HUB_DATABASE_URL"] = hub_db_url
    proc = spawn(["hub", "serve", "--host", "127.0.0.1", "--port", str(port)], env,
                 stdout=subprocess.DEVNULL, stderr=stderr)
    return port, url, proc


async def until(check, limit: float = 30.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def left_in_tmp(base_dir: Path) -> list[str]:
    """What the hub left in the temporary directory of start_workers (its metrics
    directory, multiprocessing's directories, ...). Not counted: ``runtime-<uid>``, made
    by platformdirs for pgserver when XDG_RUNTIME_DIR is unset and shared by every user
    of pgserver on the machine."""
    return sorted(p.name for p in Path(own_tmp(base_dir)["TMPDIR"]).iterdir()
                  if not p.name.startswith("runtime-"))


async def test_a_dead_worker_is_replaced_and_a_killed_supervisor_leaves_nothing(base_dir):
    data = base_dir / "hub"
    _, url, proc = start_workers(base_dir, None, 2, stderr=subprocess.PIPE)
    procs: list[psutil.Process] = []
    try:
        await wait_ready(url, proc)
        first = await until(lambda: (w := hub_workers(proc.pid)) and len(w) == 2 and w)
        # the embedded server was started once, by the supervisor, and watched for it
        watchdogs = [p for p in psutil.Process(proc.pid).children()
                     if "service.pgwatch" in " ".join(p.cmdline())]
        assert len(watchdogs) == 1

        first[0].kill()
        again = await until(lambda: (w := hub_workers(proc.pid)) and len(w) == 2
                            and first[0].pid not in {p.pid for p in w} and w)
        assert first[1].pid in {p.pid for p in again}  # the other one was left alone
        await wait_ready(url, proc)

        procs = tree(proc.pid, [(data / "pgdata").resolve()])
        assert any(n.startswith("wb-metrics-") for n in left_in_tmp(base_dir))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert await all_gone(procs, limit=15) == []
        # (the supervisor could not remove its metrics directory: the workers did)
        assert left_in_tmp(base_dir) == []
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = proc.stderr.read().decode()
    assert "(2 workers)" in err
    assert "hub worker died; starting another" in err


async def test_sigterm_stops_every_worker_and_frees_the_port(base_dir, hub_db_url):
    port, url, proc = start_workers(base_dir, hub_db_url, 3)
    procs: list[psutil.Process] = []
    try:
        await wait_ready(url, proc)
        procs = await until(lambda: (w := hub_workers(proc.pid)) and len(w) == 3 and w)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert await all_gone(procs) == []
        with socket.create_server(("127.0.0.1", port)):
            pass  # nothing holds the port any more
        assert left_in_tmp(base_dir) == []
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_workers_that_keep_dying_at_start_make_the_supervisor_give_up():
    sock = workers.listening_socket("127.0.0.1", 0)

    def serve(index: int, sock: socket.socket, parent_fd: int) -> None:
        raise RuntimeError("cannot start")

    assert workers.supervise(serve, sock, 2) == 1
    assert sock.fileno() == -1  # closed: the port is free


def test_a_worker_leaves_its_supervisors_multiprocessing_directory_alone():
    """A worker removes the ``pymp-*`` directory it made itself (see
    test_workers_with_verification_processes_stop_cleanly), never the one it inherited:
    that is its supervisor's (here the test process's, which holds its forkserver's
    socket: removing it broke every later ingest process of the test process)."""
    import multiprocessing.util

    sock = workers.listening_socket("127.0.0.1", 0)
    ours = multiprocessing.util.get_temp_dir()

    def serve(index: int, sock: socket.socket, parent_fd: int) -> None:
        raise RuntimeError("cannot start")

    assert workers.supervise(serve, sock, 1) == 1
    assert os.path.isdir(ours)


def test_a_worker_that_ignores_sigterm_is_killed_after_the_stop_deadline():
    sock = workers.listening_socket("127.0.0.1", 0)
    started_r, started_w = os.pipe()

    def serve(index: int, sock: socket.socket, parent_fd: int) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # hung: deaf to the stop signal
        os.write(started_w, os.getpid().to_bytes(4, "big"))
        while True:
            time.sleep(60)

    pids: list[int] = []

    def stop_when_both_started() -> None:
        while len(pids) < 2:
            pids.append(int.from_bytes(os.read(started_r, 4), "big"))
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the supervisor (main thread)

    stopper = threading.Thread(target=stop_when_both_started)
    stopper.start()
    begun = time.monotonic()
    try:
        assert workers.supervise(serve, sock, 2, stop_seconds=0.5) == 0
    finally:
        stopper.join(10)
        os.close(started_r)
        os.close(started_w)
    assert time.monotonic() - begun < 30  # not waiting for ever on the deaf workers
    assert len(pids) == 2
    for pid in pids:  # both killed and reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_worker_count_is_a_clear_error(value, tmp_path):
    proc = spawn(["hub", "serve", "--port", str(free_port())],
                 {"WB_HUB_WORKERS": value, "WB_HUB_DATA_DIR": str(tmp_path)},
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert b"WB_HUB_WORKERS" in err
    assert b"Traceback" not in err


async def test_a_scrape_counts_the_streams_of_every_worker(base_dir, hub_db_url):
    """Whichever worker answers /metrics reports every worker's streams (prometheus_client's
    multiprocess files in the supervisor's directory), not just its own."""
    port, url, proc = start_workers(base_dir, hub_db_url, 2)
    procs: list[psutil.Process] = []

    async def scrapes(n: int) -> list[float]:
        seen = []
        for _ in range(n):  # a connection each: any worker may take it
            async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
                assert r.status == 200
                text = await r.text()
            line = next(x for x in text.splitlines()
                        if x.startswith("wb_hub_stream_subscribers"))
            seen.append(float(line.split()[-1]))
        return seen

    try:
        await wait_ready(url, proc)
        procs = await until(lambda: (w := hub_workers(proc.pid)) and len(w) == 2 and w)
        async with aiohttp.ClientSession() as session:
            streams = [await session.ws_connect(f"{url}/api/v2/stream") for _ in range(8)]
            for ws in streams:
                assert (await ws.receive()).type == aiohttp.WSMsgType.BINARY  # info frame
            assert await scrapes(8) == [8.0] * 8
            for ws in streams[:3]:
                await ws.close()
            deadline = time.monotonic() + 30
            seen = await scrapes(8)
            while seen != [5.0] * 8:  # each worker notices its closed streams on its own
                assert set(seen) <= {5.0, 6.0, 7.0, 8.0}, seen
                assert time.monotonic() < deadline, seen
                seen = await scrapes(8)
            for ws in streams[3:]:
                await ws.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_port_in_use_is_a_clear_error(hub_db_url, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = spawn(["hub", "serve", "--host", "127.0.0.1", "--port", str(port),
                      "--workers", "2"],
                     {"WB_HUB_DATABASE_URL": hub_db_url, "WB_HUB_DATA_DIR": str(tmp_path)},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}".encode() in err
    assert b"Traceback" not in err


@pytest.mark.parametrize("command", [["hub", "serve"], ["serve"]])
def test_one_process_on_a_port_in_use_is_a_clear_error_too(command, hub_db_url, node_db_url,
                                                           tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = spawn([*command, "--host", "127.0.0.1", "--port", str(port)],
                     {"WB_HUB_DATABASE_URL": hub_db_url, "WB_DATABASE_URL": node_db_url,
                      "WB_HUB_DATA_DIR": str(tmp_path), "WB_DATA_DIR": str(tmp_path),
                      "SESSION_SECRET": "port-in-use-test-secret", "WB_SCHEDULER": "false"},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}".encode() in err
    assert b"Traceback" not in err


async def test_workers_with_verification_processes_stop_cleanly(base_dir, hub_db_url):
    """Each worker joins its verification processes before it leaves (os._exit runs no
    exit handler; a worker once hung for ever in multiprocessing's)."""
    _, url, proc = start_workers(base_dir, hub_db_url, 2, verify=1, stderr=subprocess.PIPE)
    procs: list[psutil.Process] = []
    try:
        await wait_ready(url, proc)
        await until(lambda: (w := hub_workers(proc.pid)) and len(w) == 2)
        await until(lambda: sum("forkserver" in " ".join(p.cmdline())
                                for p in psutil.Process(proc.pid).children(True)) >= 4)
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert await all_gone(procs) == []
        assert b"leaked semaphore" not in err and b"Traceback" not in err, err
        assert b"did not stop in time" not in err, err
        assert left_in_tmp(base_dir) == []  # (multiprocessing's directories included)
    finally:
        kill_all(procs)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
