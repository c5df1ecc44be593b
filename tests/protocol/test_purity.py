"""protocol/ is pure: no web, database, sibling packages or file-system access."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"

FORBIDDEN_MODULES = {
    "aiohttp", "asyncpg", "node", "hub", "keys", "service", "click", "jinja2", "os",
    "pathlib", "shutil", "tempfile", "socket", "subprocess", "sqlite3", "urllib", "http",
    "requests", "glob", "apscheduler", "pgserver",
}
# cbor2 is allowed: it decodes and encodes bytes in memory (protocol/containers.py adds
# the spec's strictness on top); the I/O modules above stay banned.
FORBIDDEN_CALLS = {"open", "exec", "eval", "__import__", "input", "print"}


def _sources() -> list[Path]:
    files = sorted(PROTOCOL.rglob("*.py"))
    assert files
    return files


def test_protocol_imports_nothing_forbidden() -> None:
    problems = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    problems.append(f"{path.name}: imports {name}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in FORBIDDEN_CALLS):
                problems.append(f"{path.name}:{node.lineno}: calls {node.func.id}()")
    assert not problems, problems


def test_importing_protocol_loads_no_web_or_db_module() -> None:
    code = (
        "import sys, protocol.verify, protocol.containers, protocol.rotation, protocol.schema1\n"
        "bad = [m for m in ('aiohttp', 'asyncpg', 'node', 'hub', 'keys', 'service', 'click')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
