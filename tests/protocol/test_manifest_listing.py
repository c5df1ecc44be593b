"""The shortcuts verify_bundle takes on the common manifest (#24) give the verdicts of
the long way: a listing only decides how fast the file lines are read, never what they
mean."""

from __future__ import annotations

import copy
import hashlib
import pickle

import pytest

from protocol.bundle import Bundle
from protocol.errors import ProtocolError
from protocol.manifest import Manifest, make_manifest, parse_manifest, render_manifest
from protocol.paths import RECORD_PATH_RE, all_record_paths
from protocol.signature import sign_manifest
from protocol.verify import verify_bundle
from tests.protocol.helpers import KEY_A, SEED_A, T0, small_bundle

PATHS = ["comments/c1.sync.txt", "requests/r1.sync.txt", "users/u1.sync.txt"]


def _hex(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def _manifest(entries: list[tuple[str, str]]) -> bytes:
    return render_manifest(make_manifest(entries, origin=KEY_A, instance="https://x.example",
                                         sequence=1, previous=None, created_at=T0,
                                         kind="snapshot"))


def _outcome(data: bytes, listing: tuple[tuple[str, ...], tuple[str, ...]] | None) -> object:
    try:
        return parse_manifest(data, listing=listing)
    except ProtocolError as exc:
        return (exc.code, exc.check, exc.message, exc.path)


def test_the_listing_check_accepts_exactly_the_record_paths() -> None:
    candidates = [
        "users/u1.sync.txt", "users/a.sync.txt.sync.txt", "us/x.sync.txt", "s/x.sync.txt",
        "Users/x.sync.txt", "users/.sync.txt", "users/x.sync.txtx", "users/x y.sync.txt",
        "users/x.sync.tx", "users//x.sync.txt", "users/_x.sync.txt", "users/x_.-y.sync.txt",
        "a" * 32 + "s/x.sync.txt", "a" * 33 + "s/x.sync.txt", "users/" + "x" * 128 + ".sync.txt",
        "users/" + "x" * 129 + ".sync.txt", "users/x.sync.txt\nusers/y.sync.txt", "",
        "users/x.sync.txt\n", "\nusers/x.sync.txt",
    ]
    for path in candidates:
        single = RECORD_PATH_RE.fullmatch(path) is not None
        assert all_record_paths([path]) == single, path
        assert all_record_paths(["users/u0.sync.txt", path]) == single, path
    valid = [p for p in candidates if RECORD_PATH_RE.fullmatch(p)]
    assert all_record_paths(valid) and all_record_paths([])
    assert not all_record_paths(candidates)


def test_a_file_path_holding_an_lf_is_unsafe_even_when_the_manifest_lists_it() -> None:
    """Joined with LFs, ``users/a.sync.txt<LF>users/b.sync.txt`` reads as two record
    paths; it must still be refused as the unsafe path it is, before the signature,
    and not be taken from a signed manifest that renders it verbatim."""
    bundle = small_bundle()
    files = dict(bundle.files)
    sneaky = "users/01HUSER.sync.txt\nusers/01HZZZ.sync.txt"
    files[sneaky] = files["users/01HUSER.sync.txt"]
    files = dict(sorted(files.items()))
    head = bundle.manifest.decode().partition("\n\n")[0]
    lines = "".join(f"{hashlib.sha256(d).hexdigest()}  {p}\n" for p, d in files.items())
    manifest = (head + "\n\n" + lines).encode()
    sig = sign_manifest(manifest, SEED_A, "2026-02-03T04:05:07+00:00")
    with pytest.raises(ProtocolError) as refused:
        verify_bundle(Bundle(manifest, sig, files, bundle.keys))
    assert (refused.value.check, refused.value.path) == ("paths.unsafe", sneaky)


def test_a_matching_listing_gives_the_same_manifest() -> None:
    entries = [(p, _hex(p)) for p in PATHS]
    data = _manifest(entries)
    listed = parse_manifest(data, listing=(tuple(PATHS), tuple(d for _, d in entries)))
    plain = parse_manifest(data)
    assert "entries" not in listed.__dict__  # built only when read
    assert listed == plain and plain == listed and not listed != plain
    assert hash(listed) == hash(plain) and repr(listed) == repr(plain)
    assert listed.columns == plain.columns == (tuple(PATHS), tuple(d for _, d in entries))
    assert listed.entries == plain.entries == tuple(entries)
    assert listed.digests == plain.digests and listed.paths == plain.paths
    for clone in (pickle.loads(pickle.dumps(listed)), copy.deepcopy(listed)):
        assert clone == plain and type(clone) is Manifest
    with pytest.raises(AttributeError):
        listed.no_such_field  # noqa: B018


@pytest.mark.parametrize("case", ["other digests", "withheld", "extra", "unsorted", "empty"])
def test_any_other_listing_changes_nothing(case: str) -> None:
    entries = [(p, _hex(p)) for p in PATHS]
    data = _manifest(entries)
    paths, digests = tuple(PATHS), tuple(d for _, d in entries)
    listing = {
        "other digests": (paths, tuple(_hex(d) for d in digests)),
        "withheld": (paths[:2], digests[:2]),
        "extra": (paths + ("users/u2.sync.txt",), digests + (_hex("x"),)),
        "unsorted": (paths[::-1], digests[::-1]),
        "empty": ((), ()),
    }[case]
    assert _outcome(data, listing) == _outcome(data, None) == parse_manifest(data)


def test_an_unsorted_manifest_is_refused_even_when_it_is_the_listing() -> None:
    paths = tuple(reversed(PATHS))
    digests = tuple(_hex(p) for p in paths)
    head = _manifest([]).decode()
    data = (head + "".join(f"{d}  {p}\n" for p, d in zip(paths, digests))).encode()
    refused = _outcome(data, (paths, digests))
    assert refused == _outcome(data, None)
    assert isinstance(refused, tuple) and refused[1] == "manifest.sorted"
