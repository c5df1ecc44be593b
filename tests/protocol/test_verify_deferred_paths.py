"""verify_bundle puts off its regex over every file path (step 2) when no check is
disabled: a schema-2 bundle whose records each sit at their own path proves the paths
anyway. These tests hold it to the stated order: whatever else is wrong with a bundle,
a bad path is reported as if it had been checked first, and a bad path is never
accepted. The eager order is what verify_bundle does with any check disabled."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.bundle import Bundle, sign_files
from protocol.checks import disabled
from protocol.errors import ProtocolError
from protocol.manifest import make_manifest, render_manifest
from protocol.records import make_tombstone, render_record
from protocol.verify import verify_bundle
from tests.protocol.helpers import INSTANCE, KEY_A, SEED_A, SEED_B, T0, request, user

SIGNED_AT = "2026-02-03T04:05:07+00:00"


def signed(files: dict[str, bytes], *, seed: bytes = SEED_A, origin: str = KEY_A) -> Bundle:
    """``files`` listed and signed as they are, whatever their paths."""
    head = render_manifest(make_manifest(
        [], origin=origin, instance=INSTANCE, sequence=1, previous=None,
        created_at=T0, kind="snapshot"))
    lines = "".join(f"{hashlib.sha256(data).hexdigest()}  {path}\n"
                    for path, data in sorted(files.items()))  # rendered as they are
    manifest = head + lines.encode()
    return sign_files(dict(sorted(files.items())), manifest, seed=seed, signed_at=SIGNED_AT)


def good_files() -> dict[str, bytes]:
    return {rec.path: render_record(rec) for rec in (user(), user("01HUSER2"), request())}


def verdict(bundle: Bundle) -> str:
    """``ok`` or the id of the check that failed."""
    try:
        verify_bundle(bundle)
    except ProtocolError as exc:
        return exc.check or exc.code
    return "ok"


def eager_verdict(bundle: Bundle) -> str:
    # a check that cannot fire for a schema-2 bundle: disabling any check makes
    # verify_bundle check every path up front
    with disabled("schema1.comment"):
        return verdict(bundle)


def moved(files: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    out = dict(files)
    out[new] = out.pop(old)
    return out


REQ = "requests/01HREQ.sync.txt"


@pytest.mark.parametrize("path, check", [
    ("../requests/01HREQ.sync.txt", "paths.unsafe"),
    ("requests/../01HREQ.sync.txt", "paths.unsafe"),
    ("requests/01HREQ.txt", "paths.record"),
    ("Requests/01HREQ.sync.txt", "paths.record"),
    ("requests/01HREQ.sync.txt/x", "paths.record"),
])
def test_a_signed_file_at_a_bad_path_is_refused(path: str, check: str) -> None:
    bundle = signed(moved(good_files(), REQ, path))
    assert verdict(bundle) == eager_verdict(bundle) == check


def test_a_bad_path_comes_before_a_bad_signature() -> None:
    bundle = signed(moved(good_files(), REQ, "requests/01HREQ.txt"))
    forged = bytearray(bundle.sig)
    i = forged.index(b"Signature: ") + len("Signature: ")
    forged[i] = ord("A") if forged[i] != ord("A") else ord("B")
    bad = Bundle(bundle.manifest, bytes(forged), bundle.files, bundle.keys)
    assert verdict(bad) == eager_verdict(bad) == "paths.record"
    # and the same bundle at good paths is refused for its signature
    good = signed(good_files())
    forged_good = Bundle(good.manifest, bytes(forged), good.files, good.keys)
    assert verdict(forged_good) in {"sig.manifest_digest", "sig.ed25519"}


def test_a_bad_path_comes_before_an_untrusted_key() -> None:
    # signed by B for origin A: authentic, but B does not speak for A
    bundle = signed(moved(good_files(), REQ, "requests/x y.sync.txt"), seed=SEED_B)
    assert verdict(bundle) == eager_verdict(bundle) == "paths.unsafe"
    assert verdict(signed(good_files(), seed=SEED_B)) == "trust"


def test_a_bad_record_path_comes_before_a_bad_key_file_name() -> None:
    bundle = signed(moved(good_files(), REQ, "requests/01HREQ.txt"))
    bad_keys = {**bundle.keys, "not-a-key-id": next(iter(bundle.keys.values()))}
    both = Bundle(bundle.manifest, bundle.sig, bundle.files, bad_keys)
    assert verdict(both) == eager_verdict(both) == "paths.record"
    alone = signed(good_files())
    alone = Bundle(alone.manifest, alone.sig, alone.files, bad_keys)
    assert verdict(alone) == "paths.key_file"


def test_a_record_at_another_record_path_is_a_path_mismatch() -> None:
    bundle = signed(moved(good_files(), REQ, "requests/01HOTHER.sync.txt"))
    assert verdict(bundle) == eager_verdict(bundle) == "record.path"


def test_records_that_prove_nothing_still_get_their_paths_checked() -> None:
    # a tombstone takes the slow record check; its path must still be a record path
    tomb = make_tombstone("request", "01HGONE", origin=KEY_A, instance=INSTANCE,
                          revision=2, updated_at="2026-02-04T00:00:00Z")
    files = {**good_files(), tomb.path: render_record(tomb)}
    assert verdict(signed(files)) == "ok"
    bundle = signed(moved(files, tomb.path, "../" + tomb.path))
    assert verdict(bundle) == eager_verdict(bundle) == "paths.unsafe"


PATHS = st.one_of(
    st.sampled_from([REQ, "requests/01HOTHER.sync.txt", "users/01HREQ.sync.txt",
                     "requests/01HREQ.sync.txt.bak", "./requests/01HREQ.sync.txt",
                     "requests//01HREQ.sync.txt", "requests/01HREQ.sync.txt\n",
                     "/requests/01HREQ.sync.txt", "requests/.sync.txt"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(path=PATHS, forge=st.booleans(), foreign=st.booleans(), bad_key=st.booleans())
def test_deferred_and_eager_orders_agree(path: str, forge: bool, foreign: bool,
                                         bad_key: bool) -> None:
    files = good_files()
    if path in files and path != REQ:
        return
    bundle = signed(moved(files, REQ, path), seed=SEED_B if foreign else SEED_A)
    sig = bundle.sig.replace(b"Signed-At: 2026", b"Signed-At: 2027") if forge else bundle.sig
    keys = {**bundle.keys, "KEY": b"x"} if bad_key else bundle.keys
    bundle = Bundle(bundle.manifest, sig, bundle.files, keys)
    assert verdict(bundle) == eager_verdict(bundle)


def test_record_pairs_read_as_a_list_of_pairs() -> None:
    import pickle

    v = verify_bundle(signed(good_files()))
    pairs = list(v.records)
    assert v.records == pairs and pairs == list(zip(v.verified, [r for _, r in pairs],
                                                    strict=True))
    assert v.records[0] == pairs[0] and v.records[-1] == pairs[-1]
    assert v.records[1:] == pairs[1:] and len(v.records) == 3
    assert v.records != pairs[:2] and v.records != "abc"
    assert pickle.loads(pickle.dumps(v.records)) == pairs
