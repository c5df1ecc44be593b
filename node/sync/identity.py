"""The node's signing identity: an Ed25519 key at WB_DATA_DIR/keys/node.key (0600).

The origin of every local record is the key id of the node's first key, for life; it
is written to ``node_sync_state`` the first time the node needs it. ``node.key`` is
always the key in use: a rotation (``node.sync.rotation``) announces the next key
signed by the current one and then replaces the file, keeping the old key as
``node.key.retired-<key id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from keys import KeyFileError, generate_keypair, load_signing_key
from node.sync import queries_keys as QK
from protocol.signature import key_id
from service.settings import Config


@dataclass(frozen=True)
class NodeKey:
    seed: bytes
    public_key: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)


def key_path(config: Config) -> Path:
    return config.path("WB_DATA_DIR") / "keys" / "node.key"


def load_or_create_key(config: Config) -> NodeKey:
    """The node key, created 0600 on first need (``keys`` refuses a readable file)."""
    path = key_path(config)
    if not path.exists():
        try:
            generate_keypair(path)
        except KeyFileError as exc:
            if exc.code != "key_exists":  # another process won the race
                raise
    pair = load_signing_key(path)
    return NodeKey(seed=pair.seed, public_key=pair.public_key)


async def ensure_state(conn: asyncpg.Connection | asyncpg.Pool, key: NodeKey) -> str:
    """Record the node's origin on first use; return the origin (fixed for life)."""
    await QK.insert_node_sync_state(conn, key.key_id)
    origin = await QK.own_origin(conn)
    # After a rotation the key in use is not the origin's first key: trust it for the
    # origin (never as an origin of its own).
    await QK.trust_own_key(conn, origin, key.key_id, key.public_key)
    return origin
