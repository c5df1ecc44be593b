"""wb backup / wb restore on a real populated node database."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import asyncpg

from service.ids import ulid
from tests.factories import create_user
from tests.ops.conftest import node_env, wb

KEY_BYTES = b"WhiteBalloon-Signing-Key: 1\nKey-ID: 0123456789abcdef\nSeed: c2VjcmV0\n"
AVATAR = bytes(range(256)) * 4


async def populate(url: str, data_dir: Path) -> None:
    conn = await asyncpg.connect(url)
    try:
        ann = await create_user(conn, "ann", admin=True, scope="public")
        bob = await create_user(conn, "bob", invited_by=ann, email="bob@example.org")
        for who, title in ((ann, "Lift to the clinic"), (bob, "Borrow a ladder")):
            await conn.execute(
                "INSERT INTO requests (id, title, description, created_by, sync_scope) "
                "VALUES ($1, $2, $3, $4, 'public')", ulid(), title, f"{title}, please", who)
        await conn.execute("UPDATE users SET bio = 'gardener' WHERE id = $1", bob)
    finally:
        await conn.close()
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700)
    key = keys / "node.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, KEY_BYTES)
    os.close(fd)
    (keys / "node.key.pub").write_text("Key-ID: 0123456789abcdef\n")
    (data_dir / "uploads" / "avatars").mkdir(parents=True)
    (data_dir / "uploads" / "avatars" / "ann.png").write_bytes(AVATAR)


async def snapshot(url: str) -> dict[str, list]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "users": [dict(r) for r in await conn.fetch("SELECT * FROM users ORDER BY id")],
            "requests": [dict(r) for r in await conn.fetch(
                "SELECT * FROM requests ORDER BY id")],
            "migrations": [tuple(r) for r in await conn.fetch(
                "SELECT component, version, checksum FROM schema_migrations ORDER BY 1, 2")],
            "change_seq": [await conn.fetchval("SELECT last_value FROM node_change_seq")],
        }
    finally:
        await conn.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_backup_then_restore_into_empty_node(pg, node_db_url, tmp_path, data_dir):
    await populate(node_db_url, data_dir)
    archive = tmp_path / "out" / "node.tar.gz"
    r = await wb(["backup", "--output", str(archive)], node_env(node_db_url, data_dir))
    assert r.exit_code == 0, r.output
    assert mode(archive) == 0o600  # it holds private keys
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        names = tar.getnames()
    assert names[0] == "manifest.json"
    assert {f["path"] for f in manifest["files"]} == {
        "database.dump", "keys/node.key", "keys/node.key.pub", "uploads/avatars/ann.png"}
    assert {m["version"] for m in manifest["schema_migrations"]} >= {1}

    empty_url = await pg.new_database()
    new_dir = tmp_path / "restored"
    try:
        r = await wb(["restore", str(archive)], node_env(empty_url, new_dir))
        assert r.exit_code == 0, r.output
        assert await snapshot(empty_url) == await snapshot(node_db_url)
        key = new_dir / "keys" / "node.key"
        assert key.read_bytes() == KEY_BYTES and mode(key) == 0o600
        assert mode(new_dir / "keys") == 0o700
        assert (new_dir / "uploads" / "avatars" / "ann.png").read_bytes() == AVATAR
        assert not list(new_dir.glob(".wb-restore-*"))  # scratch space cleaned up
        # The restored node keeps tracking changes: the trigger came back with the data.
        conn = await asyncpg.connect(empty_url)
        try:
            before = await conn.fetchval("SELECT revision FROM users WHERE username = 'bob'")
            await conn.execute("UPDATE users SET bio = 'carpenter' WHERE username = 'bob'")
            assert await conn.fetchval(
                "SELECT revision FROM users WHERE username = 'bob'") == before + 1
        finally:
            await conn.close()
    finally:
        await pg.drop(empty_url)


async def test_restore_refuses_a_node_with_data_unless_forced(node_db_url, tmp_path, data_dir):
    await populate(node_db_url, data_dir)
    env = node_env(node_db_url, data_dir)
    archive = tmp_path / "node.tar.gz"
    assert (await wb(["backup", "-o", str(archive)], env)).exit_code == 0
    conn = await asyncpg.connect(node_db_url)
    try:
        await create_user(conn, "late")
        r = await wb(["restore", str(archive)], env)
        assert r.exit_code == 1
        assert "refusing to restore over a node that already has data" in r.output
        assert "--force" in r.output
        assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'late'") == 1

        (data_dir / "keys" / "node.key").chmod(0o644)
        r = await wb(["restore", "--force", str(archive)], env)
        assert r.exit_code == 0, r.output
        assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'late'") == 0
        assert await conn.fetchval("SELECT count(*) FROM users") == 2
    finally:
        await conn.close()
    assert mode(data_dir / "keys" / "node.key") == 0o600
    aside = list(data_dir.glob("keys.before-restore-*"))
    assert len(aside) == 1 and (aside[0] / "node.key").read_bytes() == KEY_BYTES
    assert "moved aside" in r.output


def rewrite(archive: Path, out: Path, *, replace: dict[str, bytes],
            add: dict[str, bytes] | None = None) -> None:
    """Copy ``archive`` changing member contents (the manifest is kept as it was)."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            data = replace.get(member.name, data)
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))


async def test_tampered_backup_is_refused_before_anything_changes(pg, node_db_url, tmp_path,
                                                                  data_dir):
    await populate(node_db_url, data_dir)
    archive = tmp_path / "node.tar.gz"
    assert (await wb(["backup", "-o", str(archive)],
                     node_env(node_db_url, data_dir))).exit_code == 0
    edited = tmp_path / "edited.tar.gz"
    rewrite(archive, edited, replace={"keys/node.key": KEY_BYTES.replace(b"c2Vj", b"ZXZp")})
    smuggled = tmp_path / "smuggled.tar.gz"
    rewrite(archive, smuggled, replace={}, add={"keys/extra.key": b"not in the manifest"})

    empty_url = await pg.new_database()
    new_dir = tmp_path / "target"
    try:
        r = await wb(["restore", str(edited)], node_env(empty_url, new_dir))
        assert r.exit_code == 1
        assert "checksum mismatch for keys/node.key" in r.output
        assert "nothing was restored" in r.output
        r = await wb(["restore", str(smuggled)], node_env(empty_url, new_dir))
        assert r.exit_code == 1
        assert "keys/extra.key" in r.output and "does not list" in r.output
        r = await wb(["restore", str(tmp_path / "node.tar.gz") + "x"],
                     node_env(empty_url, new_dir))
        assert r.exit_code == 2  # click: the file does not exist
        conn = await asyncpg.connect(empty_url)
        try:
            assert await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        finally:
            await conn.close()
        assert not (new_dir / "keys").exists()
        assert [p.name for p in new_dir.iterdir()] == []
    finally:
        await pg.drop(empty_url)


async def test_not_a_backup_is_refused(pg, tmp_path, data_dir):
    bogus = tmp_path / "bogus.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        info = tarfile.TarInfo("etc/passwd")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"root"))
    url = await pg.new_database()
    try:
        r = await wb(["restore", str(bogus)], node_env(url, data_dir))
        assert r.exit_code == 1
        assert "does not start with manifest.json" in r.output
    finally:
        await pg.drop(url)


def hub_env(db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {"WB_HUB_DATABASE_URL": db_url, "WB_HUB_DATA_DIR": str(data_dir),
           "WB_HUB_URL": "http://hub.test", "WB_HUB_LOG_KEY": ""}
    env.update(extra)
    return env


async def test_hub_backup_carries_the_log_key_and_restores_it_0600(pg, hub_db_url, tmp_path):
    """The transparency-log key is what makes the restored hub the same log to every
    auditing node: it is in `wb backup --hub`, and `wb restore --hub` puts it back 0600
    (also at a WB_HUB_LOG_KEY outside the data directory), with the hub's checkpoints."""
    from hub.tlog_signer import signer_from_config
    from service.settings import Config

    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    config = Config(hub_env(hub_db_url, hub_dir), environ={}, dotenv=hub_dir / "no.env")
    signer = signer_from_config(config)  # what `wb hub serve` does on first start
    note = signer.sign(0, bytes(32))
    conn = await asyncpg.connect(hub_db_url)
    try:
        await conn.execute("INSERT INTO hub_tlog_checkpoints (size, root, note) "
                           "VALUES (0, $1, $2)", bytes(32), note)
    finally:
        await conn.close()
    (hub_dir / "keys").mkdir(mode=0o700)
    (hub_dir / "keys" / "signing.key").write_bytes(KEY_BYTES)
    archive = tmp_path / "hub.tar.gz"
    r = await wb(["backup", "--hub", "-o", str(archive)], hub_env(hub_db_url, hub_dir))
    assert r.exit_code == 0, r.output
    assert mode(archive) == 0o600
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["component"] == "hub"
    assert {f["path"] for f in manifest["files"]} == {"database.dump", "log.key",
                                                      "keys/signing.key"}
    # a node restore refuses a hub backup (and the other way round)
    node_url = await pg.new_database()
    try:
        r = await wb(["restore", str(archive)], node_env(node_url, tmp_path / "n"))
        assert r.exit_code == 1 and "backup of a 'hub'" in r.output and "--hub" in r.output
    finally:
        await pg.drop(node_url)

    for outside in (False, True):
        empty_url = await pg.new_database()
        new_dir = tmp_path / f"restored-{outside}"
        key_path = tmp_path / f"secrets-{outside}" / "hub-log.key" if outside \
            else new_dir / "log.key"
        env = hub_env(empty_url, new_dir,
                      WB_HUB_LOG_KEY=str(key_path) if outside else "")
        try:
            r = await wb(["restore", "--hub", str(archive)], env)
            assert r.exit_code == 0, r.output
            assert "wb hub init-db" in r.output
            assert mode(key_path) == 0o600
            again = signer_from_config(Config(env, environ={}, dotenv=new_dir / "no.env"))
            assert again.public_key == signer.public_key  # the same log key, not a new one
            assert mode(new_dir / "keys" / "signing.key") == 0o600
            conn = await asyncpg.connect(empty_url)
            try:
                assert bytes(await conn.fetchval(
                    "SELECT note FROM hub_tlog_checkpoints WHERE size = 0")) == note
            finally:
                await conn.close()
        finally:
            await pg.drop(empty_url)
