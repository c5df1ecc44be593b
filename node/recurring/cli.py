"""``wb recurring list|run|pause|resume``: recurring request templates from the shell (acts
as an admin; templates are created on /recurring by a house manager)."""

from __future__ import annotations

import datetime as dt

import click

from node.cli import run_with_pool
from node.recurring import service as S
from node.requests.service import Actor
from node.web import json_dumps
from service.settings import Config

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def register(root: click.Group) -> None:
    root.add_command(recurring)


def _zone(config: Config):
    try:
        return S.zone_of(config)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("recurring")
def recurring() -> None:
    """Recurring request templates (local; never exported)."""


@recurring.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Every template with its cadence, mode, state and next occurrence."""
    async def main(pool, config: Config):
        zone = _zone(config)
        return [S.template_json(r, zone) for r in await S.overview(pool, Actor.cli())]

    rows = run_with_pool(main)
    if as_json:
        click.echo(json_dumps({"templates": rows}))
        return
    if not rows:
        click.echo("No recurring requests.")
    for r in rows:
        state = "paused" if r["paused"] else f"next {r['next_local']} {r['time_zone']}"
        click.echo(f"{r['id']}  {r['title'] or '(untitled)'}  {r['describe']}, as a "
                   f"{'draft' if r['mode'] == 'draft' else 'request'}  @{r['owner']['username']}"
                   f"  {state}")


@recurring.command("run")
@click.option("--at", "at", default="",
              help="Act as if it were this ISO date-time (UTC unless it has an offset).")
def run_cmd(at: str) -> None:
    """Make every template's due occurrence now (each at most once, whichever process or
    job makes it first)."""
    when = None
    if at:
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter("an ISO date-time such as 2026-03-02T08:00",
                                     param_hint="--at") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        if not 1970 <= when.year <= 9998:  # the date search needs room either side
            raise click.BadParameter("a date-time between the years 1970 and 9998",
                                     param_hint="--at")

    async def main(pool, config: Config):
        _zone(config)
        return await S.materialise_due(pool, config, when)

    counts = run_with_pool(main)
    click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))


def _pause_command(name: str, paused: bool) -> click.Command:
    @click.command(name, help=f"{name.title()} the template TEMPLATE_ID"
                   + (" (from now on: what fell due while paused is not made)."
                      if not paused else "."))
    @click.argument("template_id")
    def command(template_id: str) -> None:
        async def main(pool, config: Config):
            return await S.set_paused(pool, Actor.cli(), template_id, paused)

        row = run_with_pool(main)
        click.echo(f"{row['id']}: {'paused' if paused else 'resumed'}")

    return command


recurring.add_command(_pause_command("pause", True))
recurring.add_command(_pause_command("resume", False))
