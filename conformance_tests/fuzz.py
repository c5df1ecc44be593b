"""Differential fuzzer: two verifiers, the same mutated bundles, every disagreement.

    wb conformance fuzz --verifier CMD [--against CMD] [--seed N] [--seconds S]

Starts from the valid vectors, applies a few seeded mutations per case (byte flips,
header edits, line reordering, Unicode edge cases, truncation, dropped and added
files) and hands the result to both verifiers in *different* containers (directory,
CBOR, tar.gz at the root, tar.gz with ``./`` entries, tar.gz under a top directory),
since re-encoding never changes a bundle's meaning. The verdicts (valid, or the error
code) must be equal. Each disagreement is shrunk to the fewest mutations that still
disagree and written as a reproducer directory.

``CMD`` follows the verifier contract of ``conformance_tests/README.md``
(``{path}``, ``{trust_args}``). ``reference`` (the default for ``--against``) is this
implementation, called in-process.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import shlex
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance_tests.bundles import verifier_command
from protocol.containers import cbor_encode
from protocol.errors import ProtocolError
from protocol.paths import KEY_PATH_RE, unsafe_reason
from protocol.signature import sign_manifest

VECTORS = Path(__file__).resolve().parent / "vectors"
REFERENCE = "reference"

Files = dict[str, bytes]
Verdict = tuple[bool, str | None]  # (valid, error code)

#: characters a second implementation most often treats differently
UNICODE_EDGES = [
    "\u0085", "\u00a0", "\u2028", "\u2029", "\ufeff", "\u200b", "\u202e", "\u3000",
    "\u0301", "\t", "\x7f", "\x1f", "\r", "\x00", "\U0001f388", "\u0660",
]


# --------------------------------------------------------------------------- seeds


def valid_seeds() -> list[tuple[str, Files, dict[str, list[str]]]]:
    """(name, directory view, trusted keys) of every valid vector; the signing seeds are
    kept in :data:`SIGNING_SEEDS` so a mutated bundle can be re-signed."""
    expected = json.loads((VECTORS / "expected.json").read_text())
    out = []
    for case in expected["cases"]:
        root = VECTORS / "valid" / case["name"]
        files = {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
        out.append((case["name"], files, case["trusted_keys"]))
        if case["seed"]:
            SIGNING_SEEDS[case["name"]] = bytes.fromhex(case["seed"])
    return out


SIGNING_SEEDS: dict[str, bytes] = {}
_LINE_RE = re.compile(r"([0-9a-f]{64})  (\S+)")


def reseal(files: Files, seed: bytes) -> Files:
    """Point the manifest at the files as they are now and sign it again, so that a
    mutation reaches the record checks instead of stopping at a digest."""
    files = dict(files)
    try:
        text = files["manifest.sync.txt"].decode("utf-8")
    except (KeyError, UnicodeDecodeError):
        return files
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _LINE_RE.fullmatch(line)
        if m is not None and m.group(2) in files:
            lines[i] = f"{hashlib.sha256(files[m.group(2)]).hexdigest()}  {m.group(2)}"
    manifest = "\n".join(lines).encode()
    files["manifest.sync.txt"] = manifest
    files["bundle.sig"] = sign_manifest(manifest, seed, "2026-01-02T03:04:06+00:00")
    return files


# --------------------------------------------------------------------------- mutations

Mutation = tuple[str, int]  # (kind, seed of that mutation)


def _pick_text_file(files: Files, rng: random.Random) -> str:
    return rng.choice(sorted(files))


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _mutate(files: Files, mutation: Mutation) -> Files:
    kind, seed = mutation
    rng = random.Random(seed)
    files = dict(files)
    path = _pick_text_file(files, rng)
    data = files[path]
    lines = _lines(data)
    if kind == "flip" and data:
        i = rng.randrange(len(data))
        files[path] = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    elif kind == "duplicate_line" and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        files[path] = b"\n".join(lines)
    elif kind == "delete_line" and len(lines) > 1:
        del lines[rng.randrange(len(lines))]
        files[path] = b"\n".join(lines)
    elif kind == "swap_lines" and len(lines) > 2:
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
        files[path] = b"\n".join(lines)
    elif kind == "unicode":
        text = data.decode("utf-8", "replace")
        i = rng.randrange(len(text) + 1)
        files[path] = (text[:i] + rng.choice(UNICODE_EDGES) + text[i:]).encode()
    elif kind == "value_edit" and lines:
        i = rng.randrange(len(lines))
        name, sep, value = lines[i].partition(b": ")
        if sep:
            edits = [value.upper(), value.lower(), value + b" ", b" " + value, b"",
                     value[:-1], value + value[-1:], name + b":" + value]
            new = rng.choice(edits)
            lines[i] = new if new.startswith(name + b":") else name + sep + new
            files[path] = b"\n".join(lines)
    elif kind == "truncate" and data:
        files[path] = data[: rng.randrange(len(data))]
    elif kind == "drop_file":
        if path not in ("manifest.sync.txt", "bundle.sig"):
            del files[path]
    elif kind == "add_file":
        names = ["users/01FUZZ.sync.txt", "notes/x.txt", "users/a..b.sync.txt",
                 "public_keys/0123456789abcdef.pub", "Users/X.sync.txt", "users/x.sync.txt"]
        files[rng.choice(names)] = data
    return files


MUTATIONS = ("flip", "duplicate_line", "delete_line", "swap_lines", "unicode", "value_edit",
             "truncate", "drop_file", "add_file")


# --------------------------------------------------------------------------- containers

CONTAINERS = ("dir", "cbor", "tar", "tar-dot", "tar-top")


def _tar(files: Files, prefix: str, dirs: list[str]) -> bytes:
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(prefix + path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def encodable(files: Files, container: str) -> bool:
    if container == "dir":
        return all(unsafe_reason(p) is None for p in files)
    if container == "cbor":
        return "manifest.sync.txt" in files and "bundle.sig" in files
    return True


def write_container(files: Files, container: str, target: Path) -> Path:
    """Write ``files`` (the directory view) as ``container`` under ``target``."""
    if container == "dir":
        out = target / "bundle"
        for rel, data in files.items():
            dest = out.joinpath(*rel.split("/"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        out.mkdir(parents=True, exist_ok=True)
        return out
    if container == "cbor":
        env = {
            "v": 2,
            "manifest": files["manifest.sync.txt"],
            "sig": files["bundle.sig"],
            "files": {p: d for p, d in files.items()
                      if p not in ("manifest.sync.txt", "bundle.sig")
                      and not KEY_PATH_RE.fullmatch(p)},
            "keys": {m.group(1): d for p, d in files.items()
                     if (m := KEY_PATH_RE.fullmatch(p)) is not None},
        }
        data = cbor_encode(env)  # type: ignore[arg-type]
        out = target / "bundle.cbor"
    elif container == "tar":
        data, out = _tar(files, "", []), target / "bundle.tar.gz"
    elif container == "tar-dot":
        data, out = _tar(files, "./", ["./"]), target / "bundle.tar.gz"
    else:
        data, out = _tar(files, "bundle/", ["bundle/"]), target / "bundle.tar.gz"
    out.write_bytes(data)
    return out


# --------------------------------------------------------------------------- verifiers


def run_verifier(cmd: str, path: Path, trusted: dict[str, list[str]],
                 timeout: float = 60, limits: dict[str, int] | None = None
                 ) -> tuple[Verdict, str]:
    """The verdict of ``cmd`` (or the in-process reference) on the bundle at ``path``,
    under ``limits`` (the defaults for the others)."""
    if cmd == REFERENCE:
        from protocol.limits import limits_from_mapping
        from protocol.verify import verify_bundle
        from service.bundle_io import read_bundle

        chosen = limits_from_mapping(limits or {})
        try:
            verify_bundle(read_bundle(path, chosen), limits=chosen,
                          trust=lambda o, k: k == o or k in trusted.get(o, []))
        except ProtocolError as exc:
            return (False, exc.code), str(exc)
        return (True, None), "valid"
    args = verifier_command(cmd, path, trusted, limits)
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return (False, "timeout"), f"{cmd} timed out"
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    if proc.returncode == 0:
        return (True, None), proc.stdout
    code = data.get("code") if isinstance(data, dict) else None
    return (False, code if isinstance(code, str) else "no-json-code"), proc.stdout + proc.stderr


# --------------------------------------------------------------------------- the loop


@dataclass
class Disagreement:
    base: str
    mutations: list[Mutation]
    containers: tuple[str, str]
    verdicts: tuple[Verdict, Verdict]
    outputs: tuple[str, str]
    reproducer: Path | None = None
    limits: dict[str, int] = field(default_factory=dict)


@dataclass
class FuzzReport:
    seed: int
    cases: int = 0
    #: cases judged under a lowered limit
    limited: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)

    def summary(self) -> str:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items()))
        lines = [f"fuzz seed {self.seed}: {self.cases} cases ({self.limited} under a lowered "
                 f"limit), {len(self.disagreements)} disagreements ({codes})"]
        for d in self.disagreements:
            lines.append(
                f"  DISAGREE {d.base} {d.mutations} {d.limits or ''} "
                f"{d.containers[0]}->{d.verdicts[0]} "
                f"{d.containers[1]}->{d.verdicts[1]} reproducer: {d.reproducer}"
            )
        return "\n".join(lines)


def _judge(files: Files, containers: tuple[str, str], commands: tuple[str, str],
           trusted: dict[str, list[str]], limits: dict[str, int] | None = None
           ) -> tuple[tuple[Verdict, Verdict], tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="wb-fuzz-") as tmp:
        verdicts: list[Verdict] = []
        outputs: list[str] = []
        for i, (container, cmd) in enumerate(zip(containers, commands, strict=True)):
            where = Path(tmp) / str(i)
            where.mkdir()
            verdict, output = run_verifier(cmd, write_container(files, container, where),
                                           trusted, limits=limits)
            verdicts.append(verdict)
            outputs.append(output)
    return (verdicts[0], verdicts[1]), (outputs[0], outputs[1])


def _apply(base: Files, mutations: list[Mutation], seed: bytes | None = None) -> Files:
    files = base
    for m in mutations:
        if m[0] == "reseal":
            if seed is not None:
                files = reseal(files, seed)
        else:
            files = _mutate(files, m)
    return files


def _shrink(name: str, base: Files, mutations: list[Mutation], containers: tuple[str, str],
            commands: tuple[str, str], trusted: dict[str, list[str]],
            limits: dict[str, int] | None = None) -> list[Mutation]:
    """Drop mutations one at a time while the two verdicts still differ."""
    current = list(mutations)
    changed = True
    while changed and len(current) > 1:
        changed = False
        for i in range(len(current)):
            trial = current[:i] + current[i + 1 :]
            files = _apply(base, trial, SIGNING_SEEDS.get(name))
            if not all(encodable(files, c) for c in containers):
                continue
            verdicts, _ = _judge(files, containers, commands, trusted, limits)
            if verdicts[0] != verdicts[1]:
                current, changed = trial, True
                break
    return current


def _write_reproducer(out: Path, n: int, d: Disagreement, files: Files,
                      commands: tuple[str, str], seed: int) -> Path:
    target = out / f"disagreement-{n:03d}"
    target.mkdir(parents=True, exist_ok=True)
    for i, container in enumerate(d.containers):
        where = target / f"as-{i}-{container}"
        where.mkdir()
        write_container(files, container, where)
    (target / "report.json").write_text(json.dumps({
        "seed": seed, "base": d.base, "mutations": d.mutations, "limits": d.limits,
        "commands": list(commands), "containers": list(d.containers),
        "verdicts": [list(v) for v in d.verdicts], "outputs": list(d.outputs),
        "files_sha256": {p: hashlib.sha256(b).hexdigest() for p, b in sorted(files.items())},
    }, indent=2) + "\n")
    return target


#: limits the fuzzer lowers to the edge of a case (those that judge a bundle the same
#: way in every container; the container caps are container-specific by design)
LIMIT_PROBES = ("max_files", "max_bundle_bytes", "max_manifest_bytes", "max_signature_bytes",
                "max_record_bytes", "max_key_file_bytes", "max_header_bytes", "max_headers")


def pick_limits(files: Files, rng: random.Random) -> dict[str, int]:
    """One limit set at (or one below) what ``files`` needs, so either side of the edge
    is tried; every verifier must apply it the same way (``{limits_args}``)."""
    name = rng.choice(LIMIT_PROBES)
    edge = rng.choice((-1, 0))
    keys = [d for p, d in files.items() if KEY_PATH_RE.fullmatch(p)]
    records = [d for p, d in files.items()
               if p not in ("manifest.sync.txt", "bundle.sig") and not KEY_PATH_RE.fullmatch(p)]
    need = {
        "max_files": len(files),
        "max_bundle_bytes": sum(map(len, files.values())),
        "max_manifest_bytes": len(files.get("manifest.sync.txt", b"")),
        "max_signature_bytes": len(files.get("bundle.sig", b"")),
        "max_record_bytes": max(map(len, records), default=1),
        "max_key_file_bytes": max(map(len, keys), default=1),
        "max_header_bytes": rng.randrange(150, 600),
        "max_headers": rng.randrange(8, 15),
    }[name]
    return {name: max(1, need + edge)}


def fuzz(verifier: str, against: str = REFERENCE, *, seed: int = 0, seconds: float = 30.0,
         max_cases: int | None = None, out: Path | None = None,
         progress: Callable[[str], None] | None = None) -> FuzzReport:
    """Run the differential loop until ``seconds`` or ``max_cases``, whichever comes first.

    When both commands take ``{limits_args}`` (or are the reference), a quarter of the
    cases are judged under one lowered limit (:func:`pick_limits`)."""
    rng = random.Random(seed)
    seeds = valid_seeds()
    report = FuzzReport(seed=seed)
    commands = (verifier, against)
    with_limits = all(c == REFERENCE or "{limits_args}" in shlex.split(c) for c in commands)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (max_cases is None or report.cases < max_cases):
        name, base, trusted = rng.choice(seeds)
        mutations: list[Mutation] = [
            (rng.choice(MUTATIONS), rng.randrange(2**32)) for _ in range(rng.randint(1, 3))
        ]
        if name in SIGNING_SEEDS and rng.random() < 0.7:
            mutations.append(("reseal", 0))
        limit_seed = rng.randrange(2**32)
        files = _apply(base, mutations, SIGNING_SEEDS.get(name))
        usable = [c for c in CONTAINERS if encodable(files, c)]
        if not usable:
            continue
        containers = (rng.choice(usable), rng.choice(usable))
        if len(usable) > 1:
            while containers[1] == containers[0]:
                containers = (containers[0], rng.choice(usable))
        lrng = random.Random(limit_seed)
        limits = pick_limits(files, lrng) if with_limits and lrng.random() < 0.25 else {}
        verdicts, outputs = _judge(files, containers, commands, trusted, limits)
        report.cases += 1
        report.limited += bool(limits)
        label = "valid" if verdicts[0][0] else str(verdicts[0][1])
        report.verdicts[label] = report.verdicts.get(label, 0) + 1
        if verdicts[0] != verdicts[1]:
            small = _shrink(name, base, mutations, containers, commands, trusted, limits)
            files = _apply(base, small, SIGNING_SEEDS.get(name))
            verdicts, outputs = _judge(files, containers, commands, trusted, limits)
            d = Disagreement(name, small, containers, verdicts, outputs, limits=limits)
            if out is not None:
                d.reproducer = _write_reproducer(out, len(report.disagreements), d, files,
                                                 commands, seed)
            report.disagreements.append(d)
            if progress:
                progress(f"disagreement: {name} {small} {limits} {containers} {verdicts}")
    return report
