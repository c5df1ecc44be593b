"""``wb skins list|check|build|set``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from node.cli import run_with_pool
from node.skins import catalog
from node.skins import queries as Q
from node.skins import service as S
from service.settings import Config, read_dotenv

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def register(root: click.Group) -> None:
    root.add_command(skins)


@click.group("skins")
def skins() -> None:
    """Skins (themes): list, check (parses, variables, WCAG AA contrast), build, set."""


@skins.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """The shipped skins, with the node's default marked."""
    default = Config()["WB_SKIN"]
    rows = [{"name": s.name, "title": s.title, "file": s.file_name,
             "default": s.name == default} for s in catalog.catalog().values()]
    if as_json:
        click.echo(json.dumps({"default": default, "skins": rows}))
        return
    for r in rows:
        click.echo(f"{'*' if r['default'] else ' '} {r['name']:<14} {r['title']:<16} {r['file']}")


@skins.command("check")
@click.argument("names", nargs=-1)
@click.option("--file", "files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Check a skin file that is not installed yet (repeatable).")
@json_option
def check_cmd(names: tuple[str, ...], files: tuple[Path, ...], as_json: bool) -> None:
    """Check skins (all when none named): the CSS parses, every variable the stylesheets use
    is defined, and text on its backgrounds reaches WCAG AA (4.5:1) in every colour scheme.
    Exit status 1 when one fails."""
    shipped = catalog.catalog()
    unknown = [n for n in names if n not in shipped]
    if unknown:
        raise click.ClickException(f"unknown skin(s): {', '.join(unknown)} (unknown_skin)")
    chosen = [shipped[n] for n in names] or ([] if files else list(shipped.values()))
    chosen += [catalog.load(f) for f in files]
    reports = [catalog.check(s) for s in chosen]
    if as_json:
        click.echo(json.dumps({"ok": all(r.ok for r in reports),
                               "skins": [r.as_json() for r in reports]}))
    else:
        for r in reports:
            lowest = min((c["ratio"] for c in r.contrast), default=None)
            click.echo(f"{r.name}: " + ("ok" + (f" (lowest contrast {lowest}:1)"
                                                if lowest else "") if r.ok else "FAILED"))
            for e in r.errors:
                click.echo(f"  - {e}")
    if not all(r.ok for r in reports):
        raise SystemExit(1)


@skins.command("build")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Directory to write to (default: WB_DATA_DIR/skins).")
@json_option
def build_cmd(output: Path | None, as_json: bool) -> None:
    """Write NAME.FINGERPRINT.css for every skin plus manifest.json, for a proxy or CDN to
    serve with a year of caching (the node serves the same names under /skins/)."""
    failed = [r.name for r in map(catalog.check, catalog.catalog().values()) if not r.ok]
    if failed:
        raise click.ClickException(f"skin(s) fail the check: {', '.join(failed)} "
                                   "(run wb skins check)")
    target = output or Config().path("WB_DATA_DIR") / "skins"
    manifest = catalog.build(target)
    if as_json:
        click.echo(json.dumps({"output": str(target), "files": manifest}))
    else:
        for name, file in manifest.items():
            click.echo(f"{name}: {target / file}")


@skins.command("set")
@click.argument("name")
@click.option("--user", "username", default=None,
              help="Set this member's skin instead of the node's default.")
@click.option("--env-file", type=click.Path(path_type=Path), default=Path(".env"),
              show_default=True, help="Where the node's WB_SKIN is written.")
@json_option
def set_cmd(name: str, username: str | None, env_file: Path, as_json: bool) -> None:
    """Make NAME the node's default skin (writes WB_SKIN to the .env file; restart the node)
    or, with --user, a member's own choice (NAME "node": back to the node's default)."""
    if username is not None:
        async def main(pool, config: Config):
            user_id = await Q.local_user_id(pool, username)
            if user_id is None:
                raise click.ClickException(f"no local member named {username!r} "
                                           "(member_not_found)")
            return await S.set_member_skin(pool, user_id, name)

        skin = run_with_pool(main)
        result = {"user": username, "skin": skin}
        text = f"{username}: {skin or 'node default'}"
    else:
        if not catalog.valid(name):
            raise click.ClickException(f"unknown skin {name!r}; choose one of "
                                       f"{', '.join(catalog.catalog())} (unknown_skin)")
        lines = env_file.read_text(encoding="utf-8").splitlines() if env_file.exists() else []
        lines = [ln for ln in lines if not ln.strip().startswith("WB_SKIN=")]
        lines.append(f"WB_SKIN={name}")
        env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert read_dotenv(env_file)["WB_SKIN"] == name
        result = {"default": name, "env_file": str(env_file)}
        text = f"WB_SKIN={name} written to {env_file}; restart the node to use it."
        if os.environ.get("WB_SKIN", name) != name:
            text += " Note: WB_SKIN is also set in the environment, which wins over the file."
    click.echo(json.dumps(result) if as_json else text)
