"""Trust store: which keys may sign for which origin.

The interface is asynchronous because node and hub back it with PostgreSQL
(asyncpg). :class:`MemoryTrustStore` is the reference implementation used by tests
and the CLI. Verification itself is synchronous and pure: take a
:class:`TrustSnapshot` (``await store.snapshot()``) and pass it as the ``trust``
callable of :func:`protocol.verify.verify_bundle`.

Lifecycle of a key for an origin::

    unknown --(bundle with valid signature, untrusted_key)--> pending
    pending --approve--> trusted        pending --discard--> (forgotten)
    trusted --revoke--> (forgotten)
    trusted K1 + verified key record "K2 follows K1" --accept_rotation--> K2 trusted
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocol.rotation import RotationAnnouncement


@dataclass(frozen=True)
class TrustedKey:
    origin: str
    key_id: str
    public_key: bytes | None
    via: str  # "operator", "rotation", "self" (the origin's first key)


@dataclass(frozen=True)
class PendingKey:
    origin: str
    key_id: str
    public_key: bytes | None
    bundle_digest: str | None = None
    seen_at: str | None = None


class TrustSnapshot:
    """An immutable view of trusted keys; callable as ``trust(origin, key_id)``."""

    def __init__(self, trusted: Mapping[str, Iterable[str]]) -> None:
        self._trusted = {origin: frozenset(ids) for origin, ids in trusted.items()}

    def __call__(self, origin: str, key_id: str) -> bool:
        return key_id in self._trusted.get(origin, ())

    def keys_for(self, origin: str) -> frozenset[str]:
        return self._trusted.get(origin, frozenset())


class TrustStore(abc.ABC):
    """Origin -> trusted key ids, plus a queue of pending (valid but unknown) keys."""

    @abc.abstractmethod
    async def trusted_keys(self, origin: str) -> list[TrustedKey]: ...

    @abc.abstractmethod
    async def add_trusted(
        self, origin: str, key_id: str, public_key: bytes | None = None, *, via: str = "operator"
    ) -> None: ...

    @abc.abstractmethod
    async def revoke(self, origin: str, key_id: str) -> None: ...

    @abc.abstractmethod
    async def add_pending(self, key: PendingKey) -> None:
        """Queue a key whose signature verified but which is not trusted yet (idempotent)."""

    @abc.abstractmethod
    async def pending(self, origin: str | None = None) -> list[PendingKey]: ...

    @abc.abstractmethod
    async def discard(self, origin: str, key_id: str) -> None:
        """Forget a pending key."""

    @abc.abstractmethod
    async def snapshot(self, origins: Iterable[str] | None = None) -> TrustSnapshot: ...

    async def is_trusted(self, origin: str, key_id: str) -> bool:
        return any(k.key_id == key_id for k in await self.trusted_keys(origin))

    async def approve(self, origin: str, key_id: str) -> TrustedKey:
        """Move a pending key to trusted; ``LookupError`` if it is not pending."""
        for key in await self.pending(origin):
            if key.key_id == key_id:
                await self.add_trusted(origin, key_id, key.public_key, via="operator")
                await self.discard(origin, key_id)
                return TrustedKey(origin, key_id, key.public_key, "operator")
        raise LookupError(f"no pending key {key_id} for origin {origin}")

    async def accept_rotation(self, announcement: RotationAnnouncement) -> bool:
        """Trust the announced key if the key it replaces is trusted for the origin.

        Call it with announcements from :func:`protocol.rotation.rotation_announcements`
        of a *verified* bundle. Returns False (and changes nothing) otherwise.
        """
        a = announcement
        if not await self.is_trusted(a.origin, a.previous_key_id):
            return False
        await self.add_trusted(a.origin, a.key_id, a.public_key, via="rotation")
        await self.discard(a.origin, a.key_id)
        return True


class MemoryTrustStore(TrustStore):
    """In-process trust store (tests, CLI)."""

    def __init__(self, trusted: Mapping[str, Iterable[str]] | None = None) -> None:
        self._trusted: dict[str, dict[str, TrustedKey]] = {}
        self._pending: dict[tuple[str, str], PendingKey] = {}
        for origin, ids in (trusted or {}).items():
            for kid in ids:
                self._trusted.setdefault(origin, {})[kid] = TrustedKey(
                    origin, kid, None, "operator"
                )

    async def trusted_keys(self, origin: str) -> list[TrustedKey]:
        return list(self._trusted.get(origin, {}).values())

    async def add_trusted(
        self, origin: str, key_id: str, public_key: bytes | None = None, *, via: str = "operator"
    ) -> None:
        self._trusted.setdefault(origin, {})[key_id] = TrustedKey(origin, key_id, public_key, via)

    async def revoke(self, origin: str, key_id: str) -> None:
        self._trusted.get(origin, {}).pop(key_id, None)

    async def add_pending(self, key: PendingKey) -> None:
        if not await self.is_trusted(key.origin, key.key_id):
            self._pending.setdefault((key.origin, key.key_id), key)

    async def pending(self, origin: str | None = None) -> list[PendingKey]:
        return [k for k in self._pending.values() if origin is None or k.origin == origin]

    async def discard(self, origin: str, key_id: str) -> None:
        self._pending.pop((origin, key_id), None)

    async def snapshot(self, origins: Iterable[str] | None = None) -> TrustSnapshot:
        wanted = None if origins is None else set(origins)
        return TrustSnapshot(
            {
                origin: keys.keys()
                for origin, keys in self._trusted.items()
                if wanted is None or origin in wanted
            }
        )
