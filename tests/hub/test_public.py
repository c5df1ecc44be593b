from __future__ import annotations

import re

from hub import queries as Q
from hub import typedefs as T
from protocol.containers import from_targz, to_targz
from service.ids import token_hash
from tests.hub.test_ingest import push


async def test_feed_shows_public_requests_with_comments_paginated(make_hub, origin):
    from hub import typedefs as T

    client = await make_hub(T.HubOptions(feed_page_size=2, verify_processes=0))
    pool = client.server.app[T.pool_key]
    await Q.add_peer(pool, "alpha", "node", token_hash("p" * 20))
    await Q.trust_key(pool, origin.origin, origin.origin, origin.public_key, "alpha")
    reqs = [origin.request(f"Q{i}", title=f"Title <{i}>") for i in range(3)]
    comment = origin.comment("C1", f"{origin.origin}/Q0", body="Count me in")
    secret = origin.comment("C2", f"{origin.origin}/Q0", body="hidden words", scope="private")
    assert (await push(client, "p" * 20, origin.bundle([*reqs, comment, secret]))).status == 201
    page1 = await (await client.get("/")).text()
    page2 = await (await client.get("/?page=2")).text()
    assert page1.count('class="request"') == 2 and page2.count('class="request"') == 1
    assert "&lt;0&gt;" in page1 + page2 and "<0>" not in page1 + page2  # escaped
    assert "Count me in" in page1 + page2
    assert "hidden words" not in page1 + page2
    assert 'rel="next"' in page1 and 'rel="prev"' in page2


async def test_records_api_search_and_paging(hub_client, peer, origin):
    await push(hub_client, peer, origin.bundle(
        [origin.request(title="Bicycle repair"), origin.request(title="Groceries"),
         origin.request(title="Another bicycle")]))
    r = await hub_client.get("/api/v2/records?q=bicycle")
    titles = sorted(x["headers"]["Title"] for x in (await r.json())["records"])
    assert titles == ["Another bicycle", "Bicycle repair"]
    r = await hub_client.get("/api/v2/records?limit=2")
    body = await r.json()
    assert len(body["records"]) == 2 and body["after"]
    r = await hub_client.get(f"/api/v2/records?limit=2&after={body['after']}")
    assert len((await r.json())["records"]) == 1


async def test_well_known_health_and_metrics(hub_client, peer, origin):
    await push(hub_client, peer, origin.many(4))
    wk = await (await hub_client.get("/.well-known/whiteballoon-hub")).json()
    assert wk["head"] == 1 and wk["limits"]["max_bundle_bytes"] > 0
    assert (await (await hub_client.get("/healthz")).json())["status"] == "ok"
    assert (await (await hub_client.get("/readyz")).json())["status"] == "ready"
    text = await (await hub_client.get("/metrics")).text()
    assert "wb_hub_ingest_records_total 4.0" in text
    assert "wb_hub_log_head 1.0" in text


async def test_v1_sync_endpoints_for_schema1_nodes(hub_client, peer, origin):
    b = origin.many(2)
    r = await hub_client.post("/api/v1/sync/alpha/bundle", data=to_targz(b),
                              headers={"Authorization": f"Bearer {peer}",
                                       "Content-Type": "application/gzip"})
    assert r.status == 202, await r.text()  # the original's answer (issue 16)
    r = await hub_client.get("/api/v1/sync/alpha/status",
                             headers={"Authorization": f"Bearer {peer}"})
    status = await r.json()
    assert status["digest"] == b.digest and status["records"] == 2
    r = await hub_client.get("/api/v1/sync/alpha/bundle",
                             headers={"Authorization": f"Bearer {peer}"})
    assert r.status == 200 and from_targz(await r.read()).digest == b.digest
    r = await hub_client.get("/api/v1/sync/other/status",
                             headers={"Authorization": f"Bearer {peer}"})
    assert r.status == 404  # the original's answer for an unknown peer (issue 16)
    await Q.add_peer(hub_client.server.app[T.pool_key], "other", "node", token_hash("o" * 20))
    r = await hub_client.get("/api/v1/sync/other/status",
                             headers={"Authorization": f"Bearer {peer}"})
    assert r.status == 401  # another peer's: this token is not its token


async def admin_login(client, pool) -> str:
    token = "admin-token-abcdefghijklmnop"
    await Q.add_admin_token(pool, token_hash(token))
    r = await client.post("/admin/login", data={"token": token}, allow_redirects=False)
    assert r.status == 303
    cookie = r.cookies["wb_hub_admin"].value
    assert token not in cookie and token_hash(token) not in cookie
    page = await (await client.get("/admin")).text()
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)


async def test_admin_login_csrf_and_key_approval(hub_client, hub_pool, peer):
    from tests.hub.helpers import Origin, seed

    assert (await hub_client.get("/admin", allow_redirects=False)).status == 303
    r = await hub_client.post("/admin/login", data={"token": "wrong"})
    assert r.status == 401
    stranger = Origin(seed(77))
    assert (await push(hub_client, peer, stranger.many(1))).status == 202
    csrf = await admin_login(hub_client, hub_pool)
    page = await (await hub_client.get("/admin")).text()
    assert stranger.origin in page and "Pending keys" in page
    r = await hub_client.post(f"/admin/keys/{stranger.origin}/approve", data={},
                              allow_redirects=False)
    assert r.status == 403  # no CSRF token
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 0
    r = await hub_client.post(f"/admin/keys/{stranger.origin}/approve",
                              data={"csrf_token": csrf}, allow_redirects=False)
    assert r.status == 303
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_log") == 1


async def test_admin_blocklist_refuses_origin(hub_client, hub_pool, peer, origin):
    csrf = await admin_login(hub_client, hub_pool)
    r = await hub_client.post("/admin/blocklist", data={"csrf_token": csrf,
                                                        "origin": origin.origin},
                              allow_redirects=False)
    assert r.status == 303
    r = await push(hub_client, peer, origin.many(1))
    assert r.status == 403 and (await r.json())["error"]["code"] == "origin_blocked"


async def test_records_api_cache_is_invalidated_by_ingest(hub_client, peer, origin):
    from hub import typedefs as T

    cache = hub_client.server.app[T.records_cache_key]
    await push(hub_client, peer, origin.bundle([origin.request(title="First")]))
    first = await (await hub_client.get("/api/v2/records?entity=request")).json()
    again = await (await hub_client.get("/api/v2/records?entity=request")).json()
    assert again == first and cache.hits == 1
    await push(hub_client, peer, origin.bundle([origin.request(title="Second")]))
    after = await (await hub_client.get("/api/v2/records?entity=request")).json()
    assert sorted(r["headers"]["Title"] for r in after["records"]) == ["First", "Second"]


def test_hub_options_come_from_wb_hub_settings(tmp_path):
    import pytest

    from hub import typedefs as T
    from service.settings import Config

    config = Config({"WB_HUB_STREAM_MAX_LAG": "7", "WB_HUB_DELIVERY": "false",
                     "WB_HUB_RETENTION_DAYS": "0.5"}, environ={}, dotenv=tmp_path / "x")
    options = T.HubOptions.from_config(config, verify_processes=0)
    assert options.stream_max_lag == 7 and options.delivery is False
    assert options.retention_days == 0.5 and options.verify_processes == 0
    assert options.page_limit == T.HubOptions().page_limit
    with pytest.raises(ValueError, match="WB_HUB_PAGE_LIMIT"):
        T.HubOptions.from_config(Config({"WB_HUB_PAGE_LIMIT": "lots"}, environ={},
                                        dotenv=tmp_path / "x"))


async def test_feed_links_an_instance_only_when_it_is_http_or_https(hub_client, hub_pool):
    """A hostile origin's ``Instance`` (stored before the protocol refused such values, or
    by any other path) is shown as text, never as a link."""
    hostile = ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
               "data:text/html,<script>x</script>", "//evil.example", "/relative",
               "http://", "https:///nohost", "vbscript:x", "java\tscript:alert(1)"]
    for i, value in enumerate([*hostile, "https://good.example/path"]):
        await hub_pool.execute(
            """INSERT INTO hub_records (origin, entity, id, revision, instance, updated_at,
                   head, body, title, status, created_at, digest)
               VALUES ('0123456789abcdef', 'request', $1, 1, $2, $3, '', 'b', $4, 'open',
                       $3, 'd')""", f"R{i}", value, f"2026-01-01T00:00:{i:02d}Z", f"T{i}")
    page = await (await hub_client.get("/")).text()
    hrefs = re.findall(r'href="([^"]*)" rel="nofollow noopener"', page)
    assert hrefs == ["https://good.example/path"]
    assert "javascript:alert(1)" in page  # still shown, as escaped text
    from hub.public import link_target

    assert all(link_target(v) is None for v in hostile)
    assert link_target("http://node.example:8080/") == "http://node.example:8080/"
