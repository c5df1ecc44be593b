"""Every invalid vector has exactly one problem, and every check has a vector.

For each invalid vector the reference must fail it with the vector's check (the
earliest in the order of ``protocol.checks.CHECKS``), under the vector's limits, and,
re-run with that one check disabled, verify it: so no other check, before or after,
objects to it. Terminal checks (nothing after them can be read: a truncated item, a
missing file) cannot be disabled; their vectors must fail the same way again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol.checks import CHECK_BY_ID, CHECKS, disabled
from protocol.errors import ProtocolError
from protocol.limits import limits_from_mapping
from protocol.verify import verify_bundle
from service.bundle_io import read_bundle

VECTORS = Path(__file__).resolve().parent / "vectors"
INVALID = json.loads((VECTORS / "cases.json").read_text())["cases"]

def _verify(case: dict) -> None:
    limits = limits_from_mapping(case.get("limits", {}))
    verify_bundle(read_bundle(VECTORS / case["path"], limits), limits=limits)


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_vector_has_exactly_one_problem(case: dict) -> None:
    with pytest.raises(ProtocolError) as info:
        _verify(case)
    assert (info.value.check, info.value.code) == (case["check"], case["code"]), info.value
    check = CHECK_BY_ID[case["check"]]
    if check.terminal:
        with disabled(check.id), pytest.raises(ProtocolError) as again:
            _verify(case)
        assert (again.value.check, again.value.code) == (case["check"], case["code"])
        return
    with disabled(check.id):
        _verify(case)  # verifies: the vector's only problem was that check


def test_every_check_has_a_vector() -> None:
    covered = {case["check"] for case in INVALID}
    missing = [c.id for c in CHECKS if c.id not in covered]
    assert not missing, f"checks without a single-problem vector: {missing}"


def test_disabling_an_unknown_check_is_an_error() -> None:
    with pytest.raises(ValueError), disabled("no.such.check"):
        pass


def test_family_index_follows_the_check_order() -> None:
    family = json.loads((VECTORS / "cases.json").read_text())["checks"]
    assert [f["check"] for f in family] == [c.id for c in CHECKS]
    by_check = {f["check"]: f["vectors"] for f in family}
    for case in INVALID:
        assert case["name"] in by_check[case["check"]]


def test_limits_of_a_vector_are_known_positive_integers() -> None:
    for case in INVALID:
        limits = case.get("limits", {})
        limits_from_mapping(limits)  # ValueError on an unknown name or a bad value
        if limits:
            # its only problem is the lowered limit: under the defaults it is valid
            verify_bundle(read_bundle(VECTORS / case["path"]))


def test_limits_from_mapping_refuses_bad_input() -> None:
    for bad in ({"max_flies": 3}, {"max_files": 0}, {"max_files": -1}, {"max_files": "x"},
                {"max_files": 2.5}, {"max_files": True}, {"max_files": "\u0663"}):
        with pytest.raises(ValueError):
            limits_from_mapping(bad)
    assert limits_from_mapping({"max_files": "7"}).max_files == 7
