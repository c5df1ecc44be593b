"""The copilot chat in real headless Chromium against a fake streaming gateway.

With JavaScript on, copilot.js posts to /admin/copilot/stream and renders the reply as
it arrives: the first words show while the gateway still holds back the rest, and a
marker set on ``window`` survives (no reload). With JavaScript off the same form posts
and the page reloads with the answer.
"""

from __future__ import annotations

import pytest_asyncio

from node import typedefs as T
from tests.conftest import make_node_config
from tests.factories import create_session, create_user
from tests.node.copilot.fake_gateway import (
    GATE,
    FakeGateway,
    Stream,
    answer,
    delta,
    tool_calls,
)
from tests.node.copilot.helpers import add_request, enable


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(aiohttp_server):
    fake = FakeGateway()
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    fake.url = str(server.make_url("/v1"))
    yield fake
    fake.release.set()
    fake.gate.set()


@pytest_asyncio.fixture(loop_scope="session")
async def copilot_page(node_db_url, gateway, aiohttp_server, browser, tmp_path):
    """make(js) -> (page, base, pool, admin_id): an admin on /admin/copilot."""
    from node.app import create_app

    config = make_node_config(node_db_url, tmp_path / "node", ENABLE_COPILOT="true",
                              COPILOT_GATEWAY_URL=gateway.url, DEDALUS_API_KEY="k",
                              COPILOT_MODEL="m")
    server = await aiohttp_server(create_app(config), host="127.0.0.1")
    pool = server.app[T.pool_key]
    base = str(server.make_url("/")).rstrip("/")

    async def make(js: bool):
        admin = await create_user(pool, "root", admin=True)
        await enable(pool, admin)
        ctx = await browser.new_context(java_script_enabled=js)  # (closed by ``browser``)
        await ctx.add_cookies([{"name": "wb_session_id", "url": base + "/",
                                "value": await create_session(pool, admin)}])
        page = await ctx.new_page()
        await page.goto(base + "/admin/copilot")
        return page, base, pool, admin

    return make


async def test_reply_streams_in_without_a_reload(copilot_page, gateway):
    page, base, pool, admin = await copilot_page(js=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    rid = await add_request(pool, admin, "Soup", "for Ann, tonight")
    assert await page.evaluate("document.getElementById('copilot-form').dataset.streaming") \
        == "1"
    await page.evaluate("window.__noReload = 'still here'")

    gateway.script = [
        tool_calls(("triage_requests", {}),
                   ("set_scope", {"kind": "request", "id": rid, "scope": "public"})),
        Stream([delta(role="assistant", content=""), delta(content="Ann needs "),
                delta(content="soup "), GATE, delta(content="tonight.")]),
    ]
    await page.fill("#message", "who needs help?")
    await page.click("#copilot-form button[type=submit]")

    reply = page.locator("#conversation .card[data-role=assistant]").last
    # The first words are on the page while the gateway still holds back the rest.
    await reply.locator(".reply-text", has_text="Ann needs soup").wait_for()
    assert not gateway.gate.is_set()
    assert "tonight" not in await reply.inner_text()
    assert await reply.get_attribute("aria-busy") == "true"
    assert "ran triage_requests" in await reply.locator(".tool-calls").inner_text()
    proposal = page.locator("#proposals .card", has_text="set_scope")
    await proposal.wait_for()
    assert await page.locator("#conversation .card[data-role=user] .reply-text").last \
        .inner_text() == "who needs help?"

    gateway.gate.set()
    await page.locator(".card[data-role=assistant][id^=m]").last.wait_for()
    done = page.locator(".card[data-role=assistant][id^=m]").last
    assert await done.locator(".reply-text").inner_text() == "Ann needs soup tonight."
    answer_id = int((await done.get_attribute("id"))[1:])
    assert await pool.fetchval("SELECT content FROM copilot_messages WHERE id=$1",
                               answer_id) == "Ann needs soup tonight."
    assert await page.evaluate("window.__noReload") == "still here"
    assert await page.input_value("#message") == ""
    assert gateway.calls[0]["body"]["stream"] is True

    # The forms the script drew are ordinary forms: confirm the proposal, then rate.
    await proposal.locator("button", has_text="Confirm").click()
    await page.wait_for_load_state()
    await page.locator(".flash", has_text="Confirmed set_scope").wait_for()
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "public"
    await page.click(f"#m{answer_id} button[value=up]")
    await page.wait_for_url(f"{base}/admin/copilot#m{answer_id}")
    assert await pool.fetchval("SELECT feedback FROM copilot_messages WHERE id=$1",
                               answer_id) == 1

    # A gateway failure mid-answer: the error shows, the half answer goes, the text is back.
    gateway.script = [Stream([delta(content="Hal"), {"error": {"message": "overloaded"}}])]
    await page.evaluate("window.__noReload = 'again'")
    await page.fill("#message", "and now?")
    await page.click("#copilot-form button[type=submit]")
    await page.locator("#copilot-error:not([hidden])", has_text="gateway_error").wait_for()
    assert "overloaded" in await page.inner_text("#copilot-error")
    assert await page.input_value("#message") == "and now?"
    assert await page.locator(".card[data-role=assistant]:not([id])").count() == 0
    assert await page.evaluate("window.__noReload") == "again"
    assert await pool.fetchval("SELECT error_code FROM copilot_audit WHERE tool='chat' "
                               "ORDER BY id DESC LIMIT 1") == "gateway_error"
    assert errors == []


async def test_form_post_works_with_javascript_off(copilot_page, gateway):
    page, base, pool, admin = await copilot_page(js=False)
    gateway.script = [answer("Nobody is waiting right now.")]
    await page.fill("#message", "who needs help?")
    await page.click("#copilot-form button[type=submit]")
    await page.wait_for_url(base + "/admin/copilot")
    done = page.locator(".card[data-role=assistant]")
    await done.wait_for()
    assert "Nobody is waiting right now." in await done.inner_text()
    assert "stream" not in gateway.calls[0]["body"]
    answer_id = await pool.fetchval("SELECT id FROM copilot_messages WHERE role='assistant'")
    await page.click(f"#m{answer_id} button[value=down]")
    await page.wait_for_url(f"{base}/admin/copilot#m{answer_id}")
    assert await pool.fetchval("SELECT feedback FROM copilot_messages WHERE id=$1",
                               answer_id) == -1
