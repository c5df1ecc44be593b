"""The session-end check for processes a run leaves behind (tests/conftest.py), attacked
the way a leaking test would: a server started in its own session, so that it is nobody's
descendant any more, in a plain run and under pytest-xdist workers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
# the nested runs sit outside the project (no pyproject.toml addopts): leave out the
# plugins none of their tests uses (importing them cost each process ~2 s of its ~3 s)
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark",
          "-p", "no:schemathesis", "-p", "no:anyio", "-p", "no:hypothesispytest"]

LEAKY = '''
import subprocess, sys

def test_leaks_an_orphan():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "{tag}"],
                     start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def test_clean():
    pass
'''


def _tagged(tag: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if tag in p.cmdline():
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_leaked_process_fails_the_run_and_is_killed(tmp_path: Path, workers: list[str]):
    tag = f"wb-leak-{uuid.uuid4().hex}"
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_leaky.py").write_text(LEAKY.format(tag=tag))
    env = {k: v for k, v in os.environ.items() if k != "WB_TEST_RUN_ID"}  # its own run
    env["PYTHONPATH"] = str(ROOT)
    xdist = workers or ["-p", "no:xdist"]
    try:
        done = subprocess.run(
            [*PYTEST, *xdist, str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300)
        out = done.stdout + done.stderr
        assert done.returncode == pytest.ExitCode.TESTS_FAILED, out
        assert "2 passed" in out, out
        assert "still running (now killed)" in out and tag in out, out
        if workers:
            assert "[gw" in out, out  # the worker that started it is named
        assert _tagged(tag) == [], out
    finally:
        for p in _tagged(tag):
            p.kill()


def test_a_clean_run_under_workers_passes(tmp_path: Path):
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_clean.py").write_text("def test_a():\n    pass\n\n"
                                            "def test_b():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "WB_TEST_RUN_ID"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [*PYTEST, "-n", "2", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "still running" not in out, out
