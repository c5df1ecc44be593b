"""The node's v1 client against a fake of the original hub (built from its answer table),
and the captured original traffic through `wb sync pull` and `wb sync import`."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from node.sync.identity import load_or_create_key
from ops.cli import root
from protocol.containers import from_targz
from service.settings import Config
from tests.fakes.v1hub import FakeV1Hub

WIRE = Path("/work/shared/interop/original-v1-wire")
TOKEN = "origa-token-0123456789"


@pytest.fixture
async def node(node_db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("WB_DATABASE_URL", node_db_url)
    monkeypatch.setenv("WB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SITE_URL", "https://a.example")
    monkeypatch.chdir(tmp_path)

    async def wb(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, root, list(args))

    conn = await asyncpg.connect(node_db_url)
    wb.conn = conn  # type: ignore[attr-defined]
    yield wb
    await conn.close()


async def start_fake(aiohttp_server, **kw) -> tuple[FakeV1Hub, str]:
    fake = FakeV1Hub(tokens={"origa": TOKEN}, **kw)
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


async def export_one(wb, conn, n: int = 0) -> None:
    await conn.execute("INSERT INTO users (id, username, sync_scope) VALUES ($1, $2, 'public')",
                       f"U{n}", f"member{n}")
    r = await wb("sync", "export")
    assert r.exit_code == 0, r.output


async def test_push_is_the_original_clients_form_and_reacts_to_its_answers(
        node, aiohttp_server, tmp_path):
    wb, conn = node, node.conn
    fake, url = await start_fake(aiohttp_server)
    r = await wb("sync", "peers", "add", "origa", "--hub", url, "--api", "v1", "--token", TOKEN)
    assert r.exit_code == 0, r.output
    await export_one(wb, conn)
    # 1. a key the original hub has not approved: 400 peer_key_mismatch, bundle parked
    r = await wb("sync", "push", "origa")
    assert r.exit_code == 1 and "peer_key_mismatch" in r.output and "pending id 1" in r.output
    sent = fake.seen[-1]
    assert sent["content_type"] == "multipart/form-data" and sent["fields"] == ["bundle"]
    key = load_or_create_key(Config(dotenv=tmp_path / "none.env")).public_key
    assert sent["headers"]["X-WB-Public-Key"] == base64.b64encode(key).decode()
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert await conn.fetchval("SELECT push_sequence FROM sync_peers WHERE name = 'origa'") == 0
    # 2. the admin approves; the same link goes again and is accepted (202)
    fake.approve("1")
    fake.bundles.pop("origa")
    r = await wb("sync", "push", "origa", "--json")
    assert r.exit_code == 0, r.output
    assert fake.bundles["origa"].bundle.digest == await conn.fetchval(
        "SELECT digest FROM sync_outbox ORDER BY sequence DESC LIMIT 1")
    assert await conn.fetchval("SELECT push_sequence FROM sync_peers WHERE name = 'origa'") == 1
    # 3. every other answer of the table is a precise error, and nothing advances
    await export_one(wb, conn, 1)
    for status, body, code in [
            (401, {"detail": "Invalid token"}, "unauthorized"),
            (404, {"detail": "Unknown peer"}, "unknown_peer"),
            (422, {"detail": [{"type": "missing", "loc": ["body", "bundle"],
                               "msg": "Field required", "input": None}]}, "upload_refused"),
            (400, {"detail": "Invalid bundle: bad signature"}, "hub_error")]:
        fake.script("push", status, body)
        r = await wb("sync", "push", "origa")
        assert r.exit_code == 1 and f"{code}:" in r.output, (status, r.output)
        assert await conn.fetchval(
            "SELECT push_sequence FROM sync_peers WHERE name = 'origa'") == 1
    fake.script("push", 422, {"detail": [{"type": "missing", "loc": ["body", "bundle"],
                                          "msg": "Field required", "input": None}]})
    r = await wb("sync", "push", "origa")
    assert "body.bundle: Field required" in r.output


@pytest.mark.parametrize(("capture", "key", "requests"), [
    ("hub-download", "cca47568854c109d", ["1", "2"]),
    ("client-upload", "cf0a771f48cf9ca5", ["1", "3"])])
async def test_pull_imports_the_original_hubs_captured_download(node, aiohttp_server, capture,
                                                                key, requests):
    wb, conn = node, node.conn
    fake, url = await start_fake(aiohttp_server)
    archive = (WIRE / f"{capture}.tar.gz").read_bytes()
    fake.serve_archive("origa", archive)  # served byte for byte as captured
    r = await wb("sync", "peers", "add", "origa", "--hub", url, "--api", "v1", "--token", TOKEN,
                 "--pin", key)
    assert r.exit_code == 0, r.output
    r = await wb("sync", "pull", "origa")
    assert r.exit_code == 0, r.output
    assert f"{key} seq None: applied" in r.output
    rows = await conn.fetch("SELECT origin_id FROM requests WHERE origin = $1 "
                            "ORDER BY origin_id", key)
    assert [r["origin_id"] for r in rows] == requests
    assert [s["route"] for s in fake.seen] == ["status", "pull"]
    # the status names a bundle already imported: no second download
    r = await wb("sync", "pull", "origa")
    assert r.exit_code == 0 and [s["route"] for s in fake.seen][-1] == "status"
    digest = from_targz(archive, original_hub=True).digest
    assert digest in await conn.fetchval("SELECT seen FROM sync_peers WHERE name = 'origa'")


async def test_pull_reports_the_original_hubs_errors(node, aiohttp_server):
    wb = node
    fake, url = await start_fake(aiohttp_server)
    await wb("sync", "peers", "add", "origa", "--hub", url, "--api", "v1", "--token", "wrong" * 5)
    r = await wb("sync", "pull", "origa")
    assert r.exit_code == 1 and "unauthorized:" in r.output and "--token" in r.output
    await wb("sync", "peers", "add", "nobody", "--hub", url, "--api", "v1", "--token", TOKEN)
    r = await wb("sync", "pull", "nobody")
    assert r.exit_code == 1 and "unknown_peer:" in r.output


@pytest.mark.parametrize("capture", ["client-upload", "hub-download"])
async def test_import_exits_3_when_the_key_awaits_approval(node, capture):
    wb, conn = node, node.conn
    path = WIRE / f"{capture}.tar.gz"
    r = await wb("sync", "import", str(path))
    assert r.exit_code == 3, r.output
    digest = from_targz(path.read_bytes(), original_hub=True).digest
    assert f"wb sync pending approve {digest}" in r.stderr
    assert await conn.fetchval("SELECT count(*) FROM requests") == 0
    r = await wb("sync", "pending", "approve", digest)
    assert r.exit_code == 0, r.output
    assert await conn.fetchval("SELECT count(*) FROM requests") > 0
    r = await wb("sync", "import", str(path))
    assert r.exit_code == 0 and "already imported" in r.output


async def test_pull_refuses_a_lying_original_hubs_download(node, aiohttp_server):
    """The status names a valid bundle, the download carries a second copy of a file with
    other bytes: refused as duplicate_path, nothing imported, nothing marked seen."""
    import gzip
    import io
    import tarfile

    wb, conn = node, node.conn
    fake, url = await start_fake(aiohttp_server)
    archive = (WIRE / "hub-download.tar.gz").read_bytes()
    fake.serve_archive("origa", archive)
    raw = io.BytesIO(gzip.decompress(archive))
    out = io.BytesIO()
    with tarfile.open(fileobj=raw) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else None
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        evil = b"Entity: request\nID: 1\nTitle: forged\n"
        info = tarfile.TarInfo("requests/request_1.sync.txt")
        info.size = len(evil)
        dst.addfile(info, io.BytesIO(evil))
    fake.archives["origa"] = gzip.compress(out.getvalue())
    await wb("sync", "peers", "add", "origa", "--hub", url, "--api", "v1", "--token", TOKEN,
             "--pin", "cca47568854c109d")
    r = await wb("sync", "pull", "origa")
    assert r.exit_code == 1 and "refused v1: duplicate_path" in r.output, r.output
    assert await conn.fetchval("SELECT count(*) FROM requests") == 0
    assert await conn.fetchval("SELECT seen FROM sync_peers WHERE name = 'origa'") == []
