"""`wb hub ...`: database, peers, keys, subscriptions, admin tokens and the server."""

from __future__ import annotations

import asyncio
import base64
import binascii
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import click

from service.dbcli import command_pool, init_db_command
from service.ids import new_token, token_hash
from service.logs import setup_logging
from service.settings import Config

R = TypeVar("R")


def run_with_pool(fn: Callable[[asyncpg.Pool], Awaitable[R]], config: Config | None = None) -> R:
    """Open the hub database (migrating it), run ``fn(pool)``, close everything."""
    config = config or Config()

    async def main() -> R:
        from hub.app import MIGRATIONS

        pool = await command_pool(config, "hub", "WB_HUB_DATABASE_URL", "WB_HUB_DATA_DIR",
                                  MIGRATIONS)
        try:
            return await fn(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def parse_public_key(value: str) -> bytes:
    """A raw Ed25519 public key from base64 text or a ``public_keys/<id>.pub`` file."""
    from protocol.errors import ProtocolError
    from protocol.signature import parse_public_key_file

    path = Path(value)
    if len(value) < 4096 and path.is_file():
        try:
            return parse_public_key_file(path.read_bytes())
        except ProtocolError as exc:
            raise click.BadParameter(f"{value}: {exc.message}") from None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise click.BadParameter("give base64 of the 32-byte key or a .pub file") from None
    if len(raw) != 32:
        raise click.BadParameter("an Ed25519 public key is 32 bytes")
    return raw


@click.group("hub")
def hub_group() -> None:
    """The relay: peers, keys, subscriptions and `wb hub serve`."""


def _hub_migrations() -> Path:
    from hub.app import MIGRATIONS

    return MIGRATIONS


hub_group.add_command(init_db_command("hub", "WB_HUB_DATABASE_URL", "WB_HUB_DATA_DIR",
                                      _hub_migrations))


@hub_group.command("serve")
@click.option("--host", envvar="WB_HOST", default=None, help="Address to bind (WB_HOST).")
@click.option("--port", envvar="WB_HUB_PORT", type=int, default=None,
              help="Port (WB_HUB_PORT).")
@click.option("--verify-processes", type=click.IntRange(min=0), default=None,
              help="Processes that verify and store pushed bundles (0: verified in "
                   "threads, stored by this process; default WB_HUB_VERIFY_PROCESSES).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Serving processes on the one port (default WB_HUB_WORKERS).")
def serve(host: str | None, port: int | None, verify_processes: int | None,
          workers: int | None) -> None:
    """Run the hub relay."""
    from hub.typedefs import HubOptions
    from service import serving

    config = Config()
    setup_logging(config["WB_LOG_LEVEL"], config["WB_LOG_FORMAT"])
    host = host or config["WB_HOST"]
    port = port or config.get_int("WB_HUB_PORT")
    overrides: dict[str, int] = {}
    if verify_processes is not None:
        overrides["verify_processes"] = verify_processes
    if workers is not None:
        overrides["workers"] = workers
    try:
        options = HubOptions.from_config(config, **overrides)
        if options.workers < 1:
            raise ValueError("setting WB_HUB_WORKERS must be at least 1")
        limits = serving.ConnectionLimits.from_config(config)
        loop_factory = serving.event_loop_factory(config["WB_EVENT_LOOP"].strip().lower())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    from hub import process

    try:
        if options.workers == 1:
            process.serve_one(config, options, host, port, limits, loop_factory)
        else:
            sys.exit(process.serve_workers(config, options, host, port, loop_factory))
    except serving.ListenError as exc:
        raise click.ClickException(str(exc)) from None


@hub_group.command("admin-token")
def admin_token() -> None:
    """Create an admin token for the dashboard (shown once; only its hash is stored)."""
    from hub import queries as Q

    token = new_token()
    run_with_pool(lambda pool: Q.add_admin_token(pool, token_hash(token)))
    click.echo(token)


@hub_group.command("prune")
@click.option("--before-seq", type=click.IntRange(min=1), default=None,
              help="Prune log entries with a hub sequence below N (instead of by age).")
@click.option("--days", type=click.FloatRange(min=0), default=None,
              help="Prune entries older than this many days (default WB_HUB_RETENTION_DAYS).")
def prune_cmd(before_seq: int | None, days: float | None) -> None:
    """Delete old log entries and their bundles (the latest bundle of each origin stays);
    readers with a cursor below the new retention point get outdated_cursor."""
    from hub.retention import prune

    config = Config()
    if before_seq is None:
        days = config_days(config) if days is None else days
        if days <= 0:
            raise click.ClickException("retention is off (WB_HUB_RETENTION_DAYS=0); "
                                       "give --days or --before-seq")
    result = run_with_pool(lambda pool: prune(pool, before_seq=before_seq,
                                              older_than_days=days), config)
    click.echo(f"pruned {result.entries} log entries and {result.bundles} bundles; "
               f"retained from hub sequence {result.pruned_through + 1}")


def config_days(config: Config) -> float:
    try:
        return float(config["WB_HUB_RETENTION_DAYS"])
    except ValueError:
        raise click.ClickException("WB_HUB_RETENTION_DAYS must be a number") from None


# ------------------------------------------------------------------------- peers

@hub_group.group("peers")
def peers_group() -> None:
    """Nodes and hubs allowed to push here."""


@peers_group.command("add")
@click.argument("name")
@click.option("--token", help="Bearer token the peer will send (default: a new one, printed).")
@click.option("--public-key", "public_keys", multiple=True,
              help="Trusted signing key: base64 of the 32 bytes or a .pub file. Repeatable.")
@click.option("--origin", help="Origin the keys speak for (default: the first key's id).")
@click.option("--kind", type=click.Choice(["node", "hub"]), default="node", show_default=True)
def peers_add(name: str, token: str | None, public_keys: tuple[str, ...], origin: str | None,
              kind: str) -> None:
    """Register peer NAME with its token and trusted keys."""
    import re

    from hub import queries as Q
    from protocol.signature import key_id

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
        raise click.BadParameter("lowercase letters, digits, '.', '_' or '-'", param_hint="NAME")
    if kind == "node" and not public_keys:
        raise click.UsageError("a node peer needs --public-key (its signing key)")
    keys = [parse_public_key(k) for k in public_keys]
    shown = token is None
    token = token or new_token()
    if len(token) < 16:
        raise click.BadParameter("use at least 16 characters", param_hint="--token")

    async def main(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn, conn.transaction():
            try:
                await Q.add_peer(conn, name, kind, token_hash(token))
            except asyncpg.UniqueViolationError:
                raise click.ClickException(
                    f"peer {name} exists (or the token is in use); remove it first") from None
            for raw in keys:
                key_origin = origin or key_id(keys[0])
                if await Q.is_revoked(conn, key_origin, key_id(raw)):
                    raise click.ClickException(
                        f"key {key_id(raw)} is revoked for origin {key_origin}; nothing was "
                        f"added (see `wb hub keys list`)")
                await Q.trust_key(conn, key_origin, key_id(raw), raw, name)

    run_with_pool(main)
    click.echo(f"peer {name} added ({kind}); trusted keys: "
               f"{', '.join(key_id(k) for k in keys) or 'none'}")
    if shown:
        click.echo(f"token (shown once): {token}")


@peers_group.command("list")
def peers_list() -> None:
    """Every peer with its status and keys."""
    from hub import queries as Q

    rows = run_with_pool(Q.list_peers)
    if not rows:
        click.echo("no peers; add one with `wb hub peers add`")
    for r in rows:
        click.echo(f"{r['name']:24} {r['kind']:5} {r['status']:8} pushes={r['pushes']} "
                   f"keys={','.join(r['keys']) or '-'}")


@peers_group.command("show")
@click.argument("name")
def peers_show(name: str) -> None:
    """Details of peer NAME and its subscriptions."""
    from hub import queries as Q

    async def main(pool: asyncpg.Pool) -> tuple:
        return await Q.get_peer(pool, name), await Q.subscriptions(pool, name)

    peer, subs = run_with_pool(main)
    if peer is None:
        raise click.ClickException(f"no peer {name}")
    for k in ("name", "kind", "status", "created_at", "last_push_at", "pushes"):
        click.echo(f"{k}: {peer[k]}")
    for s in subs:
        click.echo(f"subscription {s['id']} {s['mode']} {s['inbox_url'] or ''} "
                   f"cursor={s['cursor']} lag={s['lag']} failures={s['failures']}")


@peers_group.command("remove")
@click.argument("name")
def peers_remove(name: str) -> None:
    """Remove peer NAME (its subscriptions too; its bundles stay in the log)."""
    from hub import queries as Q

    if not run_with_pool(lambda pool: Q.remove_peer(pool, name)):
        raise click.ClickException(f"no peer {name}")
    click.echo(f"peer {name} removed")


# ------------------------------------------------------------------------- keys

@hub_group.group("keys")
def keys_group() -> None:
    """Signing keys waiting for approval."""


@keys_group.command("list")
def keys_list() -> None:
    """Pending keys and how many bundles each has parked, then trusted and revoked keys."""
    from hub import queries as Q

    async def main(pool):
        return await Q.pending_keys(pool), await Q.trusted_and_revoked_keys(pool)

    rows, known = run_with_pool(main)
    if not rows:
        click.echo("no pending keys")
    for r in rows:
        click.echo(f"{r['key_id']} origin={r['origin']} bundles={r['bundles']} "
                   f"via={r['peer_name'] or '-'} first_seen={r['first_seen_at']:%Y-%m-%d %H:%M}")
        if r["foreign_claim"]:
            click.echo(f"  ! CLAIMS ORIGIN {r['origin']}, not an origin of peer "
                       f"{r['peer_name'] or '-'} that pushed it"
                       f"{' (the origin already has trusted keys)' if r['known_origin'] else ''}"
                       f"; approving lets that peer publish as it: "
                       f"wb hub keys approve {r['key_id']} --for-origin {r['origin']}")
    for r in known:
        click.echo(f"{r['key_id']} origin={r['origin']} {r['status']} "
                   f"{'by' if r['status'] == 'revoked' else 'via'}={r['via'] or '-'} "
                   f"at={r['at']:%Y-%m-%d %H:%M}")


@keys_group.command("revoke")
@click.argument("origin")
@click.argument("key_id")
def keys_revoke(origin: str, key_id: str) -> None:
    """Stop trusting KEY_ID for ORIGIN for good (a leaked key): its bundles are refused
    with 403 revoked_key and no rotation announcement trusts it again."""
    import getpass

    from hub import queries as Q
    from protocol.records import KEY_ID_RE

    for value in (origin, key_id):
        if not KEY_ID_RE.fullmatch(value):
            raise click.ClickException(f"{value!r} is not a 16-hex key id")
    try:
        actor = f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no user name in some containers
        actor = "cli"
    why = run_with_pool(lambda pool: Q.revoke_key(pool, origin, key_id, actor))
    if why is not None:
        raise click.ClickException({
            "already_revoked": f"key {key_id} of origin {origin} is already revoked",
            "unknown_origin": f"this hub knows no origin {origin} (see wb hub keys list)",
            "unknown_key": f"key {key_id} is neither trusted nor pending for origin "
                           f"{origin} (see wb hub keys list)"}[why])
    click.echo(f"key {key_id} of origin {origin} revoked")


@keys_group.command("approve")
@click.argument("key_id")
@click.option("--for-origin", metavar="ORIGIN",
              help="The origin the key may publish as. Required when the key claims an "
                   "origin other than its pushing peer's own (marked in `keys list`).")
def keys_approve(key_id: str, for_origin: str | None) -> None:
    """Trust pending KEY_ID and replay the bundles it signed."""
    from hub.ingest import Refused, approve_key
    from service.limits import limits_from_config

    limits = limits_from_config(Config())
    try:
        outcomes = run_with_pool(lambda pool: approve_key(pool, key_id, limits=limits,
                                                          for_origin=for_origin))
    except Refused as exc:
        hint = ""
        if exc.code == "origin_claim_unconfirmed":
            hint = " (re-run with --for-origin ORIGIN if you mean it)"
        elif exc.code == "origin_ambiguous":
            hint = " (re-run with --for-origin ORIGIN)"
        raise click.ClickException(f"{exc.code}: {exc.message}{hint}") from None
    stored = sum(1 for o in outcomes if o.result != "refused")
    click.echo(f"key {key_id} trusted; {stored} of {len(outcomes)} parked bundle(s) stored")
    for o in outcomes:
        if o.result == "refused":
            click.echo(f"  rejected: {o.body['error']['code']}: {o.body['error']['message']}")


@keys_group.command("discard")
@click.argument("key_id")
def keys_discard(key_id: str) -> None:
    """Forget pending KEY_ID and the bundles it parked."""
    from hub.ingest import Refused, discard_key

    try:
        n = run_with_pool(lambda pool: discard_key(pool, key_id))
    except Refused as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"key {key_id} discarded with {n} parked bundle(s)")


# ------------------------------------------------------------------------- subscriptions

@hub_group.group("subscriptions")
def subs_group() -> None:
    """Push subscriptions of peers (nodes or other hubs)."""


@subs_group.command("add")
@click.argument("peer")
@click.option("--inbox-url", required=True, help="Where bundles are POSTed (CBOR envelope).")
@click.option("--inbox-token", help="Bearer token sent to the inbox.")
@click.option("--origin", "origins", multiple=True, help="Only these origins. Repeatable.")
@click.option("--entity", "entities", multiple=True, help="Only these entities. Repeatable.")
@click.option("--cursor", type=int, default=0, show_default=True, help="Start after this seq.")
def subs_add(peer: str, inbox_url: str, inbox_token: str | None, origins: tuple[str, ...],
             entities: tuple[str, ...], cursor: int) -> None:
    """Push the log to PEER's inbox from CURSOR on."""
    from hub.api import subscribe
    from hub.errors import HubError

    body = {"mode": "push", "inbox_url": inbox_url, "inbox_token": inbox_token,
            "origins": list(origins) or None, "entities": list(entities) or None,
            "cursor": cursor}
    try:
        sub = run_with_pool(lambda pool: subscribe(pool, peer, body))
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    except asyncpg.ForeignKeyViolationError:
        raise click.ClickException(f"no peer {peer}") from None
    click.echo(f"subscription {sub['id']} added")


@subs_group.command("list")
def subs_list() -> None:
    """Every subscription with its cursor and lag."""
    from hub import queries as Q

    for s in run_with_pool(Q.subscriptions):
        click.echo(f"{s['id']} {s['peer_name']} {s['mode']} {s['inbox_url'] or ''} "
                   f"cursor={s['cursor']} lag={s['lag']} failures={s['failures']} "
                   f"{s['last_error'] or ''}")


@subs_group.command("remove")
@click.argument("sub_id")
def subs_remove(sub_id: str) -> None:
    """Remove subscription SUB_ID."""
    from hub import queries as Q

    if not run_with_pool(lambda pool: Q.remove_subscription(pool, sub_id)):
        raise click.ClickException(f"no subscription {sub_id}")
    click.echo("removed")


# ------------------------------------------------------------------------- upstreams

@hub_group.group("upstreams")
def upstreams_group() -> None:
    """Other hubs this hub follows (reads their public stream)."""


@upstreams_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--since", type=int, default=0, show_default=True,
              help="Start after this hub sequence of the upstream.")
def upstreams_add(name: str, url: str, since: int) -> None:
    """Follow the hub at URL as peer NAME (created as a hub peer if missing)."""
    from hub import queries as Q

    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("an http(s) URL", param_hint="URL")

    async def main(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if await Q.get_peer(conn, name) is None:
                await Q.add_peer(conn, name, "hub", token_hash(new_token()))
            await Q.add_upstream(conn, name, url.rstrip("/"), since)

    run_with_pool(main)
    click.echo(f"following {url} as {name} from sequence {since}; its bundles are checked "
               f"against this hub's trusted keys (unknown origins wait in `wb hub keys list`)")


@upstreams_group.command("list")
def upstreams_list() -> None:
    """Followed hubs with their cursor and last error."""
    from hub import queries as Q

    for u in run_with_pool(Q.upstreams):
        click.echo(f"{u['name']:20} {u['url']} cursor={u['cursor']} {u['last_error'] or ''}")


def register(root: click.Group) -> None:
    root.add_command(hub_group)
