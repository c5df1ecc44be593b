"""protocol.tlog against a naive RFC 6962 tree, and from the forger's side."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import tlog as L
from protocol.errors import ProtocolError

SEED = bytes(range(32))


def naive_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return L.EMPTY_ROOT
    if len(leaves) == 1:
        return L.leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return L.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


def build(entries: list[bytes]) -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    stored: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    for i, e in enumerate(entries):
        rows, frontier = L.append_stored(i, frontier, L.leaf_hash(e))
        stored.update({(lv, ix): h for lv, ix, h in rows})
    return stored, frontier


def entries_of(n: int) -> list[bytes]:
    return [L.leaf_entry(i + 1, "alpha.example", i, f"sha256:{i:064x}") for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_roots_and_proofs_match_the_definition(n: int, data: st.DataObject) -> None:
    entries = entries_of(n)
    stored, frontier = build(entries)
    read = L.reader_of(stored)
    for size in {1, n, data.draw(st.integers(1, n))}:
        root = naive_root(entries[:size])
        assert L.tree_hash(read, size) == root
        index = data.draw(st.integers(0, size - 1))
        proof = L.inclusion_proof(read, index, size)
        L.verify_inclusion(L.leaf_hash(entries[index]), index, size, proof, root)
        # the wrong leaf, index or root is refused
        other = (index + 1) % size
        if other != index:
            with pytest.raises(L.TlogError):
                L.verify_inclusion(L.leaf_hash(entries[other]), index, size, proof, root)
        with pytest.raises(L.TlogError):
            L.verify_inclusion(L.leaf_hash(entries[index]), index, size, proof,
                               naive_root(entries[:size - 1] + [b"forged"]))
        old = data.draw(st.integers(0, size))
        cproof = L.consistency_proof(read, old, size)
        L.verify_consistency(old, naive_root(entries[:old]), size, root, cproof)
        if 0 < old < size:
            forged = naive_root(entries[:old - 1] + [b"forged"])
            with pytest.raises(L.TlogError):
                L.verify_consistency(old, forged, size, root, cproof)
            with pytest.raises(L.TlogError):
                L.verify_consistency(old, naive_root(entries[:old]), size, root, cproof[:-1])
    assert L.frontier_root(frontier) == naive_root(entries)
    assert [stored[c] for c in L.frontier_coordinates(n)] == frontier


def test_needed_names_exactly_the_hashes_a_proof_reads() -> None:
    stored, _ = build(entries_of(1000))
    want = L.needed(lambda r: L.inclusion_proof(r, 517, 999))
    only = {k: stored[k] for k in want}
    assert L.inclusion_proof(L.reader_of(only), 517, 999) == \
        L.inclusion_proof(L.reader_of(stored), 517, 999)
    assert len(want) <= 2 * 10


def test_same_size_two_roots_is_inconsistent() -> None:
    with pytest.raises(L.TlogError, match="same tree size"):
        L.verify_consistency(5, b"a" * 32, 5, b"b" * 32, [])
    with pytest.raises(L.TlogError):
        L.verify_consistency(6, b"a" * 32, 5, b"a" * 32, [])


def test_checkpoint_and_signed_note_round_trip_and_tampering() -> None:
    from nacl.signing import SigningKey

    pub = bytes(SigningKey(SEED).verify_key)
    v = L.verifier_for("hub.example/log", pub)
    assert L.parse_verifier(v.text()) == v
    cp = L.Checkpoint("hub.example/log", 7, b"\x11" * 32)
    note = L.Note(cp.body(), (L.sign_note(cp.body(), v.name, SEED),)).encode()
    got, _ = L.verify_checkpoint(note, v)
    assert got == cp
    assert note.startswith(b"hub.example/log\n7\n" + b"ER" * 21 + b"E=\n\n\xe2\x80\x94 ")
    # a changed size, another key, a stripped signature: all refused
    with pytest.raises(L.TlogError):
        L.verify_checkpoint(note.replace(b"\n7\n", b"\n8\n"), v)
    other = L.verifier_for("hub.example/log", bytes(SigningKey(b"\x01" * 32).verify_key))
    with pytest.raises(L.TlogError):
        L.verify_checkpoint(note, other)
    with pytest.raises(L.TlogError):
        L.verify_checkpoint(cp.body() + b"\n", v)
    with pytest.raises(L.TlogError):
        L.parse_checkpoint(b"o\n007\n" + base64.b64encode(b"\0" * 32) + b"\n")


def test_cosignature_binds_time_and_checkpoint() -> None:
    from nacl.signing import SigningKey

    wseed = b"\x07" * 32
    w = L.verifier_for("witness.example", bytes(SigningKey(wseed).verify_key),
                       alg=L.ALG_COSIGNATURE_V1)
    cp = L.Checkpoint("hub.example/log", 3, b"\x22" * 32).body()
    note = L.Note(cp, (L.sign_note(cp, "hub.example/log", SEED),
                       L.cosign(cp, w.name, wseed, 1_700_000_000)))
    parsed = L.parse_note(note.encode())
    assert L.verify_cosignature(parsed, w) == 1_700_000_000
    assert L.count_cosignatures(parsed, [w]) == 1
    moved = L.Note(cp.replace(b"\n3\n", b"\n4\n"), parsed.signatures)
    assert L.count_cosignatures(moved, [w]) == 0


def test_tile_paths() -> None:
    assert L.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert L.tile_path("entries", 5, 3) == "tile/entries/005.p/3"
    assert L.parse_tile_path("tile/1/x001/x234/067.p/8") == L.TileRef(1, 1234067, 8)
    for bad in ("tile/0/1234067", "tile/0/x001/234/067", "tile/00/000", "tile/0/000.p/256",
                "tile/0/000.p/0", "tile/0/x000/001", "tile/-1/000", "x/0/000"):
        with pytest.raises(L.TlogError):
            L.parse_tile_path(bad)
    data = L.entry_bundle([b"a", b"", b"xyz"])
    assert L.split_entry_bundle(data) == [b"a", b"", b"xyz"]
    with pytest.raises(L.TlogError):
        L.split_entry_bundle(data[:-1])


def test_leaf_is_canonical() -> None:
    e = L.leaf_entry(4, "alpha.example", None, "sha256:ab")
    assert L.parse_leaf(e) == L.LeafFacts(4, "alpha.example", None, "sha256:ab")
    with pytest.raises(L.TlogError):
        L.parse_leaf(e.replace(b"hub-seq 4", b"hub-seq 04"))
    with pytest.raises(ProtocolError):
        L.leaf_entry(1, "a\nb", 1, "d")
