"""Our notes, checkpoints, proofs and tiles, checked by the Go reference code."""

from __future__ import annotations

import base64

from nacl.signing import SigningKey

from protocol import tlog as L
from tests.protocol.test_tlog import build, entries_of

SEED = b"\x05" * 32
NAME = "hub.example/log"


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def artefacts(n: int) -> dict:
    entries = entries_of(n)
    stored, frontier = build(entries)
    read = L.reader_of(stored)
    v = L.verifier_for(NAME, bytes(SigningKey(SEED).verify_key))
    notes, inclusion, consistency = [], [], []
    for size in sorted({1, 2, 3, 7, 8, 9, 255, 256, 257, 600, n} - {0}):
        if size > n:
            continue
        root = L.tree_hash(read, size)
        body = L.Checkpoint(NAME, size, root).body()
        notes.append(L.Note(body, (L.sign_note(body, NAME, SEED),)).encode().decode())
        for index in sorted({0, size // 2, size - 1}):
            inclusion.append({"index": index, "size": size, "root": b64(root),
                              "leaf": b64(entries[index]),
                              "proof": [b64(h) for h in L.inclusion_proof(read, index, size)]})
        for old in sorted({1, size // 3, size - 1, size}):
            if old:
                consistency.append({
                    "old": old, "new": size, "old_root": b64(L.tree_hash(read, old)),
                    "new_root": b64(root),
                    "proof": [b64(h) for h in L.consistency_proof(read, old, size)]})
    tiles = {}
    for level in range(3):
        width_total = n >> (L.TILE_HEIGHT * level)
        for index in range(0, (width_total + L.TILE_WIDTH - 1) // L.TILE_WIDTH):
            width = min(L.TILE_WIDTH, width_total - index * L.TILE_WIDTH)
            tiles[L.tile_path(level, index, width)] = b64(b"".join(
                stored[(L.TILE_HEIGHT * level, index * L.TILE_WIDTH + i)]
                for i in range(width)))
    return {"vkey": v.text(), "notes": notes, "entries": [b64(e) for e in entries],
            "inclusion": inclusion, "consistency": consistency, "tiles": tiles,
            "tile_size": n, "tile_root": b64(L.frontier_root(frontier))}


def test_go_verifies_everything_we_produce(go_tlog) -> None:
    case = artefacts(2_000)
    assert go_tlog(case) == []


def test_go_rejects_our_artefacts_when_tampered(go_tlog) -> None:
    case = artefacts(300)
    case["notes"][-1] = case["notes"][-1].replace("\n300\n", "\n301\n")
    case["inclusion"][-1]["leaf"] = b64(b"not the leaf")
    case["consistency"][-2]["proof"] = case["consistency"][-2]["proof"][1:]
    first = sorted(case["tiles"])[0]
    raw = bytearray(base64.b64decode(case["tiles"][first]))
    raw[0] ^= 1
    case["tiles"][first] = b64(bytes(raw))
    errors = go_tlog(case)
    assert any(e.startswith(f"note {len(case['notes']) - 1}:") for e in errors), errors
    assert any(e.startswith(f"inclusion {len(case['inclusion']) - 1}:") for e in errors)
    assert any(e.startswith(f"consistency {len(case['consistency']) - 2}:") for e in errors)
    assert any(e.startswith("tile") for e in errors), errors
