from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.errors import ERROR_CODES, ProtocolError

ROOT = Path(__file__).resolve().parents[2]


def test_codes_are_snake_case_and_unique() -> None:
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)
    for code in ERROR_CODES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code)


def test_every_code_is_documented() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text()
    missing = [code for code in ERROR_CODES if f"`{code}`" not in doc]
    assert not missing, f"undocumented error codes: {missing}"


def test_every_code_raised_in_protocol_is_declared() -> None:
    used = set()
    for path in (ROOT / "protocol").rglob("*.py"):
        used |= set(re.findall(r'ProtocolError\(\s*"([a-z_0-9]+)"', path.read_text()))
    assert used, "no codes found"
    assert used <= set(ERROR_CODES), used - set(ERROR_CODES)


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        ProtocolError("no_such_code", "x")


def test_error_fields() -> None:
    err = ProtocolError("digest_mismatch", "bad", "users/x.sync.txt")
    assert (err.code, err.message, err.path) == ("digest_mismatch", "bad", "users/x.sync.txt")
    assert str(err) == "digest_mismatch: bad [users/x.sync.txt]"
    assert err.to_dict()["code"] == "digest_mismatch"
