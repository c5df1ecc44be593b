"""The #23 pages on a 360 px phone, JavaScript on and off: the reviewers' queue, the waiting
device's page naming its approvers, recurring requests (list, one with a long log) and the
admin's member page with its role buttons. None may scroll sideways, with long names, a
long browser string and long titles, notes and log lines, and each form works without
JavaScript (a plain POST and a redirect)."""

from __future__ import annotations

import datetime as dt

import pytest

from node import typedefs as T
from service.ids import ulid
from tests.factories import create_session, create_user

WIDTH = 360
WIDE = "() => document.documentElement.scrollWidth"
LONG = "Supercalifragilisticexpialidocious" * 3
UA = "Mozilla/5.0 " + "(Linux; Android 14; SM-" + "X" * 120 + ") AppleWebKit/537.36"


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
async def test_new_pages_fit_360px(browser, live_app, js):
    app = live_app.app
    pool = app[T.pool_key]
    base = str(live_app.make_url("/")).rstrip("/")
    ada = await create_user(pool, "ada", admin=True)
    rita = await create_user(pool, "rita")
    await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer'), "
                       "($1, 'house_manager')", rita)
    bob = await create_user(pool, "bob" + "o" * 30, invited_by=rita)
    await pool.execute("UPDATE users SET display_name = $2 WHERE id = $1", bob, LONG)
    bob_cookie = await create_session(pool, bob, status="pending")
    code = "123456"
    # the factory gave the waiting session its sign-in request: a long browser string
    await pool.execute("UPDATE auth_requests SET code = $2, user_agent = $3, "
                       "expires_at = now() + interval '15 minutes' WHERE user_id = $1",
                       bob, code, UA)
    tid = ulid()
    await pool.execute(
        "INSERT INTO recurring_templates (id, owner_id, title, description, cadence, "
        "weekdays, time_of_day, mode, anchor_at) VALUES ($1, $2, $3, $4, 'weekly', "
        "'{1,2,3,4,5,6,7}', '07:30', 'draft', now())", tid, rita, LONG, LONG + " " + LONG)
    start = dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC)
    for n in range(3):
        await pool.execute(
            "INSERT INTO recurring_occurrences (template_id, occurrence_start, made_at, "
            "outcome, note) VALUES ($1, $2, $2, 'skipped', $3)", tid,
            start + dt.timedelta(days=n), "skipped: draft_limit: " + LONG)
    pages = {"rita": ["/review/sign-ins", "/recurring", f"/recurring/{tid}"],
             "ada": ["/review/sign-ins", "/recurring", f"/recurring/{tid}",
                     f"/admin/profiles/{rita}", "/admin/sessions"],
             "bob": ["/login/pending"]}
    cookies = {"rita": await create_session(pool, rita), "ada": await create_session(pool, ada),
               "bob": bob_cookie}
    problems = {}
    for who, paths in pages.items():
        ctx = await browser.new_context(viewport={"width": WIDTH, "height": 740},
                                        java_script_enabled=js, is_mobile=True)
        try:
            await ctx.add_cookies([{"name": "wb_session_id", "value": cookies[who],
                                    "url": base + "/"}])
            page = await ctx.new_page()
            for path in paths:
                response = await page.goto(base + path)
                assert response is not None and response.status == 200, (who, path)
                width = await page.evaluate(WIDE)
                if width > WIDTH:
                    problems[f"{who} {path}"] = width
            if who == "rita":  # the queue's form, plain POST and redirect
                await page.goto(base + "/review/sign-ins")
                await page.fill("input[name=code]", code)
                await page.click("button:has-text('Approve')")
                await page.wait_for_url(base + "/review/sign-ins?done=approved")
                assert await page.evaluate(WIDE) <= WIDTH
                # pause from the template's page
                await page.goto(base + f"/recurring/{tid}")
                await page.click("button:has-text('Pause')")
                await page.wait_for_url(base + f"/recurring/{tid}?done=paused")
                assert await page.evaluate(WIDE) <= WIDTH
        finally:
            await ctx.close()
    assert problems == {}, problems
    assert await pool.fetchval("SELECT decision FROM approval_ledger") == "approved"
    assert await pool.fetchval("SELECT paused FROM recurring_templates") is True
