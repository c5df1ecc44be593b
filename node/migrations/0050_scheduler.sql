-- Scheduled jobs keep their state here so pauses and back-off survive a restart.
CREATE TABLE scheduler_jobs (
    id               text PRIMARY KEY,      -- e.g. 'housekeeping:expire-auth', 'push:hub-a'
    paused           boolean NOT NULL DEFAULT false,
    failures         integer NOT NULL DEFAULT 0,   -- consecutive failures, drives back-off
    next_allowed_at  timestamptz,                  -- back-off: skip runs before this
    running_since    timestamptz,                  -- set while a run is in progress
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    last_result      text,                         -- 'ok', 'error: <code>', 'skipped: ...'
    last_duration_ms integer,
    runs             bigint NOT NULL DEFAULT 0
);
