"""The hub runner passes every check against our own hub on loopback."""

from __future__ import annotations

from conformance_tests.bundles import invalid_vectors
from conformance_tests.hub_runner import HubTarget, run_hub
from hub import typedefs as HT
from tests.conformance.conftest import (
    ADMIN_TOKEN,
    HUB_TOKEN,
    SUBSCRIBER_TOKEN,
    new_report,
    url_of,
)


async def test_hub_v2_all_checks_pass(live_hub):
    report = new_report("hub")
    target = HubTarget(url_of(live_hub), HUB_TOKEN, subscriber_token=SUBSCRIBER_TOKEN,
                       admin_token=ADMIN_TOKEN, timeout=10)
    await run_hub(target, report)
    out = report.out.getvalue()
    assert report.failures == [], out
    names = {r.name for r in report.results}
    assert {f"invalid.{v.name}" for v in invalid_vectors()} <= names
    assert {"ingest.first_bundle", "ingest.idempotent", "cursor.future", "stream.resume",
            "stream.live", "scope.private_withheld", "chain.gap", "chain.equivocation",
            "subscriptions.lifecycle"} <= names
    assert report.exit_code == 0
    # the hub really holds what the runner pushed, and nothing private
    pool = live_hub.server.app[HT.pool_key]
    assert await pool.fetchval("SELECT count(*) FROM hub_bundles") >= 8
    assert await pool.fetchval(
        "SELECT count(*) FROM hub_records WHERE body LIKE '%PRIVATE%' OR head LIKE '%PRIVATE%'"
    ) == 0


async def test_hub_v1_subset_passes(live_hub):
    report = new_report("hub-v1")
    target = HubTarget(url_of(live_hub), HUB_TOKEN, admin_token=ADMIN_TOKEN,
                       peer="conformance", timeout=10)
    await run_hub(target, report, v1=True)
    assert report.failures == [], report.out.getvalue()
    assert {r.name for r in report.results} == {
        "v1.missing_token", "v1.push", "v1.status", "v1.pull", "v1.other_peer", "v1.invalid"}
    pool = live_hub.server.app[HT.pool_key]
    assert await pool.fetchval(
        "SELECT count(*) FROM hub_bundles WHERE received_from = 'conformance'") == 1


async def test_hub_v1_needs_the_peer_name(live_hub):
    report = new_report("hub-v1")
    await run_hub(HubTarget(url_of(live_hub), HUB_TOKEN), report, v1=True)
    assert report.exit_code == 1
    assert "--peer" in report.failures[0].detail
