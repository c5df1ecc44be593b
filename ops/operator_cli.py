"""Operator commands: ``wb doctor``, ``wb backup``, ``wb restore``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import click

from service.settings import Config


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as one JSON object.")
def doctor(as_json: bool) -> None:
    """Check this node's deployment; explain each problem and how to fix it.

    Exits 1 when any check fails (warnings alone exit 0).
    """
    from ops import doctor as D

    checks = asyncio.run(D.run_checks(Config()))
    report = D.as_json(checks)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for c in checks:
            click.echo(c.line())
        counts = {s: sum(c.status == s for c in checks) for s in (D.OK, D.WARN, D.FAIL)}
        click.echo(f"{counts[D.OK]} ok, {counts[D.WARN]} warning(s), {counts[D.FAIL]} failure(s)")
    if not report["ok"]:
        raise SystemExit(1)


def _default_backup_name() -> str:
    return f"wb-backup-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.tar.gz"


@click.command("backup")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Archive to write (default: ./wb-backup-<UTC time>.tar.gz).")
@click.option("--hub", is_flag=True,
              help="Back up the hub instead (WB_HUB_DATABASE_URL, WB_HUB_DATA_DIR/keys and "
                   "the transparency-log key WB_HUB_LOG_KEY).")
def backup(output: Path | None, hub: bool) -> None:
    """Back up the node: database dump, keys, uploads, with a checksummed manifest.

    The archive holds the node's (or hub's) private keys: it is written 0600; store it
    encrypted.
    """
    from ops import backup as B

    target = (output or Path(_default_backup_name())).expanduser().resolve()
    try:
        manifest = asyncio.run(B.create_backup(Config(), target,
                                               component="hub" if hub else "node"))
    except B.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {target} ({len(manifest['files'])} files, "
               f"sha256 {B.sha256_file(target)})")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Replace a database or data directory that already holds data "
                   "(existing keys and uploads are moved aside, not deleted).")
@click.option("--hub", is_flag=True,
              help="Restore a `wb backup --hub` archive into WB_HUB_DATABASE_URL and "
                   "WB_HUB_DATA_DIR (the log key to WB_HUB_LOG_KEY, 0600).")
def restore(archive: Path, force: bool, hub: bool) -> None:
    """Restore a `wb backup` archive into the configured database and WB_DATA_DIR.

    Every checksum is verified before anything is changed. Stop the node (or hub) first.
    """
    from ops import backup as B

    try:
        result = asyncio.run(B.restore_backup(Config(), archive, force=force,
                                              component="hub" if hub else "node"))
    except B.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    m = result.manifest
    click.echo(f"restored backup of {m.get('site_url', '?')} made {m['created_at']} "
               f"({len(m['files'])} files)")
    for path in result.moved_aside:
        click.echo(f"previous data moved aside to {path}")
    click.echo("next: `wb hub init-db` applies any newer migrations, then start the hub" if hub
               else "next: `wb init-db` applies any newer migrations, then start the node")


def register(root: click.Group) -> None:
    root.add_command(doctor)
    root.add_command(backup)
    root.add_command(restore)
