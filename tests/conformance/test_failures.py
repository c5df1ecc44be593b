"""The runners fail loudly: a fake hub/node that accepts everything fails many checks,
the CLI exits non-zero and writes JUnit XML naming the failures."""

from __future__ import annotations

import hashlib
import itertools
import xml.etree.ElementTree as ET

from aiohttp import web
from click.testing import CliRunner

from conformance_tests.hub_runner import HubTarget, run_hub
from conformance_tests.node_runner import NodeTarget, run_node
from tests.conformance.conftest import HUB_TOKEN, new_report, url_of


def accept_everything() -> web.Application:
    """A 'hub' that stores nothing and says yes to every upload."""
    seq = itertools.count(1)

    async def post(request: web.Request) -> web.Response:
        data = await request.read()
        return web.json_response({"status": "stored", "hub_seq": next(seq),
                                  "digest": hashlib.sha256(data).hexdigest()}, status=201)

    async def log(request: web.Request) -> web.Response:
        return web.json_response({"head": 0, "next": 0, "entries": []})

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "csrf_token": "x"})

    app = web.Application()
    app.router.add_post("/api/v2/bundles", post)
    app.router.add_get("/api/v2/bundles", log)
    app.router.add_post("/sync/inbox", post)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/api/csrf", ok)
    return app


async def test_hub_runner_fails_against_a_hub_that_accepts_everything(aiohttp_client):
    client = await aiohttp_client(accept_everything())
    report = new_report("hub")
    await run_hub(HubTarget(url_of(client), HUB_TOKEN, timeout=2), report)
    failed = {r.name for r in report.failures}
    assert report.exit_code == 1
    assert {"auth.missing_token", "auth.unknown_token", "ingest.first_bundle"} <= failed
    assert "FAIL  ingest.first_bundle" in report.out.getvalue()
    # what could not run is still in the report, with the reason
    skipped = {r.name: r.detail for r in report.skipped}
    assert skipped["subscriptions.lifecycle"] == "needs --subscriber-token"
    assert skipped["ingest.cbor"] == "needs ingest.first_bundle, which failed"
    root = ET.fromstring(report.junit())
    suite = root.find("testsuite")
    assert int(suite.get("failures")) + int(suite.get("errors")) == len(report.failures)


async def test_node_runner_fails_against_a_node_that_accepts_everything(aiohttp_client):
    client = await aiohttp_client(accept_everything())
    report = new_report("node")
    await run_node(NodeTarget(url_of(client), "t", timeout=2), report)
    failed = {r.name for r in report.failures}
    assert {"node.openapi", "inbox.missing_token", "inbox.valid"} <= failed
    assert report.exit_code == 1


def test_cli_exit_code_and_junit_for_an_unreachable_hub(tmp_path):
    from ops.cli import root as main

    junit = tmp_path / "hub.xml"
    result = CliRunner().invoke(main, ["conformance", "hub", "http://127.0.0.1:9",
                                       "--token", "t", "--timeout", "1",
                                       "--junit", str(junit)])
    assert result.exit_code == 1, result.output
    # every other check is still reported, skipped because hub.reachable failed
    assert "hub.reachable" in result.output and "0 passed, 1 failed, " in result.output
    assert "SKIP  ingest.first_bundle  -- needs hub.reachable, which failed" in result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    case = suite.find("testcase")
    assert case.get("name") == "hub.reachable" and case.find("error") is not None
    skipped = [c for c in suite.findall("testcase") if c.find("skipped") is not None]
    assert int(suite.get("skipped")) == len(skipped) == int(suite.get("tests")) - 1
    assert "needs hub.reachable" in skipped[0].find("skipped").get("message")
