"""Run every conformance vector against a verifier.

By default the verifier is this implementation (``protocol.verify``). Set
``WB_CONFORMANCE_VERIFIER`` to a command template to test another one, e.g.::

    WB_CONFORMANCE_VERIFIER="wb sync verify --json {trust_args} {limits_args} {path}" \\
        python -m pytest conformance_tests/test_vectors.py

The contract is in ``conformance_tests/README.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from conformance_tests.bundles import verifier_command

VECTORS = Path(__file__).resolve().parent / "vectors"
EXPECTED = json.loads((VECTORS / "expected.json").read_text())
CASES = json.loads((VECTORS / "cases.json").read_text())
EXTERNAL = os.environ.get("WB_CONFORMANCE_VERIFIER", "").strip()

VALID = [(case, path) for case in EXPECTED["cases"] for path in case["paths"]]
INVALID = CASES["cases"]


def _run_external(path: Path, trusted: dict[str, list[str]],
                  limits: dict[str, int] | None = None) -> tuple[int, dict | None, str]:
    if limits:
        assert "{limits_args}" in shlex.split(EXTERNAL), (
            "this vector is judged under lowered limits: the verifier template needs "
            "{limits_args} (conformance_tests/README.md)")
    proc = subprocess.run(verifier_command(EXTERNAL, path, trusted, limits), capture_output=True,
                          text=True, timeout=120)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    return proc.returncode, data if isinstance(data, dict) else None, proc.stdout + proc.stderr


def test_vector_counts() -> None:
    assert len(INVALID) >= 110
    assert {c["name"] for c in EXPECTED["cases"]} >= {"original-v1", "v2-snapshot"}


@pytest.mark.parametrize(("case", "path"), VALID, ids=[p for _, p in VALID])
def test_valid_vector(case: dict, path: str) -> None:
    target = VECTORS / path
    if EXTERNAL:
        code, data, output = _run_external(target, case["trusted_keys"])
        assert code == 0, f"valid bundle rejected: {output}"
        if data is not None and "digest" in data:
            assert data["digest"] == case["digest"]
        return

    from protocol.containers import to_cbor, to_targz
    from protocol.records import render_record
    from protocol.signature import sign_manifest
    from protocol.verify import verify_bundle
    from service.bundle_io import read_bundle

    trusted = case["trusted_keys"]
    bundle = read_bundle(target)
    verified = verify_bundle(bundle, trust=lambda o, k: k == o or k in trusted.get(o, []))
    assert verified.digest == case["digest"] == hashlib.sha256(bundle.manifest).hexdigest()
    assert verified.key_id == case["key_id"]
    assert verified.origin == case["origin"]
    assert verified.schema_version == case["schema_version"]
    assert (verified.sequence, verified.previous, verified.kind) == (
        case["sequence"],
        case["previous"],
        case["kind"],
    )
    assert verified.verified == case["verified"]
    assert verified.withheld == case["withheld"]
    got = [
        (
            p,
            r.entity,
            r.id,
            r.origin,
            r.revision,
            r.deleted,
            hashlib.sha256(render_record(r)).hexdigest(),
        )
        for p, r in verified.records
    ]
    want = [
        (r["path"], r["entity"], r["id"], r["origin"], r["revision"], r["deleted"], r["sha256"])
        for r in case["records"]
    ]
    assert got == want
    sig = dict(line.split(": ", 1) for line in bundle.sig.decode().splitlines())
    assert sig["Signature"] == case["signature"]
    if case["seed"]:
        # Ed25519 is deterministic: the same seed re-signs to the same bytes
        signed_at = sig["Signed-At"]
        assert sign_manifest(bundle.manifest, bytes.fromhex(case["seed"]), signed_at) == bundle.sig
        assert base64.b64decode(sig["Public-Key"])  # well-formed
    # the three containers are byte-for-byte what this implementation writes
    stem = VECTORS / "valid" / case["name"]
    assert (stem.parent / f"{case['name']}.cbor").read_bytes() == to_cbor(bundle)
    assert (stem.parent / f"{case['name']}.tar.gz").read_bytes() == to_targz(bundle)


@pytest.mark.parametrize("case", INVALID, ids=[f"{c['name']}->{c['code']}" for c in INVALID])
def test_invalid_vector(case: dict) -> None:
    target = VECTORS / case["path"]
    if EXTERNAL:
        code, data, output = _run_external(target, {}, case.get("limits"))
        assert code != 0, f"invalid bundle accepted: {output}"
        assert data is not None, f"no JSON object on stdout: {output}"
        assert data.get("code") == case["code"], output
        return

    from protocol.errors import ProtocolError
    from protocol.limits import limits_from_mapping
    from protocol.verify import verify_bundle
    from service.bundle_io import read_bundle

    limits = limits_from_mapping(case.get("limits", {}))
    with pytest.raises(ProtocolError) as info:
        verify_bundle(read_bundle(target, limits), limits=limits)
    assert info.value.code == case["code"], str(info.value)

