from __future__ import annotations

from pathlib import Path

import pytest

from protocol.bundle import bundle_from_files, sign_files
from protocol.errors import ProtocolError
from protocol.manifest import Manifest, render_manifest
from protocol.records import parse_record, render_record
from protocol.schema1 import parse_schema1_record, split_request_body
from protocol.verify import verify_bundle
from tests.protocol.helpers import KEY_A, SEED_A, SEED_B

ORIGINAL = Path(__file__).resolve().parents[2] / "conformance_tests" / "original-v1"
ORIGIN = "ec2609150b8fe2ae"


def original_files() -> dict[str, bytes]:
    return {p.relative_to(ORIGINAL).as_posix(): p.read_bytes()
            for p in sorted(ORIGINAL.rglob("*")) if p.is_file()}


def test_original_bundle_verifies_and_maps() -> None:
    v = verify_bundle(bundle_from_files(original_files()))
    assert v.schema_version == 1 and v.origin == v.key_id == ORIGIN
    assert len(v.verified) == 5 and v.withheld == []
    by = {(r.entity, r.id): r for _, r in v.records}
    assert sorted(by) == [("comment", "1"), ("comment", "2"), ("comment", "3"),
                          ("invite", "81b672"), ("request", "1"), ("request", "2"),
                          ("user", "1"), ("user", "2")]
    req = by[("request", "1")]
    assert req.origin == ORIGIN and req["Created-By"] == f"{ORIGIN}/1"
    assert req.body == "[a] Need a ride to the clinic Tuesday\n"
    assert req.get("Contact-Email") is None
    c2 = by[("comment", "2")]
    assert c2["Request"] == f"{ORIGIN}/1" and c2["Created-By"] == f"{ORIGIN}/1"
    assert c2.body == "Thank you!\nSee you then.\n"
    assert c2["Created-At"] == "2026-11-25T21:07:18.726036Z"
    assert by[("user", "1")]["Contact-Email"] == "aadmin@example.org"
    assert by[("user", "2")].get("Contact-Email") is None  # empty value dropped
    invite = by[("invite", "81b672")]
    assert invite["Auto-Approve"] == "true"
    assert invite.body == "Gratitude:\nthanks\n\nSupport:\nwelcome\n"
    assert req.revision == 1795640838630112  # Updated-At in microseconds
    for _, rec in v.records:
        assert parse_record(render_record(rec)) == rec  # mapped records are valid schema 2


def test_two_nodes_with_the_same_integer_ids_never_collide() -> None:
    files = {p: d for p, d in original_files().items() if p.endswith(".sync.txt")
             and p != "manifest.sync.txt"}
    manifest = render_manifest(Manifest(1, tuple(
        (p, __import__("hashlib").sha256(d).hexdigest()) for p, d in sorted(files.items()))))
    keys_a = {r.key for _, r in verify_bundle(
        sign_files(files, manifest, seed=SEED_A, signed_at="2026-01-01T00:00:00Z")).records}
    keys_b = {r.key for _, r in verify_bundle(
        sign_files(files, manifest, seed=SEED_B, signed_at="2026-01-01T00:00:00Z")).records}
    assert len(keys_a) == len(keys_b) == 8
    assert not keys_a & keys_b
    assert all(k[0] == KEY_A for k in keys_a)


def test_older_one_line_comment_headers() -> None:
    body = ("Description:\nLend me a drill\n\nComments:\n"
            "--- id=7 user_id=3 username=zoe created_at=2025-01-01T10:00:00 sync_scope=public\n"
            "Sure\n---\nstill Zoe's text\n\n"
            "--- id=8 user_id=4 username=yan created_at=2025-01-02T10:00:00 sync_scope=private\n"
            "hidden\n")
    desc, comments = split_request_body(body)
    assert desc == "Lend me a drill\n"
    assert [(m["Comment-ID"], t) for m, t in comments] == [
        ("7", "Sure\n---\nstill Zoe's text\n"), ("8", "hidden\n")]
    data = ("Entity: request\nID: 5\nInstance: http://x\nSchema-Version: 1\n"
            "Updated-At: 2025-01-03T00:00:00Z\nSync-Scope: public\nTitle: Drill\nStatus: open\n"
            "Contact-Email: \nCreated-By: 3\n\n" + body).encode()
    recs = parse_schema1_record(data, KEY_A, path="requests/request_5.sync.txt")
    assert [(r.entity, r.id) for r in recs] == [("request", "5"), ("comment", "7")]  # 8 private


def test_dashes_inside_a_comment_are_text() -> None:
    body = "Description:\nx\n\nComments:\n---\nComment-ID: 1\nUser-ID: 2\n\nabove\n---\nbelow\n"
    _, comments = split_request_body(body)
    assert comments[0][1] == "above\n---\nbelow\n"


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("Entity: user", "Entity: group", "unknown_entity"),
        ("Schema-Version: 1", "Schema-Version: 2", "schema_mismatch"),
        ("Schema-Version: 1", "Schema-Version: 9", "unsupported_schema"),
        ("Sync-Scope: public", "Sync-Scope: private", "not_public"),
        ("Username: abob", "Username: abob\nPassword: x", "unknown_header"),
        ("Username: abob", "Username: abob\nUsername: b", "duplicate_header"),
        ("ID: 2", "ID: 3", "path_mismatch"),
        ("Updated-At: 2026-11-25T21:07:18.613474Z", "Updated-At: soon", "malformed_schema1"),
    ],
)
def test_schema1_rejections(old: str, new: str, code: str) -> None:
    data = (ORIGINAL / "users" / "user_2.sync.txt").read_text().replace(old, new, 1).encode()
    with pytest.raises(ProtocolError) as e:
        parse_schema1_record(data, ORIGIN, path="users/user_2.sync.txt")
    assert e.value.code == code


def test_empty_created_by_from_the_original_hub_maps_to_user_0() -> None:
    """The original hub's real download (shared/interop/original-v1-wire) writes
    ``Created-By:`` empty for a request whose creator is not shared."""
    data = (b"Entity: request\nID: 1\nInstance: http://a.example\nSchema-Version: 1\n"
            b"Updated-At: 2026-12-02T00:33:36.279568Z\nSync-Scope: public\nTitle: Sofa\n"
            b"Status: open\nContact-Email: \nCreated-By: \n\nDescription:\nSofa move\n")
    [req] = parse_schema1_record(data, ORIGIN, path="requests/request_1.sync.txt")
    assert req["Created-By"] == f"{ORIGIN}/0" and req.get("Contact-Email") is None
    bad = data.replace(b"Created-By: \n", b"Created-By: x y\n")
    with pytest.raises(ProtocolError) as exc:
        parse_schema1_record(bad, ORIGIN, path="requests/request_1.sync.txt")
    assert exc.value.code == "malformed_schema1"
