"""The differential fuzzer, run against this implementation (bounded and seeded).

Our verifier must agree with itself: the same mutated bundle, given in two different
containers (re-encoding never changes a bundle's meaning), gets the same verdict
in-process and through ``wb sync verify --json`` in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conformance_tests.fuzz import MUTATIONS, _apply, fuzz, reseal, run_verifier, valid_seeds

ROOT = Path(__file__).resolve().parents[1]
CLI = f"{sys.executable} -m ops.cli sync verify --json {{trust_args}} {{limits_args}} {{path}}"


def test_reference_agrees_with_itself_under_reencoding() -> None:
    report = fuzz("reference", "reference", seed=19, seconds=600, max_cases=600)
    assert report.cases == 600
    assert not report.disagreements, report.summary()
    # the cases reach deep checks, not only digests: several distinct verdicts
    assert report.verdicts.get("valid", 0) > 0
    assert len(report.verdicts) >= 12, report.verdicts
    # a quarter of the cases sit at the edge of one limit, valid and invalid
    assert 100 < report.limited < 200
    assert report.verdicts.get("too_many_files", 0) > 0


def test_cli_verifier_agrees_with_the_reference(tmp_path: Path) -> None:
    report = fuzz(CLI, "reference", seed=7, seconds=600, max_cases=12, out=tmp_path)
    assert report.cases == 12
    assert not report.disagreements, report.summary()


def test_a_lying_verifier_is_caught_and_shrunk(tmp_path: Path) -> None:
    """A verifier that accepts everything disagrees, and the reproducer is written."""
    liar = tmp_path / "liar.py"
    liar.write_text("import sys\nprint('{}')\nsys.exit(0)\n")
    report = fuzz(f"{sys.executable} {liar} {{path}}", "reference", seed=3, seconds=600,
                  max_cases=15, out=tmp_path / "out")
    assert report.disagreements
    d = report.disagreements[0]
    assert d.verdicts[0] == (True, None) and d.verdicts[1][0] is False
    assert len(d.mutations) <= 4
    saved = json.loads((d.reproducer / "report.json").read_text())
    assert saved["verdicts"][1][1] == d.verdicts[1][1]


def test_same_seed_same_cases() -> None:
    a = fuzz("reference", seed=5, seconds=600, max_cases=50)
    b = fuzz("reference", seed=5, seconds=600, max_cases=50)
    assert a.verdicts == b.verdicts


def test_reseal_makes_a_mutated_record_reach_the_record_checks(tmp_path: Path) -> None:
    from conformance_tests.fuzz import SIGNING_SEEDS, write_container

    name, files, trusted = next(s for s in valid_seeds() if s[0] == "v2-snapshot")
    files = dict(files)
    files["requests/01J0REQ1.sync.txt"] = files["requests/01J0REQ1.sync.txt"].replace(
        b"Status: open", b"Status: Open")
    path = write_container(reseal(files, SIGNING_SEEDS[name]), "cbor", tmp_path)
    assert run_verifier("reference", path, trusted)[0] == (False, "invalid_header_value")
    assert "reseal" not in MUTATIONS and _apply(files, []) == files


def test_wb_conformance_fuzz_cli(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ops.cli", "conformance", "fuzz", "--verifier", "reference",
         "--seed", "1", "--max-cases", "30", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "30 cases (" in proc.stdout and ", 0 disagreements" in proc.stdout


def test_limits_reach_a_verifier_only_through_limits_args(tmp_path: Path) -> None:
    """A verifier that ignores its limits disagrees, and the reproducer names them; a
    template without {limits_args} is never given a limited case (it cannot apply it)."""
    ignorer = tmp_path / "ignorer.py"
    ignorer.write_text(
        f"import json, sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from protocol.errors import ProtocolError\n"
        "from protocol.verify import verify_bundle\n"
        "from service.bundle_io import read_bundle\n"
        "try:\n"
        "    verify_bundle(read_bundle(sys.argv[-1]), trust=lambda o, k: True)\n"
        "except ProtocolError as exc:\n"
        "    print(json.dumps({'code': exc.code}))\n"
        "    sys.exit(1)\n")
    report = fuzz(f"{sys.executable} {ignorer} {{limits_args}} {{path}}", "reference",
                  seed=19, seconds=600, max_cases=20, out=tmp_path / "out")
    assert report.limited and report.disagreements, report.summary()
    limited = [d for d in report.disagreements if d.limits]
    assert limited, report.summary()
    saved = json.loads((limited[0].reproducer / "report.json").read_text())
    assert saved["limits"] == limited[0].limits
    plain = fuzz(f"{sys.executable} {ignorer} {{path}}", "reference", seed=19, seconds=600,
                 max_cases=5)
    assert plain.limited == 0
