"""Two independent nodes (own database, own data dir, own key) for sync tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from node.sync.identity import load_or_create_key
from node.sync.service import our_origin
from service import db
from service.settings import Config
from tests.conftest import make_node_config


@dataclass
class Node:
    name: str
    pool: asyncpg.Pool
    config: Config
    origin: str


async def _make_node(pg, tmp_path: Path, name: str) -> tuple[Node, str]:
    from node.app import MIGRATIONS

    url = await pg.new_database(await pg.template("node", MIGRATIONS))
    config = make_node_config(url, tmp_path / name, SITE_URL=f"http://{name}.test")
    pool = await db.create_pool(url, max_size=4)
    load_or_create_key(config)
    return Node(name, pool, config, await our_origin(pool, config)), url


@pytest.fixture
async def nodes(pg, tmp_path):
    made = []
    for name in ("alpha", "beta"):
        made.append(await _make_node(pg, tmp_path, name))
    yield made[0][0], made[1][0]
    for node, url in made:
        await node.pool.close()
        await pg.drop_later(url)
