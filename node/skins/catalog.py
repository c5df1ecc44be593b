"""The shipped skins, their fingerprints, and ``check``: the CSS parses (tinycss2), every
variable the stylesheets use is defined, and text on its backgrounds reaches WCAG AA
(contrast computed by coloraide, WCAG 2.1 formula) in every colour scheme the skin has
(light, ``prefers-color-scheme: dark``, print)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tinycss2

if TYPE_CHECKING:
    from coloraide import Color

STATIC = Path(__file__).resolve().parent.parent.parent / "web_templates" / "static"
SKINS_DIR = STATIC / "skins"
BASE_STYLESHEETS = (STATIC / "style.css", STATIC / "requests.css")
DEFAULT_SKIN = "default"
NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
AA_TEXT = 4.5

# The contract of a skin: these variables, and these (text, background) pairs at AA.
REQUIRED = ("fg", "muted", "line", "accent", "bg", "ok", "warn", "bad", "surface",
            "on-accent", "flash-bg")
PAIRS = (("fg", "bg"), ("muted", "bg"), ("accent", "bg"), ("ok", "bg"), ("warn", "bg"),
         ("bad", "bg"), ("fg", "surface"), ("muted", "surface"), ("accent", "surface"),
         ("ok", "surface"), ("warn", "surface"), ("bad", "surface"), ("fg", "flash-bg"),
         ("on-accent", "accent"), ("on-accent", "bad"))
_VAR_USE = re.compile(r"var\(\s*--([A-Za-z0-9_-]+)")
_TITLE = re.compile(r"/\*\s*Skin:\s*([^\n—*-]+?)\s*(?:—|-|\*/)")


@dataclass(frozen=True)
class Skin:
    name: str
    title: str
    css: bytes
    fingerprint: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.fingerprint}.css"

    @property
    def href(self) -> str:
        return f"/skins/{self.file_name}"


def load(path: Path) -> Skin:
    css = path.read_bytes()
    match = _TITLE.search(css.decode("utf-8", "replace"))
    return Skin(path.stem, match.group(1).strip() if match else path.stem, css,
                hashlib.sha256(css).hexdigest()[:12])


@lru_cache(maxsize=1)
def catalog() -> dict[str, Skin]:
    """Every shipped skin by name (read once per process)."""
    return {p.stem: load(p) for p in sorted(SKINS_DIR.glob("*.css")) if NAME.match(p.stem)}


def by_file(file_name: str) -> Skin | None:
    name = file_name.split(".", 1)[0]
    skin = catalog().get(name)
    return skin if skin is not None and skin.file_name == file_name else None


def valid(name: str | None) -> bool:
    return bool(name) and name in catalog()


# --------------------------------------------------------------------------- check

@dataclass
class Report:
    name: str
    errors: list[str] = field(default_factory=list)
    contrast: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "errors": self.errors,
                "contrast": self.contrast}


def _scheme_of(prelude: str) -> str | None:
    text = " ".join(prelude.lower().split())
    if "prefers-color-scheme: dark" in text or "prefers-color-scheme:dark" in text:
        return "dark"
    if text == "print":
        return "print"
    return None


def _declarations(rule: Any, report: Report, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for decl in tinycss2.parse_declaration_list(rule.content, skip_comments=True,
                                                skip_whitespace=True):
        if decl.type == "error":
            report.errors.append(f"{where}: {decl.message}")
        elif decl.type == "declaration" and decl.name.startswith("--"):
            out[decl.name[2:]] = tinycss2.serialize(decl.value).strip()
    return out


def _walk(rules: list[Any], report: Report, scheme: str,
          schemes: dict[str, dict[str, str]]) -> None:
    for rule in rules:
        if rule.type == "error":
            report.errors.append(f"CSS does not parse: {rule.message} (line {rule.source_line})")
        elif rule.type == "qualified-rule":
            selector = tinycss2.serialize(rule.prelude).strip()
            decls = _declarations(rule, report, selector)
            if selector == ":root":
                schemes.setdefault(scheme, {}).update(decls)
        elif rule.type == "at-rule" and rule.lower_at_keyword == "media" and rule.content:
            inner = _scheme_of(tinycss2.serialize(rule.prelude))
            _walk(tinycss2.parse_rule_list(rule.content, skip_comments=True,
                                           skip_whitespace=True),
                  report, inner or "other", schemes)


def _color(value: str, values: dict[str, str]) -> Color:
    # imported here: coloraide takes ~0.15 s to import, and every process that serves
    # pages or runs a command imports this module; only a skin check needs it
    from coloraide import Color

    for _ in range(5):  # var(--x) chains, resolved within the same scheme
        m = re.fullmatch(r"var\(\s*--([A-Za-z0-9_-]+)\s*\)", value.strip())
        if not m:
            break
        value = values.get(m.group(1), "")
    return Color(value)


def _structure(text: str, report: Report) -> None:
    """What CSS error recovery would silently accept but a skin author never means: a
    stray ``}``, a block left open at the end of the file, a tokenizer error."""
    blocks = strays = 0

    def walk(nodes: Any) -> None:
        nonlocal blocks, strays
        for node in nodes or ():
            if node.type == "error":
                report.errors.append(f"CSS does not parse: {node.message} "
                                     f"(line {node.source_line})")
            elif node.type == "{} block":
                blocks += 1
                walk(node.content)
            elif node.type in ("() block", "[] block", "function"):
                walk(getattr(node, "content", None) or getattr(node, "arguments", None))
            elif node.type == "literal" and node.value == "}":
                strays += 1
                report.errors.append(f"CSS does not parse: stray '}}' (line {node.source_line})")

    walk(tinycss2.parse_component_value_list(text, skip_comments=True))
    bare = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    bare = re.sub(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'", "", bare)
    if blocks > bare.count("}") - strays:
        report.errors.append("CSS does not parse: a block is not closed before the end of "
                             "the file")


def check(skin: Skin) -> Report:
    report = Report(skin.name)
    text = skin.css.decode("utf-8", "replace")
    _structure(text, report)
    schemes: dict[str, dict[str, str]] = {}
    _walk(tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True),
          report, "light", schemes)
    base = schemes.get("light", {})
    used = set(_VAR_USE.findall(text))
    for path in BASE_STYLESHEETS:
        used |= set(_VAR_USE.findall(path.read_text(encoding="utf-8")))
    for name in sorted(set(REQUIRED) | used):
        if name not in base:
            report.errors.append(f"--{name} is used but not defined in :root")
    for scheme in ("light", "dark", "print"):
        if scheme not in schemes:
            continue
        values = dict(base, **schemes[scheme])
        for fg, bg in PAIRS:
            if fg not in values or bg not in values:
                continue
            try:
                ratio = _color(values[fg], values).contrast(_color(values[bg], values),
                                                            method="wcag21")
            except ValueError:
                report.errors.append(f"{scheme}: --{fg} or --{bg} is not a colour")
                continue
            ok = ratio >= AA_TEXT
            report.contrast.append({"scheme": scheme, "fg": fg, "bg": bg,
                                    "ratio": round(ratio, 2), "ok": ok})
            if not ok:
                report.errors.append(f"{scheme}: --{fg} on --{bg} has contrast "
                                     f"{ratio:.2f}:1, below WCAG AA {AA_TEXT}:1")
    return report


# --------------------------------------------------------------------------- build

def build(target: Path) -> dict[str, str]:
    """Write ``NAME.FINGERPRINT.css`` for every skin and ``manifest.json`` (name -> file)
    into ``target``: content-addressed, so a proxy may cache them for a year."""
    target.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for skin in catalog().values():
        (target / skin.file_name).write_bytes(skin.css)
        manifest[skin.name] = skin.file_name
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True)
                                          + "\n", encoding="utf-8")
    return manifest
