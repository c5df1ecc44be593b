"""The browser tests' own installer: on a machine without Chromium it installs Debian's
package as root, and otherwise fails with one line that says what to run, never a skip."""

from __future__ import annotations

import pytest

from tests.browser import install


def test_a_custom_chromium_path_that_does_not_exist_is_one_clear_line(tmp_path):
    with pytest.raises(install.Missing) as err:
        install.ensure_chromium(str(tmp_path / "chrome"))
    assert str(err.value) == f"WB_CHROMIUM={tmp_path / 'chrome'} does not exist"


def test_without_root_it_says_how_to_install(monkeypatch):
    monkeypatch.setattr(install.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(install.os.path, "exists", lambda p: False)
    with pytest.raises(install.Missing) as err:
        install.ensure_chromium(install.CHROMIUM)
    assert "sudo apt-get install -y chromium-headless-shell" in str(err.value)
    assert "\n" not in str(err.value)


def test_as_root_it_runs_apt_get(monkeypatch):
    ran: list[list[str]] = []
    installed = {"done": False}

    def fake_run(cmd, **kw):
        ran.append(cmd)
        if cmd[:2] == ["apt-get", "install"]:
            installed["done"] = True

    monkeypatch.setattr(install.os, "geteuid", lambda: 0)
    monkeypatch.setattr(install.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(install, "_run", fake_run)
    monkeypatch.setattr(install.os.path, "exists", lambda p: installed["done"])
    assert install.ensure_chromium(install.CHROMIUM) == "/usr/bin/chromium-headless-shell"
    assert ran == [["apt-get", "update", "-qq"],
                   ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "chromium-headless-shell"]]


def test_a_failing_command_reports_its_last_line(tmp_path):
    with pytest.raises(install.Missing) as err:
        install._run(["sh", "-c", "echo first >&2; echo 'E: Unable to locate package' >&2; "
                      "exit 100"])
    assert str(err.value).endswith("failed (100): E: Unable to locate package")


def test_axe_is_pinned_from_the_npm_registry():
    import json

    lock = json.loads((install.ROOT / "package-lock.json").read_text())
    assert "node_modules/axe-core" in lock["packages"]
    assert install.ensure_axe().name == "axe.min.js"


def test_parallel_workers_install_one_at_a_time(tmp_path):
    """While one worker installs, another worker's installer waits (pytest-xdist: two
    `npm ci` at once would delete node_modules under each other)."""
    import subprocess
    import sys

    probe = ("import fcntl, sys, tempfile, pathlib\n"
             "p = pathlib.Path(tempfile.gettempdir()) / 'wb-test-install-probe.lock'\n"
             "f = open(p, 'a')\n"
             "try:\n"
             "    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             "except BlockingIOError:\n"
             "    sys.exit(3)\n")
    with install._one_installer("probe"):
        held = subprocess.run([sys.executable, "-c", probe], timeout=60)
    free = subprocess.run([sys.executable, "-c", probe], timeout=60)
    assert held.returncode == 3
    assert free.returncode == 0
