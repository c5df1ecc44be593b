"""A reset test database is the template's state again, or the reset says it cannot be."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.pg import sweep_stale, with_database
from tests.pg_reuse import Reset


async def _state(url: str, reset: Reset) -> dict[str, object]:
    """Every table's rows (sorted) and every sequence's position."""
    conn = await asyncpg.connect(url)
    try:
        state: dict[str, object] = {}
        for table in reset.tables:
            state[table] = await conn.fetchval(
                f"SELECT string_agg(t::text, E'\\n' ORDER BY t::text) FROM {table} t")
        for row in await conn.fetch("SELECT sequencename, last_value FROM pg_sequences"):
            state["seq " + row[0]] = row[1]
        return state
    finally:
        await conn.close()


@pytest.fixture
async def spare(pg):
    """A clone of the node's template, its URL, the template's reset and an admin
    connection."""
    from node.app import MIGRATIONS

    template = await pg.template("node", MIGRATIONS)
    url = await pg.new_database(template)
    admin = await asyncpg.connect(pg.url)
    reset = await Reset.capture(conn := await asyncpg.connect(
        with_database(pg.url, template)), template)
    await conn.close()
    yield url, urlsplit(url).path.lstrip("/"), reset, admin, with_database(pg.url, template)
    await admin.close()
    await pg.drop(url)


async def test_a_reset_database_holds_the_templates_rows_and_sequences(spare) -> None:
    url, name, reset, admin, template_url = spare
    conn = await asyncpg.connect(url)
    await conn.execute("INSERT INTO users (id, username) VALUES ('u1', 'ann')")
    await conn.execute("UPDATE copilot_settings SET enabled = NOT enabled")
    await conn.execute("DELETE FROM schema_migrations WHERE version = "
                       "(SELECT min(version) FROM schema_migrations)")
    await conn.execute("SELECT nextval('node_change_seq'), nextval('audit_log_id_seq')")
    # what the previous test left: an open connection holding an advisory lock
    await conn.execute("SELECT pg_advisory_lock(42); LISTEN anything")
    assert await _state(url, reset) != await _state(template_url, reset)

    assert await reset.run(url, name)

    assert conn.is_closed() or not await _alive(conn)
    assert await _state(url, reset) == await _state(template_url, reset)
    again = await asyncpg.connect(url)
    try:
        assert await again.fetchval("SELECT pg_try_advisory_lock(42)")
        await again.execute("INSERT INTO users (id, username) VALUES ('u1', 'ann')")
    finally:
        await again.close()


async def _alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return False
    return True


@pytest.mark.parametrize("change", [
    "CREATE TABLE extra (x int)",
    "ALTER TABLE users ADD COLUMN extra int",
    "CREATE INDEX extra ON users (display_name)",
    "DROP TRIGGER wb_table_changed ON users",
    "COMMENT ON TABLE users IS 'changed'",
    "CREATE TEMP TABLE scratch (x int)",
    "SELECT lo_create(0)",
    "ALTER SEQUENCE node_change_seq INCREMENT BY 2",
    "CREATE FUNCTION extra() RETURNS int LANGUAGE sql AS 'SELECT 1'",
])
async def test_a_reset_refuses_a_database_whose_schema_changed(spare, change: str) -> None:
    url, name, reset, admin, _ = spare
    conn = await asyncpg.connect(url)
    await conn.execute(change)
    await conn.close()
    assert not await reset.run(url, name)


async def test_a_reset_refuses_a_database_whose_settings_changed(spare) -> None:
    url, name, reset, admin, _ = spare
    await admin.execute(f'ALTER DATABASE "{name}" SET work_mem = \'8MB\'')
    assert not await reset.run(url, name)


async def test_a_reset_refuses_a_database_that_is_gone(spare, pg) -> None:
    url, name, reset, admin, _ = spare
    await pg.drop(url)
    assert not await reset.run(url, name)


def test_a_killed_runs_server_files_are_swept_and_a_live_or_new_one_kept(tmp_path) -> None:
    def cluster(name: str, *, running: bool, age: float) -> Path:
        pgdata = tmp_path / name / "pgdata"
        pgdata.mkdir(parents=True)
        (pgdata / "PG_VERSION").write_text("16\n")
        if running:
            (pgdata / "postmaster.pid").write_text("1\n")
        stamp = time.time() - age
        os.utime(tmp_path / name, (stamp, stamp))
        return tmp_path / name

    killed = cluster("wb-pg-killed", running=False, age=3600)
    live = cluster("wb-pg-live", running=True, age=3600)
    starting = cluster("wb-pg-starting", running=False, age=5)
    other = cluster("wb-outage-x", running=False, age=3600)
    assert sweep_stale(str(tmp_path)) == [str(killed)]
    assert not killed.exists() and live.exists() and starting.exists() and other.exists()
