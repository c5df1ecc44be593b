"""The node runner passes against our node; approval is the operator's `wb sync pending
approve`, done here through the same service function."""

from __future__ import annotations

from conformance_tests.node_runner import NodeTarget, run_node
from node import typedefs as NT
from node.sync import peers as P
from node.sync.importer import approve_pending
from node.sync.service import our_origin
from tests.conformance.conftest import INBOX_TOKEN, new_report, url_of


async def _setup(node_client):
    pool = node_client.server.app[NT.pool_key]
    await P.add_peer(pool, "hub", "hub", "http://hub.test", inbox_token=INBOX_TOKEN)
    return pool


async def test_node_all_checks_pass_with_approval(node_client):
    pool = await _setup(node_client)
    config = node_client.server.app[NT.config_key]
    approved: list[str] = []

    async def approve(digest: str, key_id: str) -> None:
        approved.append(key_id)
        await approve_pending(pool, digest, our_origin=await our_origin(pool, config),
                              actor="conformance")

    report = new_report("node")
    await run_node(NodeTarget(url_of(node_client), INBOX_TOKEN, approve=approve), report)
    assert report.failures == [], report.out.getvalue()
    names = {r.name for r in report.results}
    assert {"inbox.valid", "inbox.duplicate", "inbox.equivocation", "inbox.forged_file",
            "node.openapi", "inbox.invalid.tampered_record"} <= names
    assert len(approved) == 1
    assert await pool.fetchval("SELECT count(*) FROM requests WHERE origin = $1",
                               approved[0]) == 1
    # rejected vectors changed nothing: the only received bundle is the approved one
    assert await pool.fetchval("SELECT count(*) FROM sync_received") == 1


async def test_node_without_approval_keeps_the_bundle_pending(node_client):
    pool = await _setup(node_client)
    report = new_report("node")
    await run_node(NodeTarget(url_of(node_client), INBOX_TOKEN), report)
    assert report.failures == [], report.out.getvalue()
    assert await pool.fetchval("SELECT count(*) FROM sync_received") == 0
    assert await pool.fetchval("SELECT count(*) FROM requests") == 0
