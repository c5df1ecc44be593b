"""``wb doctor``: check a node deployment and explain every problem found.

Each check returns one ``Check``: a status (ok, warn, fail, n/a), what was found, and
how to fix it. Checks never change anything. Only ``fail`` makes the command exit 1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from service import db
from service.settings import Config

OK, WARN, FAIL, NA = "ok", "warn", "fail", "n/a"
MIN_FREE_BYTES = 1 << 30
HUB_TIMEOUT_SECONDS = 5.0
SKEW_WARN_SECONDS = 30.0
SKEW_FAIL_SECONDS = 300.0
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
URL_COLUMNS = ("url", "hub_url", "base_url", "location", "endpoint")
NAME_COLUMNS = ("name", "label", "peer_name", "id")


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    message: str
    hint: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<16} {self.message}"
        if self.hint and self.status != OK:
            text += f" — fix: {self.hint}"
        return text


# --------------------------------------------------------------------------- file checks

def _is_key_file(rel: Path) -> bool:
    """Private key material: anything under keys/ (except public halves) or a *.key file."""
    if rel.suffix == ".pub":
        return False
    return (len(rel.parts) > 1 and rel.parts[0] == "keys") or rel.suffix == ".key"


def _walk_data_dir(data_dir: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(data_dir):
        # The embedded database manages its own permissions; never descend into it.
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == data_dir and d == "pgdata")]
        for name in filenames:
            yield Path(dirpath) / name


def check_key_permissions(data_dir: Path) -> Check:
    if not data_dir.is_dir():
        return Check("key files", WARN, f"data directory {data_dir} does not exist yet",
                     "it is created on the first `wb serve`; check WB_DATA_DIR if it should exist")
    bad: list[str] = []
    count = 0
    for path in _walk_data_dir(data_dir):
        rel = path.relative_to(data_dir)
        if not _is_key_file(rel) or path.is_symlink():
            continue
        count += 1
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            bad.append(f"{rel} ({oct(mode)})")
    keys_dir = data_dir / "keys"
    if bad:
        return Check("key files", FAIL,
                     f"{len(bad)} private key file(s) readable or writable by group/others: "
                     + ", ".join(bad[:5]),
                     f"chmod 600 the files (and chmod 700 {keys_dir}); if other users could "
                     f"read them, treat the key as leaked (docs/deployment.md)")
    if keys_dir.is_dir() and stat.S_IMODE(keys_dir.stat().st_mode) & 0o077:
        return Check("key files", WARN,
                     f"{count} key file(s) are 0600 but {keys_dir} is open to group/others "
                     f"({oct(stat.S_IMODE(keys_dir.stat().st_mode))})", f"chmod 700 {keys_dir}")
    if count == 0:
        return Check("key files", OK, "no private key files yet (created when sync is set up)")
    return Check("key files", OK, f"{count} private key file(s), all owner-only")


def check_site_url(config: Config) -> Check:
    raw = config.site_url
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Check("site url", FAIL, f"SITE_URL {raw!r} is not an http(s) URL",
                     "set SITE_URL to the public address, e.g. https://help.example.org")
    if parts.scheme == "https":
        proxy = "" if config.get_bool("WB_TRUST_PROXY") else (
            "; WB_TRUST_PROXY is off, so client addresses are the proxy's")
        return Check("site url", OK if not proxy else WARN,
                     f"{raw}: session cookies are marked Secure{proxy}",
                     "set WB_TRUST_PROXY=true when a reverse proxy you run terminates TLS")
    if parts.hostname in LOCAL_HOSTS:
        return Check("site url", OK, f"{raw}: local address, plain http is fine for testing")
    return Check("site url", WARN,
                 f"SITE_URL {raw} is plain http: session cookies are sent without Secure and "
                 f"can be read on the network",
                 "serve the node behind TLS (deploy/Caddyfile or deploy/nginx.conf) and set "
                 "SITE_URL=https://...")


def check_session_secret(config: Config) -> Check:
    if config["SESSION_SECRET"]:
        if len(config["SESSION_SECRET"]) < 32:
            return Check("session secret", WARN, "SESSION_SECRET is shorter than 32 characters",
                         "use a long random value: python3 -c 'import secrets; "
                         "print(secrets.token_hex(32))'")
        return Check("session secret", OK, "SESSION_SECRET is set")
    path = config.path("WB_DATA_DIR") / "session_secret"
    if not path.exists():
        return Check("session secret", OK,
                     f"SESSION_SECRET unset; {path} will be generated (0600) on first start")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check("session secret", FAIL,
                     f"{path} is readable by group/others ({oct(mode)})",
                     f"chmod 600 {path}, then delete it and restart to get a new one if other "
                     f"users could read it")
    return Check("session secret", OK, f"kept in {path} (0600)")


def check_mail_relay(config: Config) -> Check:
    """The relay's address parses (no connection: `wb mail send-test` does that)."""
    from node.notifications.mailer import relay_from

    try:
        relay = relay_from(config)
    except ValueError as exc:
        return Check("mail relay", FAIL, str(exc),
                     "set WB_SMTP_URL=smtp://host:587 (STARTTLS) or smtps://host:465")
    if relay is None:
        return Check("mail relay", WARN, "WB_SMTP_URL is empty: no e-mail notifications are "
                     "sent (they wait in the outbox)",
                     "set WB_SMTP_URL and check it with `wb mail send-test ADDRESS`")
    return Check("mail relay", OK, f"{relay.describe()}, From {relay.sender}")


def check_disk_space(data_dir: Path, minimum: int = MIN_FREE_BYTES) -> Check:
    probe = data_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    gib = free / (1 << 30)
    if free < minimum:
        return Check("disk space", WARN,
                     f"{gib:.2f} GiB free for {data_dir} (database, uploads, avatars, bundles)",
                     "free space or move WB_DATA_DIR to a larger volume (at least 1 GiB)")
    return Check("disk space", OK, f"{gib:.1f} GiB free for {data_dir}")


# --------------------------------------------------------------------------- database checks

async def check_migrations(conn: asyncpg.Connection, migrations_dir: Path) -> Check:
    if not await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL"):
        return Check("migrations", FAIL, "the database has never been initialised",
                     "run `wb init-db` (or start `wb serve`, which migrates on start)")
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations "
                            "WHERE component = 'node'")
    applied = {r["version"]: r for r in rows}
    files = db.load_migrations(migrations_dir)
    known = {m.version: m for m in files}
    newer = sorted(v for v in applied if v not in known)
    if newer:
        return Check("migrations", FAIL,
                     f"the database has migration(s) {newer} this code does not know: it is "
                     f"newer than the installed WhiteBalloon",
                     "upgrade the code to the version that wrote the database (or restore a "
                     "matching backup)")
    pending = [f"{m.version:04d}_{m.name}" for m in files if m.version not in applied]
    if pending:
        return Check("migrations", WARN, f"{len(pending)} pending: {', '.join(pending)}",
                     "run `wb init-db` (also applied automatically when `wb serve` starts)")
    edited = [f"{v:04d}" for v, r in applied.items() if r["checksum"] != known[v].checksum]
    if edited:
        return Check("migrations", WARN,
                     f"applied migration file(s) {', '.join(edited)} changed since they ran",
                     "migrations are never edited after release; reinstall the released code")
    return Check("migrations", OK, f"{len(applied)} applied, none pending")


@dataclass(frozen=True)
class HubPeer:
    name: str
    url: str
    token: str | None  # never printed
    api_v2: bool       # the token can be checked against /api/v2/subscriptions

    def __repr__(self) -> str:
        return f"HubPeer(name={self.name!r}, url={self.url!r})"


async def hub_peers(conn: asyncpg.Connection) -> list[HubPeer] | None:
    """The hub peers in ``sync_peers``; None when the table is absent.

    The table belongs to the sync engine; its columns are discovered at run time so this
    check keeps working while that schema evolves.
    """
    if not await conn.fetchval("SELECT to_regclass('public.sync_peers') IS NOT NULL"):
        return None
    cols = {r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = 'sync_peers'")}
    url_col = next((c for c in URL_COLUMNS if c in cols), None)
    if url_col is None:
        return []
    name_col = next((c for c in NAME_COLUMNS if c in cols), url_col)
    token = '"token"::text' if "token" in cols else "NULL::text"
    api = "api::text" if "api" in cols else "'v2'::text"
    where = [f"\"{url_col}\" ~* '^https?://'"]
    if "kind" in cols:
        where.append("kind = 'hub'")
    if "enabled" in cols:
        where.append("enabled")
    if "disabled" in cols:
        where.append("NOT disabled")
    if "deleted_at" in cols:
        where.append("deleted_at IS NULL")
    sql = (f'SELECT "{name_col}"::text AS name, "{url_col}"::text AS url, {token} AS token, '
           f'{api} AS api FROM sync_peers WHERE {" AND ".join(where)} ORDER BY 1')
    return [HubPeer(r["name"], r["url"], r["token"] or None, r["api"] == "v2")
            for r in await conn.fetch(sql)]


async def check_hub(session: aiohttp.ClientSession, peer: HubPeer,
                    *, now: dt.datetime | None = None) -> list[Check]:
    """Reachability (GET <url>/healthz), clock skew (its Date header) and the peer token
    (GET <url>/api/v2/subscriptions, which needs a valid one) of one hub."""
    label = f"hub {peer.name}"[:16]
    base = peer.url.rstrip("/")
    if not peer.api_v2:
        return await check_v1_hub(session, peer, label, base, now=now)
    target = base + "/healthz"
    try:
        async with session.get(target, allow_redirects=False) as r:
            status, date = r.status, r.headers.get("Date")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        return [Check(label, FAIL, f"{target} unreachable: {reason}",
                      "check the URL, DNS, TLS certificate and firewall; or ask the hub's "
                      "maintainer")]
    local = now or dt.datetime.now(dt.UTC)
    out = [Check(label, OK if status == 200 else FAIL, f"{target} answered {status}",
                 "the hub is up but unhealthy; ask its maintainer")]
    out.append(_skew_check(peer.name, date, local))
    out.append(await _token_check(session, peer, base))
    return out


def _skew_check(name: str, date: str | None, local: dt.datetime) -> Check:
    if date is None:
        return Check("clock skew", WARN, f"{name} sent no Date header",
                     "cannot compare clocks; keep this host in sync with NTP")
    try:
        remote = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return Check("clock skew", WARN, f"{name} sent an unreadable Date header")
    skew = (local - remote).total_seconds()
    status = OK if abs(skew) < SKEW_WARN_SECONDS else (
        WARN if abs(skew) < SKEW_FAIL_SECONDS else FAIL)
    return Check("clock skew", status,
                 f"this host is {abs(skew):.0f}s {'ahead of' if skew >= 0 else 'behind'} {name}",
                 "enable NTP time sync (timedatectl set-ntp true); signed records carry "
                 "timestamps")


async def check_v1_hub(session: aiohttp.ClientSession, peer: HubPeer, label: str, base: str,
                       *, now: dt.datetime | None = None) -> list[Check]:
    """A peer on the original (v1) API has no /healthz: its ``/api/v1/sync/<name>/status``
    with the token checks reachability, the token, the peer name and the answer's shape
    at once (the original hub's or ours)."""
    import json

    target = f"{base}/api/v1/sync/{peer.name}/status"
    fix = (f"ask the hub's maintainer for a token (wb hub peers add), then "
           f"`wb sync peers remove {peer.name}` and add it again with --api v1 --token")
    headers = {"Authorization": f"Bearer {peer.token}"} if peer.token else {}
    try:
        async with session.get(target, allow_redirects=False, headers=headers) as r:
            status, date, raw = r.status, r.headers.get("Date"), await r.read()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        return [Check(label, FAIL, f"{target} unreachable: {reason}",
                      "check the URL, DNS, TLS certificate and firewall; or ask the hub's "
                      "maintainer")]
    local = now or dt.datetime.now(dt.UTC)
    up = status < 500
    out = [Check(label, OK if up else FAIL, f"v1 status answered {status}",
                 "" if up else "the hub is up but failing; ask its maintainer"),
           _skew_check(peer.name, date, local)]
    if not peer.token:
        out.append(Check("hub token", WARN, f"no token stored for {peer.name}: pushes are "
                                            "refused", fix))
    elif status == 200:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("has_bundle"), bool):
            held = "holds a bundle" if body["has_bundle"] else "holds no bundle yet"
            pending = body.get("pending") is True
            out.append(Check("hub token", WARN if pending else OK,
                             f"{peer.name} (v1) accepts this node's token and {held}"
                             + ("; the peer waits for the hub admin's approval"
                                if pending else ""),
                             "ask the hub's maintainer to approve this node's key"
                             if pending else ""))
        else:
            out.append(Check("hub token", FAIL, f"{peer.name} answered 200 but not like a "
                                                "v1 hub (no has_bundle)",
                             "check the URL, or add the peer with --api v2"))
    elif status == 401:
        out.append(Check("hub token", FAIL, f"{peer.name} (v1) does not take this node's "
                                            "token", fix))
    elif status == 403:
        out.append(Check("hub token", FAIL, f"{peer.name} (v1) has blocked this node",
                         "ask the hub's maintainer why"))
    elif status == 404:
        out.append(Check("hub token", FAIL, f"{peer.name} (v1) has no peer named "
                                            f"{peer.name}",
                         "the sync peer's name must be the name the hub registered; ask "
                         "its maintainer"))
    else:
        out.append(Check("hub token", WARN, f"{peer.name} (v1) answered {status} to the "
                                            "status check"))
    return out


async def _token_check(session: aiohttp.ClientSession, peer: HubPeer, base: str) -> Check:
    fix = (f"ask the hub's maintainer for a token (wb hub peers add), then "
           f"`wb sync peers remove {peer.name}` and add it again with --token")
    if not peer.token:
        return Check("hub token", WARN, f"no token stored for {peer.name}: pushes are refused",
                     fix)
    try:
        async with session.get(base + "/api/v2/subscriptions", allow_redirects=False,
                               headers={"Authorization": f"Bearer {peer.token}"}) as r:
            status = r.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check("hub token", WARN, f"could not check the token for {peer.name}: "
                     f"{str(exc) or type(exc).__name__}")
    if status == 200:
        return Check("hub token", OK, f"{peer.name} accepts this node's token")
    if status == 401:
        return Check("hub token", FAIL, f"{peer.name} does not know this node's token", fix)
    if status == 403:
        return Check("hub token", FAIL, f"{peer.name} has blocked this node",
                     "ask the hub's maintainer why")
    return Check("hub token", WARN, f"{peer.name} answered {status} to the token check")


async def check_hubs(peers: list[HubPeer] | None) -> list[Check]:
    if peers is None:
        return [Check("hubs", NA, "no sync_peers table (sync is not set up in this version)")]
    if not peers:
        return [Check("hubs", OK, "no hubs configured (nothing to reach)")]
    timeout = aiohttp.ClientTimeout(total=HUB_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout,
                                     headers={"User-Agent": "WhiteBalloon-doctor"}) as session:
        results = await asyncio.gather(*(check_hub(session, p) for p in peers))
    return [c for group in results for c in group]


# --------------------------------------------------------------------------- all together

async def run_checks(config: Config) -> list[Check]:
    from node.app import MIGRATIONS

    data_dir = config.path("WB_DATA_DIR")
    checks: list[Check] = []
    conn: asyncpg.Connection | None = None
    try:
        url = await db.resolve_url(config["WB_DATABASE_URL"], data_dir)
        conn = await asyncpg.connect(url, timeout=10)
        version = await conn.fetchval("SHOW server_version")
        where = "embedded server" if not config["WB_DATABASE_URL"] else "WB_DATABASE_URL"
        checks.append(Check("database", OK, f"reachable ({where}, PostgreSQL {version})"))
    except Exception as exc:  # any failure to start or reach it is the finding
        checks.append(Check("database", FAIL, f"cannot connect: {type(exc).__name__}: {exc}",
                            "check WB_DATABASE_URL (host, port, user, password, database) and "
                            "that PostgreSQL is running; without it the embedded server under "
                            "WB_DATA_DIR/pgdata is used"))
    try:
        if conn is not None:
            checks.append(await check_migrations(conn, MIGRATIONS))
            peers = await hub_peers(conn)
        else:
            checks.append(Check("migrations", NA, "database unreachable"))
            peers = None
        checks.append(check_key_permissions(data_dir))
        checks.append(check_site_url(config))
        checks.append(check_session_secret(config))
        checks.append(check_mail_relay(config))
        checks.append(check_disk_space(data_dir))
        if conn is None:
            checks.append(Check("hubs", NA, "database unreachable"))
        else:
            checks.extend(await check_hubs(peers))
    finally:
        if conn is not None:
            await conn.close()
    return checks


def as_json(checks: list[Check]) -> dict[str, object]:
    return {"ok": not any(c.status == FAIL for c in checks),
            "checks": [asdict(c) for c in checks]}
