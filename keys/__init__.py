"""Signing keys: generation, 0600 storage, loading, key ids, trust store."""

from keys.store import (
    KeyFileError,
    SigningKeyPair,
    generate_keypair,
    key_id,
    load_signing_key,
    public_key_text,
)

__all__ = [
    "KeyFileError",
    "SigningKeyPair",
    "generate_keypair",
    "key_id",
    "load_signing_key",
    "public_key_text",
]
