"""Render the generated tables of docs/protocol.md from the code.

    python3 -m service.protocol_docs          # rewrite the tables in docs/protocol.md
    python3 -m service.protocol_docs --check  # exit 1 if they differ from the code

The check order comes from ``protocol/checks.py`` (section 6), the default limits
from ``protocol/limits.py`` (section 8); ``tests/test_docs.py`` keeps them equal.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from protocol.checks import checks_table, limits_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
TABLES = {"checks-table": checks_table, "limits-table": limits_table}


def render(text: str) -> str:
    for name, make in TABLES.items():
        pattern = re.compile(
            rf"(<!-- {name}: [^\n]*-->\n).*?(<!-- end {name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"docs/protocol.md lacks the {name} markers")
        text = pattern.sub(lambda m, t=make(): m.group(1) + t + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    current = DOC.read_text()
    fresh = render(current)
    if "--check" in args:
        if fresh != current:
            print("docs/protocol.md tables are stale: python3 -m service.protocol_docs")
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
