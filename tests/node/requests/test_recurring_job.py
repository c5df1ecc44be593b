"""The recurring-request job (#23): each due occurrence is made exactly once per interval,
across racing processes, a rolled-back or SIGKILL'd run and restarts; only the latest
missed occurrence after downtime; the community's time zone, with its DST days. An
injected clock throughout: nothing sleeps."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest

from node import typedefs as T
from node.recurring import cadence as C
from node.recurring import handlers as RH
from node.recurring import queries as RQ
from node.recurring import service as S
from node.requests.service import Actor
from node.scheduler import Job, jobs_key, run_job
from tests.factories import create_user

UTC = dt.UTC
ROOT = Path(__file__).resolve().parents[3]


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


async def _manager(pool, name: str = "hana") -> Actor:
    user_id = await create_user(pool, name)
    await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'house_manager')",
                       user_id)
    return Actor(user_id, False, True, roles=frozenset({"house_manager"}))


async def _template(pool, actor: Actor, now: dt.datetime, **fields) -> str:
    data = {"title": "Bins out", "description": "Take the bins to the kerb",
            "cadence": "daily", "time_of_day": "08:00", "mode": "draft", **fields}
    return await S.save(pool, actor, data, now=now)


async def _count(pool, sql: str, *args) -> int:
    return await pool.fetchval(sql, *args)


@pytest.fixture
def config(node_client):
    return node_client.server.app[T.config_key]


async def test_due_once_then_nothing_until_the_next_interval(node_pool, config):
    hana = await _manager(node_pool)
    tid = await _template(node_pool, hana, at(2026, 3, 1, 12))
    # before the first 08:00 after creation: nothing
    assert await S.materialise_due(node_pool, config, at(2026, 3, 2, 7, 59)) == \
        {"drafts": 0, "requests": 0, "skipped": 0}
    assert await S.materialise_due(node_pool, config, at(2026, 3, 2, 8, 0)) == \
        {"drafts": 1, "requests": 0, "skipped": 0}
    # a second run in the same interval (a restart, a retry, `wb recurring run`): nothing
    for minute in (0, 1, 59):
        assert (await S.materialise_due(node_pool, config, at(2026, 3, 2, 9, minute)))[
            "drafts"] == 0
    row = await node_pool.fetchrow("SELECT * FROM recurring_occurrences")
    assert row["occurrence_start"] == at(2026, 3, 2, 8) and row["outcome"] == "draft"
    draft = await node_pool.fetchrow("SELECT * FROM request_drafts WHERE id = $1",
                                     row["draft_id"])
    assert draft["owner_id"] == hana.user_id and draft["title"] == "Bins out"
    assert await _count(node_pool, "SELECT count(*) FROM requests") == 0
    # the next day is the next interval
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 3, 8, 5)))["drafts"] == 1
    assert await _count(node_pool, "SELECT count(*) FROM recurring_occurrences "
                        "WHERE template_id = $1", tid) == 2


async def test_two_processes_racing_make_one_occurrence(node_pool, node_config, config):
    hana = await _manager(node_pool)
    await _template(node_pool, hana, at(2026, 3, 1), mode="publish")
    other = await asyncpg.create_pool(node_config["WB_DATABASE_URL"], min_size=1, max_size=4)
    try:
        now = at(2026, 3, 2, 8, 30)
        results = await asyncio.gather(*(S.materialise_due(p, config, now)
                                         for p in (node_pool, other) * 3))
    finally:
        await other.close()
    assert sum(r["requests"] for r in results) == 1
    assert await _count(node_pool, "SELECT count(*) FROM requests") == 1
    assert await _count(node_pool, "SELECT count(*) FROM recurring_occurrences") == 1


async def test_the_job_and_a_forced_run_race_and_make_one(node_client, node_pool):
    app = node_client.server.app
    hana = await _manager(node_pool)
    await _template(node_pool, hana, at(2026, 3, 1))
    app[T.extras_key][S.CLOCK] = lambda: at(2026, 3, 2, 8, 1)
    job = app[jobs_key][RH.JOB_ID]
    # the job under its own id, and a second registration racing it (as a second process
    # would run it: the scheduler's lease is per job id, so only the row guard is left)
    twin = Job("recurring:twin", job.fn, interval=60)
    results = await asyncio.gather(run_job(app, job), run_job(app, twin),
                                   RH.run_due(app))
    assert await _count(node_pool, "SELECT count(*) FROM request_drafts") == 1
    assert any("drafts 1" in r for r in results), results


async def test_a_rolled_back_run_leaves_nothing_and_the_next_run_makes_it(
        node_pool, config, monkeypatch):
    hana = await _manager(node_pool)
    broken = await _template(node_pool, hana, at(2026, 3, 1), mode="publish")
    fine = await _template(node_pool, hana, at(2026, 3, 1), mode="publish", title="Fine")
    real = RQ.finish_occurrence

    async def crash(conn, template_id, *args, **kw):
        if template_id == broken:
            raise RuntimeError("power cut between the request and the log")
        return await real(conn, template_id, *args, **kw)

    monkeypatch.setattr(RQ, "finish_occurrence", crash)
    with pytest.raises(RuntimeError):  # the job records the error and backs off
        await S.materialise_due(node_pool, config, at(2026, 3, 2, 8, 1))
    # the broken one left nothing; the other template still got its turn
    assert await _count(node_pool, "SELECT count(*) FROM requests") == 1
    assert await node_pool.fetchval("SELECT template_id FROM recurring_occurrences") == fine
    monkeypatch.setattr(RQ, "finish_occurrence", real)
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 2, 8, 2)))["requests"] == 1
    assert await _count(node_pool, "SELECT count(*) FROM requests") == 2
    assert await _count(node_pool, "SELECT count(*) FROM recurring_occurrences "
                        "WHERE template_id = $1", broken) == 1


KILLED = textwrap.dedent("""
    import asyncio, datetime as dt, sys
    import asyncpg
    from node.drafts import queries as DQ
    from node.recurring import cadence as C, service as S

    async def main():
        pool = await asyncpg.create_pool(sys.argv[1], min_size=1, max_size=2)
        real = DQ.insert

        async def insert_then_hang(conn, **kw):
            row = await real(conn, **kw)
            print("HOLDING", flush=True)  # the draft and the occurrence row are written
            await asyncio.Event().wait()  # ... and the transaction never ends: SIGKILL
        DQ.insert = insert_then_hang
        await S.materialise(pool, sys.argv[2], C.zone_named("UTC"),
                            dt.datetime(2026, 3, 2, 8, 1, tzinfo=dt.UTC))

    asyncio.run(main())
""")


async def test_a_sigkilled_process_mid_run_leaves_no_half_occurrence(node_pool, node_config,
                                                                     config):
    hana = await _manager(node_pool)
    tid = await _template(node_pool, hana, at(2026, 3, 1))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED, node_config["WB_DATABASE_URL"], tid, cwd=str(ROOT),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line.strip() == b"HOLDING", (line, await proc.stderr.read())
        # mid-run: the other process's writes are invisible (uncommitted)
        assert await _count(node_pool, "SELECT count(*) FROM request_drafts") == 0
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # the next run waits for PostgreSQL to roll the dead one back, then makes it once
    result = await S.materialise_due(node_pool, config, at(2026, 3, 2, 8, 3))
    assert result["drafts"] == 1
    assert await _count(node_pool, "SELECT count(*) FROM request_drafts") == 1
    assert await _count(node_pool, "SELECT count(*) FROM recurring_occurrences") == 1


async def test_after_downtime_only_the_latest_missed_occurrence_is_made(node_pool, config):
    hana = await _manager(node_pool)
    tid = await _template(node_pool, hana, at(2026, 3, 1))
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 2, 8)))["drafts"] == 1
    # the node was down for four days: one draft, for the latest occurrence, not a burst
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 6, 10)))["drafts"] == 1
    rows = await node_pool.fetch("SELECT * FROM recurring_occurrences ORDER BY "
                                 "occurrence_start")
    assert [r["occurrence_start"] for r in rows] == [at(2026, 3, 2, 8), at(2026, 3, 6, 8)]
    assert "3 earlier occurrences missed" in rows[1]["note"]
    assert await _count(node_pool, "SELECT count(*) FROM request_drafts") == 2
    log = await S.history(node_pool, hana, tid)
    assert [o["outcome"] for o in log] == ["draft", "draft"]


async def test_pause_resume_and_edit_never_make_the_past(node_pool, config):
    hana = await _manager(node_pool)
    tid = await _template(node_pool, hana, at(2026, 3, 1))
    await S.set_paused(node_pool, hana, tid, True, now=at(2026, 3, 1, 20))
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 3, 9)))["drafts"] == 0
    # resumed at 09:00: the 08:00 that fell due while paused is not made; tomorrow's is
    await S.set_paused(node_pool, hana, tid, False, now=at(2026, 3, 3, 9))
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 3, 9, 1)))["drafts"] == 0
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 4, 8)))["drafts"] == 1
    # creating a template after today's time: nothing until the next one
    late = await _template(node_pool, hana, at(2026, 3, 4, 12), title="Late")
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 4, 12, 1)))["drafts"] == 0
    assert await _count(node_pool, "SELECT count(*) FROM recurring_occurrences "
                        "WHERE template_id = $1", late) == 0


async def test_template_limit_holds_under_a_race(node_pool, monkeypatch):
    hana = await _manager(node_pool)
    monkeypatch.setattr(S, "MAX_TEMPLATES", 2)
    results = await asyncio.gather(*(_template(node_pool, hana, at(2026, 3, 1), title=f"T{i}")
                                     for i in range(5)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 3 and all(r.code == "recurring_limit" for r in refused)
    assert await _count(node_pool, "SELECT count(*) FROM recurring_templates") == 2


async def test_owner_without_the_role_is_logged_as_skipped(node_pool, config):
    hana = await _manager(node_pool)
    tid = await _template(node_pool, hana, at(2026, 3, 1), mode="publish")
    await node_pool.execute("DELETE FROM member_roles WHERE user_id = $1", hana.user_id)
    assert await S.materialise_due(node_pool, config, at(2026, 3, 2, 8)) == \
        {"drafts": 0, "requests": 0, "skipped": 1}
    row = await node_pool.fetchrow("SELECT * FROM recurring_occurrences")
    assert row["outcome"] == "skipped" and "no longer a house manager" in row["note"]
    assert await _count(node_pool, "SELECT count(*) FROM requests") == 0
    # skipped is made too: the interval is not retried
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 2, 9)))["skipped"] == 0
    await node_pool.execute("INSERT INTO member_roles (user_id, role) VALUES "
                            "($1, 'house_manager')", hana.user_id)
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 3, 8)))["requests"] == 1
    assert tid


async def test_a_full_drafts_box_is_a_logged_skip(node_pool, config, monkeypatch):
    from node.drafts import service as DS

    hana = await _manager(node_pool)
    await _template(node_pool, hana, at(2026, 3, 1))
    monkeypatch.setattr(DS, "MAX_DRAFTS", 0)
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 2, 8)))["skipped"] == 1
    row = await node_pool.fetchrow("SELECT * FROM recurring_occurrences")
    assert row["outcome"] == "skipped" and "draft_limit" in row["note"]
    assert await _count(node_pool, "SELECT count(*) FROM request_drafts") == 0


async def test_published_directly_with_tags_in_the_owners_name(node_pool, config):
    hana = await _manager(node_pool)
    await node_pool.execute("INSERT INTO community_tags (name, colour, text_colour) VALUES "
                            "('chores', '#1f6feb', '#ffffff')")
    await _template(node_pool, hana, at(2026, 3, 1), mode="publish", tags=["chores"])
    assert (await S.materialise_due(node_pool, config, at(2026, 3, 2, 8)))["requests"] == 1
    req = await node_pool.fetchrow("SELECT * FROM requests")
    assert req["created_by"] == hana.user_id and req["status"] == "open"
    assert req["sync_scope"] == "private" and req["tags"] == "chores"


@pytest.mark.parametrize("zone, day, local, utc", [
    # spring forward (Europe/Berlin 2026-03-29, 02:00 -> 03:00): 02:30 does not exist and
    # happens at 03:30 local; the day before and after keep their wall time
    ("Europe/Berlin", dt.date(2026, 3, 28), "02:30", at(2026, 3, 28, 1, 30)),
    ("Europe/Berlin", dt.date(2026, 3, 29), "02:30", at(2026, 3, 29, 1, 30)),
    ("Europe/Berlin", dt.date(2026, 3, 30), "02:30", at(2026, 3, 30, 0, 30)),
    # fall back (2026-10-25, 03:00 -> 02:00): 02:30 happens twice; once, at the first
    ("Europe/Berlin", dt.date(2026, 10, 25), "02:30", at(2026, 10, 25, 0, 30)),
    ("Europe/Berlin", dt.date(2026, 10, 26), "02:30", at(2026, 10, 26, 1, 30)),
    ("America/New_York", dt.date(2026, 3, 8), "09:00", at(2026, 3, 8, 13)),
    ("America/New_York", dt.date(2026, 3, 7), "09:00", at(2026, 3, 7, 14)),
])
def test_occurrence_instants_across_dst(zone, day, local, utc):
    hh, mm = map(int, local.split(":"))
    cad = C.Cadence("daily", (), None, dt.time(hh, mm))
    assert cad.instant(day, C.zone_named(zone)) == utc


async def test_dst_days_make_exactly_one_occurrence(node_client, node_pool, tmp_path):
    from node.app import create_app
    from tests.conftest import make_node_config

    config = make_node_config(node_client.server.app[T.config_key]["WB_DATABASE_URL"],
                              tmp_path / "berlin", WB_TIME_ZONE="Europe/Berlin")
    create_app(config)  # a valid zone builds
    hana = await _manager(node_pool)
    await _template(node_pool, hana, at(2026, 3, 27, 12), time_of_day="02:30")
    await _template(node_pool, hana, at(2026, 10, 23, 12), time_of_day="02:30",
                    title="Autumn")
    # every 10 minutes across both DST weekends: one occurrence per local day
    for start in (at(2026, 3, 27, 12), at(2026, 10, 23, 12)):
        for n in range(3 * 24 * 6):
            await S.materialise_due(node_pool, config, start + dt.timedelta(minutes=10 * n))
    rows = await node_pool.fetch(
        "SELECT t.title, o.occurrence_start FROM recurring_occurrences o JOIN "
        "recurring_templates t ON t.id = o.template_id ORDER BY o.occurrence_start")
    spring = [r["occurrence_start"] for r in rows if r["title"] == "Bins out"]
    autumn = [r["occurrence_start"] for r in rows if r["title"] == "Autumn"]
    assert spring[:3] == [at(2026, 3, 28, 1, 30), at(2026, 3, 29, 1, 30),
                          at(2026, 3, 30, 0, 30)]
    assert autumn[:3] == [at(2026, 10, 24, 0, 30), at(2026, 10, 25, 0, 30),
                          at(2026, 10, 26, 1, 30)]


def test_an_unknown_time_zone_stops_the_node(tmp_path):
    from node.app import create_app
    from tests.conftest import make_node_config

    with pytest.raises(ValueError, match="WB_TIME_ZONE"):
        create_app(make_node_config("postgresql://unused/x", tmp_path, WB_TIME_ZONE="Mars/Base"))


@pytest.mark.parametrize("month_day, month, expected", [
    (31, (2026, 4), 30), (31, (2026, 2), 28), (30, (2028, 2), 29), (31, (2026, 5), 31),
    (15, (2026, 2), 15),
])
def test_monthly_on_a_day_the_month_lacks_falls_on_its_last_day(month_day, month, expected):
    cad = C.Cadence("monthly", (), month_day, dt.time(9))
    days = [d for d in range(1, 32) if _valid(*month, d) and cad.on(dt.date(*month, d))]
    assert days == [expected]


def _valid(y: int, m: int, d: int) -> bool:
    try:
        dt.date(y, m, d)
    except ValueError:
        return False
    return True


def test_weekly_on_chosen_days():
    cad = C.Cadence("weekly", (1, 4), None, dt.time(18))
    zone = C.zone_named("UTC")
    # Wednesday 2026-03-04: the latest is Monday's, the next Thursday's
    now = at(2026, 3, 4, 12)
    assert C.latest_due(cad, zone, now, at(2026, 1, 1)) == at(2026, 3, 2, 18)
    assert C.next_after(cad, zone, now) == at(2026, 3, 5, 18)
    assert C.count_between(cad, zone, at(2026, 2, 16, 18), at(2026, 3, 2, 18)) == 3


async def _wb(args, db_url, tmp_path, **env):
    from click.testing import CliRunner

    from ops.cli import root

    full = {"WB_DATABASE_URL": db_url, "WB_DATA_DIR": str(tmp_path / "node"),
            "SESSION_SECRET": "x", **env}
    return await asyncio.to_thread(CliRunner().invoke, root, args, env=full)


async def test_wb_recurring_list_run_pause_resume(node_db_url, tmp_path):
    import json

    pool = await asyncpg.create_pool(node_db_url, min_size=1, max_size=2)
    try:
        hana = await _manager(pool)
        tid = await _template(pool, hana, at(2026, 3, 1), title="Rent reminder",
                              cadence="monthly", month_day="31", time_of_day="09:00")
        r = await _wb(["recurring", "list"], node_db_url, tmp_path)
        assert r.exit_code == 0, r.output
        assert tid in r.output and "monthly on day 31 at 09:00" in r.output
        assert "@hana" in r.output
        r = await _wb(["recurring", "list", "--json"], node_db_url, tmp_path,
                      WB_TIME_ZONE="Europe/Berlin")
        [row] = json.loads(r.output)["templates"]
        assert row["time_zone"] == "Europe/Berlin" and row["cadence"] == "monthly"
        # April has no 31st: the 30th, 09:00 Berlin (07:00 UTC); twice run, made once
        for _ in range(2):
            r = await _wb(["recurring", "run", "--at", "2026-04-30T07:05:00+00:00"],
                          node_db_url, tmp_path, WB_TIME_ZONE="Europe/Berlin")
            assert r.exit_code == 0, r.output
        assert await pool.fetchval("SELECT array_agg(occurrence_start) FROM "
                                   "recurring_occurrences") == [at(2026, 4, 30, 7)]
        r = await _wb(["recurring", "pause", tid], node_db_url, tmp_path)
        assert r.exit_code == 0 and f"{tid}: paused" in r.output
        r = await _wb(["recurring", "run", "--at", "2026-05-31T08:00:00"], node_db_url,
                      tmp_path)
        assert "drafts 0" in r.output
        r = await _wb(["recurring", "resume", tid], node_db_url, tmp_path)
        assert r.exit_code == 0 and f"{tid}: resumed" in r.output
        r = await _wb(["recurring", "pause", "nope"], node_db_url, tmp_path)
        assert r.exit_code == 1 and "recurring_not_found" in r.output
        r = await _wb(["recurring", "run", "--at", "yesterday"], node_db_url, tmp_path)
        assert r.exit_code == 2
        r = await _wb(["recurring", "list"], node_db_url, tmp_path, WB_TIME_ZONE="Mars/Base")
        assert r.exit_code == 1 and "WB_TIME_ZONE" in r.output
        assert await pool.fetchval("SELECT count(*) FROM request_drafts") == 1
    finally:
        await pool.close()
