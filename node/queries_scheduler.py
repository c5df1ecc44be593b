"""SQL of the job scheduler (node/scheduler.py): job rows, leases and runs."""

from __future__ import annotations

from typing import Any

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def ensure_job(conn: Conn, id: Any) -> str:
    return await conn.execute(
        "INSERT INTO scheduler_jobs (id) VALUES ($1) ON CONFLICT DO NOTHING", id
    )


async def claim_job(
    conn: Conn, id: Any, lease_seconds: Any, force: Any
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """UPDATE scheduler_jobs
              SET running_since = now(), last_started_at = now()
            WHERE id = $1
              AND (running_since IS NULL
                   OR running_since < now() - make_interval(secs => $2))
              AND ($3 OR (NOT paused AND (next_allowed_at IS NULL OR next_allowed_at <= now())))
        RETURNING id""",
        id,
        lease_seconds,
        force,
    )


async def select_scheduler_jobs_by_id(conn: Conn, id: Any) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT paused, running_since, next_allowed_at FROM scheduler_jobs WHERE id = $1", id
    )


async def finish_job(
    conn: Conn, id: Any, result: Any, duration_ms: Any
) -> str:
    return await conn.execute(
        """UPDATE scheduler_jobs SET running_since = NULL, last_finished_at = now(),
                  last_result = $2, last_duration_ms = $3, runs = runs + 1
            WHERE id = $1""",
        id,
        result,
        duration_ms,
    )


async def set_job_paused(conn: Conn, job_id: Any, paused: Any) -> str:
    return await conn.execute(
        "INSERT INTO scheduler_jobs (id, paused) VALUES ($1, $2) "
        "ON CONFLICT (id) DO UPDATE SET paused = EXCLUDED.paused",
        job_id,
        paused,
    )


async def select_scheduler_jobs(conn: Conn) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM scheduler_jobs ORDER BY id")


async def reset_failures(conn: Conn, id: Any) -> str:
    return await conn.execute(
        "UPDATE scheduler_jobs SET failures = 0, next_allowed_at = NULL WHERE id = $1", id
    )


async def count_failure(conn: Conn, id: Any) -> Any:
    return await conn.fetchval(
        "UPDATE scheduler_jobs SET failures = failures + 1 WHERE id = $1 RETURNING failures", id
    )


async def update_scheduler_jobs_set_next_allowed_at_by_id(conn: Conn, id: Any, delay: Any) -> str:
    return await conn.execute(
        "UPDATE scheduler_jobs SET next_allowed_at = now() + make_interval(secs => $2) "
        "WHERE id = $1",
        id,
        delay,
    )
