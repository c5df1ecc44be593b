"""Every `wb` command explains itself: `wb ... --help` has a description for each one."""

from __future__ import annotations

import click
from click.testing import CliRunner

from ops.cli import root


def _commands(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, [*path, name])


def test_every_command_has_help_text():
    silent = [" ".join(path) for path, cmd in _commands(root, ["wb"])
              if not (cmd.help or "").strip()]
    assert silent == []


def test_group_listings_show_a_summary_for_each_subcommand():
    runner = CliRunner()
    for path, cmd in _commands(root, ["wb"]):
        if not isinstance(cmd, click.Group):
            continue
        out = runner.invoke(root, [*path[1:], "--help"]).output
        for name in cmd.commands:
            line = next(line for line in out.splitlines() if line.strip().startswith(name + " ")
                        or line.strip() == name)
            assert line.strip() != name, f"{' '.join(path)} {name} has no summary"
