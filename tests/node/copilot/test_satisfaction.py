"""The copilot's helpful rate: overall and per tool, 7 and 30 days, page and CLI."""

from __future__ import annotations

import json
import re

import pytest

from node.copilot import service as S
from tests.node.copilot.fake_gateway import answer, tool_calls
from tests.node.copilot.helpers import add_request, gateway_settings, signed_in_admin
from tests.node.copilot.test_tools import _wb


@pytest.fixture
def copilot_overrides(gateway):
    return gateway_settings(gateway) | {"COPILOT_RATE_PER_MINUTE": "100"}


async def _turn(pool, admin, *, days_ago, feedback, run=(), proposed=(), success=True,
                tool="chat"):
    await pool.execute(
        "INSERT INTO copilot_audit (at, admin_id, via, tool, arguments, success, feedback) "
        "VALUES (now() - make_interval(days => $1), $2, 'web', $3, $4::jsonb, $5, $6)",
        days_ago, admin, tool,
        json.dumps({"tools_run": list(run), "tools_proposed": list(proposed)}),
        success, feedback)


def _window(stats, days):
    return next(w for w in stats["windows"] if w["days"] == days)


def _tool(window, name):
    return next(t for t in window["tools"] if t["tool"] == name)


async def test_rates_count_only_rated_answers_in_their_window(copilot_client):
    pool, u, csrf = await signed_in_admin(copilot_client)
    a = u["admin"]
    # Last 7 days: triage 2 up 1 down, one unrated; one with no tool, up.
    await _turn(pool, a, days_ago=1, feedback=1, run=["triage_requests"])
    await _turn(pool, a, days_ago=2, feedback=1, run=["triage_requests", "sync_preview"])
    await _turn(pool, a, days_ago=3, feedback=-1, run=["triage_requests", "triage_requests"],
                proposed=["set_scope"])
    await _turn(pool, a, days_ago=0, feedback=None, run=["triage_requests"])
    await _turn(pool, a, days_ago=6, feedback=1)
    # 8 to 30 days: sync_preview down twice.
    await _turn(pool, a, days_ago=10, feedback=-1, run=["sync_preview"])
    await _turn(pool, a, days_ago=29, feedback=-1, run=["sync_preview"])
    # Never counted: older than 30 days, failed turns, other audit rows.
    await _turn(pool, a, days_ago=31, feedback=1, run=["triage_requests"])
    await _turn(pool, a, days_ago=1, feedback=1, run=["triage_requests"], success=False)
    await _turn(pool, a, days_ago=1, feedback=1, tool="triage_requests")

    stats = await S.satisfaction(pool)
    week, month = _window(stats, 7), _window(stats, 30)
    assert (week["answers"], week["rated"], week["helpful"], week["rate"]) == (5, 4, 3, 0.75)
    assert (month["answers"], month["rated"], month["helpful"]) == (7, 6, 3)
    assert month["rate"] == 0.5
    tri = _tool(week, "triage_requests")
    assert (tri["answers"], tri["rated"], tri["helpful"]) == (4, 3, 2)
    assert tri["rate"] == round(2 / 3, 4)
    assert _tool(week, "set_scope")["rate"] == 0.0
    assert _tool(week, "(no tool)") == {"tool": "(no tool)", "answers": 1, "rated": 1,
                                        "helpful": 1, "rate": 1.0}
    assert _tool(month, "sync_preview")["rate"] == round(1 / 3, 4)
    assert _tool(week, "create_invite") == {"tool": "create_invite", "answers": 0,
                                            "rated": 0, "helpful": 0, "rate": None}
    assert {t["tool"] for t in week["tools"]} == {*S.TOOLS, "(no tool)"}

    page = await (await copilot_client.get("/admin/copilot")).text()
    section = page[page.index('id="satisfaction"'):]
    cell = re.search(r'data-window="7" data-tool="all">(.*?)</td>', section).group(1)
    assert "75 %" in cell and "3/4 rated helpful" in cell and "5 answers" in cell
    cell = re.search(r'data-window="30" data-tool="sync_preview">(.*?)</td>', section).group(1)
    assert "33 %" in cell and "1/3" in cell
    cell = re.search(r'data-window="7" data-tool="create_invite">(.*?)</td>', section).group(1)
    assert "—" in cell and "0 answers" in cell
    body = await (await copilot_client.get(
        "/admin/copilot", headers={"Accept": "application/json"})).json()
    assert body["satisfaction"] == json.loads(json.dumps(stats))


async def test_cli_stats(copilot_client, node_db_url, tmp_path):
    pool, u, csrf = await signed_in_admin(copilot_client)
    await _turn(pool, u["admin"], days_ago=1, feedback=1, run=["triage_requests"])
    await _turn(pool, u["admin"], days_ago=20, feedback=-1, run=["triage_requests"])
    r = await _wb(["copilot", "stats", "--json"], node_db_url, tmp_path)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(json.dumps(await S.satisfaction(pool)))
    r = await _wb(["copilot", "stats"], node_db_url, tmp_path)
    assert r.exit_code == 0
    line = next(x for x in r.stdout.splitlines() if x.startswith("triage_requests"))
    assert "100 %  1/1, 1" in line and " 50 %  1/2, 2" in line
    line = next(x for x in r.stdout.splitlines() if x.startswith("create_invite"))
    assert line.count("—") == 2


async def test_unrated_answer_is_prompted_and_rating_moves_the_rate(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    await add_request(pool, u["bob"], "Ladder", "roof")
    gateway.script = [tool_calls(("triage_requests", {})), answer("Bob needs a ladder.")]
    r = await copilot_client.post("/admin/copilot", data={"message": "who?", "csrf_token": csrf},
                                  allow_redirects=False)
    assert r.status == 303
    page = await (await copilot_client.get("/admin/copilot")).text()
    mid = await pool.fetchval("SELECT id FROM copilot_messages WHERE role = 'assistant'")
    assert 'id="rate-prompt"' in page and f'href="#m{mid}"' in page
    assert "Not rated yet" in page
    week = _window(await S.satisfaction(pool), 7)
    assert (week["answers"], week["rated"], week["rate"]) == (1, 0, None)

    r = await copilot_client.post(f"/admin/copilot/feedback/{mid}",
                                  data={"value": "up", "csrf_token": csrf})
    assert r.status == 200
    page = await (await copilot_client.get("/admin/copilot")).text()
    assert 'id="rate-prompt"' not in page and "Not rated yet" not in page
    week = _window(await S.satisfaction(pool), 7)
    assert (week["rated"], week["helpful"], week["rate"]) == (1, 1, 1.0)
    assert _tool(week, "triage_requests")["rate"] == 1.0
    # Another admin cannot rate this admin's answer (no vote stuffing).
    from tests.factories import create_user, sign_in

    other = await create_user(pool, "other", admin=True)
    csrf2 = await sign_in(copilot_client, other)
    r = await copilot_client.post(f"/admin/copilot/feedback/{mid}",
                                  data={"value": "down", "csrf_token": csrf2})
    assert r.status == 404
    assert _window(await S.satisfaction(pool), 7)["helpful"] == 1
