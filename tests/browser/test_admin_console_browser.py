"""The seed's metric, walked in real Chromium: from /admin, approve a member, triage a
request and run a sync, each in at most three clicks, with JavaScript on and off.

Every click goes through ``Clicks.click`` so the count is what a person would do; typing
is not a click. A job that needs a fourth click fails the test.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from node import typedefs as T
from tests.browser.seed import seed

MAX_CLICKS = 3


class Clicks:
    def __init__(self, page):
        self.page, self.n = page, 0

    async def click(self, selector: str, **kw) -> None:
        self.n += 1
        await self.page.click(selector, **kw)


@pytest_asyncio.fixture(loop_scope="session")
async def community(live_app, tmp_path):
    return await seed(live_app.app, tmp_path / "exchange")


async def _admin_page(browser, live_app, community, js: bool):
    from tests.browser.seed import browser_session

    base = str(live_app.make_url("/")).rstrip("/")
    ctx = await browser.new_context(java_script_enabled=js,
                                    viewport={"width": 390, "height": 844})
    cookie = await browser_session(live_app.app, community.admin_id)
    await ctx.add_cookies([{"name": "wb_session_id", "value": cookie, "url": base + "/"}])
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(base + "/admin")
    return ctx, page, base, errors


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_three_admin_jobs_within_three_clicks(browser, live_app, community, js):
    pool = live_app.app[T.pool_key]
    ctx, page, base, errors = await _admin_page(browser, live_app, community, js)
    try:
        # the main nav says approvals wait, on every page
        assert (await page.inner_text("header.top a.nav-admin .count")).startswith("2")

        # 1. approve the new member (dan), who was invited and wrote while waiting
        c = Clicks(page)
        await c.click("#tile-approvals")
        card = page.locator(f"#approval-{community.newcomer_request_id}")
        text = await card.inner_text()
        assert "new member" in text and "invited by Bob" in text
        assert "Safari" in text and "iOS" in text and "198.51.100.x" in text
        assert "Lift to the clinic" in text  # what they wrote meanwhile
        assert "new device" in await page.inner_text(
            f"#approval-{community.device_request_id}")
        await c.click(f"#approval-{community.newcomer_request_id} button:has-text('Approve')")
        await page.wait_for_url(base + "/admin/sessions?done=approved")
        assert c.n <= MAX_CLICKS, c.n
        assert await pool.fetchval("SELECT status FROM auth_requests WHERE id = $1",
                                   community.newcomer_request_id) == "approved"
        assert "Approved" in await page.inner_text("p.flash")

        # 2. triage: open the requests list, open one, mark it completed
        await page.goto(base + "/admin")
        c = Clicks(page)
        await c.click("#tile-requests")
        await c.click("a:has-text('Help moving a sofa')")
        await c.click("button.complete-button")
        rid = community.request_ids[1]

        async def completed():
            return await pool.fetchval("SELECT status FROM requests WHERE id=$1", rid)
        await page.locator(f"#req-{rid}[data-status=completed]").wait_for()
        assert await completed() == "completed"
        assert c.n <= MAX_CLICKS, c.n

        # 3. sync: push to the peer now; the result shows without a reload (JS) or as
        # a flash after the redirect (no JS)
        await page.goto(base + "/admin")
        c = Clicks(page)
        await c.click("button:has-text('Push now')")
        if js:
            out = page.locator("output.sync-result.ok")
            await out.wait_for()
            assert "push:shared: ok: pushed 1" in await out.inner_text()
        else:
            await page.wait_for_url(base + "/admin?flash=*")
            assert "push:shared: ok: pushed 1" in await page.inner_text("p.flash")
        assert c.n <= MAX_CLICKS, c.n
        actor = await pool.fetchval("SELECT actor FROM sync_jobs WHERE kind = 'push' "
                                    "ORDER BY id DESC LIMIT 1")
        assert actor == f"admin:{community.admin_id}"  # not "scheduler"

        # ... and from any page: the admin link, then the button
        await page.goto(base + "/members")
        c = Clicks(page)
        await c.click("header.top a.nav-admin")
        await c.click("button:has-text('Pull now')")
        if js:
            await page.locator("output.sync-result", has_text="pull:shared").wait_for()
        else:
            await page.wait_for_url(base + "/admin?flash=*")
        assert c.n <= MAX_CLICKS, c.n
        assert errors == []
    finally:
        await ctx.close()


async def test_wrong_code_stays_on_the_approvals_page(browser, live_app, community):
    """An admin's typo is shown next to the entry, not on a bare error page."""
    pool = live_app.app[T.pool_key]
    ctx, page, base, _ = await _admin_page(browser, live_app, community, False)
    try:
        await page.goto(base + "/admin/sessions")
        rid = community.device_request_id
        await page.fill(f"#code-{rid}", "999999")
        response_status = []
        page.on("response", lambda r: response_status.append(r.status))
        await page.click(f"#approval-{rid} button:has-text('Approve')")
        await page.locator(f"#err-{rid}").wait_for()
        assert 400 in response_status
        assert await page.locator("h1").inner_text() == "Approvals"
        assert await page.get_attribute(f"#code-{rid}", "aria-invalid") == "true"
        assert await pool.fetchval("SELECT attempts FROM auth_requests WHERE id=$1", rid) == 1
    finally:
        await ctx.close()
