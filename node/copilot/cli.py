"""``wb copilot triage|suggest-scope|set-scope|create-invite|sync-preview|stats|token``.

The CLI runs the same tools as the web assistant and the MCP server, as the operator
(admin rights, no user id), audited with ``via: cli``. The tools are deterministic and
need no gateway; they work whether or not the copilot is switched on.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import click

from node.cli import run_with_pool
from node.copilot import queries as Q
from node.copilot import service as S
from node.i18n import plural
from service.settings import Config


def _run_tool(name: str, args: dict[str, Any]) -> dict[str, Any]:
    async def main(pool: asyncpg.Pool, config: Config) -> dict[str, Any]:
        ctx = S.ToolContext(pool, config, None, "cli")
        return await S.run_tool(ctx, name, args, rate_limited=False)

    return run_with_pool(main)


def _emit(result: dict[str, Any], as_json: bool, human) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        from node.web import json_dumps

        click.echo(json_dumps(result))
    else:
        human(result)


@click.group("copilot")
def copilot_group() -> None:
    """Mutual Aid Copilot tools (no AI needed) and MCP tokens."""


@copilot_group.command("triage")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def triage_cmd(limit: int, as_json: bool) -> None:
    """Open requests by need, with suggested helpers."""

    def human(result: dict[str, Any]) -> None:
        if not result["requests"]:
            click.echo("no open requests")
        for r in result["requests"]:
            click.echo(f"{r['id']}  @{r['requester'] or '-'}  {r['title'][:60]}  "
                       f"[{', '.join(r['reasons']) or 'in progress'}]")
            for h in r["suggested_helpers"]:
                hops = plural(h["invite_hops"], "%(num)d hop", "%(num)d hops")
                click.echo(f"    helper @{h['username']} ({hops}, "
                           f"{h['similar_requests']} similar)")

    _emit(_run_tool("triage_requests", {"limit": limit}), as_json, human)


@copilot_group.command("suggest-scope")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def suggest_scope_cmd(as_json: bool) -> None:
    """Records whose scope looks wrong, with reasons."""

    def human(result: dict[str, Any]) -> None:
        if not result["suggestions"]:
            click.echo("no suggestions")
        for s in result["suggestions"]:
            click.echo(f"{s['kind']}:{s['id']}  {s['current_scope']} -> {s['suggested_scope']}"
                       f"  {s['reason']}")

    _emit(_run_tool("suggest_scope_changes", {}), as_json, human)


@copilot_group.command("set-scope")
@click.argument("kind", type=click.Choice(["request", "comment", "user"]))
@click.argument("record_id")
@click.argument("scope", type=click.Choice(["private", "public"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def set_scope_cmd(kind: str, record_id: str, scope: str, as_json: bool) -> None:
    """Set the scope of one local record (audited)."""
    result = _run_tool("set_scope", {"kind": kind, "id": record_id, "scope": scope})
    _emit(result, as_json, lambda r: click.echo(
        f"{kind}:{record_id} is {scope}" + ("" if r["changed"] else " (unchanged)")))


@copilot_group.command("create-invite")
@click.option("--max-uses", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--expires-days", type=click.IntRange(0, 365), default=14, show_default=True)
@click.option("--username", default="", help="Suggested username.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create_invite_cmd(max_uses: int, expires_days: int, username: str, as_json: bool) -> None:
    """Create an invite and print its link (shown once)."""
    result = _run_tool("create_invite", {"max_uses": max_uses, "expires_days": expires_days,
                                         "suggested_username": username})
    _emit(result, as_json, lambda r: click.echo(r["link"]))


@copilot_group.command("sync-preview")
@click.option("--snapshot", is_flag=True, help="Preview a full snapshot.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sync_preview_cmd(snapshot: bool, as_json: bool) -> None:
    """What the next export would publish, and whether it is safe. Exit 1 when unsafe."""
    result = _run_tool("sync_preview", {"snapshot": snapshot})

    def human(r: dict[str, Any]) -> None:
        click.echo(f"{r['kind']}: {plural(r['records'], '%(num)d record', '%(num)d records')} "
                   + ", ".join(f"{k}={v}" for k, v in sorted(r["counts"].items())))
        for w in r["waiting"]:
            click.echo(f"waiting {w['entity']}:{w['id']}  leaves in "
                       f"{w['leaves_in_seconds']} s unless withdrawn")
        for p in r["problems"]:
            click.echo(f"UNSAFE {p['entity']}:{p['id']}  {p['problem']}  ({p['fix']})"
                       + ("  [waiting]" if p.get("waiting") else ""))
        click.echo("safe" if r["safe"] else "not safe to publish")

    _emit(result, as_json, human)
    if not result["safe"]:
        raise SystemExit(1)


def _pct(rate: float | None) -> str:
    return "   —" if rate is None else f"{round(rate * 100):3d} %"


@copilot_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats_cmd(as_json: bool) -> None:
    """Helpful rate of chat answers, overall and per tool, last 7 and 30 days."""

    async def main(pool: asyncpg.Pool, config: Config) -> dict[str, Any]:
        return await S.satisfaction(pool)

    result = run_with_pool(main)

    def human(r: dict[str, Any]) -> None:
        week, month = r["windows"]
        click.echo(f"helpful rate (goal > {round(r['target'] * 100)} %): helpful/rated, answers")
        click.echo(f"{'':<24}{'last 7 days':<26}last 30 days")
        rows = [("all answers", week, month)] + [
            (w["tool"], w, m) for w, m in zip(week["tools"], month["tools"], strict=True)]
        for name, w, m in rows:
            cells = [f"{_pct(x['rate'])}  {x['helpful']}/{x['rated']}, {x['answers']}"
                     for x in (w, m)]
            click.echo(f"{name:<24}{cells[0]:<26}{cells[1]}")

    _emit(result, as_json, human)


@copilot_group.group("token")
def token_group() -> None:
    """Bearer tokens for the MCP endpoint (/mcp), each acting for one admin."""


@token_group.command("create")
@click.option("--admin", "username", required=True, help="Username of a local admin.")
@click.option("--label", default="", help="What the token is for.")
def token_create(username: str, label: str) -> None:
    """Print a new token (shown once; only its hash is stored)."""

    async def main(pool: asyncpg.Pool, config: Config) -> tuple[str, str]:
        return await S.create_token(pool, username, label)

    token_id, token = run_with_pool(main)
    click.echo(token)
    click.echo(f"token id {token_id}: send it as 'Authorization: Bearer <token>' to /mcp",
               err=True)


@token_group.command("list")
def token_list() -> None:
    """Tokens with their admin and last use (never the tokens themselves)."""

    async def main(pool: asyncpg.Pool, config: Config) -> list[asyncpg.Record]:
        return await Q.list_tokens(pool)

    for t in run_with_pool(main):
        state = "revoked" if t["revoked_at"] else "live"
        click.echo(f"{t['id']}  {state:<7}  @{t['username']}  {t['label']}")


@token_group.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token at once."""

    async def main(pool: asyncpg.Pool, config: Config) -> bool:
        return await Q.revoke_token(pool, token_id)

    if not run_with_pool(main):
        raise click.ClickException(f"no live token {token_id}")
    click.echo(f"token {token_id} revoked")


def register(root: click.Group) -> None:
    root.add_command(copilot_group)


