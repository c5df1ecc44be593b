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


def register(root: click.Group) -> None:
    root.add_command(invite_map_group)
    root.add_command(avatars_group)
