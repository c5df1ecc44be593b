"""Pinned requests in real Chromium, JavaScript on and off: an admin pins a request from its
page (a plain form either way), a member sees it above the feed, the admin unpins it."""

from __future__ import annotations

import pytest

from node import typedefs as T
from service.ids import ulid


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_admin_pins_and_member_sees_it_first(signed_in_context, live_app, js):
    pool = live_app.app[T.pool_key]
    admin_ctx, base, admin_id = await signed_in_context("ada", js=js, admin=True)
    member_ctx, _, _ = await signed_in_context("mel", js=js)
    rid = ulid()
    await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                       "VALUES ($1, 'Sandbags before the storm', 'by Friday', $2)",
                       rid, admin_id)
    page = await admin_ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/requests/{rid}")
    await page.click("details.pin-form > summary")
    await page.fill("#pin-note", "Storm warning")
    await page.click("details.pin-form button[type=submit]")
    await page.wait_for_url(base + "/admin/pins?done=pinned")
    assert await page.locator(f"#pin-{rid}").count() == 1
    assert await pool.fetchval("SELECT note FROM request_pins WHERE request_id=$1",
                               rid) == "Storm warning"

    member = await member_ctx.new_page()
    await member.goto(base + "/")
    pinned = member.locator(f"section.pinned #pinned-{rid}")
    assert "Storm warning" in await pinned.inner_text()

    await page.click(f"#pin-{rid} button[type=submit]")
    await page.wait_for_url(base + "/admin/pins?done=unpinned")
    assert await page.locator("text=Nothing is pinned.").count() == 1
    await member.reload()
    assert await member.locator("section.pinned").count() == 0
    assert errors == []
