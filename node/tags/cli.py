"""``wb tags list|set|remove``: the community's tag list from the shell (acts as an admin)."""

from __future__ import annotations

import json

import click

from node.cli import run_with_pool
from node.requests.service import Actor
from node.tags import service as S
from service.settings import Config

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def register(root: click.Group) -> None:
    root.add_command(tags)


@click.group("tags")
def tags() -> None:
    """The community's request tags (names and contrast-checked colours)."""


@tags.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Every tag with its colours and how many requests carry it."""
    async def main(pool, config: Config):
        return await S.catalog(pool)

    rows = [S.tag_json(r) for r in run_with_pool(main)]
    if as_json:
        click.echo(json.dumps({"tags": rows}))
        return
    if not rows:
        click.echo("No tags.")
    for r in rows:
        click.echo(f"{r['name']:<32} {r['colour']} on {r['text_colour']}  {r['uses']} requests")


@tags.command("set")
@click.argument("name")
@click.argument("colour")
@json_option
def set_cmd(name: str, colour: str, as_json: bool) -> None:
    """Add tag NAME or recolour it (COLOUR is #rrggbb; refused below 4.5:1 contrast)."""
    async def main(pool, config: Config):
        return await S.save_tag(pool, Actor.cli(), name, colour)

    row = S.tag_json(run_with_pool(main))
    click.echo(json.dumps({"tag": row}) if as_json else
               f"{row['name']}: {row['colour']} with {row['text_colour']} text")


@tags.command("remove")
@click.argument("name")
@json_option
def remove_cmd(name: str, as_json: bool) -> None:
    """Delete tag NAME (requests lose it)."""
    async def main(pool, config: Config):
        await S.delete_tag(pool, Actor.cli(), name)

    run_with_pool(main)
    click.echo(json.dumps({"deleted": name}) if as_json else f"deleted {name}")
