"""The package graph reads top-down: imports only go down the floors, and no module cycle.

Floors (CONTRIBUTING.md has the map): ``protocol`` → ``keys`` → ``service`` → ``node``,
``hub`` (never each other) → ``conformance_tests`` → ``ops``. Every import counts, also
those inside functions: a lazy import is still an arrow, only hidden.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOORS = {"protocol": 0, "keys": 1, "service": 2, "node": 3, "hub": 3,
          "conformance_tests": 4, "ops": 5}

# Deprecated ``python3 -m service.cli`` / ``service.cli_docs`` entry points, kept for one
# release so that old scripts keep working (see CHANGELOG.md); they only forward to ops.
SHIMS = {"service.cli", "service.cli_docs"}
PROJECT = set(FLOORS) | {"web_templates"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {}
    for package in FLOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "vectors" in path.relative_to(ROOT).parts:
                continue
            found[_module_name(path)] = path
    return found


MODULES = _sources()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for sub in child.orelse:
                yield from _import_nodes(sub)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def _resolve(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> set[str]:
    """The project modules one import statement loads (a submodule, else its package)."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
        for name in candidates:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name:
                targets.add(name)
        return targets
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[:len(here) - (node.level - 1)]
        base = ".".join([*here, base] if base else here)
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if full in MODULES:
            targets.add(full)
            continue
        name = base
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            targets.add(name)
    return targets


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _import_nodes(tree):
            edges |= _resolve(module, node, path.name == "__init__.py")
        edges.discard(module)
        graph[module] = edges
    return graph


def floor_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        if module in SHIMS:
            continue
        top = module.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other == top:
                continue
            if FLOORS[other] >= FLOORS[top]:
                problems.append(f"{module} imports {target} ({top} may not import {other})")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Imports of a package's ``__init__`` by its own submodules are not cycles: Python
    loads the package first by construction."""
    pruned = {}
    for module, targets in graph.items():
        pruned[module] = {t for t in targets
                          if not (module.startswith(t + ".") and MODULES[t].name == "__init__.py")}
    return pruned


def test_imports_only_go_down_the_floors() -> None:
    problems = floor_violations(import_graph())
    assert not problems, "\n".join(problems)


def test_no_import_cycle_among_modules() -> None:
    found = cycles(_package_edges(import_graph()))
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_wb_script_is_the_ops_root_group() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["wb"] == "ops.cli:main"


def _imports_project_module(nodes: list[ast.stmt]) -> bool:
    for stmt in nodes:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["."]
            else:
                continue
            if any(n == "." or n.split(".")[0] in PROJECT for n in names):
                return True
    return False


def name_lookups(tree: ast.AST) -> list[int]:
    """Lines that load a module by name, or guard a project import with ImportError.
    (A guard around an optional third-party package is fine.)"""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                arg = node.args[0] if node.args else None
                literal = arg.value if isinstance(arg, ast.Constant) else None
                if not isinstance(literal, str) or literal.split(".")[0] in PROJECT:
                    lines.append(node.lineno)  # a project module, or a name decided at run time
        if isinstance(node, ast.Try) and _imports_project_module(node.body):
            for handler in node.handlers:
                caught = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} \
                    if handler.type is not None else {"ImportError"}
                if caught & {"ImportError", "ModuleNotFoundError", "Exception"}:
                    lines.append(handler.lineno)
    return lines


def test_no_plugin_lookup_by_name() -> None:
    """Shipped modules are plain imports: a rename must fail loudly, not drop routes/jobs."""
    problems = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        problems += [f"{module}:{line}" for line in name_lookups(tree)]
    assert not problems, "\n".join(problems)


def test_name_lookup_check_tells_a_plugin_guard_from_an_optional_dependency() -> None:
    guarded = ast.parse("try:\n    from node.auth import queries\nexcept ImportError:\n"
                        "    queries = None\n")
    by_name = ast.parse("import importlib\nm = importlib.import_module('node.sync.cli')\n")
    optional = ast.parse("try:\n    import mcp\nexcept ImportError:\n    mcp = None\n")
    assert name_lookups(guarded) == [3]
    assert name_lookups(by_name) == [2]
    assert name_lookups(optional) == []
    names = ast.parse("for n in NAMES:\n    __import__(n)\nb = __import__('base64')\n")
    assert name_lookups(names) == [2]


def test_deprecated_service_cli_shim_still_runs_the_same_group() -> None:
    from ops.cli import root
    from service.cli import root as shim_root

    assert shim_root is root
    out = subprocess.run([sys.executable, "-m", "service.cli", "keys", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "rotate" in out.stdout


# ------------------------------------------------------------------ the checks can fail

def test_floor_check_catches_an_upward_import() -> None:
    graph = {"service.db": {"node.app"}, "node.app": {"service.db"}, "hub.app": {"node.app"},
             "ops.cli": {"node.app", "hub.app"}, "keys.store": {"protocol.bundle"}}
    assert floor_violations(graph) == [
        "hub.app imports node.app (hub may not import node)",
        "service.db imports node.app (service may not import node)",
    ]


def test_cycle_check_finds_a_three_module_ring() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_function_level_and_relative_imports_count() -> None:
    tree = ast.parse("def f():\n    from node.app import create_app\n"
                     "if TYPE_CHECKING:\n    import hub.app\n")
    found: set[str] = set()
    for node in _import_nodes(tree):
        found |= _resolve("service.db", node, False)
    assert found == {"node.app"}
    rel = ast.parse("from . import queries\nfrom .. import errors\n")
    found = set()
    for node in _import_nodes(rel):
        found |= _resolve("node.auth.service", node, False)
    assert found == {"node.auth.queries", "node.errors"}


# ------------------------------------------------------------------ SQL lives in queries modules

# asyncpg calls that run SQL text (a Connection, a Pool or a Transaction's connection).
SQL_METHODS = frozenset({"execute", "executemany", "fetch", "fetchrow", "fetchval",
                         "copy_from_query", "copy_to_query", "copy_from_table", "copy_to_table",
                         "copy_records_to_table", "cursor", "prepare"})
SQL_PACKAGES = ("node", "hub")
# Modules of node/ and hub/ allowed to hold SQL although they are not queries modules.
# Plumbing only; every entry says why. (service/db.py's migrations, ops/ and tests/ are
# outside SQL_PACKAGES: migrations are plumbing, ops is the operator's floor.)
SQL_ALLOWLIST: dict[str, str] = {}  # none left: node/web.py's session SQL is in node/queries_web.py


def is_queries_module(module: str) -> bool:
    """``queries.py``, ``queries_<concern>.py`` or anything in a ``queries`` package."""
    parts = module.split(".")
    return any(p == "queries" or p.startswith("queries_") for p in parts[1:])


def _is_sql_text(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _is_sql_text(node.left) or _is_sql_text(node.right)
    return False


def sql_calls(tree: ast.AST) -> list[int]:
    """Lines that hand an SQL string literal (or f-string, or concatenation) to asyncpg."""
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_METHODS and node.args
                and _is_sql_text(node.args[0])):
            lines.append(node.lineno)
    return sorted(lines)


def test_sql_only_in_queries_modules() -> None:
    """Every feature is handlers + service + queries: SQL text outside a queries module
    is a query someone will not find (node/sync once had 86 such statements)."""
    problems = []
    for module, path in MODULES.items():
        if module.split(".")[0] not in SQL_PACKAGES or is_queries_module(module):
            continue
        if module in SQL_ALLOWLIST:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        problems += [f"{module}:{line}" for line in sql_calls(tree)]
    assert not problems, "SQL outside a queries module:\n" + "\n".join(problems)


def test_sql_allowlist_has_no_stale_entry() -> None:
    for module in SQL_ALLOWLIST:
        assert module in MODULES, f"{module} no longer exists"
        assert sql_calls(ast.parse(MODULES[module].read_text())), f"{module} has no SQL left"


def test_sql_check_catches_literals_fstrings_and_concatenation() -> None:
    code = ("async def f(conn, pool, t):\n"
            "    await conn.execute('DELETE FROM users')\n"
            "    await pool.fetch(f'SELECT * FROM {t}')\n"
            "    await conn.fetchval('SELECT ' + t)\n"
            "    await Q.fetch_things(conn, 'name')\n"
            "    await conn.execute(SQL)\n"
            "    async with conn.transaction():\n"
            "        await conn.executemany(\n"
            "            'INSERT INTO x VALUES ($1)', rows)\n")
    assert sql_calls(ast.parse(code)) == [2, 3, 4, 8]
    assert is_queries_module("node.sync.queries_keys")
    assert is_queries_module("hub.queries")
    assert is_queries_module("node.auth.queries")
    assert not is_queries_module("node.sync.importer")
    assert not is_queries_module("queries")


# ------------------------------------------------------------------ one room per concern

MAX_MODULE_LINES = 500
# Modules allowed to be longer, each with its reason. Runtime code has no entry.
LONG_MODULES = {
    # The conformance vector generator: one function per vector family, run by hand
    # (`python3 -m conformance_tests.make_vectors`), never imported by node or hub.
    # Splitting it by family is open work of #18.
    "conformance_tests.make_vectors",
    # The black-box hub conformance runner (one check per normative rule of
    # docs/protocol.md section 13), a test tool, not runtime; same open work.
    "conformance_tests.hub_runner",
}


def long_modules(limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    found = {}
    for module, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        if lines > limit:
            found[module] = lines
    return found


def test_no_runtime_module_over_500_lines() -> None:
    """A module past a few hundred lines holds more than one concern: split it (and
    re-export the names other modules import)."""
    too_long = {m: n for m, n in long_modules().items() if m not in LONG_MODULES}
    assert not too_long, "\n".join(f"{m}: {n} lines" for m, n in sorted(too_long.items()))


def test_long_module_allowlist_has_no_stale_entry() -> None:
    stale = LONG_MODULES - set(long_modules())
    assert not stale, f"no longer long, drop from LONG_MODULES: {sorted(stale)}"


def test_size_check_can_fail() -> None:
    assert long_modules(limit=100), "some module must be over 100 lines"
