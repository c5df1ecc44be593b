"""Database plumbing of both apps' commands: ``init-db`` and the pool a command runs on,
the same for node and hub apart from where their data lives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import asyncpg
import click

from service import db
from service.settings import Config


def init_db_command(component: str, url_setting: str, dir_setting: str,
                    migrations: Callable[[], Path]) -> click.Command:
    """``init-db`` for ``component``: resolve its database (embedded when the URL setting
    is empty), apply pending migrations, say what was applied."""

    @click.command("init-db", help=f"Create or upgrade the {component} database (idempotent).")
    def init_db() -> None:
        config = Config()

        async def main() -> list[str]:
            url = await db.resolve_url(config[url_setting], config.path(dir_setting))
            try:
                return await db.migrate_url(url, component, migrations())
            except db.DatabaseError as exc:
                raise click.ClickException(str(exc)) from None

        applied = asyncio.run(main())
        click.echo("applied: " + ", ".join(applied) if applied else "database is up to date")

    return init_db


async def command_pool(config: Config, component: str, url_setting: str, dir_setting: str,
                       migrations: Path) -> asyncpg.Pool:
    """A small pool on ``component``'s migrated database for one command; a database that
    cannot be reached is a one-line CLI error, not a traceback."""
    try:
        _url, pool = await db.open_migrated(config[url_setting], config.path(dir_setting),
                                            component, migrations, max_size=4)
    except db.DatabaseError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise click.ClickException(f"cannot reach the {component} database: {exc}") from None
    return pool
