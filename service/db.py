"""PostgreSQL plumbing shared by node and hub: embedded server, pools, migrations.

With no database URL configured, a private PostgreSQL from the ``pgserver`` wheel is
started under the data directory and reached over its Unix socket. Migrations are
forward-only numbered ``.sql`` files per component, applied under an advisory lock and
recorded in ``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger("wb.db")

MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class DatabaseError(Exception):
    """A database problem an operator must fix; the message says how."""


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under ``data_dir/pgdata``; return its URL.

    The server keeps running for other handles; it stops when the last process using it
    exits, however it exits: cleanly (pgserver's ``stop`` cleanup mode) or killed (the
    watchdog of ``service.pgwatch``). A server left running by a killed run that nobody
    holds any more is stopped first.
    """
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: it starts nothing on import, but is heavy

    from service import pgwatch

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pgdata").resolve()
    pgwatch.reap_stale(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    pgwatch.guard(pgdata)
    return server.get_uri()


async def resolve_url(url: str, data_dir: Path) -> str:
    """Return ``url`` or, when it is empty, the URL of the embedded server."""
    if url:
        return url
    return await asyncio.to_thread(start_embedded, data_dir)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool release without the reset query (advisory unlock, CLOSE ALL, UNLISTEN, RESET
    ALL): asyncpg still rolls back an open transaction first."""


async def create_pool(url: str, *, max_size: int = 10,
                      init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                      reset_session: bool = True) -> asyncpg.Pool:
    """``reset_session=False`` skips asyncpg's reset query on every release: one round
    trip less per pooled call, for an app that never leaves session state behind (no
    session-level advisory lock, SET, LISTEN or cursor on a pooled connection; the
    node). ``init`` runs on each new connection."""
    # No connection floor (min_size=0): asyncpg restores a floor in the background and
    # logs a traceback for every failed attempt, which floods the log during a database
    # outage (service.outage logs one line). Idle connections stay open for reuse anyway.
    pool = await asyncpg.create_pool(url, min_size=0, max_size=max_size,
                                     command_timeout=60, init=init,
                                     reset=None if reset_session else _keep_session)
    assert pool is not None
    return pool


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        m = MIGRATION_NAME.match(path.name)
        if not m:
            continue
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError(f"duplicate migration numbers in {directory}")
    return found


def _lock_key(component: str) -> int:
    return int.from_bytes(hashlib.sha256(f"wb-migrate-{component}".encode()).digest()[:4], "big")


async def migrate(conn: asyncpg.Connection, component: str, directory: Path) -> list[str]:
    """Apply pending migrations of ``component``; return the names applied.

    Runs under a session advisory lock so concurrent starters apply each file once.
    Refuses a database that has migrations this code does not know (it is newer).
    """
    migrations = load_migrations(directory)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(component))
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   component text NOT NULL,
                   version integer NOT NULL,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        rows = await conn.fetch(
            "SELECT version, name FROM schema_migrations WHERE component = $1", component)
        done = {r["version"]: r["name"] for r in rows}
        known = {m.version for m in migrations}
        unknown = sorted(v for v in done if v not in known)
        if unknown:
            raise DatabaseError(
                f"the {component} database has migration(s) {unknown} that this version of "
                f"WhiteBalloon does not know: the database is newer than the code. Upgrade "
                f"the code (or restore a matching backup); nothing was changed.")
        for m in migrations:
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) "
                    "VALUES ($1, $2, $3, $4)", component, m.version, m.name, m.checksum)
            applied_now.append(f"{m.version:04d}_{m.name}")
            log.info("migration applied", extra={"component": component,
                                                 "migration": f"{m.version:04d}_{m.name}"})
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(component))
    return applied_now


async def migrate_url(url: str, component: str, directory: Path) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn, component, directory)
    finally:
        await conn.close()


async def open_migrated(url: str, data_dir: Path, component: str, migrations: Path, *,
                        max_size: int,
                        init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                        reset_session: bool = True) -> tuple[str, asyncpg.Pool]:
    """Resolve ``url`` (empty: the embedded server in ``data_dir``), open a pool and bring
    ``component``'s schema up to date on its first connection (which the app then uses:
    a connection of its own cost the server a backend start, ~10 ms of CPU on both
    sides, for every start of an app or command): how both apps and their commands reach
    their database. Returns the resolved URL and the pool."""
    resolved = await resolve_url(url, data_dir)
    pool = await create_pool(resolved, max_size=max_size, init=init,
                             reset_session=reset_session)
    try:
        async with pool.acquire() as conn:
            await migrate(conn, component, migrations)
    except BaseException:
        pool.terminate()
        raise
    return resolved, pool


# SQLSTATEs that only client-supplied values can cause here: a NUL byte or text the
# database can't store, and numbers too large for their column. Both apps answer them
# as 400 with a stable code (the transaction that met them has rolled back).
CLIENT_DATA_ERRORS = {
    "22021": ("invalid_characters", "The input contains characters that cannot be stored "
                                    "(for example a NUL byte)."),
    "22P05": ("invalid_characters", "The input contains characters that cannot be stored."),
    "22003": ("value_out_of_range", "A number in the input is out of range."),
}


def client_data_error(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) when ``exc`` is a database error caused by the client's values."""
    if isinstance(exc, asyncpg.DataError):
        return CLIENT_DATA_ERRORS.get(getattr(exc, "sqlstate", "") or "")
    return None
