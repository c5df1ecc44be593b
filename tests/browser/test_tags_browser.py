"""Tags in real Chromium, JavaScript on and off: an admin adds a tag, the author tags the
request from its page, the feed's tag filter (a plain GET form) narrows the list."""

from __future__ import annotations

import pytest

from node import typedefs as T
from service.ids import ulid


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_tag_a_request_and_filter_the_feed(signed_in_context, live_app, js):
    pool = live_app.app[T.pool_key]
    admin_ctx, base, _ = await signed_in_context("ada", js=js, admin=True)
    ctx, _, user_id = await signed_in_context("mel", js=js)
    soup, hoe = ulid(), ulid()
    for rid, title in ((soup, "Soup for Friday"), (hoe, "Borrow a hoe")):
        await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                           "VALUES ($1, $2, 'x', $3)", rid, title, user_id)
    admin = await admin_ctx.new_page()
    await admin.goto(base + "/admin/tags")
    await admin.fill("#tag-name", "food")
    await admin.click("form[action='/admin/tags'] button[type=submit]")
    await admin.wait_for_url(base + "/admin/tags?done=saved")
    assert await admin.locator("#tag-row-food").count() == 1

    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/requests/{soup}")
    await page.click("details.tag-form > summary")
    await page.check("input[name=tags][value=food]")
    await page.click("details.tag-form button[type=submit]")
    await page.wait_for_url(f"{base}/requests/{soup}")
    assert await page.locator(".request-tags a.tag-food").count() == 1
    colour = await page.eval_on_selector(".request-tags a.tag-food",
                                         "e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(31, 111, 235)"  # /tags.css applied (#1f6feb, the form's default)

    await page.goto(base + "/")
    await page.select_option("#feed-tag", "food")
    await page.click("form.feed-filter button[type=submit]")
    await page.wait_for_url(base + "/?*tag=food*")
    feed = await page.content()
    assert "Soup for Friday" in feed and "Borrow a hoe" not in feed
    assert errors == []
