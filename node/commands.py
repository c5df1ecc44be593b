"""Every node command: the base ones (serve, init-db, jobs) and one CLI module per feature."""

from __future__ import annotations

import click

from node import cli as base
from node.auth import cli as auth_cli
from node.copilot import cli as copilot_cli
from node.messages import cli as messages_cli
from node.notifications import cli as notifications_cli
from node.pins import cli as pins_cli
from node.profiles import cli as profiles_cli
from node.publication import cli as publication_cli
from node.recurring import cli as recurring_cli
from node.requests import cli as requests_cli
from node.skins import cli as skins_cli
from node.sync import cli as sync_cli
from node.tags import cli as tags_cli

FEATURE_CLIS = (auth_cli, requests_cli, profiles_cli, sync_cli, copilot_cli,
                notifications_cli, publication_cli, skins_cli, pins_cli,
                tags_cli, messages_cli, recurring_cli)


def register(root: click.Group) -> None:
    base.register(root)
    for feature in FEATURE_CLIS:
        feature.register(root)
