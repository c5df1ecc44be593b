"""Generate the settings reference and the sample .env from the settings table."""

from __future__ import annotations

from service.settings import SETTINGS


def settings_markdown() -> str:
    lines = ["| name | default | component | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{s.name}` | {default} | {s.component} | {s.help} |")
    return "\n".join(lines) + "\n"


def env_example() -> str:
    out = ["# WhiteBalloon settings. Every line shows the default; uncomment to change.",
           "# Environment variables override this file. Generated from service/settings.py.", ""]
    for s in SETTINGS:
        out.append(f"# {s.help}")
        out.append(f"# ({s.component}{', secret' if s.secret else ''})")
        out.append(f"#{s.name}={s.default}")
        out.append("")
    return "\n".join(out)


START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"


def rewrite_table(text: str) -> str:
    """``text`` (docs/settings.md) with the table between its markers made anew."""
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    return head + START + settings_markdown() + END + tail


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:2] == ["--markdown"]:  # rewrite the table of the given settings.md
        path = Path(sys.argv[2])
        path.write_text(rewrite_table(path.read_text()))
    else:
        sys.stdout.write(env_example())
