"""Every invalid vector has exactly one problem, and every check has a vector.

For each invalid vector the reference must fail it with the vector's check (the
earliest in the order of ``protocol.checks.CHECKS``), and, re-run with that one check
disabled, verify it: so no other check, before or after, objects to it. Terminal
checks (nothing after them can be read) and the few defects that always trip two
checks (listed in ``TWO_CHECKS`` with the reason) are exempt from the second half.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.checks import CHECK_BY_ID, CHECKS, disabled
from protocol.errors import ProtocolError
from protocol.verify import verify_bundle
from service.bundle_io import read_bundle

VECTORS = Path(__file__).resolve().parent / "vectors"
INVALID = json.loads((VECTORS / "cases.json").read_text())["cases"]

#: vectors whose one defect necessarily fails a second check when the first is disabled
TWO_CHECKS = {
    "signature_oversized": "a bundle.sig over 4096 bytes cannot hold only the six lines",
    "key_file_oversized": "a key file over 4096 bytes cannot hold only the two lines",
    "short_public_key": "a 31-byte key cannot have the Key-ID or verify the signature",
    "signature_digest_uppercase": "a digest that is not lowercase hex never equals one",
}

#: checks without a vector, and why (defaults too large for a committed file, or a
#: defect that cannot occur without an earlier check failing)
NO_VECTOR = {
    "cbor.size": "needs an envelope over 58 MB",
    "targz.size": "needs an archive over 58 MB",
    "targz.member_count": "needs 51,000 tar members",
    "targz.member_size": "needs an 8 MiB member",
    "limits.files": "needs 50,000 files (CBOR: cbor.declared_count comes first)",
    "limits.bundle_bytes": "needs a 32 MiB bundle",
    "limits.manifest_bytes": "needs an 8 MiB manifest",
    "record.header_count": "needs 65 header lines (all but 17 are unknown_header first)",
    "record.tombstone_headers": "tests/protocol/test_records.py (tombstone parser cases)",
    "record.required_entity": "tests/protocol/test_records.py",
    "cbor.missing_field": "tests/protocol/test_containers.py",
    "cbor.top_map": "tests/protocol/test_containers.py",
    "targz.tar": "tests/protocol/test_containers.py",
    "schema1.id": "an invalid schema-1 ID also fails the mapped record's record.id",
}


def _verify(case: dict) -> None:
    verify_bundle(read_bundle(VECTORS / case["path"]))


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_vector_has_exactly_one_problem(case: dict) -> None:
    with pytest.raises(ProtocolError) as info:
        _verify(case)
    assert (info.value.check, info.value.code) == (case["check"], case["code"]), info.value
    check = CHECK_BY_ID[case["check"]]
    if check.terminal or case["name"] in TWO_CHECKS:
        with disabled(check.id), pytest.raises(ProtocolError) as again:
            _verify(case)
        assert again.value.code == case["code"] or case["name"] in TWO_CHECKS
        return
    with disabled(check.id):
        _verify(case)  # verifies: the vector's only problem was that check


def test_every_check_has_a_vector() -> None:
    covered = {case["check"] for case in INVALID}
    missing = [c.id for c in CHECKS if c.id not in covered and c.id not in NO_VECTOR]
    assert not missing, f"checks without a single-problem vector: {missing}"
    stale = sorted(set(NO_VECTOR) & covered)
    assert not stale, f"NO_VECTOR lists checks that now have a vector: {stale}"
    assert set(NO_VECTOR) <= set(CHECK_BY_ID)


def test_disabling_an_unknown_check_is_an_error() -> None:
    with pytest.raises(ValueError), disabled("no.such.check"):
        pass


def test_family_index_follows_the_check_order() -> None:
    family = json.loads((VECTORS / "cases.json").read_text())["checks"]
    assert [f["check"] for f in family] == [c.id for c in CHECKS]
    by_check = {f["check"]: f["vectors"] for f in family}
    for case in INVALID:
        assert case["name"] in by_check[case["check"]]
