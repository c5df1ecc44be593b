"""``wb pins list|add|remove``: pinned requests from the shell (acts as an admin)."""

from __future__ import annotations

import json

import click

from node.cli import run_with_pool
from node.pins import service as S
from node.requests.service import Actor
from service.settings import Config

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def register(root: click.Group) -> None:
    root.add_command(pins)


@click.group("pins")
def pins() -> None:
    """Requests pinned above the feed (local; never exported)."""


@pins.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Every pin in order, ended ones marked."""
    async def main(pool, config: Config):
        return await S.overview(pool, Actor.cli())

    rows = [S.pin_json(r) for r in run_with_pool(main)]
    if as_json:
        click.echo(json.dumps({"pins": rows}))
        return
    if not rows:
        click.echo("Nothing is pinned.")
    for r in rows:
        ends = r["ends_at"] or "never"
        flag = "" if r["running"] else " (ended)"
        click.echo(f"{r['position']:>3} {r['request_id']}  {r['title'] or '(untitled)'}  "
                   f"ends {ends}{flag}")


@pins.command("add")
@click.argument("request_id")
@click.option("--position", default="1", show_default=True, help="Order; 1 is first.")
@click.option("--note", default="", help="A short note shown with the pin.")
@click.option("--ends", "ends_at", default="", help="Last day (YYYY-MM-DD) or ISO date-time.")
@json_option
def add_cmd(request_id: str, position: str, note: str, ends_at: str, as_json: bool) -> None:
    """Pin REQUEST_ID (at most WB_PINNED_REQUESTS_LIMIT running pins)."""
    async def main(pool, config: Config):
        return await S.pin(pool, Actor.cli(), request_id,
                           limit=config.get_int("WB_PINNED_REQUESTS_LIMIT"),
                           position=position, note=note, ends_at=ends_at)

    row = S.pin_json(run_with_pool(main))
    click.echo(json.dumps({"pin": row}) if as_json else
               f"pinned {row['request_id']} at {row['position']}")


@pins.command("remove")
@click.argument("request_id")
@json_option
def remove_cmd(request_id: str, as_json: bool) -> None:
    """Unpin REQUEST_ID."""
    async def main(pool, config: Config):
        await S.unpin(pool, Actor.cli(), request_id)

    run_with_pool(main)
    click.echo(json.dumps({"unpinned": request_id}) if as_json else f"unpinned {request_id}")
