"""The one ``wb`` command. Each component's commands are attached here, by plain imports."""

from __future__ import annotations

import click

import conformance_tests.cli
import hub.cli
import node.commands
from node.sync.cli import rotate_key_cmd
from ops import bundle_cli, demo, operator_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "auto_envvar_prefix": "WB"})
@click.version_option(package_name="whiteballoon", prog_name="wb")
def root() -> None:
    """WhiteBalloon: community nodes, relay hubs and signed .sync.txt bundles."""


@root.group("sync")
def sync_group() -> None:
    """Bundles: verify, pack, inspect, export, import, peers, push and pull."""


COMPONENT_CLIS = (node.commands, hub.cli, bundle_cli, operator_cli, conformance_tests.cli)

for _component in COMPONENT_CLIS:
    _component.register(root)
bundle_cli.keys_group.add_command(rotate_key_cmd, "rotate")
root.add_command(demo.demo_command())


def main() -> None:
    root(prog_name="wb")


if __name__ == "__main__":
    main()
