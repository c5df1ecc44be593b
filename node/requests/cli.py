"""``wb requests list|reopen|complete`` and ``wb comments delete|restore``.

The CLI acts as an operator (admin rights, no user id): the same service functions as
the pages decide what is allowed, and moderation is written to the audit log with
``via: cli``.
"""

from __future__ import annotations

import asyncpg
import click

from node.cli import run_with_pool
from node.requests import queries as Q
from node.requests import service as S
from service.settings import Config


def _run(fn):  # type: ignore[no-untyped-def]
    async def wrapped(pool: asyncpg.Pool, config: Config):  # type: ignore[no-untyped-def]
        return await fn(pool)

    return run_with_pool(wrapped)


@click.group("requests")
def requests_group() -> None:
    """Help requests: list, complete, reopen."""


@requests_group.command("list")
@click.option("--status", type=click.Choice(["pending", "open", "completed"]), default=None,
              help="Only requests with this status.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
def list_cmd(status: str | None, limit: int) -> None:
    """List requests, newest first."""

    async def main(pool: asyncpg.Pool) -> list[asyncpg.Record]:
        return await Q.list_for_cli(pool, status=status, limit=limit)

    rows = _run(main)
    if not rows:
        click.echo("no requests")
    for r in rows:
        where = "local" if r["origin"] is None else f"from {r['origin']}"
        title = S.clean_title(r["title"]) or "(untitled)"
        click.echo(f"{r['id']}  {r['status']:<9}  {r['sync_scope']:<7}  "
                   f"{r['created_at']:%Y-%m-%d %H:%M}  @{r['creator_username'] or '-'}  "
                   f"{where}  {title[:60]}")


@requests_group.command("complete")
@click.argument("request_id")
def complete_cmd(request_id: str) -> None:
    """Mark an open request completed."""

    async def main(pool: asyncpg.Pool) -> None:
        await S.complete(pool, S.Actor.cli(), request_id)

    _run(main)
    click.echo(f"request {request_id} completed")


@requests_group.command("reopen")
@click.argument("request_id")
def reopen_cmd(request_id: str) -> None:
    """Reopen a completed request (audited)."""

    async def main(pool: asyncpg.Pool) -> None:
        await S.reopen(pool, S.Actor.cli(), request_id)

    _run(main)
    click.echo(f"request {request_id} reopened")


@click.group("comments")
def comments_group() -> None:
    """Comment moderation: soft-delete and restore."""


@comments_group.command("delete")
@click.argument("comment_id")
def delete_cmd(comment_id: str) -> None:
    """Hide a comment from members (soft delete, audited)."""

    async def main(pool: asyncpg.Pool) -> None:
        await S.moderate_comment(pool, S.Actor.cli(), comment_id, delete=True)

    _run(main)
    click.echo(f"comment {comment_id} deleted")


@comments_group.command("restore")
@click.argument("comment_id")
def restore_cmd(comment_id: str) -> None:
    """Show a soft-deleted comment again (audited)."""

    async def main(pool: asyncpg.Pool) -> None:
        await S.moderate_comment(pool, S.Actor.cli(), comment_id, delete=False)

    _run(main)
    click.echo(f"comment {comment_id} restored")


def register(root: click.Group) -> None:
    root.add_command(requests_group)
    root.add_command(comments_group)
