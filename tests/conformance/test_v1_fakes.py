"""The v1 profile against fakes of the original hub (tests/fakes/v1hub.py, built from its
answer table): a correct one passes every check; a lax one that lets symlinks and
duplicate names through is caught, with messages that say what went wrong. Plus the
runner's CLI: usage errors before any check, --list, --only/-k, --key-file."""

from __future__ import annotations

import asyncio
import shlex
import sys
import xml.etree.ElementTree as ET

from click.testing import CliRunner

from conformance_tests.bundles import invalid_vectors
from conformance_tests.hub_runner import HubTarget, checks, run_hub
from keys import generate_keypair
from ops.cli import root
from tests.conformance.conftest import new_report, url_of
from tests.fakes.v1hub import FakeV1Hub

TOKEN = "conformance-v1-token-0123456789"
OTHER = "other-v1-token-0123456789"
APPROVE = (f"{shlex.quote(sys.executable)} -c \"import sys, urllib.request; "
           f"urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='POST'))\" ")
V1_NAMES = {d.name for d in checks("hub-v1")}


def fake_hub(**kw) -> FakeV1Hub:
    return FakeV1Hub(tokens={"conformance": TOKEN, "other": OTHER}, **kw)


def target(url: str, **kw) -> HubTarget:
    return HubTarget(url, TOKEN, peer="conformance", other_peer="other", other_token=OTHER,
                     approve_cmd=APPROVE + url + "/_fake/approve/{pending_id}", timeout=5,
                     **kw)


async def test_correct_fake_v1_hub_passes_every_check(aiohttp_client, tmp_path):
    fake = fake_hub()
    client = await aiohttp_client(fake.app())
    report = new_report("hub-v1")
    seen = tmp_path / "approve-args"
    script = tmp_path / "approve.py"
    script.write_text("import sys, urllib.request\n"
                      "open(sys.argv[1], 'w').write(' '.join(sys.argv[3:]))\n"
                      "urllib.request.urlopen(urllib.request.Request(sys.argv[2], "
                      "method='POST'))\n")
    t = target(url_of(client))
    t.approve_cmd = (f"{shlex.quote(sys.executable)} {script} {seen} "
                     f"{url_of(client)}/_fake/approve/{{pending_id}} "
                     "key={key_id} origin={origin} pending={pending_id} peer={peer}")
    await run_hub(t, report, v1=True)
    out = report.out.getvalue()
    assert report.failures == [] and report.skipped == [], out
    assert {r.name for r in report.results} == V1_NAMES
    assert len([n for n in V1_NAMES if n.startswith("v1.invalid.")]) == 11
    # the original takes multipart only: the raw check reports that, and passes
    raw = next(r for r in report.results if r.name == "v1.push_raw")
    assert "refused cleanly (422)" in raw.detail
    # the approval went through --approve-cmd with the original's integer pending id
    push = next(r for r in report.results if r.name == "v1.push")
    assert "approved with --approve-cmd" in push.detail
    assert fake.pending == {} and fake.next_pending == 2
    key, origin, pending, peer = seen.read_text().split()
    assert key == origin.replace("origin", "key") and len(key) == len("key=") + 16
    assert pending == "pending=1" and peer == "peer=conformance"
    assert [s["fields"] for s in fake.seen if s["route"] == "push"][0] == ["bundle"]


async def test_lax_fake_v1_hub_fails_the_checks_it_lets_through(aiohttp_client):
    fake = fake_hub(lax=frozenset({"symlink", "duplicate"}))
    client = await aiohttp_client(fake.app())
    report = new_report("hub-v1")
    await run_hub(target(url_of(client)), report, v1=True)
    failed = {r.name: r.detail for r in report.failures}
    assert set(failed) == {"v1.invalid.tar_symlink", "v1.invalid.tar_duplicate_name"}, \
        report.out.getvalue()
    for name, detail in failed.items():
        vector = name.removeprefix("v1.invalid.")
        assert f"let {vector} through its archive and signature checks and queued it" in detail
        assert "pending id" in detail
    assert report.skipped == [] and report.exit_code == 1
    assert len(fake.pending) == 2  # what the lax hub queued, as the original did


async def test_pre_registered_key_needs_no_approval(aiohttp_client, tmp_path):
    pair = generate_keypair(tmp_path / "conformance.key")
    fake = fake_hub(keys={"conformance": {pair.public_key}})
    client = await aiohttp_client(fake.app())
    report = new_report("hub-v1")
    t = target(url_of(client), key_seed=pair.seed)
    t.approve_cmd = None
    await run_hub(t, report, v1=True, only=["v1.status"])
    assert report.failures == [], report.out.getvalue()
    ran = {r.name for r in report.passed}
    assert ran == {"v1.push", "v1.status"}  # --only runs what the check needs, too
    assert all(r.detail == "not selected (--only/-k)" for r in report.skipped)
    assert {r.name for r in report.results} == V1_NAMES
    assert fake.pending == {} and fake.next_pending == 1  # nothing was ever parked


async def test_parked_without_a_way_to_approve_says_how(aiohttp_client):
    client = await aiohttp_client(fake_hub().app())
    report = new_report("hub-v1")
    t = target(url_of(client))
    t.approve_cmd = None
    await run_hub(t, report, v1=True, keywords=["push"])
    [push] = [r for r in report.results if r.name == "v1.push"]
    assert not push.ok and "pending id 1" in push.detail and "--key-file" in push.detail
    raw = next(r for r in report.results if r.name == "v1.push_raw")
    assert raw.skipped and raw.detail == "needs v1.push, which failed"


def cli(*args: str):
    return CliRunner().invoke(root, ["conformance", "hub", *args])


async def test_cli_usage_errors_come_before_any_check(aiohttp_client):
    fake = fake_hub()
    url = url_of(await aiohttp_client(fake.app()))
    cases = [
        ([url, "--token", TOKEN, "--v1"], "--v1 needs --peer"),
        ([url, "--v1", "--peer", "conformance"], "--token"),
        ([url, "--token", TOKEN, "--v1", "--peer", "conformance", "--other-peer", "other"],
         "go together"),
        ([url, "--token", TOKEN, "--peer", "conformance"], "belong to --v1"),
        ([url, "--token", TOKEN, "--only", "no.such.check"], "matches no check"),
        ([url, "--token", TOKEN, "--v1", "--peer", "conformance", "-k", "zzz"],
         "matches no check"),
    ]
    for args, words in cases:
        result = await asyncio.to_thread(cli, *args)
        assert result.exit_code == 2 and words in result.output, (args, result.output)
        assert "PASS" not in result.output and "FAIL" not in result.output
    assert fake.seen == []  # nothing reached the hub


async def test_cli_list_prints_needs_and_writes_without_contacting_anything():
    result = await asyncio.to_thread(cli, "--list", "--v1")
    assert result.exit_code == 0
    assert "v1.other_peer\n    needs: v1.push, --peer, --other-peer and --other-token" in \
        result.output
    assert "v1.push\n    needs: --peer\n    writes: a bundle" in result.output
    names = [line for line in result.output.splitlines() if not line.startswith(" ")]
    assert set(names) == V1_NAMES
    result = await asyncio.to_thread(cli, "--list")
    assert "subscriptions.lifecycle\n    needs: hub.reachable, --subscriber-token" in \
        result.output
    listed = set(result.output.split())
    assert {f"invalid.{v.name}" for v in invalid_vectors(default_limits_only=True)} <= listed
    assert "invalid.too_many_files" not in listed  # judged under lowered limits only


async def test_cli_v1_run_with_junit_marks_skips(aiohttp_client, tmp_path):
    url = url_of(await aiohttp_client(fake_hub().app()))
    junit = tmp_path / "v1.xml"
    result = await asyncio.to_thread(
        cli, url, "--token", TOKEN, "--v1", "--peer", "conformance", "--approve-cmd",
        APPROVE + url + "/_fake/approve/{pending_id}", "--only", "v1.pull",
        "--junit", str(junit))
    assert result.exit_code == 0, result.output
    assert f"hub-v1: 2 passed, 0 failed, {len(V1_NAMES) - 2} skipped" in result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert int(suite.get("skipped")) == len(V1_NAMES) - 2
    assert int(suite.get("tests")) == len(V1_NAMES)
