"""The publishing grace period in real Chromium, JavaScript on and off: make a request
public, see "Leaves this node in … · undo", undo it, and nothing leaves."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from node import typedefs as T
from tests.conftest import make_node_config
from tests.factories import create_session, create_user


@pytest_asyncio.fixture(loop_scope="session")
async def delayed_app(aiohttp_server, node_db_url, tmp_path):
    from node.app import create_app

    config = make_node_config(node_db_url, tmp_path / "node", WB_PUBLISH_DELAY="120")
    return await aiohttp_server(create_app(config), host="127.0.0.1")


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_make_public_then_undo(browser, delayed_app, js):
    from node.sync.export import export

    pool = delayed_app.app[T.pool_key]
    config = delayed_app.app[T.config_key]
    user_id = await create_user(pool, "ann")
    cookie = await create_session(pool, user_id)
    base = str(delayed_app.make_url("/")).rstrip("/")
    ctx = await browser.new_context(java_script_enabled=js)
    try:
        await ctx.add_cookies([{"name": "wb_session_id", "value": cookie, "url": base + "/"}])
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        rid = "01JREQUESTHOLDBROWSER0000"
        await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                           "VALUES ($1, 'Ladder', 'roof', $2)", rid, user_id)
        await page.goto(f"{base}/requests/{rid}")
        if js:
            await page.evaluate("window.__noReload = 'still here'")
        dialogs: list[str] = []

        def accept(dialog) -> None:  # publishing asks first (issue 17): say yes
            dialogs.append(dialog.message)
            asyncio.ensure_future(dialog.accept())

        page.on("dialog", accept)
        await page.click("button.scope-button")
        if not js:  # without JavaScript the question is a page of its own
            await page.click("button.confirm-public")
        assert len(dialogs) == (1 if js else 0)
        hold = page.locator(f"#req-{rid} .publish-hold")
        await hold.wait_for()
        text = await hold.inner_text()
        assert "Leaves this node in" in text and "undo" in text
        assert "min" in text
        if js:  # the countdown runs in place
            first = await hold.get_attribute("data-leaves-in")
            loop = asyncio.get_running_loop()
            end = loop.time() + 30
            while await hold.get_attribute("data-leaves-in") == first:
                assert loop.time() < end, "the countdown did not move"
                await asyncio.sleep(0.1)
            assert "min" in await hold.inner_text()
        await page.click(f"#req-{rid} .publish-undo button")
        await page.locator(f"#req-{rid}[data-scope=private]").wait_for()
        assert await page.locator(".publish-hold").count() == 0
        assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1",
                                   rid) == "private"
        if js:
            assert await page.evaluate("window.__noReload") == "still here"
        res = await export(pool, config)
        assert res.sequence is None and res.waiting == []
        assert await pool.fetchval("SELECT count(*) FROM sync_outbox") == 0
        assert errors == []
    finally:
        await ctx.close()
