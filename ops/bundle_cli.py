"""``wb keys ...`` and the bundle commands of ``wb sync`` (verify, pack, unpack, inspect).

Every failure is a :class:`click.ClickException` whose message starts with the
stable error code, so scripts can match it; ``--json`` variants print
``{"valid": false, "code": ..., "message": ..., "path": ...}`` on stdout instead.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from keys.store import KeyFileError, generate_keypair, load_signing_key, public_key_text
from protocol.bundle import Bundle
from protocol.errors import ProtocolError
from protocol.limits import Limits, limits_from_mapping
from protocol.manifest import parse_manifest
from protocol.records import Record, parse_record
from protocol.schema1 import parse_schema1_record
from protocol.signature import parse_signature
from protocol.verify import VerifiedBundle, verify_bundle
from service.bundle_io import read_bundle, write_bundle, write_bundle_dir

# The node signs with $WB_DATA_DIR/keys/node.key (node.sync.identity, which this plumbing
# package may not import); a hub's key for `wb keys --hub` is keys/signing.key.
NODE_KEY_FILE = "node.key"
KEY_FILE_NAME = "signing.key"


def default_key_path(hub: bool = False) -> Path:
    """``$WB_DATA_DIR/keys/node.key``, the key the node signs with (or
    ``$WB_HUB_DATA_DIR/keys/signing.key`` with ``--hub``)."""
    from service.settings import Config

    if hub:
        return Config().path("WB_HUB_DATA_DIR") / "keys" / KEY_FILE_NAME
    return Config().path("WB_DATA_DIR") / "keys" / NODE_KEY_FILE


def _fail(code: str, message: str, path: str | None = None) -> click.ClickException:
    where = f" [{path}]" if path else ""
    return click.ClickException(f"{code}: {message}{where}")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _load(path: str, *, verify: bool = False) -> Bundle:
    """Read a bundle; with ``verify``, also check it completely (any valid signer)."""
    try:
        bundle = read_bundle(path)
        if verify:
            verify_bundle(bundle, trust=lambda origin, key_id: True)
        return bundle
    except ProtocolError as exc:
        raise _fail(exc.code, exc.message, exc.path) from None


def _key_path(key_file: str | None, hub: bool) -> Path:
    return Path(key_file) if key_file else default_key_path(hub)


# --------------------------------------------------------------------------- keys

_key_file_option = click.option(
    "--key-file",
    type=click.Path(dir_okay=False),
    envvar="WB_KEY_FILE",
    help="Private key file [default: $WB_DATA_DIR/keys/node.key, the node's signing key]. "
    "Env: WB_KEY_FILE.",
)
_hub_option = click.option(
    "--hub", is_flag=True, help="Use the hub key ($WB_HUB_DATA_DIR/keys/signing.key)."
)


@click.group("keys")
def keys_group() -> None:
    """Signing keys: generate and show."""


@keys_group.command("generate")
@_key_file_option
@_hub_option
@click.option("--force", is_flag=True, help="Replace an existing key (its origin is lost!).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def keys_generate(key_file: str | None, hub: bool, force: bool, as_json: bool) -> None:
    """Create a new Ed25519 signing key (mode 0600) and its .pub file."""
    path = _key_path(key_file, hub)
    try:
        pair = generate_keypair(path, force=force)
    except KeyFileError as exc:
        raise _fail(exc.code, exc.message) from None
    except OSError as exc:
        raise _fail("key_write_failed", f"{path}: {exc.strerror or exc}") from None
    if as_json:
        _echo_json({"key_id": pair.key_id, "public_key": pair.public_key_b64, "path": str(path)})
        return
    click.echo(f"created {path} (mode 0600) and {path}.pub")
    click.echo(public_key_text(pair.public_key), nl=False)


@keys_group.command("show")
@_key_file_option
@_hub_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def keys_show(key_file: str | None, hub: bool, as_json: bool) -> None:
    """Print the key id and public key (never the private seed)."""
    path = _key_path(key_file, hub)
    try:
        pair = load_signing_key(path)
    except KeyFileError as exc:
        raise _fail(exc.code, exc.message) from None
    if as_json:
        _echo_json({"key_id": pair.key_id, "public_key": pair.public_key_b64, "path": str(path)})
        return
    click.echo(public_key_text(pair.public_key), nl=False)


# --------------------------------------------------------------------------- sync


def _summary(v: VerifiedBundle) -> dict[str, Any]:
    entities: Counter[str] = Counter()
    tombstones: Counter[str] = Counter()
    for _, rec in v.records:
        (tombstones if rec.deleted else entities)[rec.entity] += 1
    return {
        "valid": True,
        "digest": v.digest,
        "origin": v.origin,
        "instance": v.instance,
        "key_id": v.key_id,
        "signed_at": v.signed_at,
        "schema_version": v.schema_version,
        "kind": v.kind,
        "sequence": v.sequence,
        "previous": v.previous,
        "created_at": v.created_at,
        "verified": v.verified,
        "withheld": v.withheld,
        "records": dict(sorted(entities.items())),
        "tombstones": dict(sorted(tombstones.items())),
    }


def _print_summary(s: dict[str, Any]) -> None:
    def dash(value: Any) -> str:
        return "-" if value is None else str(value)

    click.echo(f"valid bundle {s['digest']}")
    click.echo(f"  origin      {s['origin']}  ({dash(s['instance'])})")
    click.echo(f"  signed by   {s['key_id']} at {s['signed_at']}")
    click.echo(
        f"  schema {s['schema_version']}, {s['kind']}, sequence {dash(s['sequence'])}, "
        f"previous {dash(s['previous'])}"
    )
    click.echo(f"  files       {len(s['verified'])} verified, {len(s['withheld'])} withheld")
    for path in s["withheld"]:
        click.echo(f"    withheld  {path}")
    counts = ", ".join(f"{k} {n}" for k, n in s["records"].items()) or "none"
    click.echo(f"  records     {counts}")
    if s["tombstones"]:
        dead = ", ".join(f"{k} {n}" for k, n in s["tombstones"].items())
        click.echo(f"  tombstones  {dead}")


def register(root: click.Group) -> None:
    """Attach ``wb keys`` and the bundle commands of ``wb sync`` to the root group."""
    if "keys" not in root.commands:
        root.add_command(keys_group)
    sync = root.commands.get("sync")
    if not isinstance(sync, click.Group):
        sync = click.Group("sync", help="Bundles: verify, pack, unpack, inspect.")
        root.add_command(sync)
    for command in (sync_verify, sync_pack, sync_unpack, sync_inspect):
        sync.add_command(command)


@click.command("verify")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print a JSON result on stdout.")
@click.option(
    "--trust-key-id",
    "trust_key_ids",
    multiple=True,
    metavar="KEY_ID",
    help="Also trust this signing key for any origin (repeatable). By default only an "
    "origin's own first key (key id == origin) is trusted.",
)
@click.option(
    "--limit",
    "limit_args",
    multiple=True,
    metavar="NAME=VALUE",
    help="Verify under a lowered (or raised) limit, e.g. max_files=8 (repeatable; names "
    "and defaults: docs/protocol.md section 8). Conformance vectors use it.",
)
def sync_verify(path: str, as_json: bool, trust_key_ids: tuple[str, ...],
                limit_args: tuple[str, ...]) -> None:
    """Verify a bundle (directory, .cbor or .tar.gz). Exit 0 only when valid."""
    extra = frozenset(trust_key_ids)

    def trust(origin: str, key_id: str) -> bool:
        return key_id == origin or key_id in extra

    limits = _limits(limit_args)
    try:
        verified = verify_bundle(read_bundle(path, limits), trust=trust, limits=limits)
    except ProtocolError as exc:
        if as_json:
            _echo_json({"valid": False, **exc.to_dict()})
            click.get_current_context().exit(1)
        raise _fail(exc.code, exc.message, exc.path) from None
    summary = _summary(verified)
    if as_json:
        _echo_json(summary)
    else:
        _print_summary(summary)


def _limits(args: tuple[str, ...]) -> Limits:
    values: dict[str, object] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep:
            raise click.BadParameter(f"{arg!r} is not NAME=VALUE", param_hint="--limit")
        values[name.strip()] = value.strip()
    try:
        return limits_from_mapping(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--limit") from None


def _write(writer: Callable[[Bundle, str], object], bundle: Bundle, target: str) -> object:
    """Run a bundle writer, turning every failure into a CLI error with a stable code."""
    try:
        return writer(bundle, target)
    except FileExistsError as exc:
        raise _fail("destination_exists", str(exc)) from None
    except ProtocolError as exc:
        raise _fail(exc.code, exc.message, exc.path) from None
    except OSError as exc:
        raise _fail("write_failed", f"{target}: {exc.strerror or exc}") from None


@click.command("pack")
@click.argument("src", type=click.Path())
@click.argument("dest", type=click.Path())
@click.option("--no-verify", is_flag=True, help="Convert without checking the signature and files.")
def sync_pack(src: str, dest: str, no_verify: bool) -> None:
    """Convert a bundle to DEST; the format follows DEST's name (.cbor, .tar.gz or a directory).

    The bytes of every file are preserved; the bundle is verified first (any valid
    signing key accepted) unless --no-verify.
    """
    bundle = _load(src, verify=not no_verify)
    written = _write(write_bundle, bundle, dest)
    click.echo(f"wrote {written} ({bundle.digest})")


@click.command("unpack")
@click.argument("src", type=click.Path())
@click.argument("destdir", type=click.Path(file_okay=False))
@click.option("--no-verify", is_flag=True, help="Unpack without verifying first.")
def sync_unpack(src: str, destdir: str, no_verify: bool) -> None:
    """Write a bundle (.cbor or .tar.gz) as a directory DESTDIR (must not exist or be empty)."""
    bundle = _load(src, verify=not no_verify)
    written = _write(write_bundle_dir, bundle, destdir)
    click.echo(f"unpacked {bundle.digest} into {written}")


def _lenient_records(bundle: Bundle, origin: str, version: int) -> tuple[list[Record], int]:
    records: list[Record] = []
    unreadable = 0
    for path, data in sorted(bundle.files.items()):
        try:
            if version == 1:
                records.extend(parse_schema1_record(data, origin, path=path))
            else:
                records.append(parse_record(data, path=path))
        except ProtocolError:
            unreadable += 1
    return records, unreadable


@click.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def sync_inspect(path: str, as_json: bool) -> None:
    """Show what a bundle holds, by entity and scope (works on invalid bundles too)."""
    bundle = _load(path)
    info: dict[str, Any] = {
        "digest": bundle.digest,
        "files": len(bundle.files),
        "bytes": bundle.total_bytes,
        "key_files": sorted(bundle.keys),
    }
    status: dict[str, Any]
    try:
        verified = verify_bundle(bundle, trust=lambda origin, key_id: True)
        status = {"valid": True, "code": None, "message": None}
        records = [rec for _, rec in verified.records]
        unreadable = 0
        info.update(
            origin=verified.origin,
            key_id=verified.key_id,
            schema_version=verified.schema_version,
            kind=verified.kind,
            sequence=verified.sequence,
            withheld=verified.withheld,
        )
    except ProtocolError as exc:
        status = {"valid": False, "code": exc.code, "message": exc.message, "path": exc.path}
        origin, version = "0" * 16, 2
        try:
            sig = parse_signature(bundle.sig)
            origin = sig.key_id
            manifest = parse_manifest(bundle.manifest)
            version = manifest.version
            origin = manifest.origin or origin
            info.update(origin=origin, key_id=sig.key_id, schema_version=version)
        except ProtocolError:
            pass
        records, unreadable = _lenient_records(bundle, origin, version)
        info["unreadable_files"] = unreadable
    by_entity: dict[str, dict[str, int]] = {}
    for rec in records:
        scope = "deleted" if rec.deleted else (rec.get("Sync-Scope") or "?")
        slot = by_entity.setdefault(rec.entity, {})
        slot[scope] = slot.get(scope, 0) + 1
    info["records"] = dict(sorted(by_entity.items()))
    info["verification"] = status
    if as_json:
        _echo_json(info)
        return
    click.echo(f"bundle {info['digest']}")
    for name in ("origin", "key_id", "schema_version", "kind", "sequence"):
        if name in info:
            click.echo(f"  {name:<15}{'-' if info[name] is None else info[name]}")
    click.echo(f"  {'files':<15}{info['files']} ({info['bytes']} bytes)")
    if info.get("withheld"):
        click.echo(f"  {'withheld':<15}{len(info['withheld'])}")
    for entity, scopes in info["records"].items():
        detail = ", ".join(f"{scope} {n}" for scope, n in sorted(scopes.items()))
        click.echo(f"  {entity + 's':<15}{detail}")
    if unreadable:
        click.echo(f"  {'unreadable':<15}{unreadable} files")
    if status["valid"]:
        click.echo("  verification   valid signature and files (trust not checked)")
    else:
        click.echo(f"  verification   FAILED {status['code']}: {status['message']}")
