"""Account settings and avatar uploads: validation, sniffing, limits, storage, serving."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from node.profiles import avatars
from tests.factories import create_user, sign_in

JSON = {"Accept": "application/json"}


def png(width: int = 16, height: int = 16, pad: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(min(height, 64)))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + (chunk(b"tEXt", b"c\x00" + b"x" * pad) if pad else b"")
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _pillow(fmt: str, width: int, height: int, **save) -> bytes:
    """A real, decodable image made by Pillow (avatars are decoded and re-encoded)."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.putpixel((1, 1), (0, 0, 255))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def jpeg(width: int = 20, height: int = 10, **save) -> bytes:
    return _pillow("JPEG", width, height, **save)


def webp(width: int = 32, height: int = 24) -> bytes:
    return _pillow("WEBP", width, height, lossless=True)


def stored(data_dir: Path) -> list[str]:
    d = data_dir / "avatars"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


async def upload(client, csrf: str, data: bytes, filename: str, ctype: str, **kw):
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("avatar", data, filename=filename, content_type=ctype)
    return await client.post("/settings/avatar", data=form, allow_redirects=False, **kw)


@pytest.fixture
def data_dir(node_config) -> Path:
    return node_config.path("WB_DATA_DIR")


# --------------------------------------------------------------------------- unit

@pytest.mark.parametrize("make,kind,size", [(png, "png", (16, 16)), (jpeg, "jpg", (20, 10)),
                                            (webp, "webp", (32, 24))])
def test_inspect_reads_type_and_size_from_content(make, kind, size):
    info = avatars.inspect(make(), 10_000)
    assert (info.kind, (info.width, info.height)) == (kind, size)


@pytest.mark.parametrize("data,message", [
    (b"", "Choose an image"),
    (b"<html><script>alert(1)</script></html>", "Only PNG, JPEG and WebP"),
    (b"GIF89a" + b"\x00" * 40, "Only PNG, JPEG and WebP"),
    (png()[:40], "damaged"),
    (jpeg()[:-2], "damaged"),
    (webp()[:-3], "damaged"),
    (png(5000, 16), "5000×16 pixels"),
    (png(2, 2), "2×2 pixels"),
])
def test_inspect_refuses_bad_files(data, message):
    with pytest.raises(avatars.AvatarError, match=message):
        avatars.inspect(data, 1_000_000)


def test_inspect_enforces_byte_limit():
    with pytest.raises(avatars.AvatarError, match="too large"):
        avatars.inspect(png(), 50)


def _gps_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS
    return exif.tobytes()


POLYGLOT_TAIL = b"<html><script>alert(document.cookie)</script></html>PK\x03\x04zip"


def test_reencoding_strips_text_chunks_and_trailing_polyglot_payload():
    # a well-formed tEXt chunk (right CRC) carrying a script, after IHDR; HTML and a zip
    # header after IEND
    hostile = png()
    text = b"comment\x00<script>alert(1)</script>"
    chunk = (struct.pack(">I", len(text)) + b"tEXt" + text
             + struct.pack(">I", zlib.crc32(b"tEXt" + text)))
    hostile = hostile[:33] + chunk + hostile[33:] + POLYGLOT_TAIL
    with Image.open(io.BytesIO(hostile)) as img:  # Pillow itself reads it as a fine PNG
        img.load()
        assert "script" in img.info["comment"]
    info = avatars.inspect(hostile, 1_000_000)
    assert (info.kind, info.width, info.height) == ("png", 16, 16)
    assert b"script" not in info.data and b"PK\x03\x04" not in info.data
    assert b"tEXt" not in info.data and info.data.endswith(b"IEND\xaeB`\x82")


def test_reencoding_strips_exif_gps_and_comments_from_jpeg_and_webp():
    for data, kind in ((jpeg(64, 48, exif=_gps_exif(), comment=b"<script>x</script>"), "jpg"),
                       (_pillow("WEBP", 64, 48, exif=_gps_exif()), "webp")):
        with Image.open(io.BytesIO(data)) as img:
            assert img.getexif().get(0x010F) == "SpyCam"  # the upload does carry it
        info = avatars.inspect(data, 1_000_000)
        assert (info.kind, info.width, info.height) == (kind, 64, 48)
        assert b"SpyCam" not in info.data and b"Exif" not in info.data
        assert b"script" not in info.data
        with Image.open(io.BytesIO(info.data)) as img:
            assert not img.getexif() and "icc_profile" not in img.info


@pytest.mark.parametrize("data,message", [
    # a PNG whose header claims 30000×30000: refused before any pixel is decoded
    (png(30000, 30000), "pixels"),
    # a corrupted checksum in the middle of the file (verify() reads every chunk's CRC)
    (png()[:29] + bytes([png()[29] ^ 0xFF]) + png()[30:], "damaged"),
    # JPEG magic, then anything but a JPEG
    (b"\xff\xd8\xff" + b"<html>" * 20, "damaged"),
    # a WebP container around garbage
    (b"RIFF" + struct.pack("<I", 4 + 8 + 10) + b"WEBPVP8 " + struct.pack("<I", 10)
     + b"\x00" * 10, "damaged"),
])
def test_inspect_refuses_hostile_files(data, message):
    with pytest.raises(avatars.AvatarError, match=message):
        avatars.inspect(data, 10_000_000)


# --------------------------------------------------------------------------- settings

async def test_settings_page_and_update(node_client, node_pool):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    r = await node_client.get("/settings/account")
    assert r.status == 200
    html = await r.text()
    assert 'name="csrf_token"' in html and 'enctype="multipart/form-data"' in html
    r = await node_client.post("/settings/account", allow_redirects=False, data={
        "csrf_token": csrf, "display_name": "  Ann   Lee ", "bio": "I fix bikes.",
        "contact_email": "ann@example.org", "share_contact": "on", "scope": "public"})
    assert r.status == 303
    row = await node_pool.fetchrow("SELECT * FROM users WHERE id = $1", me)
    assert (row["display_name"], row["bio"], row["contact_email"], row["share_contact"],
            row["sync_scope"]) == ("Ann Lee", "I fix bikes.", "ann@example.org", True, "public")


async def test_settings_without_csrf_changes_nothing(node_client, node_pool):
    me = await create_user(node_pool, "ann")
    await sign_in(node_client, me)
    r = await node_client.post("/settings/account", data={"display_name": "Evil",
                                                          "scope": "public"})
    assert r.status == 403
    row = await node_pool.fetchrow("SELECT display_name, sync_scope FROM users WHERE id = $1",
                                   me)
    assert (row["display_name"], row["sync_scope"]) == ("Ann", "private")


async def test_settings_validation_errors_keep_old_values(node_client, node_pool):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    r = await node_client.post("/settings/account", data={
        "csrf_token": csrf, "display_name": "x" * 81, "bio": "ok",
        "contact_email": "not-an-email", "scope": "galaxy"})
    assert r.status == 400
    html = await r.text()
    assert "At most 80 characters" in html and "name@example.org" in html
    assert "Choose private or public" in html
    r = await node_client.post("/settings/account", headers=JSON, data={
        "csrf_token": csrf, "display_name": "Bell\u0007", "scope": "private"})
    assert r.status == 400
    assert set((await r.json())["error"]["fields"]) == {"display_name"}
    assert await node_pool.fetchval("SELECT display_name FROM users WHERE id = $1", me) == "Ann"


async def test_share_without_email_is_not_stored_as_shared(node_client, node_pool):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    await node_client.post("/settings/account", data={
        "csrf_token": csrf, "display_name": "Ann", "share_contact": "on", "scope": "private"})
    row = await node_pool.fetchrow("SELECT contact_email, share_contact FROM users "
                                   "WHERE id = $1", me)
    assert (row["contact_email"], row["share_contact"]) == (None, False)


# --------------------------------------------------------------------------- avatars

@pytest.mark.parametrize("make,ext,ctype", [(png, "png", "image/png"),
                                            (jpeg, "jpg", "image/jpeg"),
                                            (webp, "webp", "image/webp")])
async def test_upload_and_serve(node_client, node_pool, data_dir, make, ext, ctype):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    data = make()
    r = await upload(node_client, csrf, data, "me.bin", "application/octet-stream")
    assert r.status == 303
    name = await node_pool.fetchval("SELECT avatar_path FROM users WHERE id = $1", me)
    assert avatars.NAME_RE.match(name) and name.endswith("." + ext)
    assert stored(data_dir) == [name]
    r = await node_client.get(f"/avatars/{name}")
    served = await r.read()
    # what is served is our own re-encoding of the upload: same kind and size, stored as is
    assert r.status == 200 and served == (data_dir / "avatars" / name).read_bytes()
    with Image.open(io.BytesIO(served)) as img, Image.open(io.BytesIO(data)) as orig:
        assert (img.format, img.size) == (orig.format, orig.size)
        if ext == "png":  # lossless: every pixel kept (JPEG and WebP are re-encoded lossy)
            assert img.convert("RGB").tobytes() == orig.convert("RGB").tobytes()
    assert r.headers["Content-Type"] == ctype
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=" in r.headers["Cache-Control"]
    html = await (await node_client.get("/people/ann")).text()
    assert f'src="/avatars/{name}"' in html


async def test_polyglot_upload_is_served_as_our_clean_reencoding(node_client, node_pool,
                                                                  data_dir):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    hostile = jpeg(40, 30, exif=_gps_exif()) + POLYGLOT_TAIL
    r = await upload(node_client, csrf, hostile, "me.html", "text/html")
    assert r.status == 303
    name = await node_pool.fetchval("SELECT avatar_path FROM users WHERE id = $1", me)
    served = await (await node_client.get(f"/avatars/{name}")).read()
    assert served.startswith(b"\xff\xd8\xff") and served.endswith(b"\xff\xd9")
    assert b"script" not in served and b"SpyCam" not in served and b"PK\x03\x04" not in served


async def test_png_renamed_jpg_is_stored_as_png(node_client, node_pool, data_dir):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    r = await upload(node_client, csrf, png(), "photo.jpg", "image/jpeg")
    assert r.status == 303
    name = await node_pool.fetchval("SELECT avatar_path FROM users WHERE id = $1", me)
    assert name.endswith(".png")
    r = await node_client.get(f"/avatars/{name}")
    assert r.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("data,filename,ctype,message", [
    (b"<!doctype html><script>alert(document.cookie)</script>", "cat.png", "image/png",
     "Only PNG, JPEG and WebP"),
    (png()[:30], "cut.png", "image/png", "damaged"),
    (png(9000, 9000), "huge.png", "image/png", "9000×9000 pixels"),
    (b"", "empty.png", "image/png", "Choose an image"),
])
async def test_bad_uploads_give_form_error_and_store_nothing(node_client, node_pool, data_dir,
                                                             data, filename, ctype, message):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    r = await upload(node_client, csrf, data, filename, ctype)
    assert r.status == 400
    html = await r.text()
    assert message in html and 'class="errors"' in html
    assert stored(data_dir) == []
    assert await node_pool.fetchval("SELECT avatar_path FROM users WHERE id = $1", me) is None


async def test_oversized_upload_refused(aiohttp_client, node_db_url, tmp_path):
    from node import typedefs as T
    from node.app import create_app
    from tests.conftest import make_node_config

    config = make_node_config(node_db_url, tmp_path / "node", WB_MAX_UPLOAD_BYTES="1000")
    client = await aiohttp_client(create_app(config))
    pool = client.server.app[T.pool_key]
    me = await create_user(pool, "ann")
    csrf = await sign_in(client, me)
    big = png(pad=1000)  # a valid image, just over the 1000-byte limit
    assert len(big) > 1000
    r = await upload(client, csrf, big, "big.png", "image/png")
    assert r.status == 400
    assert "too large" in await r.text()
    r = await upload(client, csrf, big, "big.png", "image/png", headers=JSON)
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "invalid_avatar"
    assert stored(tmp_path / "node") == []
    r = await upload(client, csrf, png(), "ok.png", "image/png")
    assert r.status == 303


async def test_replacing_and_removing_deletes_old_files(node_client, node_pool, data_dir):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    await upload(node_client, csrf, png(), "a.png", "image/png")
    first = stored(data_dir)
    await upload(node_client, csrf, jpeg(), "b.jpg", "image/jpeg")
    second = stored(data_dir)
    assert len(second) == 1 and second != first
    r = await node_client.get(f"/avatars/{first[0]}")
    assert r.status == 404
    r = await node_client.post("/settings/avatar/remove", data={"csrf_token": csrf},
                               allow_redirects=False)
    assert r.status == 303
    assert stored(data_dir) == []
    assert await node_pool.fetchval("SELECT avatar_path FROM users WHERE id = $1", me) is None


async def test_avatar_serving_rules(node_client, node_pool, data_dir):
    me = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, me)
    await upload(node_client, csrf, png(), "a.png", "image/png")
    name = stored(data_dir)[0]
    (data_dir / "avatars" / ("0" * 32 + ".png")).write_bytes(png())  # not referenced
    for bad in ("../session_secret", "..%2Fsession_secret", "0" * 32 + ".png", "x.html"):
        r = await node_client.get(f"/avatars/{bad}")
        assert r.status == 404, bad
    node_client.session.cookie_jar.clear()
    r = await node_client.get(f"/avatars/{name}", allow_redirects=False)
    assert r.status == 303  # logged out: sign in first


async def test_cli_avatars_reset(node_pool, node_config, data_dir):
    import asyncio

    from click.testing import CliRunner

    from node.profiles import service
    from ops.cli import root

    me = await create_user(node_pool, "ann")
    await service.upload_avatar(node_pool, data_dir, me, png(), 100_000)
    env = {"WB_DATABASE_URL": node_config["WB_DATABASE_URL"], "WB_DATA_DIR": str(data_dir)}

    def invoke(*args):
        return CliRunner().invoke(root, list(args), env=env, catch_exceptions=False)

    result = await asyncio.to_thread(invoke, "avatars", "reset", "ANN")
    assert result.exit_code == 0 and "removed" in result.output
    assert stored(data_dir) == []
    row = await node_pool.fetchrow(
        "SELECT actor_id, target FROM audit_log WHERE action = 'profile.avatar_reset'")
    assert row["actor_id"] is None and row["target"] == me
    result = await asyncio.to_thread(invoke, "avatars", "reset", "nobody")
    assert result.exit_code != 0 and "no local member" in result.output
