from __future__ import annotations

import asyncio
import random

from node import typedefs as T
from node.scheduler import Job, backoff_seconds, run_job, set_paused


async def test_run_job_records_success(node_client):
    app = node_client.server.app
    calls = []

    async def fn(app):
        calls.append(1)
        return "did 3 things"

    job = Job("test:ok", fn, interval=60)
    assert await run_job(app, job) == "ok: did 3 things"
    row = await app[T.pool_key].fetchrow("SELECT * FROM scheduler_jobs WHERE id='test:ok'")
    assert row["runs"] == 1 and row["failures"] == 0 and row["running_since"] is None
    assert row["last_result"] == "ok: did 3 things"
    assert calls == [1]


async def test_failure_backs_off_and_success_resets(node_client):
    app = node_client.server.app
    pool = app[T.pool_key]
    fail = True

    async def fn(app):
        if fail:
            raise RuntimeError("peer down")
        return ""

    job = Job("test:flaky", fn, interval=60)
    assert await run_job(app, job) == "error: RuntimeError"
    row = await pool.fetchrow("SELECT * FROM scheduler_jobs WHERE id='test:flaky'")
    assert row["failures"] == 1 and row["next_allowed_at"] is not None
    # Inside the back-off window a scheduled run is skipped, a forced one runs.
    assert await run_job(app, job) == "skipped: backing off"
    fail = False
    assert await run_job(app, job, force=True) == "ok"
    row = await pool.fetchrow("SELECT * FROM scheduler_jobs WHERE id='test:flaky'")
    assert row["failures"] == 0 and row["next_allowed_at"] is None


async def test_pause_survives_and_blocks_scheduled_runs(node_client):
    app = node_client.server.app

    async def fn(app):
        return ""

    job = Job("test:paused", fn, interval=60)
    await set_paused(app[T.pool_key], job.id, True)
    assert await run_job(app, job) == "skipped: paused"
    await set_paused(app[T.pool_key], job.id, False)
    assert await run_job(app, job) == "ok"


async def test_no_overlap_of_two_runs(node_client):
    app = node_client.server.app
    gate = asyncio.Event()
    started = asyncio.Event()

    async def slow(app):
        started.set()
        await gate.wait()
        return "slow done"

    job = Job("test:slow", slow, interval=60)
    first = asyncio.create_task(run_job(app, job))
    await started.wait()
    assert await run_job(app, job, force=True) == "skipped: already running"
    gate.set()
    assert await first == "ok: slow done"


async def test_timeout_is_a_failure(node_client):
    app = node_client.server.app

    async def hang(app):
        await asyncio.Event().wait()

    job = Job("test:hang", hang, interval=60, timeout=0.05)
    assert await run_job(app, job) == "error: timeout"


def test_backoff_grows_and_is_capped():
    rng = random.Random(1)
    values = [backoff_seconds(n, rng) for n in range(1, 15)]
    assert 2.5 <= values[0] <= 5
    assert values[3] > values[0]
    assert max(values) <= 3600
