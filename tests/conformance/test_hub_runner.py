"""The hub runner passes every check against our own hub on loopback."""

from __future__ import annotations

from conformance_tests.bundles import invalid_vectors
from conformance_tests.hub_runner import HubTarget, run_hub
from hub import queries as Q
from hub import typedefs as HT
from service.ids import token_hash
from tests.conformance.conftest import (
    ADMIN_TOKEN,
    HUB_TOKEN,
    SUBSCRIBER_TOKEN,
    new_report,
    url_of,
)

KEYED_TOKEN = "conformance-keyed-token-0123456789"  # noqa: S105


async def test_hub_v2_all_checks_pass(live_hub):
    report = new_report("hub")
    target = HubTarget(url_of(live_hub), HUB_TOKEN, subscriber_token=SUBSCRIBER_TOKEN,
                       admin_token=ADMIN_TOKEN, timeout=10)
    await run_hub(target, report)
    out = report.out.getvalue()
    assert report.failures == [], out
    names = {r.name for r in report.results}
    assert {f"invalid.{v.name}" for v in invalid_vectors(default_limits_only=True)} <= names
    # vectors judged under lowered limits are valid bundles for a hub at its defaults
    limited = {v.name for v in invalid_vectors()} - {
        v.name for v in invalid_vectors(default_limits_only=True)}
    assert limited and not {f"invalid.{n}" for n in limited} & names
    assert {"ingest.first_bundle", "ingest.idempotent", "cursor.future", "stream.resume",
            "stream.live", "scope.private_withheld", "chain.gap", "chain.equivocation",
            "subscriptions.lifecycle", "tlog.key", "tlog.checkpoint", "tlog.tiles",
            "tlog.inclusion", "tlog.consistency", "tlog.bad_requests"} <= names
    assert all(report.status_of(n) == "passed" for n in names if n.startswith("tlog."))
    assert report.exit_code == 0
    # the hub really holds what the runner pushed, and nothing private
    pool = live_hub.server.app[HT.pool_key]
    assert await pool.fetchval("SELECT count(*) FROM hub_bundles") >= 8
    assert await pool.fetchval(
        "SELECT count(*) FROM hub_records WHERE body LIKE '%PRIVATE%' OR head LIKE '%PRIVATE%'"
    ) == 0


async def test_hub_v1_profile_passes_with_nothing_skipped(live_hub):
    report = new_report("hub-v1")
    target = HubTarget(url_of(live_hub), HUB_TOKEN, admin_token=ADMIN_TOKEN,
                       peer="conformance", other_peer="subscriber",
                       other_token=SUBSCRIBER_TOKEN, timeout=10)
    await run_hub(target, report, v1=True)
    out = report.out.getvalue()
    assert report.failures == [] and report.skipped == [], out
    names = {r.name for r in report.results}
    assert {"v1.missing_token", "v1.wrong_token", "v1.unknown_peer", "v1.push",
            "v1.answer_shape", "v1.status", "v1.pull", "v1.push_raw",
            "v1.other_peer"} <= names
    tar_vectors = {v.name for v in invalid_vectors(default_limits_only=True)
                   if v.path.name.endswith(".tar.gz")}
    assert len(tar_vectors) == 11
    assert {f"v1.invalid.{n}" for n in tar_vectors} <= names
    assert "hub-v1: " in report.summary() and ", 0 skipped" in report.summary()
    pool = live_hub.server.app[HT.pool_key]
    # the multipart upload and the raw one; nothing of the invalid archives parked
    assert await pool.fetchval(
        "SELECT count(*) FROM hub_bundles WHERE received_from = 'conformance'") == 2
    assert await pool.fetchval("SELECT count(*) FROM hub_pending_bundles") == 0


async def test_hub_v1_without_the_peer_name_skips_every_check_with_the_reason(live_hub):
    report = new_report("hub-v1")
    await run_hub(HubTarget(url_of(live_hub), HUB_TOKEN), report, v1=True)
    assert report.exit_code == 1 and report.failures == []
    assert report.skipped and all("--peer" in r.detail for r in report.skipped)


async def test_a_registered_key_runs_again_and_again_without_approval(live_hub, tmp_path):
    """--key-file: the same origin on every run; chains and record ids never collide with
    an earlier run (no equivocation, no tombstoned id reused)."""
    from keys import generate_keypair
    from protocol.signature import key_id

    pair = generate_keypair(tmp_path / "conf.key")
    pool = live_hub.server.app[HT.pool_key]
    await Q.add_peer(pool, "keyed", "node", token_hash(KEYED_TOKEN))
    origin = key_id(pair.public_key)
    await Q.trust_key(pool, origin, origin, pair.public_key, "keyed")
    for _ in range(2):
        report = new_report("hub")
        await run_hub(HubTarget(url_of(live_hub), KEYED_TOKEN, key_seed=pair.seed, timeout=10),
                      report, only=["records.tombstone", "scope.records_index",
                                    "chain.equivocation", "invalid.untrusted_signer"])
        assert report.failures == [], report.out.getvalue()
        assert "(key approved)" not in report.out.getvalue()
    assert await pool.fetchval("SELECT count(*) FROM hub_pending_keys WHERE origin = $1",
                               origin) == 0
