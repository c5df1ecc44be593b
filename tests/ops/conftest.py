"""Helpers for the operator commands: run `wb` with a node's settings in the environment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ops.cli import root


def node_env(db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {"WB_DATABASE_URL": db_url, "WB_DATA_DIR": str(data_dir),
           "SESSION_SECRET": "", "SITE_URL": "http://127.0.0.1:8080",
           "WB_TRUST_PROXY": "false"}
    env.update(extra)
    return env


async def wb(args: list[str], env: dict[str, str]) -> Result:
    """Invoke `wb ARGS` in a thread (the commands call asyncio.run themselves)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, root, args, env=env, catch_exceptions=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    d.mkdir()
    return d
