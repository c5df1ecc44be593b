"""`wb sync push|pull --progress` reports each bundle moved, on stderr only."""

from __future__ import annotations

import asyncio

import asyncpg
from click.testing import CliRunner

from ops.cli import root


async def test_push_shows_progress_per_bundle_and_json_stays_clean(node_db_url, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("WB_DATABASE_URL", node_db_url)
    monkeypatch.setenv("WB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITE_URL", "https://a.example")
    monkeypatch.chdir(tmp_path)

    async def wb(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, root, list(args))

    conn = await asyncpg.connect(node_db_url)
    try:
        for i in range(3):  # three chain links
            await conn.execute("INSERT INTO users (id, username, sync_scope) "
                               "VALUES ($1, $2, 'public')", f"U{i}", f"member{i}")
            assert (await wb("sync", "export")).exit_code == 0
    finally:
        await conn.close()
    out_dir = tmp_path / "peer"
    assert (await wb("sync", "peers", "add", "b", "--dir", str(out_dir))).exit_code == 0

    result = await wb("sync", "push", "b", "--progress")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert [line.split(":")[1].split(",")[0].strip() for line in lines] == [
        "1 bundle", "2 bundles", "3 bundles"]
    assert "Pushed 3 bundles" in result.stdout
    assert len(list(out_dir.iterdir())) == 3

    result = await wb("sync", "pull", "b", "--json")
    assert result.exit_code == 0 and result.stderr == ""
