from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from protocol.manifest import Manifest, make_manifest, parse_manifest, render_manifest
from protocol.signature import (
    key_id,
    parse_public_key_file,
    parse_signature,
    public_key_file,
    public_key_from_seed,
    sign_manifest,
    verify_signature,
)
from tests.protocol.helpers import KEY_A, SEED_A, T0

ORIGINAL = Path(__file__).resolve().parents[2] / "conformance_tests" / "original-v1"
D1, D2 = "a" * 64, "b" * 64


def test_manifest_v2_round_trip() -> None:
    m = make_manifest([("users/b.sync.txt", D2), ("requests/a.sync.txt", D1)], origin=KEY_A,
                      instance="https://x.example", sequence=1, previous=None,
                      created_at=T0, kind="snapshot")
    data = render_manifest(m)
    assert data == (
        f"Manifest-Version: 2\nOrigin: {KEY_A}\nInstance: https://x.example\nSequence: 1\n"
        f"Previous: none\nCreated-At: {T0}\nKind: snapshot\n\n"
        f"{D1}  requests/a.sync.txt\n{D2}  users/b.sync.txt\n"
    ).encode()
    assert parse_manifest(data) == m
    assert m.digests["users/b.sync.txt"] == D2


def test_manifest_v1_is_lines_only() -> None:
    data = (ORIGINAL / "manifest.sync.txt").read_bytes()
    m = parse_manifest(data)
    assert m.version == 1 and m.origin is None and len(m.entries) == 5
    assert render_manifest(m) == data
    assert render_manifest(Manifest(1, ())) == b""


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (f"{D1}  b.sync.txt\n".encode(), "invalid_path"),
        (f"{D1}  users/../x.sync.txt\n".encode(), "unsafe_path"),
        (f"{D1}  /users/x.sync.txt\n".encode(), "unsafe_path"),
        (f"{D1}  users/x.sync.txt".encode(), "malformed_manifest"),
        (f"{D1} users/x.sync.txt\n".encode(), "malformed_manifest"),
        (f"{D1.upper()}  users/x.sync.txt\n".encode(), "malformed_manifest"),
        (f"{D1}  users/x.sync.txt\n{D1}  users/x.sync.txt\n".encode(), "duplicate_path"),
        (f"{D1}  users/y.sync.txt\n{D1}  users/x.sync.txt\n".encode(), "malformed_manifest"),
        (b"Manifest-Version: 3\n\n", "unsupported_manifest_version"),
        (b"Manifest-Version: 2\nOrigin: x\n\n", "malformed_manifest"),
        (b"Manifest-Version: 2\n", "malformed_manifest"),
        (b"\xff", "not_utf8"),
    ],
)
def test_manifest_rejections(data: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_manifest(data)
    assert e.value.code == code


def _v2(sequence: str = "1", previous: str = "none", kind: str = "delta") -> bytes:
    return (f"Manifest-Version: 2\nOrigin: {KEY_A}\nInstance: https://x.example\n"
            f"Sequence: {sequence}\nPrevious: {previous}\nCreated-At: {T0}\nKind: {kind}\n\n"
            ).encode()


@pytest.mark.parametrize("data", [_v2(sequence="0"), _v2(sequence="2"), _v2(previous=D1),
                                  _v2(kind="full"), _v2(sequence="x")])
def test_manifest_header_values(data: bytes) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_manifest(data)
    assert e.value.code == "malformed_manifest"
    assert parse_manifest(_v2(sequence="2", previous=D1)).previous == D1


def test_signature_is_byte_compatible_with_the_original() -> None:
    sig = (ORIGINAL / "bundle.sig").read_bytes()
    manifest = (ORIGINAL / "manifest.sync.txt").read_bytes()
    parsed = verify_signature(sig, manifest)
    assert parsed.key_id == "ec2609150b8fe2ae" == key_id(parsed.public_key)
    pub = (ORIGINAL / "public_keys" / "ec2609150b8fe2ae.pub").read_bytes()
    assert public_key_file(parsed.public_key) == pub
    assert parse_public_key_file(pub, "ec2609150b8fe2ae") == parsed.public_key
    # our writer produces the same layout: six lines in this order, LF-terminated
    ours = sign_manifest(manifest, SEED_A, parsed.signed_at)
    names = [line.split(": ")[0] for line in ours.decode().splitlines()]
    assert names == [line.split(": ")[0] for line in sig.decode().splitlines()]
    assert ours.endswith(b"\n") and not ours.endswith(b"\n\n")


def test_fixed_seed_gives_exact_signature() -> None:
    seed = bytes(range(32))
    sig = sign_manifest(b"hello\n", seed, "2026-01-01T00:00:00+00:00")
    assert sig == (
        b"Signature-Version: 1\n"
        b"Key-ID: 56475aa75463474c\n"
        b"Public-Key: A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n"
        b"Manifest-Digest: 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\n"
        b"Signed-At: 2026-01-01T00:00:00+00:00\n"
        b"Signature: sIHypngjEQYv0Foy6Hq6m5VrqeClUjiskDfZSC616WHBCruRVNyHXPR8Vy/Lnr3Mmf1FZ+jkLZq"
        b"ljn3V+29ZBg==\n"
    )
    assert key_id(public_key_from_seed(seed)) == "56475aa75463474c"


def test_signature_agrees_with_an_independent_ed25519() -> None:
    ed = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    private = ed.Ed25519PrivateKey.from_private_bytes(SEED_A)
    sig = parse_signature(sign_manifest(b"manifest\n", SEED_A, T0))
    assert sig.signature == private.sign(b"manifest\n")
    private.public_key().verify(sig.signature, b"manifest\n")


def test_signature_verification_failures() -> None:
    sig = sign_manifest(b"m\n", SEED_A, "2026-01-01T00:00:00Z")
    with pytest.raises(ProtocolError) as e:
        verify_signature(sig, b"n\n")
    assert e.value.code == "manifest_digest_mismatch"
    with pytest.raises(ProtocolError) as e:
        sign_manifest(b"m", b"short", "2026-01-01T00:00:00Z")
    assert e.value.code == "invalid_argument"
    text = sig.decode()
    for bad, code in [
        (text.replace("Signature-Version: 1", "Signature-Version: 2"),
         "unsupported_signature_version"),
        (text + "Extra: x\n", "malformed_signature"),
        (text + "Key-ID: x\n", "malformed_signature"),
        (text.replace("Signed-At: ", "Signed-At: not a time "), "malformed_signature"),
        ("\n".join(text.split("\n")[1:]), "missing_signature_header"),
        (text.replace("Public-Key: ", "Public-Key: =="), "bad_base64"),
    ]:
        with pytest.raises(ProtocolError) as e:
            parse_signature(bad.encode())
        assert e.value.code == code, bad
