"""Check results of a conformance run: one readable line per check, JUnit XML, exit code.

A check is a named async function; it passes when it returns, fails when it raises
:class:`CheckFailed` (or anything else, reported as an error). Checks never stop the run.
A check that cannot run (a check it depends on did not pass, an option is missing) is
reported as skipped with the reason, so every check appears in every report.
"""

from __future__ import annotations

import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


class CheckFailed(AssertionError):
    """The implementation under test did something the protocol forbids."""


def expect(condition: Any, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Result:
    name: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0
    error: bool = False  # the check itself could not run (connection refused, bug...)
    skipped: bool = False  # not run; ``detail`` says why


@dataclass
class Report:
    suite: str
    results: list[Result] = field(default_factory=list)
    out: TextIO | None = None

    async def run(self, name: str, check: Callable[[], Awaitable[str | None]]) -> bool:
        started = time.perf_counter()
        try:
            detail = await check()
            result = Result(name, True, detail or "")
        except CheckFailed as exc:
            result = Result(name, False, str(exc))
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            last = traceback.extract_tb(exc.__traceback__)[-1:]
            where = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last else ""
            result = Result(name, False, f"{type(exc).__name__}: {exc}{where}", error=True)
        result.seconds = time.perf_counter() - started
        self.add(result)
        return result.ok

    def skip(self, name: str, reason: str) -> None:
        self.add(Result(name, False, reason, skipped=True))

    def status_of(self, name: str) -> str | None:
        """passed | failed | skipped for a check already reported, else None."""
        for r in self.results:
            if r.name == name:
                return "passed" if r.ok else ("skipped" if r.skipped else "failed")
        return None

    def add(self, result: Result) -> None:
        self.results.append(result)
        if self.out is not None:
            mark = "PASS" if result.ok else ("SKIP" if result.skipped else
                                             "ERROR" if result.error else "FAIL")
            line = f"{mark:5} {result.name}"
            if result.detail:
                line += f"  -- {result.detail}"
            print(line, file=self.out, flush=True)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if not r.ok and not r.skipped]

    @property
    def skipped(self) -> list[Result]:
        return [r for r in self.results if r.skipped]

    @property
    def passed(self) -> list[Result]:
        return [r for r in self.results if r.ok]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures or not self.passed else 0

    def summary(self) -> str:
        return (f"{self.suite}: {len(self.passed)} passed, {len(self.failures)} failed, "
                f"{len(self.skipped)} skipped")

    def junit(self) -> bytes:
        suite = ET.Element("testsuite", {
            "name": self.suite, "tests": str(len(self.results)),
            "failures": str(sum(1 for r in self.failures if not r.error)),
            "errors": str(sum(1 for r in self.failures if r.error)),
            "skipped": str(len(self.skipped)),
            "time": f"{sum(r.seconds for r in self.results):.3f}"})
        for r in self.results:
            case = ET.SubElement(suite, "testcase", {
                "classname": self.suite, "name": r.name, "time": f"{r.seconds:.3f}"})
            if r.skipped:
                ET.SubElement(case, "skipped", {"message": r.detail[:500]})
            elif not r.ok:
                tag = "error" if r.error else "failure"
                ET.SubElement(case, tag, {"message": r.detail[:500]}).text = r.detail
            elif r.detail:
                ET.SubElement(case, "system-out").text = r.detail
        root = ET.Element("testsuites")
        root.append(suite)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)

    def write_junit(self, path: str | Path) -> None:
        Path(path).write_bytes(self.junit())
