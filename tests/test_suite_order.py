"""The suite runs its longest tests first (tests/conftest.py, SLOW_FIRST): every listed
path exists, and the reordering keeps every test, moving only the listed ones."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.conftest import SLOW_FIRST, slow_first

ROOT = Path(__file__).resolve().parents[1]


def test_every_slow_path_exists():
    assert [p for p in SLOW_FIRST if not (ROOT / p).exists()] == []


def test_slow_files_go_first_in_their_order_and_nothing_is_lost():
    ids = ["tests/a/test_x.py::t1", f"{SLOW_FIRST[1]}::t2", "tests/a/test_x.py::t3",
           f"{SLOW_FIRST[0]}::t4", f"{SLOW_FIRST[1]}::t5"]
    items = [SimpleNamespace(nodeid=i) for i in ids]
    got = [i.nodeid for i in slow_first(items)]  # type: ignore[arg-type]
    assert got == [ids[3], ids[1], ids[4], ids[0], ids[2]]
