"""Backups of a node or a hub: one tar.gz holding a database dump, keys, uploads and a
manifest.

Archive layout (node)::

    manifest.json        format, version, component, created_at, schema_migrations, files
    database.dump        pg_dump --format=custom of the node database
    keys/...             WB_DATA_DIR/keys (private keys: restored 0600)
    uploads/...          WB_DATA_DIR/uploads (avatars, invite photos)
    session_secret       WB_DATA_DIR/session_secret when present (restored 0600)

A hub's (``--hub``): the hub database, ``WB_HUB_DATA_DIR/keys`` and ``log.key``, the key
that signs its transparency log (``WB_HUB_LOG_KEY``, default ``WB_HUB_DATA_DIR/log.key``;
restored 0600 to the configured path). A hub restored without it would sign a new log,
which every auditing node treats as another hub (docs/transparency.md).

Restore reads and checks the whole archive in a scratch directory before it touches the
database or the data directory: every file must be listed with a matching SHA-256 and
size, nothing may be missing or extra, and no path may leave the archive. The checksums
catch corruption and partial edits; they are not a signature, so keep backups where only
operators can write (they contain the node's private keys).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
import pgserver

from service import db
from service.settings import Config

log = logging.getLogger("wb.ops.backup")

FORMAT = "whiteballoon-backup"
VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
DATA_TREES = ("keys", "uploads")
DATA_FILES = ("session_secret",)
SECRET_TOP = ("keys", "session_secret")  # restored owner-only
_SAFE_PART = re.compile(r"^[A-Za-z0-9._@+=-]+$")
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore problem; the message says what to do."""


@dataclass(frozen=True)
class Component:
    """What one component's backup holds and where its settings put it."""

    name: str  # node | hub
    url_setting: str
    dir_setting: str
    trees: tuple[str, ...]  # directories of the data directory, file by file
    files: tuple[str, ...]  # loose files (see ``loose_files`` for their place on disk)
    secret: tuple[str, ...]  # top-level names restored owner-only

    def loose_files(self, config: Config) -> dict[str, Path]:
        """Archive name -> file on disk of the loose files."""
        data_dir = config.path(self.dir_setting)
        out = {name: data_dir / name for name in self.files}
        if self.name == "hub" and config["WB_HUB_LOG_KEY"].strip():
            out["log.key"] = Path(config["WB_HUB_LOG_KEY"].strip())
        return out


NODE = Component("node", "WB_DATABASE_URL", "WB_DATA_DIR", DATA_TREES, DATA_FILES,
                 SECRET_TOP)
HUB = Component("hub", "WB_HUB_DATABASE_URL", "WB_HUB_DATA_DIR", ("keys",), ("log.key",),
                ("keys", "log.key"))
COMPONENTS = {c.name: c for c in (NODE, HUB)}


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    moved_aside: list[str]


# --------------------------------------------------------------------------- tools

def pgserver_bin_dir() -> Path | None:
    """The ``bin`` directory of PostgreSQL shipped inside the pgserver wheel, if installed."""
    path = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return path if path.is_dir() else None


def pg_tool(name: str) -> str:
    """Path of ``pg_dump`` / ``pg_restore``: pgserver's copy first, then PATH."""
    bin_dir = pgserver_bin_dir()
    if bin_dir is not None and (bin_dir / name).is_file():
        return str(bin_dir / name)
    found = shutil.which(name)
    if found:
        return found
    raise BackupError(f"{name} not found: install the PostgreSQL client tools "
                      f"(e.g. apt-get install postgresql-client) or the pgserver package")


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """Split a password out of ``url`` into PGPASSWORD so it never shows in ``ps``."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url, env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        tail = "; ".join(detail[-3:]) if detail else f"exit code {proc.returncode}"
        raise BackupError(f"{what} failed: {tail}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- backup

def _data_files(data_dir: Path, comp: Component = NODE,
                config: Config | None = None) -> list[tuple[str, Path]]:
    """(archive path, file) for keys/, uploads/ and loose secret files, sorted."""
    found: list[tuple[str, Path]] = []
    for tree in comp.trees:
        root = data_dir / tree
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_symlink():
                raise BackupError(f"{path} is a symbolic link; replace it with the file it "
                                  f"points to before backing up")
            if path.is_file():
                found.append((path.relative_to(data_dir).as_posix(), path))
    loose = comp.loose_files(config) if config is not None \
        else {name: data_dir / name for name in comp.files}
    for name, path in loose.items():
        if path.is_file() and not path.is_symlink():
            found.append((name, path))
    return found


async def _migration_versions(url: str, comp: Component = NODE) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        exists = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
        if not exists:
            raise BackupError(f"the {comp.name} database has no schema_migrations table: it "
                              f"was never initialised (run `wb init-db`), so there is nothing "
                              f"to back up")
        rows = await conn.fetch("SELECT component, version, name FROM schema_migrations "
                                "ORDER BY component, version")
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def create_backup(config: Config, output: Path, *,
                        component: str = "node") -> dict[str, Any]:
    """Write a backup archive of the node (or hub) to ``output`` (mode 0600); return its
    manifest."""
    import asyncio

    comp = COMPONENTS[component]
    data_dir = config.path(comp.dir_setting)
    url = await db.resolve_url(config[comp.url_setting], data_dir)
    try:
        migrations = await _migration_versions(url, comp)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BackupError(f"cannot reach the {comp.name} database: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="wb-backup-") as tmp:
        dump = Path(tmp) / DUMP
        target, env = libpq_target(url)
        await asyncio.to_thread(
            _run, [pg_tool("pg_dump"), "--format=custom", "--file", str(dump),
                   "--dbname", target], env, "pg_dump")
        entries = [(DUMP, dump), *_data_files(data_dir, comp, config)]
        files = [{"path": name, "sha256": sha256_file(path), "size": path.stat().st_size,
                  "mode": oct(path.stat().st_mode & 0o777)} for name, path in entries]
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "component": comp.name,
            "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "site_url": config.site_url if comp is NODE else config["WB_HUB_URL"],
            "schema_migrations": migrations,
            "files": files,
        }
        await asyncio.to_thread(_write_archive, output, manifest, entries)
    log.info("backup written", extra={"path": str(output), "files": len(files)})
    return manifest


def _write_archive(output: Path, manifest: dict[str, Any],
                   entries: list[tuple[str, Path]]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(body), 0o600
            info.mtime = int(dt.datetime.now(dt.UTC).timestamp())
            tar.addfile(info, io.BytesIO(body))
            for name, path in entries:
                info = tar.gettarinfo(str(path), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with path.open("rb") as f:
                    tar.addfile(info, f)
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- restore

def _safe_path(name: str, comp: Component = NODE) -> bool:
    p = PurePosixPath(name)
    return (not p.is_absolute() and len(p.parts) > 0
            and all(part not in (".", "..") and _SAFE_PART.match(part) for part in p.parts)
            and (p.parts[0] in comp.trees and len(p.parts) > 1
                 or name in comp.files or name == DUMP))


def _check_manifest(manifest: Any, comp: Component = NODE) -> dict[str, dict[str, Any]]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("not a WhiteBalloon backup: manifest.json has the wrong format")
    if manifest.get("component", "node") != comp.name:
        raise BackupError(f"this is a backup of a {manifest.get('component')!r}, not of a "
                          f"{comp.name}" + (" (add --hub)" if comp is NODE else ""))
    if manifest.get("version") != VERSION:
        raise BackupError(f"backup format version {manifest.get('version')!r} is not supported "
                          f"by this WhiteBalloon (expects {VERSION})")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise BackupError("manifest.json has no file list")
    listed: dict[str, dict[str, Any]] = {}
    for entry in files:
        name = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _safe_path(name, comp) or name in listed:
            raise BackupError(f"manifest.json lists an unsafe or duplicate path: {name!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", ""))):
            raise BackupError(f"manifest.json has no valid sha256 for {name}")
        listed[name] = entry
    if DUMP not in listed:
        raise BackupError("the backup holds no database dump")
    if not isinstance(manifest.get("schema_migrations"), list):
        raise BackupError("manifest.json has no schema_migrations list")
    return listed


def verify_archive(archive: Path, scratch: Path, comp: Component = NODE) -> dict[str, Any]:
    """Unpack ``archive`` into ``scratch`` checking every file; return the manifest.

    Raises BackupError naming the first problem; on error ``scratch`` may hold partial
    files (the caller deletes it). Nothing outside ``scratch`` is written.
    """
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from None
    with tar:
        try:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise BackupError("the archive does not start with manifest.json; "
                                  "it was not written by `wb backup`")
            raw = tar.extractfile(first)
            assert raw is not None
            try:
                manifest = json.loads(raw.read(4 * _CHUNK))
            except ValueError:
                raise BackupError("manifest.json is not valid JSON") from None
            listed = _check_manifest(manifest, comp)
            seen: set[str] = set()
            for member in tar:
                name = member.name
                if member.isdir() or member.offset == first.offset:
                    continue
                if not member.isfile() or name not in listed or name in seen:
                    raise BackupError(f"the archive holds {name!r}, which the manifest does "
                                      f"not list (or lists once): refusing the whole backup")
                seen.add(name)
                src = tar.extractfile(member)
                assert src is not None
                dest = scratch / name
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                h = hashlib.sha256()
                size = 0
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                want = listed[name]
                if h.hexdigest() != want["sha256"] or size != want.get("size", size):
                    raise BackupError(f"checksum mismatch for {name}: the backup is corrupt "
                                      f"or was modified; nothing was restored")
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise BackupError(f"the archive is damaged: {exc}") from None
    missing = sorted(set(listed) - seen)
    if missing:
        raise BackupError(f"the archive lacks files its manifest lists: {', '.join(missing)}")
    return manifest


def _check_migrations_known(manifest: dict[str, Any], comp: Component = NODE) -> None:
    from hub.app import MIGRATIONS as HUB_MIGRATIONS
    from node.app import MIGRATIONS

    known = {m.version for m in db.load_migrations(MIGRATIONS if comp is NODE
                                                   else HUB_MIGRATIONS)}
    newer = sorted(int(m["version"]) for m in manifest["schema_migrations"]
                   if m.get("component") == comp.name and int(m["version"]) not in known)
    if newer:
        raise BackupError(f"the backup has {comp.name} migration(s) {newer} that this version of "
                          f"WhiteBalloon does not know: upgrade the code first")


async def database_has_data(conn: asyncpg.Connection) -> list[str]:
    """Names of tables (outside system schemas) that hold at least one row."""
    tables = await conn.fetch(
        "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' AND c.relname <> 'schema_migrations' "
        "ORDER BY 1, 2")
    full: list[str] = []
    for t in tables:
        ident = f'"{t["schema"]}"."{t["name"]}"'.replace("\x00", "")
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {ident})"):
            full.append(f"{t['schema']}.{t['name']}")
    return full


def _files_present(data_dir: Path, comp: Component = NODE,
                   loose: dict[str, Path] | None = None) -> list[str]:
    present = []
    for tree in comp.trees:
        root = data_dir / tree
        if root.is_dir() and any(p.is_file() for p in root.rglob("*")):
            present.append(tree)
    loose = loose or {n: data_dir / n for n in comp.files}
    present += [n for n, path in loose.items() if path.exists()]
    return present


async def restore_backup(config: Config, archive: Path, *, force: bool = False,
                         component: str = "node") -> RestoreResult:
    """Restore ``archive`` into the configured database and data directory."""
    import asyncio

    comp = COMPONENTS[component]
    data_dir = config.path(comp.dir_setting)
    data_dir.mkdir(parents=True, exist_ok=True)
    loose = comp.loose_files(config)
    with tempfile.TemporaryDirectory(prefix=".wb-restore-", dir=data_dir) as tmp:
        scratch = Path(tmp)
        manifest = await asyncio.to_thread(verify_archive, archive, scratch, comp)
        _check_migrations_known(manifest, comp)
        url = await db.resolve_url(config[comp.url_setting], data_dir)
        try:
            conn = await asyncpg.connect(url, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise BackupError(f"cannot reach the {comp.name} database: {exc}") from None
        try:
            full = await database_has_data(conn)
            occupied = _files_present(data_dir, comp, loose)
            if (full or occupied) and not force:
                what = [f"tables with rows: {', '.join(full[:5])}"] if full else []
                what += [f"existing {', '.join(occupied)} in {data_dir}"] if occupied else []
                raise BackupError(f"refusing to restore over a {comp.name} that already has "
                                  "data ("
                                  + "; ".join(what) + "). Restore into an empty database and "
                                  "data directory, or pass --force to replace them (existing "
                                  "files are moved aside, not deleted)")
            aside = await _set_schema_aside(conn)
            target, env = libpq_target(url)
            try:
                await asyncio.to_thread(
                    _run, [pg_tool("pg_restore"), "--no-owner", "--no-privileges",
                           "--exit-on-error", "--single-transaction", "--dbname", target,
                           str(scratch / DUMP)], env, "pg_restore")
            except BaseException:
                await _put_schema_back(conn, aside)
                raise
            if aside:
                await conn.execute(f'DROP SCHEMA "{aside}" CASCADE')
        finally:
            await conn.close()
        moved = _install_files(scratch, data_dir, manifest, comp, loose)
    log.info("backup restored", extra={"path": str(archive), "files": len(manifest["files"])})
    return RestoreResult(manifest=manifest, moved_aside=moved)


async def _set_schema_aside(conn: asyncpg.Connection) -> str | None:
    """Rename an existing ``public`` schema out of the way; return its new name.

    The old schema is dropped only after pg_restore committed, and renamed back when it
    failed, so a failed restore never leaves the node without its data.
    """
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace "
                               "WHERE nspname = 'public')"):
        await conn.execute("CREATE SCHEMA public")
        return None
    aside = "wb_before_restore_" + dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
    async with conn.transaction():
        await conn.execute(f'ALTER SCHEMA public RENAME TO "{aside}"')
        await conn.execute("CREATE SCHEMA public")
    return aside


async def _put_schema_back(conn: asyncpg.Connection, aside: str | None) -> None:
    async with conn.transaction():
        await conn.execute("DROP SCHEMA public CASCADE")
        if aside:
            await conn.execute(f'ALTER SCHEMA "{aside}" RENAME TO public')
        else:
            await conn.execute("CREATE SCHEMA public")


def _install_files(scratch: Path, data_dir: Path, manifest: dict[str, Any],
                   comp: Component = NODE, loose: dict[str, Path] | None = None) -> list[str]:
    """Move verified files into place; existing keys/uploads are moved aside first."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[str] = []
    loose = loose or {n: data_dir / n for n in comp.files}
    for current in (*(data_dir / t for t in comp.trees), *loose.values()):
        if current.exists() or current.is_symlink():
            aside = current.with_name(f"{current.name}.before-restore-{stamp}")
            current.rename(aside)
            moved.append(str(aside))
    for entry in manifest["files"]:
        name = entry["path"]
        if name == DUMP:
            continue
        dest = loose.get(name, data_dir / name)
        top = PurePosixPath(name).parts[0]
        secret = top in comp.secret
        if name in loose:  # may be outside the data directory (WB_HUB_LOG_KEY)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(scratch / name, dest)
            os.chmod(dest, 0o600 if secret else 0o644)
            continue
        dirmode = 0o700 if secret else 0o755
        for parent in reversed(dest.relative_to(data_dir).parents[:-1]):
            d = data_dir / parent
            if not d.exists():
                d.mkdir(mode=dirmode)
                os.chmod(d, dirmode)
        (scratch / name).replace(dest)
        os.chmod(dest, 0o600 if secret else _upload_mode(entry.get("mode")))
    return moved


def _upload_mode(recorded: object) -> int:
    """The recorded mode of an upload, never wider than 0644."""
    try:
        return int(str(recorded), 8) & 0o644
    except ValueError:
        return 0o644
