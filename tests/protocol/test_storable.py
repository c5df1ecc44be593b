"""storable_records takes each schema-2 record's head and body from one decoding of its
signed bytes; they must be exactly the header block before the first blank line and the
body the parser gives, whatever the record (#24)."""

from __future__ import annotations

from protocol.records import make_tombstone
from protocol.storable import Storable, _head, storable_records
from protocol.verify import verify_bundle
from tests.protocol.helpers import INSTANCE, KEY_A, T0, request, small_bundle, user


def test_header_blocks_are_those_before_the_first_blank_line() -> None:
    records = [
        user(),
        user("01HUSER2", **{"Display-Name": "Zoë"}),  # non-ASCII header block
        request("01HREQ1", body="ünïcode body\n\nwith a blank line\n"),  # non-ASCII body
        request("01HREQ2", body="ascii body\n\nwith a blank line\n\n"),
        request("01HREQ3", body=""),
        make_tombstone("comment", "01HGONE", origin=KEY_A, instance=INSTANCE, revision=2,
                       updated_at=T0),
    ]
    verified = verify_bundle(small_bundle(records))
    kept = storable_records(verified)
    files = verified.bundle.files
    expected = [Storable(path, rec, _head(files[path]), rec.body)
                for path, rec in verified.records]
    assert kept == expected and len(kept) == len(records)
    assert all(type(s) is Storable for s in kept)
    for s in kept:
        assert files[s.path] == (s.head + "\n\n" + s.body).encode()
        assert "\n\n" not in s.head
