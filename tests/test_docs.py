"""Documentation that must not drift from the code."""

from __future__ import annotations

from pathlib import Path

from service.settings import SETTINGS
from service.settings_docs import env_example, settings_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_settings_reference():
    doc = (ROOT / "docs" / "settings.md").read_text()
    assert settings_markdown() in doc, "regenerate docs/settings.md (see its last section)"
    for s in SETTINGS:
        assert f"`{s.name}`" in doc


def test_env_example_matches_the_settings_table():
    assert (ROOT / ".env.example").read_text() == env_example(), (
        "regenerate: python -m service.settings_docs > .env.example")


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text().splitlines()
    block = readme[readme.index("```sh") + 1: readme.index("```sh") + 3]
    assert block[0].startswith("python3 -m pip install -e . && wb serve")
    test_cmd = block[1].split("#")[0].strip()
    assert test_cmd == "python3 -m pip install -e '.[test]' && python3 -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()


def test_cli_reference_matches_the_commands():
    # A fresh interpreter: click caches each command's help option on first use, so
    # commands run earlier in this process must not change the rendering.
    import subprocess
    import sys

    fresh = subprocess.run([sys.executable, "-m", "ops.cli_docs"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert (ROOT / "docs" / "cli.md").read_text() == fresh, (
        "regenerate: python -m ops.cli_docs > docs/cli.md")
