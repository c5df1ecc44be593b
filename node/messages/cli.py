"""``wb messages reports list|resolve``: the reported direct messages, for operators.

Only reported messages are shown (their body, sender, reporter and reason); there is no
command that reads a conversation. Works whether or not WB_MESSAGES is on.
"""

from __future__ import annotations

import json

import click

from node.cli import run_with_pool
from node.messages import service as S
from service.settings import Config

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def register(root: click.Group) -> None:
    root.add_command(messages)


@click.group("messages")
def messages() -> None:
    """Direct messages between members (WB_MESSAGES): the report queue."""


@messages.group("reports")
def reports() -> None:
    """Messages their recipients reported (admins read only these)."""


@reports.command("list")
@click.option("--all", "show_all", is_flag=True, help="Resolved reports too.")
@json_option
def list_cmd(show_all: bool, as_json: bool) -> None:
    """Open reports, oldest first, with the reported message's body."""
    async def main(pool, config: Config):
        return await S.reports(pool, open_only=not show_all)

    rows = [S.report_json(r) for r in run_with_pool(main)]
    if as_json:
        click.echo(json.dumps({"reports": rows}, default=str))
        return
    if not rows:
        click.echo("No open reports." if not show_all else "No reports.")
    for r in rows:
        state = f"resolved by {r['resolved_by'] or '?'}" if r["resolved_at"] else "open"
        click.echo(f"{r['id']}  {state}  from @{r['sender']}, reported by @{r['reporter']}"
                   f"{': ' + r['reason'] if r['reason'] else ''}")
        for line in r["body"].splitlines() or [""]:
            click.echo(f"    | {line}")


@reports.command("resolve")
@click.argument("report_id")
@click.option("--note", default="", help="What was done (kept with the report).")
@json_option
def resolve_cmd(report_id: str, note: str, as_json: bool) -> None:
    """Mark REPORT_ID resolved."""
    async def main(pool, config: Config):
        return await S.resolve(pool, None, report_id, note)

    row = run_with_pool(main)
    click.echo(json.dumps({"resolved": row["id"]}) if as_json else f"resolved {row['id']}")
