"""``wb invite-map refresh`` and ``wb avatars reset USERNAME``."""

from __future__ import annotations

import click

from node.profiles import invite_map
from node.profiles import queries as Q
from node.profiles import service as S


def _run(fn):
    from node.cli import run_with_pool

    return run_with_pool(fn)


@click.group("invite-map")
def invite_map_group() -> None:
    """Invite map caches."""


@invite_map_group.command("refresh")
@click.option("--all", "everything", is_flag=True,
              help="Rebuild every cached map, not only those whose graph changed.")
@click.option("--clear", is_flag=True, help="Drop every cached map instead (rebuilt on view).")
def refresh(everything: bool, clear: bool) -> None:
    """Rebuild stale invite-map caches (what the scheduler runs)."""
    async def main(pool, config):
        if clear:
            return {"cleared": await Q.clear_cache(pool)}
        return await invite_map.refresh_stale(pool, everything=everything)

    result = _run(main)
    click.echo(", ".join(f"{k}: {v}" for k, v in result.items()))


@click.group("avatars")
def avatars_group() -> None:
    """Member avatars."""


@avatars_group.command("reset")
@click.argument("username")
def reset(username: str) -> None:
    """Remove USERNAME's avatar (file and reference); audited as done by the operator."""
    async def main(pool, config):
        user = await Q.user_by_username(pool, username)
        if user is None:
            raise click.ClickException(f"no local member called {username!r}")
        return await S.reset_avatar(pool, config.path("WB_DATA_DIR"), user["id"],
                                    S.Actor(None, True, None))

    had = _run(main)
    click.echo(f"avatar of {username} removed" if had else f"{username} had no avatar")


@click.group("roles")
def roles_group() -> None:
    """Member roles an admin grants: reviewer (approves sign-ins), house_manager (recurring
    requests). Local; never exported."""


@roles_group.command("list")
@click.argument("role", required=False)
def roles_list(role: str | None) -> None:
    """Members holding ROLE (every role when omitted). Admins hold every role implicitly."""
    async def main(pool, config):
        return await Q.members_with_role(pool, S.parse_role(role) if role else None)

    rows = _run(main)
    for r in rows:
        click.echo(f"{r['role']:<14} @{r['username']:<24} since {r['granted_at']:%Y-%m-%d}"
                   + (f" (by @{r['granted_by']})" if r["granted_by"] else ""))
    if not rows:
        click.echo("no member holds a role" + (f" {role!r}" if role else ""))


def _role_command(grant: bool):
    @click.argument("username")
    @click.argument("role")
    def command(username: str, role: str) -> None:
        async def main(pool, config):
            user = await Q.user_by_username(pool, username)
            if user is None:
                raise click.ClickException(f"no local member called {username!r}")
            return await S.set_role(pool, target_id=user["id"], role=role, grant=grant,
                                    actor=S.Actor(None, True, None))

        changed = _run(main)
        click.echo(f"{username}: {role} {'granted' if grant else 'revoked'}" if changed
                   else f"{username}: nothing to change")
    command.__doc__ = (f"{'Give' if grant else 'Take'} ROLE {'to' if grant else 'from'} "
                       "USERNAME (audited as done by the operator).")
    return command


roles_group.command("grant")(_role_command(True))
roles_group.command("revoke")(_role_command(False))


def register(root: click.Group) -> None:
    root.add_command(roles_group)
    root.add_command(invite_map_group)
    root.add_command(avatars_group)
