"""Real PostgreSQL for tests: one server per run, one migrated template per component,
one fresh database per test cloned from the template (fast and fully isolated).

The server is the embedded one from pgserver unless WB_TEST_DATABASE_URL points at an
external PostgreSQL (which must allow CREATE DATABASE).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service import db

_counter = itertools.count()
_PREFIX = f"wbt{os.getpid()}"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class TestServer:
    def __init__(self, url: str | None = None) -> None:
        """``url``: an external PostgreSQL (else WB_TEST_DATABASE_URL, else embedded)."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        external = url or os.environ.get("WB_TEST_DATABASE_URL", "")
        if external:
            self.url = external
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="wb-pg-")
            import pgserver

            from service import pgwatch

            pgdata = (Path(self._tmp.name) / "pgdata").resolve()
            self._server = pgserver.get_server(pgdata, cleanup_mode="delete")
            pgwatch.guard(pgdata)  # stopped even if this run is killed
            self.url = self._server.get_uri()
        self.templates: dict[str, str] = {}
        self.created: list[str] = []

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
            await db.migrate_url(with_database(self.url, name), component, migrations)
            self.templates[component] = name
            self.created.append(name)
        return self.templates[component]

    async def new_database(self, template: str | None = None) -> str:
        name = f"{_PREFIX}_{next(_counter)}"
        clause = f' TEMPLATE "{template}"' if template else ""
        await self._admin(f'CREATE DATABASE "{name}"{clause}')
        self.created.append(name)
        return with_database(self.url, name)

    async def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _drop_all(self) -> None:
        for name in reversed(self.created):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self._tmp is None:
            asyncio.run(self._drop_all())
        else:
            self._server.cleanup()
            self._tmp.cleanup()

    async def aclose(self) -> None:
        """``close`` from inside a running event loop (the benchmarks)."""
        if self._tmp is None:
            await self._drop_all()
        else:
            self.close()
