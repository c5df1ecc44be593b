"""`wb mail`: the outbox's state, a test message through the relay, retrying."""

from __future__ import annotations

import click

from node.cli import run_with_app, run_with_pool
from node.i18n import plural


@click.group("mail")
def mail_group() -> None:
    """E-mail notifications: outbox status, a test message, retries."""


@mail_group.command("status")
def mail_status() -> None:
    """Show the relay in use, the outbox by state, and dropped or stuck messages."""
    from node.notifications import service as S

    async def main(pool, config):
        return await S.status(pool, config)

    st = run_with_pool(main)
    if st.relay:
        click.echo(f"relay: {st.relay}")
    else:
        click.echo("relay: none configured (WB_SMTP_URL): no e-mail is sent"
                   + (f" ({st.relay_error})" if st.relay_error else ""))
    click.echo("outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(st.counts.items()))
                             or "empty"))
    for p in st.problems:
        click.echo(f"  {p['id']}  {p['kind']:<14} {p['state']:<9} attempts={p['attempts']} "
                   f"@{p['username'] or '-'}  {p['last_error'] or ''}")


@mail_group.command("send-test")
@click.argument("address")
def mail_send_test(address: str) -> None:
    """Send one test message to ADDRESS straight through the relay (not the outbox)."""
    import aiohttp_jinja2

    from node import typedefs as T
    from node.errors import AppError
    from node.notifications import service as S

    async def main(app):
        try:
            return await S.send_test(aiohttp_jinja2.get_env(app), app[T.config_key],
                                     app[T.csrf_secret_key], address)
        except AppError as exc:
            raise click.ClickException(f"{exc.message} ({exc.code})") from None

    relay = run_with_app(main)
    click.echo(f"sent a test message to {address} through {relay}")


@mail_group.command("retry")
@click.argument("message_ids", nargs=-1)
@click.option("--uncertain", is_flag=True,
              help="Also resend messages whose delivery is unknown after a crash "
                   "(they may arrive twice).")
def mail_retry(message_ids: tuple[str, ...], uncertain: bool) -> None:
    """Queue dropped messages (all, or MESSAGE_IDS) for another round of attempts."""
    from node.notifications import service as S

    async def main(pool, config):
        return await S.retry(pool, list(message_ids) or None, uncertain=uncertain)

    n = run_with_pool(main)
    click.echo(plural(n, "%(num)d message queued again", "%(num)d messages queued again"))


def register(root: click.Group) -> None:
    root.add_command(mail_group)
