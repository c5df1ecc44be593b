from __future__ import annotations

import gzip
import io
import tarfile

import cbor2
import pytest

from protocol.bundle import Bundle
from protocol.containers import (
    CBOR_MEDIA_TYPE,
    Frame,
    canonical_order,
    cbor_decode,
    cbor_encode,
    decode_frame,
    encode_frame,
    file_offsets,
    from_cbor,
    from_targz,
    to_cbor,
    to_targz,
)
from protocol.errors import ProtocolError
from protocol.limits import Limits
from protocol.signature import key_id, public_key_from_seed
from protocol.verify import verify_bundle
from tests.hub.helpers import Origin, seed
from tests.protocol.helpers import small_bundle

BUNDLE = small_bundle()


def test_media_type() -> None:
    assert CBOR_MEDIA_TYPE == "application/vnd.whiteballoon.bundle+cbor"


def test_cbor_is_deterministic_and_standard() -> None:
    data = to_cbor(BUNDLE)
    assert to_cbor(from_cbor(data)) == data
    assert from_cbor(data) == BUNDLE
    decoded = cbor2.loads(data)
    assert decoded == {"v": 2, "manifest": BUNDLE.manifest, "sig": BUNDLE.sig,
                       "files": BUNDLE.files, "keys": BUNDLE.keys}
    assert cbor2.dumps(decoded, canonical=True) == data  # RFC 8949 deterministic
    # a non-canonical but valid encoding (other key order) still decodes
    shuffled = cbor2.dumps({"keys": BUNDLE.keys, "files": BUNDLE.files, "sig": BUNDLE.sig,
                            "manifest": BUNDLE.manifest, "v": 2})
    assert from_cbor(shuffled) == BUNDLE


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d[:-1], "malformed_cbor"),
        (lambda d: d + b"\x00", "trailing_bytes"),
        # an envelope is a CBOR map: any other first byte is not a CBOR envelope at all
        # (container.kind), whether detected by content or declared by a media type
        (lambda d: b"", "unknown_container"),
        (lambda d: b"\x1c", "unknown_container"),
        (lambda d: cbor2.dumps([1, 2]), "unknown_container"),
        (lambda d: cbor2.dumps({"v": 2}), "wrong_type"),
        (lambda d: cbor2.dumps({"v": 2, "manifest": b"", "sig": b"", "files": {}, "keys": {},
                                "x": 1}), "unknown_field"),
        (lambda d: cbor2.dumps({"v": 1, "manifest": b"", "sig": b"", "files": {}, "keys": {}}),
         "unsupported_container_version"),
        (lambda d: cbor2.dumps({"v": 2, "manifest": b"", "sig": b"", "files": {"a": "t"},
                                "keys": {}}), "wrong_type"),
        (lambda d: cbor2.dumps({"v": 2, "manifest": b"", "sig": b"", "files": {1: b""},
                                "keys": {}}), "wrong_type"),
        (lambda d: cbor2.dumps({"v": -2, "manifest": b"", "sig": b"", "files": {}, "keys": {}}),
         "wrong_type"),
        # a tag is not well formed in an envelope (docs/protocol.md section 7); at the
        # top level it is not a map head either
        (lambda d: cbor2.dumps(cbor2.CBORTag(24, d)), "unknown_container"),
        (lambda d: cbor2.dumps({"v": 2, "manifest": cbor2.CBORTag(24, b""), "sig": b"",
                                "files": {}, "keys": {}}), "malformed_cbor"),
    ],
)
def test_cbor_rejections(mutate, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError) as e:
        from_cbor(mutate(to_cbor(BUNDLE)))
    assert e.value.code == code


def test_cbor_depth_and_declared_sizes_are_bounded() -> None:
    with pytest.raises(ProtocolError) as e:
        cbor_decode(b"\xa1\x61a" * 10 + b"\x00")
    assert e.value.code == "malformed_cbor"
    with pytest.raises(ProtocolError) as e:
        cbor_decode(b"\x5a\xff\xff\xff\xff")  # 4 GiB byte string, 0 bytes present
    assert e.value.code == "malformed_cbor"
    with pytest.raises(ProtocolError) as e:
        from_cbor(b"\xa1\x61a\xb9\xff\xff", Limits(max_files=10))
    assert e.value.code == "too_many_files"


def test_cbor_encoder_subset() -> None:
    assert cbor_encode({"b": 1, "a": b"\x00", "aa": "t"}) == cbor2.dumps(
        {"b": 1, "a": b"\x00", "aa": "t"}, canonical=True)
    for big in (23, 24, 255, 256, 65535, 65536, 2**32, 2**40):
        assert cbor_encode(big) == cbor2.dumps(big)
        assert cbor_decode(cbor_encode(big)) == big
    with pytest.raises(TypeError):
        cbor_encode(-1)


def test_frames_round_trip() -> None:
    for frame in (Frame("bundle", 7, digest=BUNDLE.digest, origin="o", bundle=BUNDLE),
                  Frame("info", 0), Frame("error", 12, code="outdated_cursor", message="x")):
        assert decode_frame(encode_frame(frame)) == frame
    with pytest.raises(ProtocolError):
        decode_frame(cbor2.dumps({"op": "bundle", "seq": 1}))
    with pytest.raises(ProtocolError) as e:
        decode_frame(cbor2.dumps({"op": "info", "seq": 1, "extra": 1}))
    assert e.value.code == "unknown_field"


def test_targz_round_trip_and_determinism() -> None:
    data = to_targz(BUNDLE)
    assert to_targz(BUNDLE) == data
    assert from_targz(data) == BUNDLE
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert names == sorted(BUNDLE.to_files())  # files at the archive root


def _tar(entries: list[tuple[str, bytes | None, bytes]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_targz_accepts_one_top_directory_and_dot_slash() -> None:
    files = BUNDLE.to_files()
    nested = _tar([("bundle", None, tarfile.DIRTYPE)]
                  + [(f"bundle/{p}", d, tarfile.REGTYPE) for p, d in files.items()])
    assert from_targz(nested) == BUNDLE
    dotted = _tar([(f"./{p}", d, tarfile.REGTYPE) for p, d in files.items()])
    assert from_targz(dotted) == BUNDLE
    verify_bundle(from_targz(dotted))


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (("../x.sync.txt", b"x", tarfile.REGTYPE), "unsafe_path"),
        (("/x.sync.txt", b"x", tarfile.REGTYPE), "unsafe_path"),
        (("a/../../x", b"x", tarfile.REGTYPE), "unsafe_path"),
        (("link", None, tarfile.SYMTYPE), "unsafe_archive_member"),
        (("hard", None, tarfile.LNKTYPE), "unsafe_archive_member"),
        (("fifo", None, tarfile.FIFOTYPE), "unsafe_archive_member"),
        (("dev", None, tarfile.BLKTYPE), "unsafe_archive_member"),
        (("manifest.sync.txt", b"again", tarfile.REGTYPE), "duplicate_path"),
    ],
)
def test_targz_rejections(entry: tuple[str, bytes | None, bytes], code: str) -> None:
    entries = [(p, d, tarfile.REGTYPE) for p, d in BUNDLE.to_files().items()]
    with pytest.raises(ProtocolError) as e:
        from_targz(_tar([*entries, entry]))
    assert e.value.code == code


def test_gzip_bomb_and_garbage() -> None:
    bomb = gzip.compress(b"\x00" * (8 * 1024 * 1024))
    assert len(bomb) < 20_000
    with pytest.raises(ProtocolError) as e:
        from_targz(bomb)
    assert e.value.code == "bundle_too_large"
    with pytest.raises(ProtocolError) as e:
        from_targz(gzip.compress(b"\x00" * 5000), Limits(max_archive_bytes=4096))
    assert e.value.code == "bundle_too_large"
    for junk in (b"", b"PK\x03\x04", b"\x1f\x8b\x08\x00garbage", to_targz(BUNDLE)[:-20]):
        with pytest.raises(ProtocolError) as e:
            from_targz(junk)
        assert e.value.code == "malformed_archive"
    with pytest.raises(ProtocolError) as e:
        from_targz(gzip.compress(b"this is not a tar archive" * 40))
    assert e.value.code in ("malformed_archive", "missing_manifest")


def test_multi_member_gzip() -> None:
    raw = gzip.decompress(to_targz(BUNDLE))
    two = gzip.compress(raw[:1000]) + gzip.compress(raw[1000:])
    assert from_targz(two) == BUNDLE


def test_bundle_is_value() -> None:
    assert Bundle(BUNDLE.manifest, BUNDLE.sig, dict(BUNDLE.files), dict(BUNDLE.keys)) == BUNDLE


def test_original_hub_download_layout() -> None:
    files = BUNDLE.to_files()
    entries = [(p, d, tarfile.REGTYPE) for p, d in files.items()]
    data = _tar([*entries, *entries, ("hub_metadata.json", b"{}\n", tarfile.REGTYPE)])
    with pytest.raises(ProtocolError) as e:
        from_targz(data)
    assert e.value.code == "duplicate_path"
    assert from_targz(data, original_hub=True) == BUNDLE
    clash = _tar([*entries, ("bundle.sig", b"other", tarfile.REGTYPE)])
    with pytest.raises(ProtocolError) as e:
        from_targz(clash, original_hub=True)
    assert e.value.code == "duplicate_path"


ENVELOPE = {"v": 2, "manifest": b"", "sig": b"", "files": {}, "keys": {}}


@pytest.mark.parametrize("tag", [0, 1, 2, 24, 258, 55799, 99999])
def test_cbor2_refuses_every_tag_even_the_ones_it_knows(tag: int) -> None:
    # cbor2 decodes tags 0/1 (dates), 2 (bignum), 258 (set), 55799 (self-describe) by
    # itself; the strictness layer must refuse them all the same way
    payload = "2026-01-01T00:00:00Z" if tag == 0 else 1 if tag in (1, 2) else b"x"
    with pytest.raises(ProtocolError) as e:
        from_cbor(cbor2.dumps({**ENVELOPE, "manifest": cbor2.CBORTag(tag, payload)}))
    assert (e.value.code, e.value.check) == ("malformed_cbor", "cbor.well_formed")


def test_cbor_refuses_what_cbor2_would_accept() -> None:
    good = cbor2.dumps(ENVELOPE, canonical=True)
    cases = {
        good + b"\x00": "trailing_bytes",  # cbor2.loads ignores trailing bytes
        b"\xbf" + good[1:] + b"\xff": "malformed_cbor",  # indefinite-length map
        b"\xa6" + good[1:] + b"\x61v\x02": "duplicate_key",  # "v" twice
        cbor2.dumps({**ENVELOPE, "v": True}): "wrong_type",  # a bool is not an unsigned int
        cbor2.dumps({**ENVELOPE, "v": 2.0}): "wrong_type",
        cbor2.dumps({**ENVELOPE, "files": [b"x"]}): "wrong_type",
        # a simple value below 32 in two bytes is not well formed (RFC 8949 section 3.3)
        cbor2.dumps(ENVELOPE)[:-1] + b"\xa1\x61a\xf8\x05": "malformed_cbor",
    }
    for data, code in cases.items():
        with pytest.raises(ProtocolError) as e:
            from_cbor(data)
        assert e.value.code == code, data.hex()


def test_declared_count_is_refused_complete_or_truncated() -> None:
    limits = Limits(max_files=5)
    files = {f"f{i}": b"x" for i in range(6)}
    complete = cbor2.dumps({**ENVELOPE, "files": files}, canonical=True)
    truncated = complete[: complete.index(b"\xa6") + 1]  # "files" declares 6, then nothing
    for data in (complete, truncated):
        with pytest.raises(ProtocolError) as e:
            from_cbor(data, limits)
        assert (e.value.code, e.value.check) == ("too_many_files", "cbor.declared_count")
    # a malformation before the declaration is reported first, as the stream reads
    with pytest.raises(ProtocolError) as e:
        from_cbor(b"\xa5\xc1\x01" + truncated[1:], limits)
    assert e.value.code == "malformed_cbor"


def test_cbor_encoder_refuses_outside_the_subset() -> None:
    for value in (True, -1, 1.5, None, [1], {"a": [1]}, {"a": {"b": -3}}):
        with pytest.raises(TypeError):
            cbor_encode(value)  # type: ignore[arg-type]


def test_container_cap_is_max_container_bytes_for_both_containers() -> None:
    from protocol.containers import from_bytes

    for data in (to_cbor(BUNDLE), to_targz(BUNDLE)):
        assert from_bytes(data, Limits(max_container_bytes=len(data))) == BUNDLE
        with pytest.raises(ProtocolError) as e:
            from_bytes(data, Limits(max_container_bytes=len(data) - 1))
        assert e.value.code == "bundle_too_large"
        assert e.value.check in ("cbor.size", "targz.size")
    # detection comes first: an oversized input that is no container is unknown_container
    with pytest.raises(ProtocolError) as e:
        from_bytes(b"[" * 5000, Limits(max_container_bytes=10))
    assert e.value.code == "unknown_container"


def test_an_envelope_lacking_a_field_is_wrong_type_whichever_field() -> None:
    env = {"v": 2, "manifest": BUNDLE.manifest, "sig": BUNDLE.sig, "files": BUNDLE.files,
           "keys": BUNDLE.keys}
    for key in env:
        partial = {k: v for k, v in env.items() if k != key}
        with pytest.raises(ProtocolError) as e:
            from_cbor(cbor2.dumps(partial))
        assert (e.value.code, e.value.check) == ("wrong_type", "cbor.missing_field")


def test_the_envelope_keys_do_not_count_against_a_small_max_files() -> None:
    """Found by the fuzzer: a bundle of fewer than five files under max_files = its file
    count reads in every container (the envelope's own map has five keys)."""
    from protocol.containers import from_bytes
    from tests.protocol.helpers import SEED_B

    small = small_bundle([], seed=SEED_B, origin=key_id(public_key_from_seed(SEED_B)))
    assert small.file_count == 3
    for data in (to_cbor(small), to_targz(small)):
        assert verify_bundle(from_bytes(data, Limits(max_files=3)),
                             limits=Limits(max_files=3)).digest == small.digest
        with pytest.raises(ProtocolError) as e:
            verify_bundle(from_bytes(data, Limits(max_files=2)), limits=Limits(max_files=2))
        assert e.value.code == "too_many_files"


def test_file_offsets_place_only_what_comes_in_order():
    origin = Origin(seed(1))
    b = origin.bundle([origin.request(f"R{i}", title="t" * (1 + 7 * i)) for i in range(4)])
    container = to_cbor(b)
    order = canonical_order(b.files)
    at = file_offsets(container, b.files, order)
    assert set(at) == set(b.files)
    for path, start in at.items():
        assert container[start:start + len(b.files[path])] == b.files[path]
    # files named out of the envelope's order: from the first one missed on, none is
    # placed (the container is read once, whatever order a peer sends)
    backwards = file_offsets(container, b.files, list(reversed(order)))
    assert list(backwards) == [order[-1]]
    # a file not in the container at all is never placed
    assert file_offsets(container, {"x": b"\x00not there"}, ["x"]) == {}
