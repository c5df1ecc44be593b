"""``wb create-admin``, ``wb create-invite`` and
``wb session list|approve|deny|expire|ledger``."""

from __future__ import annotations

import click

from node.auth import ledger
from node.auth import queries as q
from node.auth import service as svc
from node.canonical import link_base
from node.i18n import plural


def _run(fn):
    from node.cli import run_with_pool

    return run_with_pool(fn)


@click.command("create-admin")
@click.argument("username")
def create_admin(username: str) -> None:
    """Create a local admin USERNAME, or make an existing member an admin."""
    async def main(pool, config):
        return await svc.create_admin(pool, username)

    user_id, created = _run(main)
    if created:
        click.echo(f"created admin {username} ({user_id}). Sign in at /login, then approve "
                   f"the sign-in with `wb session approve ID` (see `wb session list`).")
    else:
        click.echo(f"{username} is now an admin ({user_id}).")


@click.command("create-invite")
@click.option("--max-uses", type=click.IntRange(1, svc.MAX_INVITE_USES), default=1,
              show_default=True, help="How many registrations the link allows.")
@click.option("--expires-days", type=click.IntRange(0, svc.MAX_INVITE_DAYS), default=14,
              show_default=True, help="Days until the link expires (0: never).")
@click.option("--auto-approve/--require-approval", default=True, show_default=True,
              help="Let new members in right away, or have an admin approve them.")
@click.option("--by", "by_username", default=None,
              help="Record this member as the inviter (default: nobody, the operator).")
@click.option("--suggested-username", default="", help="Prefill the username field.")
@click.option("--note", "gratitude", default="", help="A thank-you note shown on the page.")
def create_invite(max_uses: int, expires_days: int, auto_approve: bool,
                  by_username: str | None, suggested_username: str, gratitude: str) -> None:
    """Create an invite and print its share link (built from SITE_URL)."""
    async def main(pool, config):
        created_by = None
        if by_username:
            user = await q.user_by_username(pool, by_username)
            if user is None:
                raise click.ClickException(f"no local member called {by_username!r}")
            created_by = user["id"]
        invite = await svc.create_invite(
            pool, config, {"max_uses": max_uses, "expires_days": expires_days,
                           "auto_approve": auto_approve,
                           "suggested_username": suggested_username, "gratitude": gratitude},
            created_by=created_by, ip=None, via="cli")
        return invite, svc.invite_link(link_base(config), invite.token)

    invite, link = _run(main)
    click.echo(link)
    expiry = f"until {invite.expires_at:%Y-%m-%d %H:%M} UTC" if invite.expires_at else "forever"
    uses = plural(invite.max_uses, "%(num)d use", "%(num)d uses")
    click.echo(f"invite {invite.id}: {uses}, valid {expiry}, "
               f"{'auto-approved' if invite.auto_approve else 'admin approval required'}",
               err=True)


@click.group("session")
def session_group() -> None:
    """Sign-in requests and sessions: list, approve, deny, expire."""


@session_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also list live sessions.")
def session_list(show_all: bool) -> None:
    """List sign-in requests waiting for approval (and live sessions with --all)."""
    async def main(pool, config):
        pending = await q.pending_requests(pool)
        wrote = await q.written_by(pool, [r["id"] for r in pending])
        return pending, wrote, (await q.live_sessions(pool) if show_all else [])

    pending, wrote, live = _run(main)
    if not pending:
        click.echo("no sign-in requests waiting")
    for r in pending:
        click.echo(f"{r['id']}  {r['username']:<20} asked {r['created_at']:%Y-%m-%d %H:%M} "
                   f"from {r['ip'] or '-'}  expires {r['expires_at']:%H:%M} UTC  "
                   f"wrong codes {r['attempts']}")
        for w in wrote.get(r["id"], []):  # approving publishes it; denying discards it
            click.echo(f"    this device also wrote ({w['sync_scope']}): "
                       f"{(w['title'] or w['description'])[:70]!r}")
    for s in live:
        click.echo(f"session  {s['username']:<20} {s['status']:<8} last seen "
                   f"{s['last_seen_at']:%Y-%m-%d %H:%M} from {s['ip'] or '-'}")


@session_group.command("approve")
@click.argument("request_id")
@click.option("--code", default=None, help="Check the code the member reads to you.")
@click.option("--note", default="", help="A note for the approval ledger.")
def session_approve(request_id: str, code: str | None, note: str) -> None:
    """Approve sign-in request REQUEST_ID: its device becomes fully signed in."""
    async def main(pool, config):
        return await svc.approve(pool, config, request_id, actor_id=None, ip=None, code=code,
                                 via="cli", note=note)

    d = _run(main)
    click.echo(f"approved {d.request_id}: {d.username} is signed in on that device"
               + ("; " + plural(d.promoted_requests, "%(num)d pending request opened",
                                "%(num)d pending requests opened")
                  if d.promoted_requests else ""))


@session_group.command("deny")
@click.argument("request_id")
@click.option("--note", default="", help="A note for the approval ledger.")
def session_deny(request_id: str, note: str) -> None:
    """Deny sign-in request REQUEST_ID and sign its device out."""
    async def main(pool, config):
        return await svc.deny(pool, request_id, actor_id=None, ip=None, via="cli", note=note)

    d = _run(main)
    click.echo(f"denied {d.request_id} ({d.username})")


@session_group.command("expire")
def session_expire() -> None:
    """Expire overdue sign-in requests and delete dead sessions."""
    async def main(pool, config):
        return await svc.expire_stale(pool)

    r = _run(main)
    click.echo(f"expired {plural(r['expired_requests'], '%(num)d request', '%(num)d requests')}, "
               f"deleted {plural(r['deleted_sessions'], '%(num)d session', '%(num)d sessions')}")


@session_group.command("ledger")
@click.option("--verify", is_flag=True,
              help="Check the hash chain; exit 1 naming the first row that does not fit.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the ledger to FILE instead of printing it.")
@click.option("--input", "input_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="With --verify: check a downloaded ledger FILE instead "
              "of the database.")
def session_ledger(verify: bool, output: str | None, input_file: str | None) -> None:
    """Print the approval ledger (every sign-in decision, hash-chained) or verify it."""
    if input_file is not None:
        if not verify:
            raise click.UsageError("--input needs --verify")
        with open(input_file, encoding="utf-8") as f:
            entries, problems = ledger.parse(f.read())
        problems = problems + ledger.verify(entries)
    else:
        async def main(pool, config):
            return await ledger.verify_database(pool)

        entries, problems = _run(main)
        if output:
            with open(output, "w", encoding="utf-8") as f:
                f.write(ledger.render(entries))
            click.echo(f"wrote {plural(len(entries), '%(num)d row', '%(num)d rows')} to "
                       f"{output}; chain head {ledger.head(entries)}", err=True)
        elif not verify:
            click.echo(ledger.render(entries), nl=False)
    if verify:
        for problem in problems:
            click.echo(f"ledger: {problem}", err=True)
        if problems:
            raise SystemExit(1)
        click.echo(f"ledger ok: {plural(len(entries), '%(num)d row', '%(num)d rows')}, "
                   f"chain head {ledger.head(entries)}")


def register(root: click.Group) -> None:
    root.add_command(create_admin)
    root.add_command(create_invite)
    root.add_command(session_group)
