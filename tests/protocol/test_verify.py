from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.bundle import Bundle, bundle_from_files
from protocol.containers import from_cbor, to_cbor
from protocol.errors import ProtocolError
from protocol.limits import Limits
from protocol.records import make_tombstone, render_record
from protocol.rotation import make_key_record, rotation_announcements
from protocol.signature import public_key_from_seed
from protocol.verify import peek_origin, verify_bundle
from tests.protocol.helpers import (
    INSTANCE,
    KEY_A,
    KEY_B,
    SEED_B,
    T0,
    request,
    small_bundle,
    user,
)

BUNDLE = small_bundle()


def codeof(bundle: Bundle, **kwargs: object) -> str:
    with pytest.raises(ProtocolError) as e:
        verify_bundle(bundle, **kwargs)  # type: ignore[arg-type]
    return e.value.code


def test_build_and_verify() -> None:
    v = verify_bundle(BUNDLE)
    assert v.origin == v.key_id == KEY_A
    assert v.digest == BUNDLE.digest == hashlib.sha256(BUNDLE.manifest).hexdigest()
    assert (v.sequence, v.previous, v.kind, v.schema_version) == (1, None, "snapshot", 2)
    assert [p for p, _ in v.records] == v.verified == sorted(BUNDLE.files)
    assert v.withheld == []
    assert {r.entity for _, r in v.records} == {"user", "request"}
    assert v.instance == INSTANCE and v.signed_at == "2026-02-03T04:05:07+00:00"
    assert peek_origin(BUNDLE) == (KEY_A, KEY_A)


def test_directory_view_round_trip() -> None:
    files = BUNDLE.to_files()
    assert list(files) == sorted(files)
    assert "manifest.sync.txt" in files and f"public_keys/{KEY_A}.pub" in files
    assert bundle_from_files(files) == BUNDLE


def test_withheld_files_are_allowed_and_reported() -> None:
    files = dict(BUNDLE.files)
    gone = files.pop("requests/01HREQ.sync.txt")
    assert gone
    v = verify_bundle(Bundle(BUNDLE.manifest, BUNDLE.sig, files, BUNDLE.keys))
    assert v.withheld == ["requests/01HREQ.sync.txt"]
    assert "requests/01HREQ.sync.txt" not in v.verified


def test_key_files_are_optional() -> None:
    verify_bundle(Bundle(BUNDLE.manifest, BUNDLE.sig, dict(BUNDLE.files), {}))


def test_build_refuses_foreign_private_and_invite_records() -> None:
    with pytest.raises(ProtocolError) as e:
        small_bundle([user(origin=KEY_B)])
    assert e.value.code == "origin_mismatch"
    from protocol.records import replace_fields

    with pytest.raises(ProtocolError) as e:
        small_bundle([replace_fields(user(), {"Sync-Scope": "private"})])
    assert e.value.code == "not_public"
    with pytest.raises(ProtocolError) as e:
        small_bundle([user(), user()])
    assert e.value.code == "duplicate_record"


def test_trust_is_asked_only_after_the_signature_verified() -> None:
    calls: list[tuple[str, str]] = []

    def trust(origin: str, key_id: str) -> bool:
        calls.append((origin, key_id))
        return False

    assert codeof(BUNDLE, trust=trust) == "untrusted_key"
    assert calls == [(KEY_A, KEY_A)]
    calls.clear()
    broken = Bundle(BUNDLE.manifest + b"x", BUNDLE.sig, BUNDLE.files, BUNDLE.keys)
    assert codeof(broken, trust=trust) == "manifest_digest_mismatch"
    assert calls == []


def test_limits_come_first() -> None:
    assert codeof(BUNDLE, limits=Limits(max_files=3)) == "too_many_files"
    assert codeof(BUNDLE, limits=Limits(max_bundle_bytes=500)) == "bundle_too_large"
    assert codeof(BUNDLE, limits=Limits(max_record_bytes=100)) == "record_too_large"
    assert codeof(BUNDLE, limits=Limits(max_manifest_bytes=100)) == "manifest_too_large"


def test_rotation_hands_signing_to_the_next_key() -> None:
    new_public = public_key_from_seed(SEED_B)
    announce = make_key_record(origin=KEY_A, instance=INSTANCE, new_public_key=new_public,
                               previous_key_id=KEY_A, revision=1, updated_at=T0, valid_from=T0)
    first = small_bundle([announce])
    anns = rotation_announcements(verify_bundle(first))
    assert [(a.origin, a.previous_key_id, a.key_id, a.public_key) for a in anns] == [
        (KEY_A, KEY_A, KEY_B, new_public)]
    later = small_bundle([request()], seed=SEED_B, sequence=2, previous=first.digest)
    assert codeof(later) == "untrusted_key"
    v = verify_bundle(later, trust=lambda o, k: k in (KEY_A, KEY_B))
    assert v.origin == KEY_A and v.key_id == KEY_B
    # a key record not signed by the key it names as previous is not an announcement
    assert rotation_announcements(v) == []


def test_tombstones_verify() -> None:
    t = make_tombstone("request", "01HREQ", origin=KEY_A, instance=INSTANCE, revision=9,
                       updated_at=T0)
    v = verify_bundle(small_bundle([t], sequence=2, previous="c" * 64))
    assert v.records[0][1].deleted and v.kind == "delta"


_SIG_TEXT = BUNDLE.sig.decode()
_SIGNED_AT_START = _SIG_TEXT.index("Signed-At: ") + len("Signed-At: ")
_SIGNED_AT_END = _SIG_TEXT.index("\n", _SIGNED_AT_START)
_FILES = BUNDLE.to_files()
_PATHS = sorted(_FILES)


@settings(max_examples=300)
@given(st.data())
def test_flipping_any_byte_is_detected(data: st.DataObject) -> None:
    """Every byte of the directory view is covered, except the Signed-At value, which
    the format (like the original) leaves outside the signature."""
    path = data.draw(st.sampled_from(_PATHS))
    raw = bytearray(_FILES[path])
    if path == "bundle.sig":
        index = data.draw(st.integers(0, len(raw) - 1).filter(
            lambda i: not _SIGNED_AT_START <= i < _SIGNED_AT_END))
    else:
        index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    files = dict(_FILES)
    files[path] = bytes(raw)
    with pytest.raises(ProtocolError):
        verify_bundle(bundle_from_files(files))


_CBOR = to_cbor(BUNDLE)


@settings(max_examples=300)
@given(st.data())
def test_flipping_any_byte_of_the_cbor_envelope_is_detected(data: st.DataObject) -> None:
    start = _CBOR.index(b"Signed-At: ") + len("Signed-At: ")
    end = _CBOR.index(b"\n", start)
    index = data.draw(st.integers(0, len(_CBOR) - 1).filter(lambda i: not start <= i < end))
    raw = bytearray(_CBOR)
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        bundle = from_cbor(bytes(raw))
    except ProtocolError:
        return
    if bundle == BUNDLE:  # a flip in framing that decodes to the same bytes is harmless
        return
    with pytest.raises(ProtocolError):
        verify_bundle(bundle)


def test_records_are_kept_as_received_bytes() -> None:
    v = verify_bundle(BUNDLE)
    for path, rec in v.records:
        assert render_record(rec) == BUNDLE.files[path]


def test_each_check_runs_over_all_files_before_the_next() -> None:
    """docs/protocol.md section 6: an unlisted file is found before a tampered one,
    whatever their paths (files.listed precedes files.digest)."""
    files = BUNDLE.to_files()
    tampered = next(p for p in sorted(BUNDLE.files))
    files[tampered] = files[tampered] + b"x"
    files["users/zzzz.sync.txt"] = render_record(user("zzzz"))
    assert codeof(bundle_from_files(files)) == "unlisted_file"
    files["aaas/aaaa.sync.txt"] = files.pop("users/zzzz.sync.txt")
    assert codeof(bundle_from_files(files)) == "unlisted_file"


def test_a_key_or_signature_of_the_wrong_length_is_a_bad_signature() -> None:
    """Merged into sig.ed25519: a key of 31 bytes with its own Key-ID cannot verify."""
    from protocol.signature import b64, key_id

    good = BUNDLE.sig.decode()
    lines = dict(line.split(": ", 1) for line in good.splitlines())
    for short in (bytes(31), bytes(33)):
        sig = good.replace(lines["Public-Key"], b64(short)).replace(
            lines["Key-ID"], key_id(short))
        b = Bundle(BUNDLE.manifest, sig.encode(), BUNDLE.files, BUNDLE.keys)
        assert codeof(b) == "bad_signature"
    raw = __import__("base64").b64decode(lines["Signature"])
    for sig_bytes in (raw[:63], raw + b"\x00"):
        sig = good.replace(lines["Signature"], b64(sig_bytes))
        b = Bundle(BUNDLE.manifest, sig.encode(), BUNDLE.files, BUNDLE.keys)
        assert codeof(b) == "bad_signature"
    # a manifest digest that differs still comes first
    sig = good.replace(lines["Public-Key"], b64(bytes(31))).replace(
        lines["Key-ID"], key_id(bytes(31))).replace(lines["Manifest-Digest"], "0" * 64)
    b = Bundle(BUNDLE.manifest, sig.encode(), BUNDLE.files, BUNDLE.keys)
    assert codeof(b) == "manifest_digest_mismatch"


def test_signature_and_key_file_limits_are_limits() -> None:
    assert codeof(BUNDLE, limits=Limits(max_signature_bytes=len(BUNDLE.sig) - 1)) == \
        "record_too_large"
    verify_bundle(BUNDLE, limits=Limits(max_signature_bytes=len(BUNDLE.sig)))
    size = max(map(len, BUNDLE.keys.values()))
    assert codeof(BUNDLE, limits=Limits(max_key_file_bytes=size - 1)) == "record_too_large"
    verify_bundle(BUNDLE, limits=Limits(max_key_file_bytes=size))
