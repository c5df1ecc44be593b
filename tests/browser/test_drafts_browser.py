"""Drafts in real Chromium, JavaScript on and off: "Save as draft" on the ask form keeps an
unfinished request, the draft page edits and publishes it as a request."""

from __future__ import annotations

import pytest

from node import typedefs as T


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_save_as_draft_then_publish(signed_in_context, live_app, js):
    pool = live_app.app[T.pool_key]
    ctx, base, user_id = await signed_in_context("mel", js=js)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(base + "/")
    await page.click("details#ask > summary")
    await page.fill("#ask-title", "Winter coats for the kids")
    # no description yet: the draft button skips the form's "required" check
    await page.click("form.ask-form button.save-draft")
    await page.wait_for_url(base + "/drafts/*")
    assert await page.input_value("#draft-title") == "Winter coats for the kids"
    assert await pool.fetchval("SELECT count(*) FROM requests") == 0

    await page.fill("#draft-description", "Sizes 6 and 8.")
    await page.click("button.publish-draft")
    await page.wait_for_url(base + "/requests/*")
    assert await page.inner_text("h1") == "Winter coats for the kids"
    assert await pool.fetchval("SELECT count(*) FROM request_drafts") == 0
    assert await pool.fetchval("SELECT created_by FROM requests") == user_id
    assert errors == []
