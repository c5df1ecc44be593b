"""What the browser tests need besides Python packages, installed by the test run itself
so that the README's one test command works on a fresh machine:

- Chromium: Debian's ``chromium-headless-shell`` (``apt-get install``) when
  /usr/bin/chromium-headless-shell is missing and we run as root; otherwise one line saying
  how to get it. The headless shell is the same Blink and V8 as the ``chromium`` package
  without the desktop browser around them (what Playwright itself runs for headless
  Chromium): the browser tests took 211 CPU-s in the full browser's headless mode and 108
  in the shell (tests/browser on 2 cores, docs/benchmarks.md, session 11), most of the
  difference in the browser process, which in the full browser builds a window and its
  WebUI toolbar for every context.
- axe-core: from the npm registry, pinned by package.json / package-lock.json at the
  repository root (``npm ci``), when node_modules/axe-core is missing.

Nothing is skipped silently: when an install is impossible the browser tests fail with
that one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium-headless-shell"
CHROMIUM_PACKAGE = "chromium-headless-shell"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
INSTALL_TIMEOUT = 900


@contextlib.contextmanager
def _one_installer(name: str) -> Iterator[None]:
    """One installer at a time across the run's parallel workers (pytest-xdist): a second
    `npm ci` would delete node_modules under the first one's readers, a second apt-get
    would fail on dpkg's lock. The others wait, then find it installed."""
    path = Path(tempfile.gettempdir()) / f"wb-test-install-{name}.lock"
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Missing(RuntimeError):
    """A browser-test prerequisite that could not be installed; the message is one line."""


def _run(cmd: list[str], **kw) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=INSTALL_TIMEOUT, check=False, **kw)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise Missing(f"`{' '.join(cmd)}` failed ({proc.returncode}): {tail[0]}")


def _apt_install(*packages: str, who: str = "the browser tests",
                 hint: str = "or set WB_CHROMIUM to a Chromium binary") -> None:
    names = " ".join(packages)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Missing(f"{who} need {names}: run `sudo apt-get install -y {names}` ({hint})")
    _run(["apt-get", "update", "-qq"])
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages])


def ensure_go(gopath: str) -> str:
    """The ``go`` binary with the Go reference code (golang.org/x/mod/sumdb) under
    ``gopath``, installing Debian's golang-go and golang-golang-x-mod-dev when missing
    (the transparency-log interop tests build the reference offline)."""
    def ready() -> bool:
        return (shutil.which("go") is not None
                and os.path.isdir(os.path.join(gopath, "src/golang.org/x/mod/sumdb/tlog")))

    if not ready():
        if gopath != "/usr/share/gocode":
            raise Missing(f"WB_GOPATH={gopath} holds no golang.org/x/mod/sumdb")
        with _one_installer("apt"):  # never beside the Chromium install (dpkg's lock)
            if not ready():
                _apt_install("golang-go", "golang-golang-x-mod-dev",
                             who="the Go interop tests", hint="or set WB_GOPATH")
    go = shutil.which("go")
    if go is None:
        raise Missing("apt-get installed golang-go but `go` is still not on PATH")
    return go


def ensure_chromium(path: str) -> str:
    """Return ``path`` once it exists, installing Debian's package if it is the default."""
    if os.path.exists(path):
        return path
    if path != CHROMIUM:
        raise Missing(f"WB_CHROMIUM={path} does not exist")
    with _one_installer("apt"):
        if not os.path.exists(path):
            _apt_install(CHROMIUM_PACKAGE)
    if not os.path.exists(path):
        raise Missing(f"apt-get installed {CHROMIUM_PACKAGE} but {path} is still missing")
    return path


def ensure_axe() -> Path:
    """Return axe-core's browser bundle, running ``npm ci`` first when it is missing."""
    if AXE.exists():
        return AXE
    with _one_installer("apt"):
        if shutil.which("npm") is None:
            _apt_install("npm")
    with _one_installer("npm-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]):
        if not AXE.exists():
            _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=ROOT)
    if not AXE.exists():
        raise Missing("npm ci ran but node_modules/axe-core/axe.min.js is missing")
    return AXE
