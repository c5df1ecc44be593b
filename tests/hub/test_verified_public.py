"""hub.ingest.verified_public verifies a schema-2 bundle whole before reading every
file's scope. Its verdict must be the one of removing the non-public files first
(public_only, then verify_bundle), whatever the bundle holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hub import ingest as I
from protocol.bundle import Bundle, sign_files
from protocol.containers import from_targz
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS
from protocol.manifest import make_manifest, render_manifest
from protocol.records import render_record
from protocol.verify import verify_bundle
from service.bundle_io import read_bundle
from tests.hub.helpers import TS, Origin, seed

INTEROP = Path("/work/shared/interop")


def reference(bundle: Bundle) -> tuple[str, object]:
    """What removing first gives: ("ok", (records, withheld, files)) or ("error", code)."""
    filtered, dropped = I.public_only(bundle)
    try:
        v = verify_bundle(filtered, trust=I._trust_all)
    except ProtocolError as exc:
        return "error", (exc.code, exc.path)
    return "ok", (list(v.records), v.withheld, sorted(filtered.files), dropped)


def actual(bundle: Bundle) -> tuple[str, object]:
    try:
        v, filtered, dropped = I.verified_public(bundle, DEFAULT_LIMITS)
    except ProtocolError as exc:
        return "error", (exc.code, exc.path)
    return "ok", (list(v.records), v.withheld, sorted(filtered.files), dropped)


def tampered(bundle: Bundle, path: str) -> Bundle:
    files = dict(bundle.files)
    files[path] = files[path].replace(b"please", b"PLEASE")
    return Bundle(bundle.manifest, bundle.sig, files, bundle.keys)


def test_a_public_bundle_is_kept_whole() -> None:
    o = Origin(seed(1))
    b = o.bundle([o.request("A1"), o.request("A2")])
    v, filtered, dropped = I.verified_public(b, DEFAULT_LIMITS)
    assert filtered is b and dropped == 0 and v.withheld == []
    assert actual(b) == reference(b)


def test_private_files_are_removed_as_before() -> None:
    o = Origin(seed(2))
    b = o.bundle([o.request("P1"), o.request("S1", scope="private"),
                  o.comment("C1", f"{o.origin}/P1", scope="private")])
    got = actual(b)
    assert got == reference(b)
    assert got[0] == "ok" and got[1][3] == 2  # two files dropped
    assert got[1][1] == ["comments/C1.sync.txt", "requests/S1.sync.txt"]


def test_a_private_tombstone_is_removed_as_before() -> None:
    # the record grammar refuses a tombstone that is not public, so the whole bundle
    # fails; removing first drops the file and the rest is stored
    o = Origin(seed(3))
    files = {rec.path: render_record(rec) for rec in (o.request("P1"),
                                                       o.tombstone("request", "T1", 2))}
    files["requests/T1.sync.txt"] = files["requests/T1.sync.txt"].replace(
        b"Sync-Scope: public", b"Sync-Scope: private")
    manifest = render_manifest(make_manifest(
        [(p, hashlib.sha256(d).hexdigest()) for p, d in sorted(files.items())],
        origin=o.origin, instance=o.instance, sequence=1, previous=None, created_at=TS,
        kind="delta"))
    b = sign_files(files, manifest, seed=o.seed, signed_at=TS)
    with pytest.raises(ProtocolError):
        verify_bundle(b, trust=I._trust_all)
    got = actual(b)
    assert got == reference(b) and got[0] == "ok"
    assert got[1][3] == 1 and got[1][1] == ["requests/T1.sync.txt"]


@pytest.mark.parametrize("broken", ["requests/P1.sync.txt", "requests/S1.sync.txt"])
def test_a_broken_bundle_with_private_files_gets_the_verdict_of_removing_first(
        broken: str) -> None:
    # tampering with the private file: removed first, so the bundle is fine;
    # tampering with the public one: refused for it
    o = Origin(seed(4))
    b = tampered(o.bundle([o.request("P1"), o.request("S1", scope="private")]), broken)
    assert actual(b) == reference(b)
    assert actual(b)[0] == ("ok" if broken.endswith("S1.sync.txt") else "error")


def test_a_broken_public_bundle_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    o = Origin(seed(5))
    b = tampered(o.bundle([o.request("P1"), o.request("P2")]), "requests/P2.sync.txt")
    calls = []
    real = I.verify_bundle

    def counting(*args: object, **kwargs: object):  # noqa: ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(I, "verify_bundle", counting)
    assert actual(b) == reference(b) and actual(b)[0] == "error"
    calls.clear()
    with pytest.raises(ProtocolError):
        I.verified_public(b, DEFAULT_LIMITS)
    assert len(calls) == 1


def test_the_originals_schema1_bundles_get_the_same_verdict() -> None:
    bundles = [read_bundle(INTEROP / "original-v1")]
    for name in ("client-upload", "hub-download"):
        data = (INTEROP / "original-v1-wire" / f"{name}.tar.gz").read_bytes()
        bundles.append(from_targz(data, original_hub=True))
    for b in bundles:
        assert actual(b) == reference(b)
