"""docs/protocol.md renders the check order and the default limits from the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from protocol.checks import CHECKS, checks_table, limits_table
from protocol.errors import ERROR_CODES
from protocol.limits import DEFAULT_LIMITS
from service.protocol_docs import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _between(text: str, name: str) -> str:
    m = re.search(rf"<!-- {name}: [^\n]*-->\n(.*?)<!-- end {name} -->", text, re.DOTALL)
    assert m, f"no {name} markers"
    return m.group(1)


def test_tables_in_the_spec_equal_the_code() -> None:
    text = DOC.read_text()
    assert render(text) == text, "regenerate: python3 -m service.protocol_docs"
    assert _between(text, "checks-table") == checks_table()
    assert _between(text, "limits-table") == limits_table()


def test_limits_table_lists_every_limit_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", limits_table(), re.MULTILINE))
    want = {f.name: f"{getattr(DEFAULT_LIMITS, f.name):,}"
            for f in dataclasses.fields(DEFAULT_LIMITS)
            if getattr(DEFAULT_LIMITS, f.name) is not None}
    want["max_container_bytes"] = "`max_bundle_bytes + 512 × max_files + 4096`"
    assert rows == want
    assert DEFAULT_LIMITS.container_bytes == (
        DEFAULT_LIMITS.max_bundle_bytes + 512 * DEFAULT_LIMITS.max_files + 4096)


def test_python_api_block_holds_only_python() -> None:
    """The old section 12 had the limits table pasted into an import line."""
    text = DOC.read_text()
    api = text[text.index("## 12. Python API"):text.index("## 13.")]
    code = api[api.index("```python"):api.index("```", api.index("```python") + 3)]
    assert "| `max_" not in code
    assert "DEFAULT_LIMITS\n" in code


def test_every_check_has_a_documented_code_and_a_unique_id() -> None:
    assert len({c.id for c in CHECKS}) == len(CHECKS)
    assert {c.code for c in CHECKS} <= set(ERROR_CODES)
