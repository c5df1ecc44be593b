"""Peer approval (#23) in real Chromium, JavaScript on and off: bob signs in on a new
device, which names who may let him in; rita, a reviewer, types the code bob reads to her
on her queue; bob's device is in (by itself with JavaScript, with "check again" without),
and the decision is the ledger's first row."""

from __future__ import annotations

import pytest

from node import typedefs as T
from tests.factories import create_user


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_a_reviewer_approves_another_members_waiting_device(browser, live_app,
                                                                  signed_in_context, js):
    pool = live_app.app[T.pool_key]
    await create_user(pool, "ada", admin=True)
    await create_user(pool, "bob")
    rita_ctx, base, rita_id = await signed_in_context("rita", js=js)
    await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                       rita_id)
    bob_ctx = await browser.new_context(java_script_enabled=js)
    errors: list[str] = []
    try:
        # bob's new device: username only, then the page with the code and who may approve
        bob = await bob_ctx.new_page()
        bob.on("pageerror", lambda e: errors.append(str(e)))
        await bob.goto(base + "/login")
        await bob.fill("#username", "bob")
        await bob.click("button:has-text('Continue')")
        await bob.wait_for_url(base + "/login/pending*")
        code = (await bob.inner_text("#login-code")).strip()
        assert len(code) == 6
        assert "Rita" in await bob.inner_text("#who-reviewers")

        # rita's queue: bob waits; she sees no code; she types the one bob reads to her
        rita = await rita_ctx.new_page()
        rita.on("pageerror", lambda e: errors.append(str(e)))
        await rita.goto(base + "/")
        await rita.click("summary:has-text('Menu')")
        await rita.click("a:has-text('Review sign-ins')")
        await rita.wait_for_url(base + "/review/sign-ins")
        rid = await pool.fetchval("SELECT id FROM auth_requests WHERE status = 'pending'")
        card = rita.locator(f"#review-{rid}")
        assert "@bob" in await card.inner_text() and code not in await rita.content()
        # a typo first: shown next to the entry, counted
        await rita.fill(f"#code-{rid}", "000000" if code != "000000" else "111111")
        await rita.click(f"#review-{rid} button:has-text('Approve')")
        await rita.locator(f"#err-{rid}").wait_for()
        assert await rita.get_attribute(f"#code-{rid}", "aria-invalid") == "true"
        assert await pool.fetchval("SELECT attempts FROM auth_requests WHERE id=$1", rid) == 1
        await rita.fill(f"#code-{rid}", code)
        await rita.fill(f"#note-{rid}", "bob read it to me in person")
        await rita.click(f"#review-{rid} button:has-text('Approve')")
        await rita.wait_for_url(base + "/review/sign-ins?done=approved")
        assert "Approved" in await rita.inner_text("p.flash")
        await rita.locator("#review-empty").wait_for()

        # bob's device is in
        if js:
            # the page polls (every 5 s) and moves on by itself
            await bob.wait_for_url(base + "/?done=approved", timeout=20000)
        else:
            await bob.click("a:has-text('check again')")
            await bob.wait_for_url(base + "/?done=approved")
        row = await pool.fetchrow("SELECT member, reviewer, capacity, decision, note "
                                  "FROM approval_ledger")
        assert tuple(row) == ("bob", "rita", "reviewer", "approved",
                              "bob read it to me in person")
        assert errors == []
    finally:
        await bob_ctx.close()
        await rita_ctx.close()


async def test_a_reviewer_denies_a_stranger_without_javascript(browser, live_app,
                                                               signed_in_context):
    pool = live_app.app[T.pool_key]
    await create_user(pool, "bob")
    rita_ctx, base, rita_id = await signed_in_context("rita", js=False)
    await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                       rita_id)
    stranger_ctx = await browser.new_context(java_script_enabled=False)
    try:
        stranger = await stranger_ctx.new_page()
        await stranger.goto(base + "/login")
        await stranger.fill("#username", "bob")
        await stranger.click("button:has-text('Continue')")
        await stranger.wait_for_url(base + "/login/pending*")
        rita = await rita_ctx.new_page()
        await rita.goto(base + "/review/sign-ins")
        rid = await pool.fetchval("SELECT id FROM auth_requests WHERE status = 'pending'")
        await rita.click(f"#review-{rid} button:has-text('Deny')")  # no code needed
        await rita.wait_for_url(base + "/review/sign-ins?done=denied")
        assert await pool.fetchval("SELECT status FROM auth_requests WHERE id=$1",
                                   rid) == "denied"
        await stranger.goto(base + "/login/pending")
        assert stranger.url.startswith(base + "/login")  # signed out: back to sign in
    finally:
        await stranger_ctx.close()
        await rita_ctx.close()
