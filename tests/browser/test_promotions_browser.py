"""A comment promoted to its own request in real Chromium, JavaScript on and off."""

from __future__ import annotations

import pytest

from node import typedefs as T
from service.ids import ulid


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_author_promotes_a_comment(signed_in_context, live_app, js):
    pool = live_app.app[T.pool_key]
    ctx, base, user_id = await signed_in_context("bob", js=js)
    rid, cid = ulid(), ulid()
    await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                       "VALUES ($1, 'Garden day', 'weeding', $2)", rid, user_id)
    await pool.execute("INSERT INTO comments (id, request_id, created_by, body) "
                       "VALUES ($1, $2, $3, 'Who lends a wheelbarrow?')", cid, rid, user_id)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/requests/{rid}")
    await page.click(f"#c-{cid} details.promote-form > summary")
    await page.fill(f"#promote-title-{cid}", "Wheelbarrow")
    await page.click(f"#c-{cid} details.promote-form button[type=submit]")
    await page.wait_for_url(base + "/requests/*")
    assert await page.inner_text("h1") == "Wheelbarrow"
    await page.click("p.promoted-from a")
    await page.wait_for_url(f"{base}/requests/{rid}*")
    assert await page.locator(f"#c-{cid} .promoted-link").count() == 1
    assert errors == []
