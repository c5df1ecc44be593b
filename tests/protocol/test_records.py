from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.limits import Limits
from protocol.records import (
    ENTITY_HEADERS,
    make_record,
    make_tombstone,
    parse_record,
    render_record,
    replace_fields,
)
from tests.protocol.helpers import INSTANCE, KEY_A, KEY_B, T0, request, user


def test_header_orders_start_with_common_headers() -> None:
    for entity, names in ENTITY_HEADERS.items():
        assert names[:9] == ("Entity", "ID", "Origin", "Instance", "Schema-Version",
                             "Revision", "Updated-At", "Sync-Scope", "Deleted"), entity
        assert len(set(names)) == len(names)
    assert set(ENTITY_HEADERS) == {"user", "request", "comment", "invite", "vouch", "key"}


def test_render_is_canonical_and_stable() -> None:
    rec = request()
    data = render_record(rec)
    assert data.decode().startswith(
        f"Entity: request\nID: 01HREQ\nOrigin: {KEY_A}\nInstance: {INSTANCE}\n"
        f"Schema-Version: 2\nRevision: 3\nUpdated-At: {T0}\nSync-Scope: public\n"
        "Title: Need a ladder\nStatus: open\n"
    )
    assert data.endswith(b"\n\nhelp\n")
    assert render_record(parse_record(data)) == data
    # field order given to make_record does not matter
    shuffled = dict(reversed(list(rec.headers)))
    assert render_record(make_record("request", shuffled, rec.body)) == data
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(render_record(request())).hexdigest()


def test_record_properties() -> None:
    rec = request()
    assert rec.id == "01HREQ" and rec.origin == KEY_A and rec.revision == 3
    assert rec.scope == "public" and not rec.deleted
    assert rec.key == (KEY_A, "request", "01HREQ")
    assert rec.path == "requests/01HREQ.sync.txt"
    assert rec.get("Title") == "Need a ladder" and rec.get("Completed-At") is None
    assert rec.ref == f"{KEY_A}/01HREQ"


def test_tombstone() -> None:
    t = make_tombstone("request", "01HREQ", origin=KEY_A, instance=INSTANCE, revision=4,
                       updated_at=T0)
    assert t.deleted and t.body == ""
    assert render_record(t).endswith(b"Sync-Scope: public\nDeleted: true\n\n")
    assert parse_record(render_record(t)) == t


def test_make_record_refuses_line_breaks_and_unknown_headers() -> None:
    with pytest.raises(ProtocolError) as e:
        replace_fields(request(), {"Title": "two\nlines"})
    assert e.value.code == "invalid_header_value"
    with pytest.raises(ProtocolError) as e:
        replace_fields(request(), {"Title": "carriage\rreturn"})
    assert e.value.code == "invalid_header_value"
    with pytest.raises(ProtocolError) as e:
        make_record("request", {"Password": "x"})
    assert e.value.code == "unknown_header"
    with pytest.raises(ProtocolError) as e:
        make_record("widget", {})
    assert e.value.code == "unknown_entity"
    with pytest.raises(ProtocolError) as e:
        replace_fields(request(), {"ID": "../etc"})
    assert e.value.code == "invalid_id"


def test_make_record_normalises_body_and_strips_values() -> None:
    rec = make_record("comment", {"ID": "c1", "Origin": KEY_A, "Instance": INSTANCE,
                                  "Revision": 1, "Updated-At": T0,
                                  "Request": f"{KEY_B}/r1", "Created-By": f"{KEY_A}/u1",
                                  "Created-At": None}, "a\r\nb\rc\n")
    assert rec.body == "a\nb\nc\n"
    assert replace_fields(rec, {"Created-By": f"  {KEY_A}/u2  "})["Created-By"] == f"{KEY_A}/u2"


GOOD = render_record(user())


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (GOOD.replace(b"bio", b"b\xffo"), "not_utf8"),
        (GOOD.replace(b"bio", b"b\x00o"), "nul_byte"),
        (GOOD.replace(b"\n", b"\r\n"), "bad_line_ending"),
        (GOOD.replace(b"\n\n", b"\n"), "malformed_record"),
        (b"\n\nbody", "malformed_record"),
        (GOOD.replace(b"Username: ", b"Username "), "malformed_record"),
        (GOOD.replace(b"Username: user01huser", b"Username: a\nUsername: b"), "duplicate_header"),
        (GOOD.replace(b"Username: user01huser", b"Username: a\nRevision: 2"), "duplicate_header"),
        (GOOD.replace(b"Username: user01huser", b"Display-Name: d\nUsername: a"), "header_order"),
        (GOOD.replace(b"Username: user01huser", b"Username: a\nTitle: b"), "unknown_header"),
        (GOOD.replace(b"Revision: 1\n", b""), "missing_header"),
        (GOOD.replace(b"Username: user01huser\n", b""), "missing_header"),
        (GOOD.replace(b"Entity: user\n", b""), "missing_header"),
        (b"ID: x\nEntity: user\n\n", "header_order"),
        (GOOD.replace(b"Entity: user", b"Entity: widget"), "unknown_entity"),
        (GOOD.replace(b"Schema-Version: 2", b"Schema-Version: 7"), "unsupported_schema"),
        (GOOD.replace(b"Schema-Version: 2", b"Schema-Version: 1"), "schema_mismatch"),
        (GOOD.replace(b"Revision: 1", b"Revision: 01"), "invalid_header_value"),
        (GOOD.replace(b"Revision: 1", b"Revision: -1"), "invalid_header_value"),
        (GOOD.replace(b"Updated-At: " + T0.encode(), b"Updated-At: yesterday"),
         "invalid_header_value"),
        (GOOD.replace(KEY_A.encode(), b"NOTHEX"), "invalid_header_value"),
        (GOOD.replace(b"Username: user01huser", b"Username: "), "invalid_header_value"),
        (GOOD.replace(b"Username: user01huser", b"Username:"), "invalid_header_value"),
        (GOOD.replace(b"Username: user01huser", b"Username:  padded"), "invalid_header_value"),
        (GOOD.replace(b"Username: user01huser", b"Username: tab\there"), "invalid_header_value"),
        (GOOD.replace(b"ID: 01HUSER", b"ID: a/b"), "invalid_id"),
        (GOOD.replace(b"Sync-Scope: public", b"Sync-Scope: friends"), "invalid_header_value"),
        (GOOD.replace(b"Sync-Scope: public", b"Sync-Scope: public\nDeleted: yes"),
         "invalid_header_value"),
        (GOOD.replace(b"Sync-Scope: public", b"Sync-Scope: public\nDeleted: true"),
         "malformed_record"),
    ],
)
def test_parse_rejections(data: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_record(data)
    assert e.value.code == code, str(e.value)


def test_size_limits() -> None:
    small = Limits(max_record_bytes=100, max_header_bytes=50, max_headers=5)
    with pytest.raises(ProtocolError) as e:
        parse_record(GOOD + b"x" * 200, small)
    assert e.value.code == "record_too_large"
    with pytest.raises(ProtocolError) as e:
        parse_record(GOOD, Limits(max_header_bytes=50))
    assert e.value.code == "header_too_large"
    with pytest.raises(ProtocolError) as e:
        parse_record(GOOD, Limits(max_headers=5))
    assert e.value.code == "header_too_large"


single_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x7f"),
    min_size=1, max_size=60,
).map(str.strip).filter(bool)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)
bodies = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                        blacklist_characters="\x00\r"), max_size=300)


@given(rid=ids, title=single_line, body=bodies, revision=st.integers(1, 10**15),
       status=st.sampled_from(["open", "completed"]), completed=st.booleans())
def test_render_parse_render_round_trip(rid: str, title: str, body: str, revision: int,
                                        status: str, completed: bool) -> None:
    rec = make_record("request", {
        "ID": rid, "Origin": KEY_A, "Instance": INSTANCE, "Revision": revision,
        "Updated-At": T0, "Title": title, "Status": status, "Created-By": f"{KEY_B}/{rid}",
        "Completed-At": T0 if completed else None,
    }, body)
    data = render_record(rec)
    parsed = parse_record(data)
    assert parsed == rec
    assert render_record(parsed) == data


@given(st.binary(max_size=400))
def test_parser_only_raises_protocol_errors(data: bytes) -> None:
    try:
        rec = parse_record(data)
    except ProtocolError:
        return
    assert render_record(rec) == data


@given(st.data())
def test_mutated_records_either_fail_cleanly_or_round_trip(data: st.DataObject) -> None:
    raw = bytearray(GOOD)
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        rec = parse_record(bytes(raw))
    except ProtocolError:
        return
    assert render_record(rec) == bytes(raw)
