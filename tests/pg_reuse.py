"""Reusing a finished test's database instead of cloning a new one (#24).

A clone from a template makes the server copy every file of the template (and, with
FILE_COPY, checkpoint twice); putting a database that a test has finished with back
into its template's state costs less when the test changed only rows: empty the tables
that hold rows (DELETE; TRUNCATE for big ones), put the template's own rows back (COPY)
and every sequence where the template has it (``setval``).

What a reset cannot undo, it detects and refuses (``Reset.run`` returns False and the
caller drops the database and clones a new one): any change to the database's catalogs
(DDL, comments, grants, large objects, temporary tables: see ``CATALOG_WRITES_SQL``),
database settings (``ALTER DATABASE``), prepared transactions, and connections that do
not go away. Session state
(advisory locks, LISTEN, prepared statements, temporary objects) dies with the previous
test's connections, which are ended first.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field

import asyncpg

# Rows written to the database's own catalogs since it was created, as the server's
# statistics count them (inserted, updated and deleted; also in transactions that
# rolled back): only DDL, comments, grants, large objects and temporary tables write
# them. A backend reports its counts when it exits, before it leaves pg_stat_activity,
# so once ``end_connections`` has seen every other connection go, the sum includes
# everything the previous test did. ``pg_class`` is left out (each TRUNCATE, the
# reset's own too, gives a table a new file number in place): it is compared column by
# column instead (``CLASS_SQL``); ``pg_statistic`` is ANALYZE's, the shared catalogs
# the cluster's. (It was a scan of every catalog for rows with a newer ``xmin``: 18 ms
# of the machine's CPU per reset, most of a reset.)
CATALOG_WRITES_SQL = """
SELECT coalesce(sum(s.n_tup_ins + s.n_tup_upd + s.n_tup_del), 0)
FROM pg_stat_all_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = 'pg_catalog' AND NOT c.relisshared
  AND s.relname NOT IN ('pg_class', 'pg_statistic')
"""
_CLASS_COLUMNS = ("oid, relname, relnamespace, relkind, relowner, relnatts, relchecks, "
                  "relpersistence, relacl::text, reloptions::text, relrowsecurity")
_TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname), n.nspname, c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'
ORDER BY 1
"""
_SEQUENCES_SQL = """
SELECT format('%I.%I', schemaname, sequencename), last_value, start_value FROM pg_sequences
WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""
# A table that a test filled beyond this many bytes is emptied by TRUNCATE, smaller ones
# by DELETE: a TRUNCATE gives the table and each of its indexes a new file, 3-4 ms of
# the server's CPU per table (``users`` with what refers to it: 0.13 s), where a DELETE
# of a test's few rows costs next to nothing (all 54 empty tables of the node: 1 ms).
TRUNCATE_FROM = 1 << 20
# What ALTER DATABASE can change about the database itself (compared with the template's).
DATABASE_STATE_SQL = """
SELECT d.datdba, d.datallowconn, d.datconnlimit, d.datacl::text, d.dattablespace,
       (SELECT count(*) FROM pg_db_role_setting s WHERE s.setdatabase = d.oid),
       (SELECT count(*) FROM pg_prepared_xacts p WHERE p.database = d.datname)
FROM pg_database d WHERE d.datname = $1
"""


def _quote(literal: str) -> str:
    return "'" + literal.replace("'", "''") + "'"


CLASS_SQL = (f"SELECT md5(string_agg(row({_CLASS_COLUMNS})::text, ',' ORDER BY oid)) "
             "FROM pg_catalog.pg_class")


@dataclass
class Reset:
    """A template's state, captured once, and how to put a database back into it."""

    fingerprint: str  # CLASS_SQL's digest (the same in every clone)
    database_state: tuple[object, ...]
    tables: list[str]
    # COPY ... BINARY of each table that holds rows, by (schema, table)
    seeds: dict[tuple[str, str], bytes] = field(default_factory=dict)
    # (sequence, value, is_called) for setval
    sequences: list[tuple[str, int, bool]] = field(default_factory=list)
    seeded: list[str] = field(default_factory=list)  # the same tables, qualified
    _dirty_sql: str = ""
    _sequences_sql: str = ""
    # CATALOG_WRITES_SQL of each database after its last reset (a new clone's: 0)
    _writes: dict[str, int] = field(default_factory=dict)

    @classmethod
    async def capture(cls, conn: asyncpg.Connection, name: str) -> Reset:
        """``conn``: connected to the template ``name`` (``pg_database`` is a shared
        catalog, readable from there)."""
        state = tuple(await conn.fetchrow(DATABASE_STATE_SQL, name))
        rows = await conn.fetch(_TABLES_SQL)
        tables = [r[0] for r in rows]
        seeds = {}
        for table, schema, bare in rows:
            if await conn.fetchval(f"SELECT EXISTS (SELECT FROM {table})"):
                buf = io.BytesIO()
                await conn.copy_from_table(bare, schema_name=schema, output=buf,
                                           format="binary")
                seeds[(schema, bare)] = buf.getvalue()
        sequences = [(name, start if last is None else last, last is not None)
                     for name, last, start in await conn.fetch(_SEQUENCES_SQL)]
        seeded = [t for t, schema, bare in rows if (schema, bare) in seeds]
        reset = cls(str(await conn.fetchval(CLASS_SQL)), state, tables, seeds, sequences,
                    seeded)
        # The tables that hold a row now, with their size: one query whose scans stop
        # at each table's first row.
        reset._dirty_sql = ("SELECT name, pg_relation_size(name::regclass) FROM (VALUES "
                            + ", ".join(f"({_quote(t)}, EXISTS (SELECT FROM {t}))"
                                        for t in tables)
                            + ") AS t (name, used) WHERE used") if tables else ""
        reset._sequences_sql = "SELECT " + ", ".join(
            f"setval({_quote(s)}, {value}, {str(called).lower()})"
            for s, value, called in sequences
        ) if sequences else ""
        return reset

    async def run(self, url: str, name: str) -> bool:
        """Put database ``name`` (at ``url``) back into the template's state; False when
        that is not possible (the caller drops it and clones a new one). On one
        connection, to the database itself: a backend start costs the server ~10 ms of
        CPU, and the suite resets a database for most of its tests."""
        try:
            conn = await asyncpg.connect(url)
        except asyncpg.InvalidCatalogNameError:  # dropped meanwhile
            return False
        try:
            if not await end_connections(conn, name):
                return False
            state = await conn.fetchrow(DATABASE_STATE_SQL, name)
            if state is None or tuple(state) != self.database_state:
                return False
            writes = await conn.fetchval(CATALOG_WRITES_SQL)
            if writes != self._writes.get(name, 0):
                return False
            if str(await conn.fetchval(CLASS_SQL)) != self.fingerprint:
                return False
            used = await conn.fetch(self._dirty_sql) if self._dirty_sql else []
            big = sorted(name for name, size in used if size > TRUNCATE_FROM)
            small = sorted({name for name, _ in used if name not in big} | set(self.seeded))
            async with conn.transaction():
                # Triggers (the tables' NOTIFY, the outbox's and invite graph's
                # bookkeeping) and foreign-key checks do not fire for a restore.
                await conn.execute("SET LOCAL session_replication_role = replica")
                if big:  # CASCADE: what refers to them holds rows too, or nothing
                    await conn.execute("TRUNCATE " + ", ".join(big) + " CASCADE")
                if small:
                    await conn.execute(";".join(f"DELETE FROM {t}" for t in small))
                for (schema, bare), data in self.seeds.items():
                    await conn.copy_to_table(bare, schema_name=schema, source=io.BytesIO(data),
                                             format="binary")
                if self._sequences_sql:
                    await conn.execute(self._sequences_sql)
        finally:
            await conn.close()
        self._writes[name] = writes
        return True


async def end_connections(conn: asyncpg.Connection, name: str, *,
                          patience: float = 5.0) -> bool:
    """End every other connection to database ``name``; False if some are still there
    after ``patience`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        left = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
        if not left:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
