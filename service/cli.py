"""The one ``wb`` command. Each component registers its click commands here."""

from __future__ import annotations

import importlib

import click

COMPONENT_CLIS = ("node.cli", "hub.cli", "service.bundle_cli", "service.ops_cli",
                  "conformance_tests.cli")


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "auto_envvar_prefix": "WB"})
@click.version_option(package_name="whiteballoon", prog_name="wb")
def root() -> None:
    """WhiteBalloon: community nodes, relay hubs and signed .sync.txt bundles."""


@root.group("sync")
def sync_group() -> None:
    """Bundles: verify, pack, inspect, export, import, peers, push and pull."""


def _register_components() -> None:
    for name in COMPONENT_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(root)


_register_components()


def main() -> None:
    root(prog_name="wb")


if __name__ == "__main__":
    main()
