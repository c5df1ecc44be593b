"""``wb sync`` node commands: export, import, pending, peers, keys, push, pull, status,
rotate-key (also ``wb keys rotate``), audit."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path
from typing import Any

import click

from node.cli import run_with_pool
from node.i18n import plural
from node.sync import audit as A
from node.sync import gaps as G
from node.sync import importer as I
from node.sync import peers as P
from node.sync import queries_peers as QP
from node.sync import revocation as RV
from node.sync import rotation as R
from node.sync import service as S
from node.sync import transport as T
from node.sync.identity import load_or_create_key
from protocol.errors import ProtocolError
from service.bundle_io import read_bundle, write_bundle
from service.settings import Config


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001
        return "cli"


def _emit(as_json: bool, value: Any, text: str) -> None:
    if as_json:
        from node.web import json_dumps
        click.echo(json_dumps(value))
    else:
        click.echo(text)


def _fail(exc: ProtocolError | I.SyncError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
        raise SystemExit(1)
    raise click.ClickException(f"{exc.code}: {exc.message}")


def _run(fn, as_json: bool = False):
    try:
        return run_with_pool(fn)
    except (ProtocolError, I.SyncError) as exc:
        _fail(exc, as_json)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
progress_option = click.option(
    "--progress/--no-progress", default=None,
    help="Show bundles and bytes moved as the transfer goes, on stderr "
         "(default: when stderr is a terminal).")


def _progress(wanted: bool | None, as_json: bool):  # type: ignore[no-untyped-def]
    """A progress callback for long transfers, or None."""
    import sys

    if as_json or wanted is False or (wanted is None and not sys.stderr.isatty()):
        return None
    tty = sys.stderr.isatty()

    def show(res: T.TransferResult) -> None:
        text = (f"{res.direction} {res.peer}: "
                f"{plural(res.bundles, '%(num)d bundle', '%(num)d bundles')}, {res.bytes:,} bytes")
        click.echo(f"\r{text}" if tty else text, err=True, nl=not tty)

    return show


def register(root: click.Group) -> None:
    sync = root.commands["sync"]
    assert isinstance(sync, click.Group)
    for cmd in (export_cmd, import_cmd, pending, peers, keys_cmd, push_cmd, pull_cmd,
                status_cmd, rotate_key_cmd, repair_cmd, audit_cmd):
        sync.add_command(cmd)


@click.command("export")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Also write the bundle here: a directory, NAME.cbor or NAME.tar.gz "
                   "(default: WB_DATA_DIR/bundles/<sequence>).")
@click.option("--snapshot", is_flag=True, help="Everything public, to bootstrap a peer.")
@json_option
def export_cmd(output: Path | None, snapshot: bool, as_json: bool) -> None:
    """Sign the next link of this node's chain with what changed since the last export."""
    async def main(pool, config: Config):
        res = await S.run_export(pool, config, snapshot=snapshot, actor=_actor())
        path = None
        if res.bundle is not None:
            target = output or (config.path("WB_DATA_DIR") / "bundles"
                                / f"{res.sequence:010d}")
            path = await asyncio.to_thread(write_bundle, res.bundle, target)
        return res, path

    res, path = _run(main, as_json)
    if res.sequence is None:
        _emit(as_json, {**res.as_json(), "path": None},
              "Nothing changed since the last export; no bundle written.")
        return
    counts = ", ".join(f"{n} {k}" for k, n in sorted(res.counts.items()))
    _emit(as_json, {**res.as_json(), "path": str(path)},
          f"Exported {res.kind} #{res.sequence} of origin {res.origin} "
          f"({res.record_count} records: {counts}) to {path}\ndigest {res.digest}")


#: ``wb sync import`` exit status when a bundle was only queued: its key awaits approval
EXIT_PENDING = 3


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def import_cmd(paths: tuple[Path, ...], as_json: bool) -> None:
    """Verify and import bundles (directory, .cbor or .tar.gz).

    Exit status: 0 every bundle imported (or already there); 1 an error, nothing
    written; 3 a bundle signed by a key this node does not trust yet was only queued,
    nothing of it applied: check it, then `wb sync pending approve DIGEST`."""
    async def main(pool, config: Config):
        # a tar.gz may come from the original implementation (duplicates, hub metadata)
        bundles = [await asyncio.to_thread(lambda p=p: read_bundle(p, original_hub=True))
                   for p in paths]
        return await S.run_import(pool, config, bundles, actor=_actor())

    results = _run(main, as_json)
    lines = []
    for path, res in zip(paths, results, strict=True):
        what = {"applied": f"applied {res.applied_total} of {res.records_in} records",
                "duplicate": "already imported (no-op)",
                "own": "this node's own bundle (ignored)",
                "pending": f"signed by unknown key {res.origin}: queued "
                           "(wb sync pending list)"}[res.result]
        gap = f"; gap recorded: missing {res.gaps[0]}..{res.gaps[-1]}" if res.gaps else ""
        lines.append(f"{path}: origin {res.origin} seq {res.sequence}: {what}{gap}")
    _emit(as_json, [r.as_json() for r in results], "\n".join(lines))
    queued = [r for r in results if r.result == "pending"]
    if queued:
        for r in queued:
            click.echo(f"nothing applied from {r.digest[:16]}: key of origin {r.origin} "
                       f"awaits approval; check `wb sync pending list`, then "
                       f"`wb sync pending approve {r.digest}`", err=True)
        raise SystemExit(EXIT_PENDING)


@click.group("pending")
def pending() -> None:
    """Bundles signed by keys nobody approved yet."""


@pending.command("list")
@json_option
def pending_list(as_json: bool) -> None:
    """Bundles held back because their signing key is not trusted yet."""
    rows = _run(lambda pool, config: I.list_pending(pool), as_json)
    items = [dict(r) for r in rows]
    text = "\n".join(f"{r['id']}  origin {r['origin']} key {r['key_id']} seq {r['sequence']} "
                     f"{r['record_count']} records from {r['peer'] or 'cli'}"
                     for r in items) or "No pending bundles."
    _emit(as_json, items, text)


@pending.command("approve")
@click.argument("pending_id")
@json_option
def pending_approve(pending_id: str, as_json: bool) -> None:
    """Trust the bundle's key for its origin and import everything it signed."""
    async def main(pool, config: Config):
        origin = await S.our_origin(pool, config)
        async with S.job(pool, "approve", _actor()) as j:
            results = await I.approve_pending(pool, pending_id, our_origin=origin,
                                              actor=_actor())
            for r in results:
                j.add_import(r)
            return results

    results = _run(main, as_json)
    _emit(as_json, [r.as_json() for r in results],
          "\n".join(f"origin {r.origin} seq {r.sequence}: {r.result}, "
                    f"{r.applied_total} records applied" for r in results))


@pending.command("discard")
@click.argument("pending_id")
def pending_discard(pending_id: str) -> None:
    """Drop a held-back bundle without trusting its key."""
    if not _run(lambda pool, config: I.discard_pending(pool, pending_id)):
        raise click.ClickException(f"no pending bundle {pending_id}")
    click.echo("Discarded.")


@click.group("peers")
def peers() -> None:
    """Directories and hubs this node exchanges bundles with."""


@peers.command("add")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(path_type=Path), help="Directory peer.")
@click.option("--hub", "hub_url", help="Hub base URL.")
@click.option("--api", type=click.Choice(["v2", "v1"]), default="v2", show_default=True)
@click.option("--token", envvar="WB_SYNC_PEER_TOKEN", help="Bearer token for the hub.")
@click.option("--inbox-token", help="Token the hub presents when it pushes to /sync/inbox.")
@click.option("--pin", multiple=True, help="Trust KEYID (or ORIGIN:KEYID); repeatable.")
@click.option("--schedule", help="Informational schedule, e.g. 'every 15m'.")
def peers_add(name: str, directory: Path | None, hub_url: str | None, api: str,
              token: str | None, inbox_token: str | None, pin: tuple[str, ...],
              schedule: str | None) -> None:
    """Add a peer NAME: a directory (--dir) or a hub (--hub URL) to push to and pull from.

    Its push and pull jobs are scheduled by the running node (or run with wb jobs)."""
    if bool(directory) == bool(hub_url):
        raise click.UsageError("give exactly one of --dir or --hub")
    kind, location = ("dir", str(directory.resolve())) if directory else ("hub", hub_url)
    _run(lambda pool, config: P.add_peer(pool, name, kind, location or "", token=token,
                                         inbox_token=inbox_token, api=api, pins=list(pin),
                                         schedule=schedule))
    click.echo(f"Peer {name} added ({kind} {location}).")


@peers.command("list")
@json_option
def peers_list(as_json: bool) -> None:
    """List the peers with their location, token (masked) and last success."""
    rows = _run(lambda pool, config: P.list_peers(pool), as_json)
    items = [P.peer_public(r) for r in rows]
    text = "\n".join(f"{p['name']:<16} {p['kind']:<4} {p['location']}  "
                     f"token {p['token'] or 'none'}  "
                     f"last ok {p['last_success_at'] or 'never'}" for p in items) or "No peers."
    _emit(as_json, items, text)


@peers.command("show")
@click.argument("name")
@json_option
def peers_show(name: str, as_json: bool) -> None:
    """Everything about peer NAME: cursors, last outcome, pinned keys (tokens masked)."""
    async def main(pool, config):
        return P.peer_public(await P.get_peer(pool, name), await P.peer_keys(pool, name))

    info = _run(main, as_json)
    _emit(as_json, info, "\n".join(f"{k}: {'-' if v is None else v}" for k, v in info.items()))


@peers.command("remove")
@click.argument("name")
def peers_remove(name: str) -> None:
    """Remove peer NAME with its pinned keys; its jobs stop."""
    if not _run(lambda pool, config: P.remove_peer(pool, name)):
        raise click.ClickException(f"no peer named {name}")
    click.echo(f"Peer {name} removed.")


@click.group("keys")
def keys_cmd() -> None:
    """Keys trusted for other origins, and revoked (leaked) keys."""


@keys_cmd.command("list")
@click.argument("origin", required=False)
@json_option
def keys_list(origin: str | None, as_json: bool) -> None:
    """Trusted and revoked keys, of every origin or of ORIGIN."""
    rows = _run(lambda pool, config: RV.list_keys(pool, origin), as_json)
    text = "\n".join(
        f"{r['origin']} {r['key_id']} {r['status']}"
        + (f" ({r['source']}" + (f", announced by {r['announced_by']}"
                                 if r["announced_by"] else "") + ")" if r["source"] else "")
        + f" by {r['actor'] or '-'} at {r['at']:%Y-%m-%d %H:%M}" for r in rows
    ) or "No keys."
    _emit(as_json, rows, text)


@keys_cmd.command("revoke")
@click.argument("origin")
@click.argument("key_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def keys_revoke(origin: str, key_id: str, yes: bool, as_json: bool) -> None:
    """Stop trusting KEY_ID for ORIGIN for good (e.g. a leaked key).

    Bundles it signs are refused (revoked_key), its queued bundles are dropped, and no
    rotation announcement, pin or approval trusts it again until `wb sync keys unrevoke`.
    """
    if not yes and not as_json:
        click.confirm(f"Revoke key {key_id} of origin {origin}?", abort=True)

    async def main(pool, config: Config):
        own = load_or_create_key(config).key_id
        return await RV.revoke_key(pool, origin, key_id, own_key_id=own, actor=_actor())

    res = _run(main, as_json)
    _emit(as_json, res, f"Revoked key {key_id} of origin {origin}"
                        f"{'' if res['was_trusted'] else ' (was not trusted)'}; "
                        + plural(res["pending_dropped"], "%(num)d queued bundle dropped.",
                                 "%(num)d queued bundles dropped."))


@keys_cmd.command("unrevoke")
@click.argument("origin")
@click.argument("key_id")
def keys_unrevoke(origin: str, key_id: str) -> None:
    """Remove a revocation. The key is not trusted again until pinned or approved."""
    _run(lambda pool, config: RV.unrevoke_key(pool, origin, key_id, actor=_actor()))
    click.echo(f"Revocation of key {key_id} of origin {origin} removed (not trusted yet).")


@click.command("push")
@click.argument("peer")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per request.")
@json_option
@progress_option
def push_cmd(peer: str, timeout: float, as_json: bool, progress: bool | None) -> None:
    """Send this node's chain links the peer has not received yet."""
    res = _run(lambda pool, config: T.push(pool, config, peer, actor=_actor(),
                                           request_timeout=timeout,
                                           progress=_progress(progress, as_json)), as_json)
    bundles = plural(res.bundles, "%(num)d bundle", "%(num)d bundles")
    _emit(as_json, res.as_json(), f"Pushed {bundles}, {res.bytes} bytes, to {peer}.")


@click.command("pull")
@click.argument("peer")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds per request.")
@click.option("--all-gaps", is_flag=True,
              help="Look for every recorded gap now, ignoring the back-off.")
@json_option
@progress_option
def pull_cmd(peer: str, timeout: float, all_gaps: bool, as_json: bool,
             progress: bool | None) -> None:
    """Fetch and import the peer's bundles newer than its cursor, then the missing
    sequences recorded as gaps."""
    res = _run(lambda pool, config: T.pull(pool, config, peer, actor=_actor(),
                                           request_timeout=timeout,
                                           fetch_all_gaps=all_gaps,
                                           progress=_progress(progress, as_json)), as_json)
    lines = [f"Pulled {plural(res.bundles, '%(num)d bundle', '%(num)d bundles')}, "
             f"{res.bytes} bytes, from {peer}."]
    lines += [f"  {i['origin']} seq {i['sequence']}: {i['result']}" for i in res.imported]
    lines += [f"  refused {e['source']}: {e['code']}: {e['message']}" for e in res.errors]
    _emit(as_json, res.as_json(), "\n".join(lines))
    if res.errors and not as_json:
        raise SystemExit(1)


@click.command("status")
@json_option
def status_cmd(as_json: bool) -> None:
    """This node's origin and chain, gaps, equivocations, pending keys, recent jobs."""
    async def main(pool, config):
        origin = await S.our_origin(pool, config)
        state = dict(await QP.sync_state(pool))
        gaps = [dict(r) for r in await QP.count_sync_gaps(pool)]
        eq = [dict(r) for r in await QP.select_sync_equivocations(pool)]
        pend = await QP.count_sync_pending(pool)
        breaks = [dict(r) for r in await G.chain_breaks(pool)]
        keys = [dict(r) for r in await R.key_history(pool)]
        jobs = [dict(r) for r in await QP.select_sync_jobs(pool)]
        return {"origin": origin, "sequence": state["sequence"],
                "last_digest": state["last_digest"], "gaps": gaps, "equivocations": eq,
                "pending": pend, "jobs": jobs, "chain_breaks": breaks,
                "key_id": load_or_create_key(config).key_id, "keys": keys}

    info = _run(main, as_json)
    text = [f"origin {info['origin']}, chain at #{info['sequence']} ({info['last_digest']})",
            f"signing key {info['key_id']}"
            + (f" ({plural(len(info['keys']) - 1, '%(num)d rotation', '%(num)d rotations')})"
               if len(info["keys"]) > 1 else ""),
            f"pending bundles: {info['pending']}"]
    text += [f"gap: {g['origin']} missing {g['n']} ({g['first']}..{g['last']})"
             for g in info["gaps"]]
    text += [f"EQUIVOCATION: {e['origin']} seq {e['sequence']}: kept {e['known_digest'][:16]}, "
             f"refused {e['rejected_digest'][:16]}" for e in info["equivocations"]]
    text += [f"CHAIN BREAK: {b['origin']} seq {b['sequence']}: Previous "
             f"{(b['previous'] or 'none')[:16]}, predecessor held {b['expected'][:16]}"
             for b in info["chain_breaks"]]
    _emit(as_json, info, "\n".join(text))


@click.command("rotate-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def rotate_key_cmd(yes: bool, as_json: bool) -> None:
    """Hand signing to a new node key, announced in a chain link signed by the old one.

    The origin stays the same; the old key is kept as node.key.retired-<key id> (0600)
    and never used again. Push afterwards so peers and hubs learn the new key. Running
    it again after an interruption finishes the interrupted rotation.
    """
    if not yes and not as_json:
        click.confirm("Generate a new signing key and announce it to peers?", abort=True)
    res = _run(lambda pool, config: R.rotate_key(pool, config, actor=_actor()), as_json)
    verb = "Finished the interrupted rotation" if res.resumed else "Rotated the signing key"
    _emit(as_json, res.as_json(),
          f"{verb} of origin {res.origin}: {res.previous_key_id} -> {res.key_id}.\n"
          f"Announcement: chain link #{res.sequence} (signed by {res.previous_key_id}); "
          f"push it to your peers (wb sync push PEER).\n"
          f"Old key kept, unused, at {res.retired_file}.")


@click.command("repair")
@click.option("--dry-run", is_flag=True, help="Only report; change nothing, fetch nothing.")
@click.option("--peer", default=None, help="Fetch missing bundles only from this peer.")
@click.option("--drop-revoked", is_flag=True,
              help="Withdraw rows of origins whose key was revoked after it signed bundles "
                   "we applied.")
@json_option
def repair_cmd(dry_run: bool, peer: str | None, drop_revoked: bool, as_json: bool) -> None:
    """Check the node's sync state and fix what can be fixed: our outbox (every bundle,
    continuous chain, nothing withdrawn still in it, publication flags), gaps in what we
    received (fetched from peers), queued bundles whose key is trusted now, cached invite
    maps, rows from revoked keys.
    Exit status 2 when something is left that repair could not fix."""
    from node.sync.repair import repair

    async def main(pool, config: Config):
        return await repair(pool, config, dry_run=dry_run, peer=peer,
                            drop_revoked=drop_revoked, actor=_actor())

    report = _run(main, as_json)
    _emit(as_json, report.as_json(), report.text())
    if any(f.status in ("not_fixed", "needs_operator") for f in report.findings):
        raise SystemExit(2)


@click.command("audit")
@click.argument("hub", required=False)
@click.option("--checkpoint", "checkpoints", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A signed checkpoint of HUB that someone else saw (gossip): it must be "
                   "consistent with this node's view. Repeatable.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per request.")
@json_option
def audit_cmd(hub: str | None, checkpoints: tuple[Path, ...], timeout: float,
              as_json: bool) -> None:
    """Audit HUB's transparency log (every v2 hub peer without HUB): checkpoint
    signature and consistency, inclusion of acknowledged pushes, completeness of pulled
    ranges. Prints each incident with its evidence; exits 1 when there is one."""
    if checkpoints and hub is None:
        raise click.UsageError("--checkpoint needs the HUB it belongs to")
    notes = [p.read_bytes() for p in checkpoints]
    reports = _run(lambda pool, config: A.audit(pool, config, hub, notes=notes,
                                                request_timeout=timeout), as_json)
    lines = []
    for r in reports:
        head = f"{r.peer}: " + (f"error: {r.error}" if r.error else
                                f"checkpoint size {r.size}, {r.included} push(es) proven "
                                f"included, {r.waiting} waiting")
        lines.append(head)
        for inc in r.incidents:
            lines.append(f"  INCIDENT {inc['kind']}: {inc['message']}")
            lines.append("  evidence: " + json.dumps(inc["evidence"], indent=2)
                         .replace("\n", "\n  "))
    if not reports:
        lines.append("No v2 hub peers to audit.")
    _emit(as_json, {"reports": [r.as_json() for r in reports]}, "\n".join(lines))
    if any(r.incidents for r in reports):
        raise SystemExit(1)
