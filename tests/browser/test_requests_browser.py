"""JS and no-JS parity in real Chromium: post a request, comment, complete, toggle scope.

With JavaScript on, app.js sends the comment / complete / scope forms with fetch and
updates the page in place (a marker set on ``window`` survives, proving no reload).
With JavaScript off, the same forms post and redirect back (PRG).
"""

from __future__ import annotations

import pytest

from node import typedefs as T


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_request_lifecycle_parity(signed_in_context, live_app, js):
    ctx, base, user_id = await signed_in_context("ann", js=js)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    pool = live_app.app[T.pool_key]

    # post a request through the collapsible form
    await page.goto(base + "/")
    await page.click("details#ask > summary")
    await page.fill("#ask-title", "Borrow a ladder")
    await page.fill("#ask-description", "Two metres is enough.")
    await page.click("form.ask-form button[type=submit]")
    await page.wait_for_url(base + "/requests/*")
    assert await page.inner_text("h1") == "Borrow a ladder"
    rid = page.url.rsplit("/", 1)[1]
    assert await pool.fetchval("SELECT status FROM requests WHERE id=$1", rid) == "open"
    enhanced = await page.evaluate("document.documentElement.dataset.enhanced || null") \
        if js else None
    assert enhanced == ("1" if js else None)
    if js:
        await page.evaluate("window.__noReload = 'still here'")

    # comment
    await page.fill("#comment-body", "I have one in the shed.")
    await page.click("form.comment-form button[type=submit]")
    comment = page.locator("#comments li.comment", has_text="I have one in the shed.")
    await comment.wait_for()
    assert await page.inner_text(".comment-count") == "(1)"
    assert await pool.fetchval("SELECT count(*) FROM comments WHERE request_id=$1", rid) == 1

    # complete
    await page.click("button.complete-button")
    await page.locator(f"#req-{rid}[data-status=completed]").wait_for()
    assert await page.locator("button.complete-button").count() == 0
    assert await pool.fetchval("SELECT status FROM requests WHERE id=$1", rid) == "completed"

    # toggle scope to public (after a confirmation: a dialog with JS, a page without)
    # and back (no confirmation needed to keep something home)
    dialogs: list[str] = []

    async def accept(dialog):
        dialogs.append(dialog.message)
        await dialog.accept()
    page.on("dialog", accept)
    await page.click("button.scope-button")
    if not js:
        assert await page.inner_text("h1") == "Share this request with other communities?"
        assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1",
                                   rid) == "private"  # nothing happens before the "yes"
        await page.click("button.confirm-public")
    await page.locator(f"#req-{rid}[data-scope=public]").wait_for()
    assert len(dialogs) == (1 if js else 0)
    assert "public · shared" in await page.inner_text(f"#req-{rid}")
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "public"
    await page.click("button.scope-button")
    await page.locator(f"#req-{rid}[data-scope=private]").wait_for()
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "private"

    if js:
        assert await page.evaluate("window.__noReload") == "still here"
        # an invalid comment shows the server's message without leaving the page
        await page.fill("#comment-body", "   ")
        await page.evaluate("document.getElementById('comment-body').removeAttribute('required')")
        await page.click("form.comment-form button[type=submit]")
        await page.locator("form.comment-form .form-error:not([hidden])").wait_for()
        assert "empty" in await page.inner_text("form.comment-form .form-error")
    assert errors == []


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_bulk_scope_page(signed_in_context, live_app, js):
    ctx, base, user_id = await signed_in_context("bea", js=js)
    pool = live_app.app[T.pool_key]
    page = await ctx.new_page()
    await page.goto(base + "/sync/scope")
    await page.check(f"#sel-user-{user_id}")
    await page.click("button[name=sync_scope][value=public]")
    await page.wait_for_url(base + "/sync/scope?changed=1")
    assert "public · shared" in await page.inner_text(f"#scope-user-{user_id}")
    assert await pool.fetchval("SELECT sync_scope FROM users WHERE id=$1", user_id) == "public"
