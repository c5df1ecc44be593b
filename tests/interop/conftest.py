"""The Go reference for signed notes and tlog proofs (golang.org/x/mod/sumdb), built
offline from Debian's packages ``golang-go`` and ``golang-golang-x-mod-dev`` (the test run
installs them the way it installs Chromium for the browser tests)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

GOPATH = os.environ.get("WB_GOPATH", "/usr/share/gocode")
SOURCE = Path(__file__).parent / "gotlog"


@pytest.fixture(scope="session")
def go_tlog(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], list[str]]:
    from tests.browser.install import Missing, ensure_go

    try:  # installed by the test run itself, like Chromium (tests/browser/install.py)
        go = ensure_go(GOPATH)
    except Missing as exc:
        pytest.fail(str(exc))
    out = tmp_path_factory.mktemp("gotlog")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOPROXY": "off",
           "GOFLAGS": "", "GOCACHE": str(out / "cache"), "CGO_ENABLED": "0"}
    subprocess.run([go, "build", "-o", str(out / "gotlog"), "."], cwd=SOURCE, env=env,
                   check=True, timeout=600, capture_output=True)

    def run(case: dict[str, Any]) -> list[str]:
        done = subprocess.run([str(out / "gotlog")], input=json.dumps(case).encode(),
                              capture_output=True, timeout=120, check=True)
        errors: list[str] = json.loads(done.stdout)["errors"]
        return errors

    return run
