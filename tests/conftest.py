"""Shared fixtures: a real PostgreSQL, per-test databases, the real node app."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest

import service.errors
from service.settings import Config
from tests.pg import TestServer

# Bytecode is cached even where the environment says not to (PYTHONDONTWRITEBYTECODE=1, as
# many container images set): without it every worker compiled and assert-rewrote every
# test module again (collection 6.6 s of CPU per worker, 3.1 s with the cache) and every
# `wb` process the tests start compiled the project's modules again. `__pycache__` is
# ignored by git.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Tests refuse an error code that is not in the node's or hub's registry at once.
service.errors.STRICT = True

# `wb` commands run in-process (CliRunner) and node processes started by tests read the
# environment: no publishing grace period there either unless a test sets one.
os.environ.setdefault("WB_PUBLISH_DELAY", "0")
# Every process this run starts inherits this mark, also those that outlive their parent.
RUN_MARK = "WB_TEST_RUN_ID"
LINGER = 5.0
# Leftovers the xdist workers found and killed, reported by the controller at the end.
_LEFT_KEY = pytest.StashKey[list[str]]()


def _marked(mark: str, found: str | None, *, prefix: bool) -> bool:
    if not mark or found is None:
        return False
    return found == mark or (prefix and found.startswith(mark + "."))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` (pyproject's addopts): three workers per two cores. Much of a test's
    time is spent waiting on PostgreSQL, sockets and child processes, so one worker per
    core leaves the cores idle; two per core made the whole suite busier, not faster
    (the 2-core box, whole suite, CPU seconds of the machine from /proc/stat: 2 workers
    4 min 47 s with 9 % idle, 513 CPU-s; 3 workers 4 min 20 s, 4 % idle, 500 CPU-s;
    4 workers 4 min 56 s, 584 CPU-s: Chromium, PostgreSQL and the workers contending).
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set; `-n 0` runs in one process."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(2, cores + cores // 2)


# The suite's longest tests (seconds each, from `--durations`), run first: xdist hands
# out tests one at a time in collection order (`--dist load --maxschedchunk 1` in
# pyproject's addopts), so these start at once on every worker and the short tests fill
# in around them; met late, one of them was the whole run's tail (the schemathesis test,
# 35-50 s, started when the other workers had 20 s of work left). Whole files, in this
# order; tests/test_suite_order.py checks that each still exists.
SLOW_FIRST = (
    "tests/conformance/test_schemathesis.py",
    "tests/ops/test_lifetime.py",
    "conformance_tests/test_fuzz.py",
    "tests/node/sync/test_hub_audit.py",
    "tests/hub/test_fault.py",
    "tests/test_leftovers.py",
    "tests/browser/",
    "tests/e2e/test_network.py",
    "tests/ops/test_outage.py",
    "tests/hub/test_delivery.py",
    "tests/node/notifications/test_relay.py",
    "tests/hub/test_tombstone_state.py",
    "tests/ops/test_connections.py",
)


def slow_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with those under SLOW_FIRST moved to the front (in its order), the rest
    as collected."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, p in enumerate(SLOW_FIRST) if path.startswith(p)),
                    len(SLOW_FIRST))

    return sorted(items, key=rank)  # stable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = slow_first(items)


def _worker_id(config: pytest.Config) -> str | None:
    """The pytest-xdist worker this process is ("gw0", ...), None in the controller or a
    run without workers."""
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def pytest_configure(config: pytest.Config) -> None:
    # The controller marks the run before it starts its workers, which inherit the mark;
    # each worker then marks what *it* starts as "<run>.<worker>", so a worker's check
    # below finds its own orphans and not its siblings (which carry the bare run mark),
    # and the controller's check finds every worker's by the prefix.
    os.environ.setdefault(RUN_MARK, uuid.uuid4().hex)
    worker = _worker_id(config)
    if worker is not None:
        os.environ[RUN_MARK] = f"{os.environ[RUN_MARK].split('.')[0]}.{worker}"
    else:
        _embedded_server_user()
    config.stash[_LEFT_KEY] = []


def _embedded_server_user() -> None:
    """Under root the embedded PostgreSQL runs as the system user ``pgserver``, which
    pgserver creates (useradd) on first use. Four workers starting at once on a fresh
    machine raced to create it: one worker's initdb then failed ("could not change
    permissions of directory": its data directory had been given to a uid the last
    useradd replaced) and all 297 of its tests errored. The controller creates it first."""
    if os.environ.get("WB_TEST_DATABASE_URL") or not hasattr(os, "geteuid") \
            or os.geteuid() != 0:
        return
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")


def _leftovers(*, prefix: bool = False) -> list[psutil.Process]:
    """Processes of this test run still alive: our descendants and anything carrying the
    run's mark (an orphan is nobody's descendant any more), except the helpers that by
    design live exactly as long as this process: the embedded-server watchdog and the
    multiprocessing forkserver and resource tracker of in-process hub apps (both exit on
    EOF of a pipe only this process holds). With ``prefix`` (the xdist controller, after
    its workers have exited) also anything a worker marked."""
    from multiprocessing import forkserver, resource_tracker

    from service import pgwatch

    me = psutil.Process()
    mark = os.environ.get(RUN_MARK, "")
    own = {pgwatch._watchdog.pid if pgwatch._watchdog is not None else None,
           getattr(forkserver._forkserver, "_forkserver_pid", None),
           getattr(resource_tracker._resource_tracker, "_pid", None)}
    found = {p.pid: p for p in me.children(recursive=True)}
    for p in psutil.process_iter():
        if p.pid in found or p.pid == me.pid:
            continue
        try:
            if _marked(mark, p.environ().get(RUN_MARK), prefix=prefix):
                found[p.pid] = p
        except psutil.Error:
            continue
    alive = []
    for pid, p in found.items():
        try:
            if pid not in own and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.Error:
            continue
    return alive


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """Controller side: collect what a finished worker's own check found."""
    found = getattr(node, "workeroutput", {}).get("wb_leftovers") or []
    node.config.stash[_LEFT_KEY].extend(f"  [{node.gateway.id}]{line[1:]}" for line in found)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process it started is still running (after a short grace for
    ones that are exiting): servers, workers and databases must die with their test.

    Under pytest-xdist each worker checks its own descendants and mark and hands what it
    found to the controller (a worker's children may die with it, so the controller could
    not see them any more); the controller, after the workers have exited, checks its own
    descendants and every worker's mark, and fails the run for either."""
    worker = _worker_id(session.config)
    controller = worker is None and session.config.pluginmanager.has_plugin("dsession")
    deadline = time.monotonic() + LINGER
    left = _leftovers(prefix=controller)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _leftovers(prefix=controller)
    lines = _kill(left)
    if worker is not None:
        session.config.workeroutput["wb_leftovers"] = lines  # type: ignore[attr-defined]
        return
    lines = session.config.stash[_LEFT_KEY] + lines
    if lines:
        print("\nprocesses started by this test run were still running (now killed):\n"
              + "\n".join(lines))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _kill(left: list[psutil.Process]) -> list[str]:
    lines = []
    for p in left:
        try:
            lines.append(f"  {p.pid} {' '.join(p.cmdline())[:160]}")
            p.kill()
        except psutil.Error:
            continue
    return lines


@pytest.fixture(scope="session")
def pg() -> Iterator[TestServer]:
    server = TestServer(for_tests=True)
    try:
        yield server
    finally:
        server.close()


@contextlib.asynccontextmanager
async def node_database(pg: TestServer) -> AsyncIterator[str]:
    """A fresh node database from the migrated template, dropped after."""
    from node.app import MIGRATIONS

    template = await pg.template("node", MIGRATIONS)
    url = await pg.new_database(template)
    yield url
    await pg.drop_later(url)


@pytest.fixture
async def node_db_url(pg: TestServer) -> AsyncIterator[str]:
    async with node_database(pg) as url:
        yield url


def make_node_config(db_url: str, data_dir: Path, **overrides: str) -> Config:
    values = {
        "WB_DATABASE_URL": db_url,
        "WB_DATA_DIR": str(data_dir),
        "SESSION_SECRET": "test-secret-not-for-production",
        "SITE_URL": "http://node.test",
        "WB_DB_POOL_MAX": "5",
        "WB_SCHEDULER": "false",
        # No publishing grace period unless a test is about it (tests/node/sync/
        # test_publish_delay.py): most tests export what they just wrote.
        "WB_PUBLISH_DELAY": "0",
    }
    values.update(overrides)
    return Config(values, environ={}, dotenv=data_dir / "no.env")


@pytest.fixture
def node_config(node_db_url: str, tmp_path: Path) -> Config:
    return make_node_config(node_db_url, tmp_path / "node")


@pytest.fixture
async def node_client(aiohttp_client, node_config: Config):
    from node.app import create_app

    return await aiohttp_client(create_app(node_config))


@pytest.fixture
async def node_pool(node_client):
    from node import typedefs as T

    return node_client.server.app[T.pool_key]


@pytest.fixture
async def hub_db_url(pg: TestServer) -> AsyncIterator[str]:
    from hub.app import MIGRATIONS

    template = await pg.template("hub", MIGRATIONS)
    url = await pg.new_database(template)
    yield url
    await pg.drop_later(url)
