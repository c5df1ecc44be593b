"""Hostile review of recurring templates (#23): numbers written with characters Python
calls digits but int() refuses (superscripts), numbers too long for int(), and JSON
strings UTF-8 cannot encode. Each is a precise 400 that writes nothing, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.node.requests.test_recurring import GOOD, _count, _grant

MONTHLY = {**GOOD, "cadence": "monthly"}


@pytest.fixture
async def hana(member_factory, pool):
    member = await member_factory("hana")
    await _grant(pool, member.user_id, "house_manager")
    return member


@pytest.mark.parametrize("patch, code, field", [
    ({"weekdays": ["\u00b2"]}, "invalid_weekdays", "weekdays"),  # "²".isdigit() is True
    ({"weekdays": ["\u0663"]}, "invalid_weekdays", "weekdays"),  # ARABIC-INDIC THREE
    ({"weekdays": ["9" * 5000]}, "invalid_weekdays", "weekdays"),  # past int()'s limit
    ({**MONTHLY, "month_day": "\u00b9"}, "invalid_month_day", "month_day"),
    ({**MONTHLY, "month_day": "1" * 5000}, "invalid_month_day", "month_day"),
])
async def test_odd_digits_are_a_precise_400(hana, pool, patch, code, field):
    for send in ("json", "form"):
        if send == "json":
            r = await hana.api_post("/api/recurring", {**GOOD, **patch})
            body = await r.json()
            assert r.status == 400 and body["error"]["code"] == code, (send, body)
            assert field in body["error"]["fields"], body
        else:
            r = await hana.post("/recurring", {**GOOD, **patch})
            assert r.status == 400, (send, r.status)
            assert code in await r.text()
    assert await _count(pool, "recurring_templates") == 0
    # nor does an edit with them change the template
    tid = (await (await hana.api_post("/api/recurring", GOOD)).json())["template"]["id"]
    before = await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid)
    r = await hana.post(f"/recurring/{tid}", {**GOOD, **patch}, json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == code
    assert await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid) == before


@pytest.mark.parametrize("field", ["title", "description", "contact_email"])
async def test_a_lone_surrogate_in_json_is_a_400(hana, pool, field):
    raw = json.dumps({**GOOD, field: "a\udc80b"}).encode()  # "\\udc80": ASCII
    r = await hana.client.post("/api/recurring", data=raw,
                               headers={"X-CSRF-Token": hana.csrf,
                                        "Content-Type": "application/json"})
    body = await r.json()
    assert r.status == 400 and body["error"]["code"] == "invalid_json", body
    assert await _count(pool, "recurring_templates") == 0


@pytest.mark.parametrize("patch", [{"weekdays": 5}, {"tags": 7}, {"weekdays": [1, 2]}])
async def test_a_json_body_to_the_page_route_is_a_400_whatever_its_types(hana, pool, patch):
    """/recurring (not /api/) with a JSON body and no Accept header: the error used to be
    shown on the form, filled with the raw JSON values; a number where the form expects a
    list of days or tags made the page itself fail (500)."""
    tid = (await (await hana.api_post("/api/recurring", GOOD)).json())["template"]["id"]
    before = await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid)
    for path in ("/recurring", f"/recurring/{tid}"):
        r = await hana.client.post(path, json={**GOOD, "cadence": "hourly", **patch},
                                   headers={"X-CSRF-Token": hana.csrf},
                                   allow_redirects=False)
        text = await r.text()
        assert r.status == 400 and "invalid_cadence" in text, (path, r.status, text[:300])
    assert await _count(pool, "recurring_templates") == 1
    assert await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid) == before


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00+00:00", "0001-01-01T01:00:00+00:00"])
async def test_wb_recurring_run_at_the_ends_of_the_calendar_is_a_usage_error(node_db_url,
                                                                           tmp_path, when):
    """`--at` is the operator's: a date at the calendar's ends overflowed the date search
    inside the run (a traceback); it is refused before anything runs."""
    import asyncpg

    from tests.node.requests.test_recurring_job import _manager, _template, _wb, at

    pool = await asyncpg.create_pool(node_db_url, min_size=1, max_size=2)
    try:
        await _template(pool, await _manager(pool), at(2026, 3, 1), cadence="daily")
        r = await _wb(["recurring", "run", "--at", when], node_db_url, tmp_path)
        assert r.exit_code == 2 and "--at" in r.output, r.output
        assert await pool.fetchval("SELECT count(*) FROM recurring_occurrences") == 0
    finally:
        await pool.close()
