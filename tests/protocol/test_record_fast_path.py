"""parse_record's fast path is a shortcut, never a second opinion: on every record file
of the conformance vectors, and on edits of them around the fast path's conditions
(limits, blank line, non-ASCII, tombstones, bodies), it gives what the authoritative
parser gives: the same record, or the same error from the same check (#24)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.records import _parse_slow, make_tombstone, parse_record, render_record
from tests.protocol.helpers import INSTANCE, KEY_A, T0, request, user

VECTORS = Path(__file__).resolve().parents[2] / "conformance_tests" / "vectors"


def _outcome(parse: object, data: bytes, limits: Limits) -> object:
    try:
        rec = parse(data, limits, None)  # type: ignore[operator]
    except ProtocolError as exc:
        return ("refused", exc.code, exc.check, exc.message)
    return ("parsed", rec.entity, rec.headers, rec.body, rec._raw in (None, data))


def _fast(data: bytes, limits: Limits, path: None) -> object:
    return parse_record(data, limits, path=path)


def _corpus() -> list[bytes]:
    files = sorted(p for p in VECTORS.rglob("*.sync.txt") if p.name != "manifest.sync.txt")
    base = [p.read_bytes() for p in files]
    tomb = render_record(make_tombstone("user", "01HGONE", origin=KEY_A, instance=INSTANCE,
                                        revision=2, updated_at=T0))
    own = [render_record(user()), render_record(request()), tomb,
           render_record(user(**{"Display-Name": "Zoë Ünïcode"}))]
    edits: list[bytes] = []
    for data in own:
        head, _, body = data.partition(b"\n\n")
        edits += [
            data, head + b"\n\n", head + b"\n\nmore\n", head + b"\n", head, b"\n\n" + data,
            head + b"\n\n\n", head.replace(b"\n", b"\n\n", 1) + b"\n\n" + body,
            head + b"\nExtra: x\n\n" + body, data.replace(b"\n", b"\r\n"), data + b"\x00",
            head.replace(b"Instance: ", b"Instance:  ") + b"\n\n" + body,
            head + b"\n\n" + "é\n".encode(), head.replace(b"\n", b"\n\xe9", 1),
        ]
    return base + edits


@pytest.mark.parametrize("limits", [
    DEFAULT_LIMITS, Limits(max_header_bytes=200), Limits(max_header_bytes=260),
    Limits(max_headers=6), Limits(max_headers=9), Limits(max_record_bytes=300),
], ids=["default", "header200", "header260", "headers6", "headers9", "record300"])
def test_the_fast_path_agrees_with_the_authoritative_parser(limits: Limits) -> None:
    corpus = _corpus()
    assert len(corpus) > 300
    took_fast_path = 0
    for data in corpus:
        fast = _outcome(_fast, data, limits)
        assert fast == _outcome(_parse_slow, data, limits), data[:200]
        if fast[0] == "parsed":
            took_fast_path += parse_record(data, limits)._headers is None  # not built yet
    if limits == DEFAULT_LIMITS:
        assert took_fast_path > 100  # the corpus reaches the fast path, not only refusals


def test_the_header_limits_are_exact_on_the_fast_path() -> None:
    data = render_record(user(**{"Display-Name": "Zoë"}))
    head = data.partition(b"\n\n")[0]
    assert parse_record(data, Limits(max_header_bytes=len(head))).get("Display-Name") == "Zoë"
    with pytest.raises(ProtocolError) as refused:
        parse_record(data, Limits(max_header_bytes=len(head) - 1))
    assert refused.value.check == "record.header_bytes"
    lines = head.count(b"\n") + 1
    assert parse_record(data, Limits(max_headers=lines)).entity == "user"
    with pytest.raises(ProtocolError) as refused:
        parse_record(data, Limits(max_headers=lines - 1))
    assert refused.value.check == "record.header_count"
