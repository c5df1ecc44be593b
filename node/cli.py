"""Node commands: serve, init-db and jobs, and the helpers the feature CLIs share
(``node.commands`` attaches the feature command groups)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import click

from node import queries_ops as QO
from service import db
from service.dbcli import command_pool, init_db_command
from service.logs import setup_logging
from service.settings import Config

R = TypeVar("R")


def run_with_pool(fn: Callable[[asyncpg.Pool, Config], Awaitable[R]],
                  config: Config | None = None) -> R:
    """Open the node database (migrating it), run ``fn(pool, config)``, close everything.

    A domain error (``AppError``) raised by ``fn`` becomes a clean CLI error naming its code.
    """
    from node.errors import AppError

    config = config or Config()
    from node.publication.service import configured_mode

    try:
        configured_mode(config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    async def main() -> R:
        from node.app import MIGRATIONS

        pool = await command_pool(config, "node", "WB_DATABASE_URL", "WB_DATA_DIR",
                                  MIGRATIONS)
        try:
            from node.publication.service import apply_mode

            await apply_mode(pool, config, actor="config")  # SYNC_PUBLIC_SCOPE, audited
            return await fn(pool, config)
        except AppError as exc:
            raise click.ClickException(f"{exc.message} ({exc.code})") from None
        finally:
            await pool.close()

    return asyncio.run(main())


@click.command("serve")
@click.option("--host", envvar="WB_HOST", default=None, help="Address to bind (WB_HOST).")
@click.option("--port", envvar="WB_PORT", type=int, default=None, help="Port (WB_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the community node web server."""
    from aiohttp import web

    from node import typedefs as T
    from node.app import create_app
    from service import serving

    overrides = {}
    if host:
        overrides["WB_HOST"] = host
    if port:
        overrides["WB_PORT"] = str(port)
    config = Config(overrides)
    setup_logging(config["WB_LOG_LEVEL"], config["WB_LOG_FORMAT"])
    host = config["WB_HOST"]
    port = config.get_int("WB_PORT")
    try:
        limits = serving.ConnectionLimits.from_config(config)
        loop_factory = serving.event_loop_factory(config["WB_EVENT_LOOP"].strip().lower())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    app = create_app(config)

    async def announce(app: web.Application) -> None:
        members = await QO.count_users_by_origin(app[T.pool_key])
        click.echo(f"WhiteBalloon node running at http://{host}:{port}/ "
                   f"(SITE_URL {config.site_url})")
        if members == 0:
            click.echo("This is a new node: the first person to register becomes its admin.")

    app.on_startup.append(announce)
    try:
        serving.run(app, host, port, limits, loop_factory=loop_factory)
    except serving.ListenError as exc:
        raise click.ClickException(str(exc)) from None


def _node_migrations() -> Path:
    from node.app import MIGRATIONS

    return MIGRATIONS


init_db = init_db_command("node", "WB_DATABASE_URL", "WB_DATA_DIR", _node_migrations)


def run_with_app(fn: Callable[..., Awaitable[R]]) -> R:
    """Start the real node app without serving HTTP (no scheduler), run ``fn(app)``."""
    from node.app import create_app

    async def main() -> R:
        config = Config({"WB_SCHEDULER": "false"})
        app = create_app(config)
        app.freeze()
        try:
            await app.startup()
        except db.DatabaseError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            return await fn(app)
        finally:
            await app.cleanup()

    return asyncio.run(main())


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs: list them, run one now, pause or resume."""


@jobs_group.command("list")
def jobs_list() -> None:
    """Every known job with its state."""
    from node import typedefs as T
    from node.scheduler import job_states, jobs_key

    async def main(app):
        states = {r["id"]: r for r in await job_states(app[T.pool_key])}
        ids = sorted(set(app[jobs_key]) | set(states))
        for job_id in ids:
            st = states.get(job_id)
            if st is None:
                click.echo(f"{job_id:40} never run")
                continue
            flags = "paused " if st["paused"] else ""
            click.echo(f"{job_id:40} {flags}runs={st['runs']} failures={st['failures']} "
                       f"last={st['last_result'] or '-'}")

    run_with_app(main)


@jobs_group.command("run")
@click.argument("job_id")
def jobs_run(job_id: str) -> None:
    """Run JOB_ID now (ignores pause and back-off, never overlaps a running one)."""
    from node.scheduler import jobs_key, run_job

    async def main(app):
        job = app[jobs_key].get(job_id)
        if job is None:
            raise click.ClickException(
                f"unknown job {job_id!r}; `wb jobs list` shows the jobs")
        return await run_job(app, job, force=True)

    result = run_with_app(main)
    click.echo(f"{job_id}: {result}")
    if result.startswith("error"):
        raise SystemExit(1)


def _pause_command(name: str, paused: bool) -> click.Command:
    @click.command(name, help=f"{name.title()} scheduled runs of JOB_ID (kept across restarts).")
    @click.argument("job_id")
    def command(job_id: str) -> None:
        from node.scheduler import set_paused

        async def main(pool, config):
            await set_paused(pool, job_id, paused)

        run_with_pool(main)
        click.echo(f"{job_id}: {'paused' if paused else 'resumed'}")

    return command


jobs_group.add_command(_pause_command("pause", True))
jobs_group.add_command(_pause_command("resume", False))


def register(root: click.Group) -> None:
    root.add_command(serve)
    root.add_command(init_db)
    root.add_command(jobs_group)
