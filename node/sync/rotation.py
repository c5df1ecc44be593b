"""Key rotation: this node handing signing to a new key, and importers honouring it.

The node (``rotate_key``): a new key is generated 0600 next to the current one
(``node.next.key``); one transaction signs, *with the current key*, the next chain link
carrying a ``key`` record (Key-ID and Public-Key of the new key, Previous-Key-ID of the
current one, Valid-From) and stores it in ``sync_outbox`` like any export, so pushes
deliver it; then the key files are switched: the current key is hard-linked to
``node.key.retired-<key id>`` (same inode, still 0600, kept for audit and never used
again) and the new key atomically replaces ``node.key``. ``node.key`` never goes
missing. The origin stays the first key's id. Running the rotation again after a crash
between the commit and the switch finishes the switch instead of rotating twice.

Importers (``accept_rotations``, called inside the import transaction): a ``key``
record announces a successor only when it is signed by the key it replaces
(``protocol.rotation.rotation_announcements``) *and* that key is trusted for the origin
in ``sync_trusted_keys`` here. The new key is then trusted with source ``rotation``;
anything else changes nothing. ``node.sync.replay`` imports bundles that were
queued because their key was unknown and whose key has become trusted since.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from keys import KeyFileError, generate_keypair, load_signing_key
from node.sync import queries as Q
from node.sync import queries_keys as QK
from node.sync.identity import NodeKey, ensure_state, key_path, load_or_create_key
from protocol.bundle import build_bundle
from protocol.containers import to_cbor
from protocol.rotation import make_key_record, rotation_announcements
from protocol.verify import VerifiedBundle
from service.settings import Config

log = logging.getLogger("wb.node.sync")


@dataclass
class RotationResult:
    origin: str
    previous_key_id: str
    key_id: str
    sequence: int
    digest: str
    retired_file: str
    resumed: bool = False  # an interrupted rotation was finished, no new key made

    def as_json(self) -> dict[str, Any]:
        return {"origin": self.origin, "previous_key_id": self.previous_key_id,
                "key_id": self.key_id, "sequence": self.sequence, "digest": self.digest,
                "retired_file": self.retired_file, "resumed": self.resumed}


def next_key_path(config: Config) -> Path:
    return key_path(config).with_name("node.next.key")


def retired_path(config: Config, key_id: str) -> Path:
    return key_path(config).with_name(f"node.key.retired-{key_id}")


def _pub(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _rfc3339(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _remove(path: Path) -> None:
    for p in (path, _pub(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _switch_files(config: Config, old_key_id: str) -> Path:
    """Keep the current key as ``node.key.retired-<id>`` and put the next key in place.

    The retired name is a hard link made first, so ``node.key`` exists at every moment
    and the retired file keeps its 0600 mode."""
    current, nxt = key_path(config), next_key_path(config)
    retired = retired_path(config, old_key_id)
    for src, dst in ((current, retired), (_pub(current), _pub(retired))):
        if src.exists() and not dst.exists():
            os.link(src, dst)
    os.replace(nxt, current)
    if _pub(nxt).exists():
        os.replace(_pub(nxt), _pub(current))
    return retired


async def _ensure_history(conn: Any, origin: str, key: NodeKey) -> None:
    """``node_keys`` starts with the key in use (the origin's first key on old nodes)."""
    if await QK.count_node_keys(conn) == 0:
        await QK.insert_first_node_key(conn, key.key_id, key.public_key)


async def _resume(pool: asyncpg.Pool, config: Config) -> RotationResult | None:
    """A ``node.next.key`` left by an interrupted rotation: finish the switch when its
    announcement was committed, else drop it (it was never announced)."""
    nxt = next_key_path(config)
    if not nxt.exists():
        return None
    try:
        pending = load_signing_key(nxt)
    except KeyFileError:
        _remove(nxt)
        return None
    row = await QK.select_node_keys_by_key_id(pool, pending.key_id)
    if row is None or row["announced_sequence"] is None:
        log.warning("dropping an unannounced next key", extra={"key_id": pending.key_id})
        _remove(nxt)
        return None
    previous = row["previous_key_id"]
    retired = _switch_files(config, previous)
    await QK.update_node_keys_set_retired_file_by_key_id(pool, previous, str(retired))
    out = await QK.own_origin_row(pool)
    digest = await QK.select_sync_outbox_by_sequence(pool, row["announced_sequence"])
    log.info("finished an interrupted key rotation", extra={"key_id": pending.key_id})
    return RotationResult(out["origin"], previous, pending.key_id, row["announced_sequence"],
                          digest or "", str(retired), resumed=True)


async def rotate_key(pool: asyncpg.Pool, config: Config, *, actor: str = "cli"
                     ) -> RotationResult:
    """Announce a new signing key in a chain link signed by the current key, then sign
    everything later with the new key. The origin does not change."""
    resumed = await _resume(pool, config)
    if resumed is not None:
        return resumed
    current = load_or_create_key(config)
    origin = await ensure_state(pool, current)
    nxt = next_key_path(config)
    pair = generate_keypair(nxt)  # 0600, O_EXCL: two concurrent rotations cannot both win
    try:
        async with pool.acquire() as conn, conn.transaction():
            state = await Q.lock_state(conn)
            await _ensure_history(conn, origin, current)
            now = _now()
            stamp = _rfc3339(now)
            record = make_key_record(
                origin=origin, instance=config.site_url, new_public_key=pair.public_key,
                previous_key_id=current.key_id, revision=1, updated_at=stamp,
                valid_from=stamp)
            sequence = state["sequence"] + 1
            bundle = build_bundle([record], seed=current.seed, origin=origin,
                                  instance=config.site_url, sequence=sequence,
                                  previous=state["last_digest"], kind="delta",
                                  created_at=stamp, signed_at=stamp)
            await Q.store_outbox(conn, sequence, bundle.digest, "delta", 1, to_cbor(bundle))
            await Q.advance_state(conn, sequence, bundle.digest, 0)
            await QK.insert_rotated_node_key(conn, pair.key_id, pair.public_key, current.key_id,
                                             now, sequence)
            await QK.update_node_keys_set_retired_at_by_key_id(
                conn, current.key_id, now, str(retired_path(config, current.key_id)))
            await QK.trust_own_rotated_key(conn, origin, pair.key_id, pair.public_key, actor,
                                           current.key_id)
    except BaseException:
        _remove(nxt)
        raise
    retired = _switch_files(config, current.key_id)
    log.info("signing key rotated", extra={"origin": origin, "key_id": pair.key_id,
                                           "previous_key_id": current.key_id,
                                           "sequence": sequence, "by": actor})
    return RotationResult(origin, current.key_id, pair.key_id, sequence, bundle.digest,
                          str(retired))


async def key_history(pool: Any) -> list[asyncpg.Record]:
    return await QK.select_node_keys(pool)


# --------------------------------------------------------------------------- importers

async def accept_rotations(conn: asyncpg.Connection, vb: VerifiedBundle,
                           peer: str | None = None) -> list[str]:
    """Trust the keys announced in ``vb`` by a key trusted for its origin *here*.

    Runs in the import transaction, after verification. ``vb.key_id`` signed the bundle;
    an announcement counts only if that key is in ``sync_trusted_keys`` for the origin
    (so a bundle accepted with ``approved=True`` or by an unknown key trusts nothing).
    Returns the newly trusted key ids.
    """
    if vb.schema_version != 2:
        return []
    announcements = rotation_announcements(vb)
    if not announcements:
        return []
    signer_trusted = await QK.is_key_trusted(conn, vb.origin, vb.key_id)
    if not signer_trusted:
        log.warning("key record from an untrusted signer ignored",
                    extra={"origin": vb.origin, "key_id": vb.key_id})
        return []
    added = []
    for a in announcements:
        status = await QK.trust_rotated_key(conn, a.origin, a.key_id, a.public_key, peer,
                                            a.previous_key_id)
        if status == "INSERT 0 0" and await QK.select_sync_key_revocations_by_origin(
            conn, a.origin, a.key_id):
            log.warning("rotation to a revoked key ignored",
                        extra={"origin": a.origin, "key_id": a.key_id})
        elif status != "INSERT 0 0":
            added.append(a.key_id)
            log.info("rotated key trusted", extra={"origin": a.origin, "key_id": a.key_id,
                                                   "previous_key_id": a.previous_key_id})
    return added
