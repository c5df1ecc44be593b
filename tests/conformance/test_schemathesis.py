"""Fuzz both apps against their own OpenAPI documents: no 5xx, no schema violation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_schemathesis_finds_no_server_error_and_no_schema_violation():
    run = subprocess.run(
        [sys.executable, "-m", "conformance_tests.schemathesis_run", "--seed", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    tail = (run.stdout + run.stderr)[-4000:]
    assert run.returncode == 0, tail
    assert "== hub: exit 0" in run.stdout and "== node: exit 0" in run.stdout, tail
