"""`ops.cli` attaches a component's commands when one of them is first asked for: its
table of who attaches what must be the truth, and a process must not import what it
does not run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from ops import cli

ROOT = Path(__file__).resolve().parents[2]


def _attached(loader: cli.Loader) -> dict[str, click.Command]:
    root = click.Group("wb")
    sync = click.Group("sync")
    root.add_command(sync)
    loader(root)
    return ({name: cmd for name, cmd in root.commands.items() if name != "sync"}
            | {f"sync {name}": cmd for name, cmd in sync.commands.items()})


def _shape(cmd: click.Command | None) -> object:
    if isinstance(cmd, click.Group):
        return cmd.name, {name: _shape(sub) for name, sub in cmd.commands.items()}
    return cmd and (cmd.name, cmd.callback and cmd.callback.__qualname__)


def test_each_name_is_attached_by_the_component_the_table_names() -> None:
    """Every command of the whole tree is the one its owner in the table attaches (a
    loader may attach more: `_keys` needs the bundle commands' `wb keys` group)."""
    whole = _attached(lambda root: [loader(root) for loader, _names in cli.COMPONENTS])
    assert set(whole) == {name for _loader, names in cli.COMPONENTS for name in names}
    for loader, names in cli.COMPONENTS:
        own = _attached(loader)
        for name in names:
            assert _shape(own.get(name)) == _shape(whole[name]), (loader.__name__, name)
    assert cli.load_all() is cli.root
    assert {n for n in cli.root.commands if n != "sync"} | {
        f"sync {n}" for n in cli.root.commands["sync"].commands  # type: ignore[attr-defined]
    } == set(whole)
    assert "rotate" in cli.root.commands["keys"].commands  # type: ignore[attr-defined]


def _imports(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "ops.cli", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_a_verify_process_imports_no_node_or_hub_module() -> None:
    imported = {line.rsplit("|", 1)[-1].strip() for line in
                _imports("sync", "verify", "--help").splitlines()}
    assert "protocol.verify" in imported
    assert not {m for m in imported if m.split(".")[0] in ("node", "hub")}, sorted(imported)


def test_a_name_missing_from_the_table_still_resolves(monkeypatch) -> None:
    group = cli._root.commands["sync"]
    assert isinstance(group, cli._ComponentGroup)
    monkeypatch.setattr(group, "owners", {})
    out = CliRunner().invoke(cli._root, ["sync", "verify", "--help"])
    assert out.exit_code == 0 and "Verify a bundle" in out.output
