"""Recurring requests in real Chromium, JavaScript on and off: a house manager creates a
weekly template from the menu; a forced run of the job puts the draft in their drafts and
in the template's log."""

from __future__ import annotations

import datetime as dt

import pytest

from node import typedefs as T
from node.recurring import handlers as RH
from node.recurring import service as S
from node.scheduler import jobs_key, run_job


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_weekly_template_then_forced_run_shows_the_draft(signed_in_context, live_app, js):
    app = live_app.app
    pool = app[T.pool_key]
    clock = {"now": dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)}  # a Monday, noon UTC
    app[T.extras_key][S.CLOCK] = lambda: clock["now"]
    ctx, base, user_id = await signed_in_context("hana", js=js)
    await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'house_manager')",
                       user_id)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(base + "/")
    await page.click("details.menu > summary")
    await page.click("text=Recurring requests")
    await page.wait_for_url(base + "/recurring")
    await page.fill("#rec-title", "Bins out")
    await page.fill("#rec-description", "Wheel both bins to the kerb.")
    await page.check("input[name=cadence][value=weekly]")
    await page.check("input[name=weekdays][value=tue]")
    await page.check("input[name=weekdays][value=fri]")
    await page.fill("#rec-time", "07:30")
    await page.check("input[name=mode][value=draft]")
    await page.click("button.save-recurring")
    await page.wait_for_url(base + "/recurring/*")
    assert "Nothing yet" in await page.inner_text("main")
    row = await pool.fetchrow("SELECT * FROM recurring_templates")
    assert list(row["weekdays"]) == [2, 5] and row["owner_id"] == user_id

    # Tuesday 08:00: an operator forces the job (as `wb jobs run recurring:materialise`)
    clock["now"] = dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC)
    result = await run_job(app, app[jobs_key][RH.JOB_ID], force=True)
    assert result == "ok: drafts 1, requests 0, skipped 0"
    await page.reload()
    log = page.locator("table.recurring-log tr.occurrence")
    assert await log.count() == 1
    assert "2026-03-03 07:30" in await log.first.inner_text()
    await log.first.locator("a").click()
    await page.wait_for_url(base + "/drafts/*")
    assert await page.input_value("#draft-title") == "Bins out"
    await page.goto(base + "/drafts")
    assert "Bins out" in await page.inner_text("main")
    assert await pool.fetchval("SELECT count(*) FROM requests") == 0
    assert errors == []
