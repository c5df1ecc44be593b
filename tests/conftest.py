"""Shared fixtures: a real PostgreSQL, per-test databases, the real node app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from service.settings import Config
from tests.pg import TestServer

# `wb` commands run in-process (CliRunner) and node processes started by tests read the
# environment: no publishing grace period there either unless a test sets one.
os.environ.setdefault("WB_PUBLISH_DELAY", "0")


@pytest.fixture(scope="session")
def pg() -> Iterator[TestServer]:
    server = TestServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def node_db_url(pg: TestServer) -> AsyncIterator[str]:
    from node.app import MIGRATIONS

    template = await pg.template("node", MIGRATIONS)
    url = await pg.new_database(template)
    yield url
    await pg.drop(url)


def make_node_config(db_url: str, data_dir: Path, **overrides: str) -> Config:
    values = {
        "WB_DATABASE_URL": db_url,
        "WB_DATA_DIR": str(data_dir),
        "SESSION_SECRET": "test-secret-not-for-production",
        "SITE_URL": "http://node.test",
        "WB_DB_POOL_MAX": "5",
        "WB_SCHEDULER": "false",
        # No publishing grace period unless a test is about it (tests/node/sync/
        # test_publish_delay.py): most tests export what they just wrote.
        "WB_PUBLISH_DELAY": "0",
    }
    values.update(overrides)
    return Config(values, environ={}, dotenv=data_dir / "no.env")


@pytest.fixture
def node_config(node_db_url: str, tmp_path: Path) -> Config:
    return make_node_config(node_db_url, tmp_path / "node")


@pytest.fixture
async def node_client(aiohttp_client, node_config: Config):
    from node.app import create_app

    return await aiohttp_client(create_app(node_config))


@pytest.fixture
async def node_pool(node_client):
    from node import typedefs as T

    return node_client.server.app[T.pool_key]


@pytest.fixture
async def hub_db_url(pg: TestServer) -> AsyncIterator[str]:
    from hub.app import MIGRATIONS

    template = await pg.template("hub", MIGRATIONS)
    url = await pg.new_database(template)
    yield url
    await pg.drop(url)
