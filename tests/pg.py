"""Real PostgreSQL for tests: one server per run, one migrated template per component,
one database per test in the template's state (fast and fully isolated).

The server is the embedded one from pgserver unless WB_TEST_DATABASE_URL points at an
external PostgreSQL (which must allow CREATE DATABASE).

A server made ``for_tests`` (the suite's ``pg`` fixture) spends less on each test's
database, which was most of a typical test's time (#24):

- its embedded PostgreSQL does not flush to disk (``fsync``, ``full_page_writes`` and
  ``synchronous_commit`` off): the server and its data are deleted at the end of the
  run, and a crash of this server is never the subject of a test (tests that kill a
  database start their own, with the defaults);
- the next database of a template is made ready (reset or cloned, below) in a
  background thread while the current test runs, and databases are dropped there too
  when the next test asks for one (``drop_later``: a DROP DATABASE waits for a
  checkpoint), so a test waits for neither;
- on the embedded server a clone copies the template's files (``STRATEGY FILE_COPY``)
  instead of writing every page to the WAL: a quarter less of the server's CPU per clone,
  and its two checkpoints cost little without fsync. (On an external server, shared
  with others, the checkpoints would not be cheap: the default stays.)
- a finished test's database is not dropped but reset to its template's state for a
  later test (``tests/pg_reuse.py``: its rows emptied, the template's rows and
  sequences put back), ~0.04 s of the server's CPU where a clone and its drop cost
  ~0.4-0.6 s; a database whose schema or settings a test changed is dropped and a new
  one cloned instead.

Benchmarks (``bench/``) make a plain server: their figures are the durable defaults'.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service import db
from tests.pg_reuse import Reset

_counter = itertools.count()
_PREFIX = f"wbt{os.getpid()}"
# Finished databases kept per template for the next tests' resets (more are dropped).
MAX_SPARE = 4
# A throw-away test server: durability costs time and protects nothing (see above).
NO_DURABILITY = ("fsync = off", "full_page_writes = off", "synchronous_commit = off")
# A memory file system for the throw-away servers, used when it has this much room
# (a container's default /dev/shm of 64 MB does not).
SHM = "/dev/shm"
SHM_NEEDED = 2 << 30
# Every test cluster's directory in SHM starts with this (``scratch_mkdtemp``).
DIR_PREFIX = "wb-pg-"
STALE_AFTER = 600.0


def scratch_dir() -> str | None:
    """Where a throw-away test server keeps its files: in memory (``/dev/shm``) when
    that has room, else the default temporary directory. On disk, the kernel's share
    of the server's work (copying a template's files for each clone, unlinking them at
    each drop, journaling and writing both back) was most of the server's CPU and a
    third of the suite's."""
    try:
        shm = os.statvfs(SHM)
    except OSError:
        return None
    free = shm.f_bavail * shm.f_frsize
    return SHM if free >= SHM_NEEDED and os.access(SHM, os.W_OK) else None


def scratch_mkdtemp(kind: str) -> str:
    """A new directory for a test's cluster(s) in ``scratch_dir()`` (else the default
    temporary directory), named so that ``sweep_stale`` finds it after a killed run."""
    return tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{kind}-", dir=scratch_dir())


def own_tmp(directory: Path) -> dict[str, str]:
    """``TMPDIR`` for a spawned server: ``directory/tmp`` (made here), so what it leaves
    there goes with the test's files instead of /tmp, and a test can see it (after a
    SIGKILL nothing can remove multiprocessing's ``pymp-*`` directory, for one). Keep
    ``directory`` short (``scratch_mkdtemp``): a forkserver's Unix socket goes two levels
    below it, and such a path may not pass 107 bytes."""
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(directory / "tmp")}


def sweep_stale(directory: str, *, older_than: float = STALE_AFTER) -> list[str]:
    """Remove the test clusters' directories that a killed run left in ``directory``:
    its watchdogs stopped the servers (``service.pgwatch``) but nobody deleted the files,
    which in ``/dev/shm`` hold memory until the machine restarts. Stale: no running
    postmaster anywhere below (no ``postmaster.pid``) and untouched for ``older_than``
    seconds (a run that is starting writes its cluster within seconds). Returns what was
    removed."""
    removed = []
    now = time.time()
    for entry in Path(directory).glob(f"{DIR_PREFIX}*"):
        try:
            if (entry.is_dir() and now - entry.stat().st_mtime > older_than
                    and next(entry.rglob("postmaster.pid"), None) is None):
                shutil.rmtree(entry)
                removed.append(str(entry))
        except OSError:
            continue
    return removed


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class TestServer:
    def __init__(self, url: str | None = None, *, for_tests: bool = False) -> None:
        """``url``: an external PostgreSQL (else WB_TEST_DATABASE_URL, else embedded).
        ``for_tests``: no durability on the embedded server, databases cloned ahead and
        dropped in the background (the module's docstring)."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        external = url or os.environ.get("WB_TEST_DATABASE_URL", "")
        if external:
            self.url = external
        else:
            scratch = scratch_dir() if for_tests else None
            if scratch is not None:
                sweep_stale(scratch)
            self._tmp = tempfile.TemporaryDirectory(prefix=DIR_PREFIX, dir=scratch)
            import pgserver

            from service import pgwatch

            pgdata = (Path(self._tmp.name) / "pgdata").resolve()
            self._server = pgserver.get_server(pgdata, cleanup_mode="delete")
            pgwatch.guard(pgdata)  # stopped even if this run is killed
            self.url = self._server.get_uri()
            if for_tests:  # psql reads stdin one statement at a time: no transaction
                self._server.psql("".join(f"ALTER SYSTEM SET {s};\n" for s in NO_DURABILITY)
                                  + "SELECT pg_reload_conf();\n")
        self.templates: dict[str, str] = {}
        self.created: list[str] = []
        self._lock = threading.Lock()  # ``created`` is also changed by the background thread
        # One thread, so a clone and the drops queued before it never compete.
        self._background = ThreadPoolExecutor(1, "wb-test-pg") if for_tests else None
        self._next: dict[str, Future[str]] = {}
        self._finished: list[str] = []  # databases of finished tests, dropped in the background
        # Reuse (tests/pg_reuse.py): each template's state, the template each database was
        # cloned from, and finished databases waiting to be reset for the next test.
        self._resets: dict[str, Reset] = {}
        self._origin: dict[str, str] = {}
        self._spare: dict[str, list[str]] = {}
        self.reuse_stats = {"reset": 0, "refused": 0, "cloned": 0}
        self._clone = " STRATEGY FILE_COPY" if for_tests and self._tmp is not None else ""

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def template(self, component: str, migrations: Path) -> str:
        """The migrated template database of ``component``, built on first use."""
        if component not in self.templates:
            name = f"{_PREFIX}_tpl_{component}"
            await self._admin(f'DROP DATABASE IF EXISTS "{name}"')
            await self._admin(f'CREATE DATABASE "{name}"')
            with self._lock:
                self.created.append(name)
            await db.migrate_url(with_database(self.url, name), component, migrations)
            if self._background is not None:
                self._resets[name] = await self._capture(name)
            self.templates[component] = name
        return self.templates[component]

    async def _capture(self, template: str) -> Reset:
        conn = await asyncpg.connect(with_database(self.url, template))
        try:
            return await Reset.capture(conn, template)
        finally:
            await conn.close()

    async def _create(self, template: str | None) -> str:
        name = f"{_PREFIX}_{next(_counter)}"
        clause = f' TEMPLATE "{template}"{self._clone}' if template else ""
        await self._admin(f'CREATE DATABASE "{name}"{clause}')
        with self._lock:
            self.created.append(name)
            if template is not None:
                self._origin[name] = template
        return name

    async def _prepare(self, template: str, spare: str | None) -> str:
        """The next test's database of ``template``: ``spare`` (a finished test's) reset,
        else (none, or a reset refused or failed) a new clone. In the background thread."""
        if spare is not None:
            try:
                if await self._resets[template].run(with_database(self.url, spare), spare):
                    self.reuse_stats["reset"] += 1
                    return spare
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass  # refused below: a new clone
            self.reuse_stats["refused"] += 1
            await self._drop_name(spare)
        self.reuse_stats["cloned"] += 1
        return await self._create(template)

    async def new_database(self, template: str | None = None) -> str:
        """A new database, empty or cloned from ``template``; returns its URL."""
        if self._background is None or template is None:
            return with_database(self.url, await self._create(template))
        self._drop_finished()  # the previous test, and its app, have finished
        ahead = self._next.pop(template, None)
        name = None
        if ahead is not None:
            try:
                name = await asyncio.wrap_future(ahead)
            except (OSError, asyncpg.PostgresError):
                name = None  # cloned again below, where the error is the test's
        if name is None:
            name = await self._create(template)
        spares = self._spare.get(template)
        self._next[template] = self._background.submit(
            asyncio.run, self._prepare(template, spares.pop() if spares else None))
        return with_database(self.url, name)

    async def _drop_name(self, name: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with self._lock:
            if name in self.created:
                self.created.remove(name)
            self._origin.pop(name, None)

    async def drop(self, url: str) -> None:
        """Drop a database now (``WITH (FORCE)``: what is still connected is ended)."""
        await self._drop_name(urlsplit(url).path.lstrip("/"))

    async def drop_later(self, url: str) -> None:
        """Drop a finished test's database: on a server made ``for_tests``, in the
        background once the next database is asked for (the fixtures that call this are
        torn down before the app that still holds connections to it: a drop now would
        end them under the app's pool as it closes), else now."""
        if self._background is None:
            await self.drop(url)
        else:
            self._finished.append(urlsplit(url).path.lstrip("/"))

    def _drop_finished(self) -> None:
        """Finished tests' databases: kept for a reset if cloned from a template (at most
        a few per template: the tests that take several), else dropped."""
        while self._finished:
            name = self._finished.pop()
            with self._lock:
                template = self._origin.get(name)
            spares = self._spare.setdefault(template, []) if template else None
            if spares is not None and template in self._resets and len(spares) < MAX_SPARE:
                spares.append(name)
            else:
                self._background.submit(asyncio.run, self._drop_name(name))

    def _finish_background(self) -> None:
        if self._background is not None:
            self._drop_finished()
            self._background.shutdown(wait=True)
            self._next.clear()

    async def _drop_all(self) -> None:
        with self._lock:
            names = list(reversed(self.created))
        for name in names:
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self._finish_background()
        if self._tmp is None:
            asyncio.run(self._drop_all())
        else:
            self._server.cleanup()
            self._tmp.cleanup()

    async def aclose(self) -> None:
        """``close`` from inside a running event loop (the benchmarks)."""
        if self._tmp is None:
            await asyncio.to_thread(self._finish_background)
            await self._drop_all()
        else:
            await asyncio.to_thread(self.close)
