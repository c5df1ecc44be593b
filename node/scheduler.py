"""Jobs the node runs on a schedule, with state in PostgreSQL.

Every job is a coroutine ``fn(app) -> str`` (a short result summary). The scheduler
(APScheduler's AsyncIOScheduler inside the node process) calls ``run_job`` on an
interval with jitter; ``run_job`` is also what the CLI and the admin buttons call, so an
operator never depends on one path. Guarantees:

- no overlap: one run per job at a time, across processes (``running_since`` is claimed
  with a conditional UPDATE; a claim older than the job timeout is considered dead);
- pause/resume survive restarts (``scheduler_jobs.paused``);
- exponential back-off with jitter after failures (``failures``, ``next_allowed_at``);
- a slow job never blocks the web server: jobs are awaited with a timeout, and their
  blocking parts are expected to run in threads or on the database.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from node import queries_scheduler as QS
from node import typedefs as T
from service import outage

# Who a job runs for: "scheduler" on its timer, "admin:<user id>" when an admin pressed
# "Run now". Jobs read it when they record their sync_jobs row; a task copies the value
# current when it was created, so a background run keeps the admin who started it.
JOB_ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("wb_job_actor",
                                                                default="scheduler")
log = logging.getLogger("wb.node.scheduler")

JobFn = Callable[[web.Application], Awaitable[str]]
BACKOFF_BASE = 5.0
BACKOFF_MAX = 3600.0


@dataclass(frozen=True)
class Job:
    id: str
    fn: JobFn
    interval: float  # seconds between scheduled runs
    timeout: float = 300.0
    jitter: float = 0.1  # fraction of the interval


scheduler_key = web.AppKey("scheduler", object)
jobs_key = web.AppKey("jobs", dict)


def backoff_seconds(failures: int, rng: random.Random | None = None) -> float:
    """Exponential back-off with full jitter in the upper half: 5 s, 10 s, 20 s ... 1 h."""
    rng = rng or random.Random()
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * (2 ** max(0, failures - 1)))
    return ceiling / 2 + rng.random() * ceiling / 2


async def _claim(pool: asyncpg.Pool, job: Job, *, force: bool) -> str | None:
    """Claim the job for one run; return None when claimed, else why it was skipped."""
    await QS.ensure_job(pool, job.id)
    row = await QS.claim_job(pool, job.id, job.timeout * 2, force)
    if row is not None:
        return None
    state = await QS.select_scheduler_jobs_by_id(pool, job.id)
    if state["running_since"] is not None:
        return "skipped: already running"
    if state["paused"]:
        return "skipped: paused"
    return "skipped: backing off"


async def run_job(app: web.Application, job: Job, *, force: bool = False) -> str:
    """Run ``job`` once now, honouring overlap protection (and pause/back-off unless forced)."""
    pool = app[T.pool_key]
    skipped = await _claim(pool, job, force=force)
    if skipped:
        return skipped
    started = time.monotonic()
    try:
        summary = await asyncio.wait_for(job.fn(app), timeout=job.timeout)
    except Exception as exc:  # a job's failure is recorded, never raised into the loop
        code = getattr(exc, "code", type(exc).__name__)
        if isinstance(exc, asyncio.TimeoutError):
            code = "timeout"
        result = f"error: {code}"
        failures = await QS.count_failure(pool, job.id)
        delay = backoff_seconds(failures)
        await QS.update_scheduler_jobs_set_next_allowed_at_by_id(pool, job.id, delay)
        log.warning("job failed", extra={"job": job.id, "result": result,
                                         "backoff_s": round(delay, 1)})
    else:
        result = f"ok: {summary}" if summary else "ok"
        await QS.reset_failures(pool, job.id)
    duration_ms = int((time.monotonic() - started) * 1000)
    await QS.finish_job(pool, job.id, result[:500], duration_ms)
    kind = job.id.split(":", 1)[0]
    app[T.metrics_key].sync_jobs.labels(kind, "error" if result.startswith("error") else "ok").inc()
    return result


async def set_paused(pool: asyncpg.Pool, job_id: str, paused: bool) -> None:
    await QS.set_job_paused(pool, job_id, paused)


async def job_states(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await QS.select_scheduler_jobs(pool)


def register_job(app: web.Application, job: Job) -> None:
    """Add a job to the app's table; the scheduler picks it up when the app starts."""
    app[jobs_key][job.id] = job


def setup(app: web.Application, *, start_scheduler: bool = True) -> None:
    app[jobs_key] = {}
    if start_scheduler:
        app.cleanup_ctx.append(scheduler_ctx)


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
    for job in app[jobs_key].values():
        schedule(scheduler, app, job)
    scheduler.start()
    app[scheduler_key] = scheduler
    yield
    scheduler.shutdown(wait=False)


async def scheduled_run(app: web.Application, job: Job) -> str:
    """``run_job`` for the scheduler: during a database outage (logged once by the gate)
    the run is skipped quietly instead of logging a traceback."""
    if outage.is_down(app):
        return "skipped: database unavailable"
    try:
        return await run_job(app, job)
    except Exception as exc:
        if await outage.noticed(app, exc):
            return "skipped: database unavailable"
        raise


def schedule(scheduler: object, app: web.Application, job: Job) -> None:
    scheduler.add_job(  # type: ignore[attr-defined]
        scheduled_run, "interval", args=(app, job), seconds=job.interval,
        jitter=max(0.0, job.interval * job.jitter) or None, id=job.id, replace_existing=True,
        max_instances=1, coalesce=True, misfire_grace_time=max(1, int(job.interval)))


def add_runtime_job(app: web.Application, job: Job) -> None:
    """Register ``job`` on a started app: it is scheduled at once if the scheduler runs.

    Used for jobs whose existence depends on the database (one push and one pull job
    per sync peer), which are only known after the app has started.
    """
    app[jobs_key][job.id] = job
    scheduler = app.get(scheduler_key)
    if scheduler is not None:
        schedule(scheduler, app, job)


def remove_runtime_job(app: web.Application, job_id: str) -> None:
    """Forget a job (its state row stays, so a re-added peer keeps its pause flag)."""
    app[jobs_key].pop(job_id, None)
    scheduler = app.get(scheduler_key)
    if scheduler is not None:
        from apscheduler.jobstores.base import JobLookupError

        try:
            scheduler.remove_job(job_id)  # type: ignore[attr-defined]
        except JobLookupError:
            pass
