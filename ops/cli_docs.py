"""Generate ``docs/cli.md`` from the click commands themselves."""

from __future__ import annotations

import sys

import click

from ops.cli import root


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            out.extend(_walk(cmd.commands[name], [*path, name]))
    return out


def cli_markdown() -> str:
    lines = ["# CLI reference", "",
             "Generated from the `wb` click commands by",
             "`python -m ops.cli_docs > docs/cli.md`; `tests/test_docs.py` fails when this",
             "file and the code disagree.", ""]
    for path, cmd in _walk(root, ["wb"]):
        name = " ".join(path)
        # the root group's context settings reach every subcommand at run time
        ctx = click.Context(cmd, info_name=name, terminal_width=100, max_content_width=100,
                            help_option_names=["-h", "--help"])
        lines.append(f"## `{name}`")
        lines.append("")
        lines.append("```")
        lines.append(cmd.get_help(ctx).rstrip())
        lines.append("```")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(cli_markdown())
