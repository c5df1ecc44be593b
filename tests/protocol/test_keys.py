from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from keys import KeyFileError, generate_keypair, load_signing_key, public_key_text
from keys.store import parse_key_file
from protocol.errors import ProtocolError
from protocol.rotation import make_key_record, rotation_announcements
from protocol.signature import key_id
from protocol.verify import verify_bundle
from tests.protocol.helpers import INSTANCE, T0, request, small_bundle


def test_generate_writes_0600_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.key"
    old = os.umask(0)  # even with a permissive umask the file is 0600
    try:
        pair = generate_keypair(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert pair.key_id == key_id(pair.public_key) and len(pair.seed) == 32
    assert (tmp_path / "keys" / "signing.key.pub").read_text() == public_key_text(pair.public_key)
    loaded = load_signing_key(path)
    assert loaded.seed == pair.seed and loaded.key_id == pair.key_id
    assert "seed" not in repr(loaded).lower() or pair.seed.hex() not in repr(loaded)
    assert [p.name for p in (tmp_path / "keys").iterdir() if p.name.endswith(".tmp")] == []


def test_generate_never_overwrites_without_force(tmp_path: Path) -> None:
    path = tmp_path / "k"
    first = generate_keypair(path)
    with pytest.raises(KeyFileError) as e:
        generate_keypair(path)
    assert e.value.code == "key_exists"
    assert load_signing_key(path).key_id == first.key_id
    second = generate_keypair(path, force=True)
    assert load_signing_key(path).key_id == second.key_id != first.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o700 | 0o004])
def test_load_refuses_group_or_world_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k"
    generate_keypair(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as e:
        load_signing_key(path)
    assert e.value.code == "insecure_key_file"
    assert "chmod 600" in str(e.value)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as e:
        load_signing_key(tmp_path / "missing")
    assert e.value.code == "key_not_found"
    bad = tmp_path / "bad"
    fd = os.open(bad, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not a key\n")
    os.close(fd)
    with pytest.raises(KeyFileError) as e:
        load_signing_key(bad)
    assert e.value.code == "malformed_key_file"
    good = generate_keypair(tmp_path / "good")
    text = (tmp_path / "good").read_bytes()
    with pytest.raises(KeyFileError):
        parse_key_file(text.replace(good.key_id.encode(), b"0" * 16))


def test_rotation_announcement_hands_the_origin_to_the_new_key() -> None:
    """The protocol half of rotation (the trust half is PostgreSQL: node
    ``node.sync.rotation.accept_rotations``, hub ``hub.ingest``; tested there)."""
    from tests.protocol.helpers import KEY_A, SEED_B, public_key_from_seed_b

    announce = make_key_record(origin=KEY_A, instance=INSTANCE,
                               new_public_key=public_key_from_seed_b(),
                               previous_key_id=KEY_A, revision=1, updated_at=T0)
    verified = verify_bundle(small_bundle([announce]))
    (ann,) = rotation_announcements(verified)
    assert ann.origin == KEY_A and ann.previous_key_id == KEY_A
    assert ann.key_id == key_id(public_key_from_seed_b())
    rotated = small_bundle([request()], seed=SEED_B, sequence=2, previous=verified.digest)
    with pytest.raises(ProtocolError) as e:
        verify_bundle(rotated, trust=lambda origin, kid: kid == KEY_A)
    assert e.value.code == "untrusted_key"
    trusted = {KEY_A, ann.key_id}
    assert verify_bundle(rotated, trust=lambda origin, kid: kid in trusted).origin == KEY_A
