"""The grammars of docs/protocol.md sections 1, 3 and 4, from the attacker's side.

Every case is a well-formed record, manifest or signature with one value changed, so
the expected code can only come from the rule under test. The fast parser and the
slow one must agree (the slow one is forced by a disabled no-op check).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.checks import disabled
from protocol.errors import ProtocolError
from protocol.limits import Limits
from protocol.manifest import parse_manifest
from protocol.records import TIMESTAMP_RE, parse_record, render_record
from tests.protocol.helpers import request, user

GOOD = render_record(user())


def code_of(data: bytes, limits: Limits | None = None) -> str | None:
    try:
        parse_record(data, limits or Limits())
    except ProtocolError as exc:
        return exc.code
    return None


def with_header(old: bytes, new: bytes, base: bytes = GOOD) -> bytes:
    assert old in base
    return base.replace(old, new, 1)


def set_value(name: str, value: str, base: bytes = GOOD) -> bytes:
    """``base`` with the line ``name: ...`` replaced by ``name: value``."""
    lines = base.split(b"\n")
    i = next(n for n, ln in enumerate(lines) if ln.startswith(name.encode() + b": "))
    lines[i] = f"{name}: {value}".encode()
    return b"\n".join(lines)


@pytest.mark.parametrize(
    ("stamp", "ok"),
    [
        ("2024-02-29T00:00:00Z", True),   # leap year
        ("2000-02-29T00:00:00Z", True),   # divisible by 400
        ("1900-02-29T00:00:00Z", False),  # century, not by 400
        ("2026-02-29T00:00:00Z", False),
        ("2026-02-30T00:00:00Z", False),
        ("2026-04-31T00:00:00Z", False),
        ("2026-12-31T23:59:59.999999999Z", True),
        ("2026-12-31T23:59:60Z", False),  # no leap second
        ("2026-12-31T24:00:00Z", False),
        ("2026-13-01T00:00:00Z", False),
        ("2026-00-01T00:00:00Z", False),
        ("2026-01-00T00:00:00Z", False),
        ("2026-01-01T00:00:00.Z", False),
        ("2026-01-01T00:00:00.1234567890Z", False),
        ("2026-01-01t00:00:00Z", False),
        ("2026-01-01T00:00:00z", False),
        ("2026-01-01T00:00:00+00:00", False),
        ("٢٠٢٦-01-01T00:00:00Z", False),  # Arabic-Indic digits are not digits here
    ],
)
def test_timestamps_are_calendar_valid(stamp: str, ok: bool) -> None:
    assert (code_of(set_value("Updated-At", stamp)) is None) is ok, stamp
    assert (TIMESTAMP_RE.fullmatch(stamp) is not None) is ok


@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)))
def test_every_real_instant_is_a_timestamp(moment: dt.datetime) -> None:
    assert TIMESTAMP_RE.fullmatch(f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S") + "Z")


@pytest.mark.parametrize(
    ("instance", "code"),
    [
        ("https://a.example.org", None),
        ("http://127.0.0.1:8080/node/", None),
        ("https://[::1]:8443", None),
        ("javascript:alert(1)", "invalid_instance"),
        ("JAVASCRIPT://x", "invalid_instance"),
        ("HTTPS://a.example.org", "invalid_instance"),
        ("https://", "invalid_instance"),
        ("https://user@a.example.org", "invalid_instance"),
        ("a.example.org", "invalid_instance"),
        ("data:text/html,hi", "invalid_instance"),
        ("https://a.example.org/" + "x" * 2030, "invalid_instance"),  # over 2048
        ("https://a.example.org/" + "x" * 2020, None),
    ],
)
def test_instance_is_an_absolute_http_url(instance: str, code: str | None) -> None:
    assert code_of(set_value("Instance", instance, render_record(request()))) == code


@pytest.mark.parametrize("char", ["\u0085", "\u2028", "\u2029", "\x80", "\x9f", "\x7f", "\t"])
def test_control_characters_in_headers(char: str) -> None:
    assert code_of(set_value("Username", f"a{char}b")) == "invalid_header_value"


@pytest.mark.parametrize("space", [" ", "\u00a0", "\u3000", "\u2007", "\u202f", "\u1680"])
def test_values_are_not_edged_by_white_space(space: str) -> None:
    for edged in (space + "x", "x" + space):
        assert code_of(set_value("Username", edged)) == "invalid_header_value", repr(edged)
    assert code_of(set_value("Username", f"a{space}b")) is None


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"username: x", "malformed_record"),
        (b"Username : x", "malformed_record"),
        (b"Username:x", "malformed_record"),
        (b"User_name: x", "malformed_record"),
        (b"Username--x: x", "malformed_record"),
        (b"Username:", "invalid_header_value"),
        (b"Username: ", "invalid_header_value"),
    ],
)
def test_header_name_grammar(line: bytes, code: str) -> None:
    value = GOOD.split(b"Username: ")[1].split(b"\n")[0]
    assert code_of(GOOD.replace(b"Username: " + value, line)) == code


def test_header_bytes_are_utf8_bytes_not_characters() -> None:
    head_len = len(GOOD.split(b"\n\n")[0])
    value = GOOD.split(b"Username: ")[1].split(b"\n")[0]
    # 30 three-byte characters: 30 characters more, 90 bytes more
    data = GOOD.replace(b"Username: " + value, b"Username: " + ("€" * 30).encode())
    limit = Limits(max_header_bytes=head_len - len(value) + 60)
    assert code_of(data, limit) == "header_too_large"
    assert code_of(data, Limits(max_header_bytes=head_len - len(value) + 90)) is None


def test_checks_run_over_all_lines_in_the_documented_order() -> None:
    # an unknown header late in the block beats a duplicate early in it
    data = with_header(b"Username: ", b"Username: dup\nUsername: ")
    data = data.replace(b"\n\n", b"\nPassword: x\n\n", 1)
    assert code_of(data) == "unknown_header"
    # Schema-Version is judged before the header set
    assert code_of(data.replace(b"Schema-Version: 2", b"Schema-Version: 1")) == "schema_mismatch"


def test_vouch_and_key_bodies_are_empty() -> None:
    from protocol.records import make_record
    from tests.protocol.helpers import KEY_A

    with pytest.raises(ProtocolError) as e:
        make_record("vouch", {"ID": "V1", "Origin": KEY_A, "Instance": "https://a.example",
                              "Revision": 1, "Updated-At": "2026-01-01T00:00:00Z",
                              "Inviter": f"{KEY_A}/U1", "Invitee": f"{KEY_A}/U2"}, "hi\n")
    assert e.value.code == "malformed_record"


def test_manifest_paths_with_unicode_space_are_unsafe_not_malformed() -> None:
    line = "0" * 64 + "  users/a\u00a0b.sync.txt\n"
    with pytest.raises(ProtocolError) as e:
        parse_manifest(line.encode())
    assert e.value.code == "unsafe_path"


def test_disabled_checks_do_not_change_valid_input() -> None:
    with disabled("record.header_order"):
        assert parse_record(GOOD) == parse_record(GOOD)
