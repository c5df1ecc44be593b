"""The SYNC_PUBLIC_SCOPE switch on /sync/review in real Chromium, JavaScript off and on: the
admin chooses a lower mode with a plain form, lands on the list of what is still public,
withdraws it all; the member's page follows the new mode."""

from __future__ import annotations

import json

import pytest

from node import typedefs as T


@pytest.mark.parametrize("js", [False, True], ids=["nojs", "js"])
async def test_admin_lowers_the_mode_and_withdraws_what_is_still_public(
        signed_in_context, live_app, js):
    pool = live_app.app[T.pool_key]
    ctx, base, boss_id = await signed_in_context("boss", js=js, admin=True)
    member_ctx, _, ann_id = await signed_in_context("ann", js=js)
    rid = "01JREQUESTSCOPEBROWSER000"
    await pool.execute("INSERT INTO requests (id, title, description, created_by, sync_scope) "
                       "VALUES ($1, 'Ladder for the roof', 'roof', $2, 'public')", rid, ann_id)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/sync/review")
    form = page.locator("#public-scope-form")
    # the three modes side by side, each explained; members in force
    headers = await form.locator("thead th").all_inner_texts()
    assert [h.strip() for h in headers[1:]] == ["members (in force)", "admins", "off"]
    assert await form.locator("input[name=mode][value=members]").is_checked()

    await form.locator("input[name=mode][value=off]").check()
    await form.locator("button[type=submit]").click()
    await page.wait_for_url("**/sync/review?done=lowered&count=1#still-public")
    assert "SYNC_PUBLIC_SCOPE is off now" in await page.locator(".flash").inner_text()  # once
    assert await page.locator("#public-scope-form input[value=off]").is_checked()
    still = page.locator("#still-public")
    assert "Ladder for the roof" in await still.inner_text()
    assert await pool.fetchval("SELECT mode FROM node_public_scope") == "off"
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id = $1", rid) == "public"
    row = await pool.fetchrow("SELECT actor_id, details FROM audit_log "
                              "WHERE action = 'sync.public_scope'")
    assert row["actor_id"] == boss_id
    assert {k: json.loads(row["details"])[k] for k in ("from", "to")} == {
        "from": "members", "to": "off"}

    # the member's page no longer offers "public", and says why
    member_page = await member_ctx.new_page()
    await member_page.goto(f"{base}/requests/{rid}")
    await member_page.goto(f"{base}/")
    assert await member_page.locator("#scope-off-note").count() == 1
    assert await member_page.locator("input[name=sync_scope][value=public]").count() == 0

    await still.locator("button.danger").click()
    await page.wait_for_url("**/sync/review?done=withdrawn&count=1")
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id = $1",
                               rid) == "private"
    assert errors == []
