"""protocol.records.header_values reads header values by position; it must give what
``rec.get`` gives for every kind of record, in any mix."""

from __future__ import annotations

import pytest

from protocol.records import (
    Record,
    header_values,
    make_record,
    make_tombstone,
    parse_record,
    render_record,
)
from tests.protocol.helpers import INSTANCE, KEY_A, request, user

NAMES = ("Origin", "ID", "Revision", "Deleted", "Title", "Status", "Request", "Created-At",
         "No-Such-Header", "Entity")


def records() -> list[Record]:
    comment = make_record("comment", {
        "ID": "C1", "Origin": KEY_A, "Instance": INSTANCE, "Revision": 3,
        "Updated-At": "2026-02-03T04:05:06Z", "Sync-Scope": "public",
        "Request": f"{KEY_A}/01HREQ", "Created-By": f"{KEY_A}/01HUSER",
        "Created-At": "2026-02-03T04:05:06Z"}, "hi\n")
    tomb = make_tombstone("request", "GONE", origin=KEY_A, instance=INSTANCE, revision=4,
                          updated_at="2026-02-04T00:00:00Z")
    built = [user(), request(), comment, tomb, user("01HUSER2", **{"Display-Name": "X"})]
    parsed = [parse_record(render_record(r)) for r in built]  # the fast path's layouts
    return [*parsed, *built, *reversed(parsed)]


def test_header_values_agree_with_get() -> None:
    recs = records()
    got = list(header_values(recs, NAMES))
    assert got == [tuple(r.get(n) for n in NAMES) for r in recs]
    assert got[3][3] == "true" and got[0][8] is None and got[2][6] == f"{KEY_A}/01HREQ"


def test_header_values_from_a_generator_of_fresh_records() -> None:
    # records made and dropped one by one: a freed layout's id may be reused by
    # another layout, which must not be read with the first one's positions
    rendered = [render_record(r) for r in records()] * 3

    def fresh():
        for data in rendered:
            yield parse_record(data)

    got = list(header_values(fresh(), NAMES))
    assert got == [tuple(parse_record(d).get(n) for n in NAMES) for d in rendered]


def test_header_values_needs_two_names() -> None:
    with pytest.raises(ValueError):
        list(header_values(records(), ("ID",)))
