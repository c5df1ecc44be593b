"""``wb sync review list|approve|decline|withdraw-all`` and ``wb sync public-scope``."""

from __future__ import annotations

import click

from node.cli import run_with_pool
from node.i18n import plural
from node.publication import service as S
from node.requests.service import Actor
from service.settings import Config


def _out(as_json: bool, value: object, text: str) -> None:
    if as_json:
        from node.web import json_dumps
        click.echo(json_dumps(value))
    else:
        click.echo(text)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def register(root: click.Group) -> None:
    sync = root.commands["sync"]
    assert isinstance(sync, click.Group)
    sync.add_command(review)
    sync.add_command(public_scope_cmd)


@click.command("public-scope")
@click.argument("mode", required=False, type=click.Choice(S.MODES))
@json_option
def public_scope_cmd(mode: str | None, as_json: bool) -> None:
    """Show SYNC_PUBLIC_SCOPE in force, or change it to MODE (members, admins, off).

    MODE is the admin's switch of /sync/review: audited, and in force until the setting
    changes. Without MODE, a changed setting is put in force (audited), as at start-up."""
    async def main(pool, config: Config):
        if mode is not None:
            return await S.set_mode(pool, Actor.cli(), mode)
        return await S.apply_mode(pool, config, actor="cli")

    res = run_with_pool(main)
    source = ("set by an admin" + (f" ({res['changed_by']})" if res["changed_by"] else "")
              + f"; the setting says {res['configured']}") if res["source"] == "admin" \
        else "from the setting"
    lines = [f"SYNC_PUBLIC_SCOPE={res['mode']}" + (f" (was {res['previous']})"
                                                   if res["changed"] else "")
             + f" ({source})",
             res["explain"], plural(res["still_public"], "%(num)d local record marked public.",
                                    "%(num)d local records marked public.")]
    if res["lowered"] and res["still_public"]:
        lines.append("They stay public until withdrawn: wb sync review withdraw-all.")
    _out(as_json, res, "\n".join(lines))


@click.group("review")
def review() -> None:
    """Publication requests (SYNC_PUBLIC_SCOPE=admins) and what is still public."""


@review.command("list")
@click.option("--status", default="pending", show_default=True,
              type=click.Choice(["pending", "approved", "declined", "cancelled", "all"]))
@json_option
def list_cmd(status: str, as_json: bool) -> None:
    """List publication requests."""
    async def main(pool, config: Config):
        rows = await S.list_requests(pool, Actor.cli(), status=S.parse_status(status))
        return [S.request_json(r) for r in rows]

    rows = run_with_pool(main)
    text = "\n".join(f"{r['id']}  {r['status']:<9}  {r['kind']}:{r['record_id']}  "
                     f"{r['requested_by'] or '-'}  {r['summary'] or ''}" for r in rows)
    _out(as_json, {"requests": rows}, text or "No publication requests.")


def _decide(request_id: str, approve: bool, note: str, as_json: bool) -> None:
    async def main(pool, config: Config):
        return await S.decide(pool, Actor.cli(), request_id, approve, note)

    res = run_with_pool(main)
    _out(as_json, res, f"{res['status']}: {res['kind']}:{res['record_id']}")


@review.command("approve")
@click.argument("request_id")
@click.option("--note", default="", help="Why (kept with the decision).")
@json_option
def approve_cmd(request_id: str, note: str, as_json: bool) -> None:
    """Approve a publication request: the record becomes public."""
    _decide(request_id, True, note, as_json)


@review.command("decline")
@click.argument("request_id")
@click.option("--note", default="", help="Why (kept with the decision).")
@json_option
def decline_cmd(request_id: str, note: str, as_json: bool) -> None:
    """Decline a publication request: the record stays private."""
    _decide(request_id, False, note, as_json)


@review.command("withdraw-all")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def withdraw_all_cmd(yes: bool, as_json: bool) -> None:
    """Make every local public record private (their tombstones leave with the next export)."""
    if not yes and not as_json:
        click.confirm("Make every local public record private?", abort=True)

    async def main(pool, config: Config):
        return await S.withdraw_all(pool, Actor.cli())

    count = run_with_pool(main)
    _out(as_json, {"withdrawn": count},
         plural(count, "%(num)d record made private.", "%(num)d records made private."))
