"""Error codes are registries: every code the node or hub can answer is registered once
(``node.errors.NODE_ERROR_CODES``, ``hub.errors.HUB_ERROR_CODES``, with status and
meaning) and documented (``docs/api.md`` / ``docs/hub-guide.md``, "Error codes"); a code
raised anywhere in ``node/`` or ``hub/`` that is not registered fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hub.errors import HUB_ERROR_CODES, HubError
from node.errors import NODE_ERROR_CODES, AppError, bad_request
from protocol.errors import ERROR_DESCRIPTIONS

ROOT = Path(__file__).resolve().parents[1]

# Constructor name -> index of the code argument. ``forbidden()`` / ``not_found()`` have
# a default code. ``super().__init__(status, code, ...)`` in an error subclass counts too.
CODE_ARG = {"AppError": 1, "HubError": 1, "V1Error": 1, "PolicyDenied": 1,
            "bad_request": 0, "forbidden": 0, "not_found": 0, "conflict": 0, "SyncError": 0,
            "Refused": 0, "GatewayError": 0}
DEFAULT_CODE = {"forbidden": "forbidden", "not_found": "not_found"}


def raised_codes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, code) for every error built with a literal code; an f-string code becomes
    a regular expression (``request_{status}`` -> ``request_.+``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if (name == "__init__" and isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Call)
                and getattr(func.value.func, "id", "") == "super"):
            first = node.args[0] if node.args else None
            # (status, code, ...) like AppError, or (code, message) like SyncError
            index = 0 if (isinstance(first, ast.Constant) and isinstance(first.value, str)
                          and re.fullmatch(r"[a-z][a-z0-9_]*", first.value)) else 1
        elif name in CODE_ARG:
            index = CODE_ARG[name]
        elif (name.endswith("Error") and len(node.args) >= 2
              and isinstance(node.args[0], ast.Constant) and type(node.args[0].value) is int):
            index = 1  # any other (status, code, ...) error class, e.g. ToolError(AppError)
        else:
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        arg = node.args[index] if len(node.args) > index else keywords.get("code")
        if arg is None:
            if name in DEFAULT_CODE:
                found.append((node.lineno, DEFAULT_CODE[name]))
            continue
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if name == "__init__" and index == 1 and not (
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, int)):
                continue  # not an error constructor with a code
            found.append((node.lineno, re.escape(arg.value)))
        elif isinstance(arg, ast.JoinedStr):
            found.append((node.lineno, "".join(
                re.escape(v.value) if isinstance(v, ast.Constant) else ".+"
                for v in arg.values)))
    return sorted(found)


def _unregistered(package: str, registry: dict[str, tuple[int, str]]) -> list[str]:
    known = set(registry) | set(ERROR_DESCRIPTIONS)
    problems = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, pattern in raised_codes(tree):
            if not any(re.fullmatch(pattern, code) for code in known):
                problems.append(f"{path.relative_to(ROOT)}:{line}: {pattern}")
    return problems


def _documented(doc: str) -> set[str]:
    text = (ROOT / "docs" / doc).read_text()
    section = text.split("\n## Error codes", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", section, re.M))


def test_every_node_code_raised_is_registered() -> None:
    problems = _unregistered("node", NODE_ERROR_CODES)
    assert not problems, "register in node/errors.py NODE_ERROR_CODES:\n" + "\n".join(problems)


def test_every_hub_code_raised_is_registered() -> None:
    problems = _unregistered("hub", HUB_ERROR_CODES)
    assert not problems, "register in hub/errors.py HUB_ERROR_CODES:\n" + "\n".join(problems)


def test_policy_codes_are_in_both_registries() -> None:
    """service/policy.py answers for both apps."""
    tree = ast.parse((ROOT / "service" / "policy.py").read_text())
    codes = {re.sub(r"\\(.)", r"\1", p) for _, p in raised_codes(tree)}
    assert codes, "the policy module raises coded errors"
    assert codes <= set(NODE_ERROR_CODES) and codes <= set(HUB_ERROR_CODES)


def test_every_node_code_is_documented_in_api_md() -> None:
    missing = set(NODE_ERROR_CODES) - _documented("api.md")
    assert not missing, f"add to docs/api.md (Error codes): {sorted(missing)}"
    stale = _documented("api.md") - set(NODE_ERROR_CODES)
    assert not stale, f"documented but not registered: {sorted(stale)}"


def test_every_hub_code_is_documented_in_hub_guide() -> None:
    missing = set(HUB_ERROR_CODES) - _documented("hub-guide.md")
    assert not missing, f"add to docs/hub-guide.md (Error codes): {sorted(missing)}"
    stale = _documented("hub-guide.md") - set(HUB_ERROR_CODES)
    assert not stale, f"documented but not registered: {sorted(stale)}"


def test_registries_carry_a_status_and_a_meaning() -> None:
    for registry in (NODE_ERROR_CODES, HUB_ERROR_CODES):
        for code, (status, meaning) in registry.items():
            assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code
            assert status == 0 or 400 <= status <= 599, (code, status)
            assert meaning.strip(), code


# ------------------------------------------------------------------ the checks can fail

def test_an_unregistered_code_is_refused_in_tests() -> None:
    with pytest.raises(ValueError, match="unregistered node error code"):
        AppError(400, "made_up_code", "nope")
    with pytest.raises(ValueError, match="unregistered node error code"):
        bad_request("another_made_up_code", "nope")
    with pytest.raises(ValueError, match="unregistered hub error code"):
        HubError(400, "made_up_code", "nope")
    assert AppError(400, "malformed_cbor", "protocol codes pass").code == "malformed_cbor"
    assert HubError(404, "not_found", "ok").status == 404


def test_scanner_finds_literals_defaults_fstrings_and_subclasses() -> None:
    code = ("def f(s):\n"
            "    raise AppError(400, 'made_up', 'm')\n"
            "    raise not_found()\n"
            "    raise conflict(f'request_{s}', 'm')\n"
            "    raise SyncError('own_key', 'm')\n"
            "    raise AppError(400, exc.code, 'dynamic codes are not checked')\n"
            "class E(AppError):\n"
            "    def __init__(self):\n"
            "        super().__init__(400, 'wrong_code', 'm')\n"
            "class F(Exception):\n"
            "    def __init__(self):\n"
            "        super().__init__('plain message', 'not a code')\n"
            "class G(SyncError):\n"
            "    def __init__(self):\n"
            "        super().__init__('equivocation', 'm')\n"
            "raise ToolError(404, 'unknown_tool', 'm')\n")
    assert raised_codes(ast.parse(code)) == [
        (2, "made_up"), (3, "not_found"), (4, "request_.+"), (5, "own_key"), (9, "wrong_code"),
        (15, "equivocation"), (16, "unknown_tool")]


def test_the_ingest_pipeline_knows_no_http_status() -> None:
    """Domain outcomes meet HTTP statuses only in the views (hub/api.py, hub/v1.py)."""
    from hub import ingest

    assert "status" not in ingest.Outcome.__dataclass_fields__
    tree = ast.parse((ROOT / "hub" / "ingest.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert "HubError" not in imported
    statuses = [node.lineno for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and type(node.value) is int
                and 200 <= node.value <= 599]
    assert not statuses, f"HTTP-like status literals in hub/ingest.py: lines {statuses}"
    from hub.api import REFUSAL_STATUS, RESULT_STATUS

    assert set(RESULT_STATUS) == {"stored", "duplicate", "pending"}
    for code, status in REFUSAL_STATUS.items():
        assert HUB_ERROR_CODES[code][0] == status, code
