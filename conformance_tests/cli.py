"""``wb conformance vectors``: run the bundle vectors against a verifier."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent


@click.command("vectors")
@click.option(
    "--verifier",
    envvar="WB_CONFORMANCE_VERIFIER",
    default="",
    metavar="CMD",
    help='External verifier command template, e.g. "mytool verify --json {trust_args} {path}". '
    "Default: this implementation's verifier. See conformance_tests/README.md.",
)
@click.option(
    "-k", "keyword", default="", help="Only run cases matching this pytest -k expression."
)
def conformance_vectors(verifier: str, keyword: str) -> None:
    """Check every vector in conformance_tests/vectors/ (valid and invalid bundles)."""
    import pytest

    if verifier:
        os.environ["WB_CONFORMANCE_VERIFIER"] = verifier
    args = [str(HERE / "test_vectors.py"), "-q", "-p", "no:cacheprovider"]
    if keyword:
        args += ["-k", keyword]
    sys.exit(int(pytest.main(args)))


def register(root: click.Group) -> None:
    group = root.commands.get("conformance")
    if not isinstance(group, click.Group):
        group = click.Group("conformance", help="Conformance checks for any node, hub or bundle.")
        root.add_command(group)
    group.add_command(conformance_vectors)
