"""The one ``wb`` command. Each component's commands are attached here, by plain imports.

A process started as ``wb ...`` imports a component only when one of its commands is
asked for: ``wb sync verify`` imports the bundle commands and ``protocol``, not every
node feature (~1 s of CPU per process otherwise, which the tests and the conformance
fuzzer pay for each verifier they start). :data:`COMPONENTS` names the commands each
component attaches; ``tests/ops/test_cli_components.py`` checks that table against what
the components really attach, and a name missing from it still works (every component
is then loaded). Listing the commands (``wb --help``) loads them all, and so does
reading ``root`` from this module (``from ops.cli import root`` gives the whole tree).
"""

from __future__ import annotations

from collections.abc import Callable

import click

Loader = Callable[[click.Group], None]


def _node(root: click.Group) -> None:
    import node.commands

    node.commands.register(root)


def _hub(root: click.Group) -> None:
    import hub.cli

    hub.cli.register(root)


def _bundles(root: click.Group) -> None:
    from ops import bundle_cli

    bundle_cli.register(root)


def _keys(root: click.Group) -> None:
    from node.sync.cli import rotate_key_cmd
    from ops import bundle_cli

    bundle_cli.register(root)
    bundle_cli.keys_group.add_command(rotate_key_cmd, "rotate")


def _operator(root: click.Group) -> None:
    from ops import operator_cli

    operator_cli.register(root)


def _conformance(root: click.Group) -> None:
    import conformance_tests.cli

    conformance_tests.cli.register(root)


def _demo(root: click.Group) -> None:
    from ops import demo

    root.add_command(demo.demo_command())


#: (loader, the commands it attaches: top-level names, and ``sync NAME`` for ``wb sync``),
#: in the order they are attached when every command is loaded
COMPONENTS: tuple[tuple[Loader, tuple[str, ...]], ...] = (
    (_node, ("avatars", "comments", "copilot", "create-admin", "create-invite", "init-db",
             "invite-map", "jobs", "mail", "messages", "pins", "recurring", "requests",
             "roles", "serve", "session", "skins", "tags",
             "sync audit", "sync export", "sync import", "sync keys", "sync peers",
             "sync pending", "sync public-scope", "sync pull", "sync push", "sync repair",
             "sync review", "sync rotate-key", "sync status")),
    (_hub, ("hub",)),
    (_bundles, ("sync inspect", "sync pack", "sync unpack", "sync verify")),
    (_operator, ("backup", "doctor", "restore")),
    (_conformance, ("conformance",)),
    (_keys, ("keys",)),
    (_demo, ("demo",)),
)

_loaded: set[Loader] = set()


def _load(loader: Loader) -> None:
    if loader not in _loaded:
        _loaded.add(loader)
        loader(_root)


def load_all() -> click.Group:
    """Attach every component's commands (once) and return the root group."""
    for loader, _names in COMPONENTS:
        _load(loader)
    return _root


class _ComponentGroup(click.Group):
    """A group whose commands are attached by :data:`COMPONENTS` when first asked for."""

    def __init__(self, *args: object, prefix: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.owners = {name[len(prefix):]: loader for loader, names in COMPONENTS
                       for name in names if name.startswith(prefix)
                       and " " not in name[len(prefix):]}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        loader = self.owners.get(cmd_name)
        if loader is not None:
            _load(loader)
        if cmd_name not in self.commands:
            load_all()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_all()
        return super().list_commands(ctx)


@click.group("root", cls=_ComponentGroup,
             context_settings={"help_option_names": ["-h", "--help"],
                               "auto_envvar_prefix": "WB"})
@click.version_option(package_name="whiteballoon", prog_name="wb")
def _root() -> None:
    """WhiteBalloon: community nodes, relay hubs and signed .sync.txt bundles."""


@_root.group("sync", cls=_ComponentGroup, prefix="sync ")
def sync_group() -> None:
    """Bundles: verify, pack, inspect, export, import, peers, push and pull."""


def __getattr__(name: str) -> click.Group:
    if name == "root":
        return load_all()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    _root(prog_name="wb")


if __name__ == "__main__":
    main()
