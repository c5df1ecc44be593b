-- Recurring request templates (#23): house managers (and admins) keep a request that comes
-- back on a cadence, in the community's time zone (WB_TIME_ZONE). Local state: no change
-- tracking, never exported, never sent to a hub; only a request made from a template is a
-- record, with the scope it was given.
CREATE TABLE recurring_templates (
    id              text PRIMARY KEY,
    owner_id        text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title           text NOT NULL DEFAULT '',
    description     text NOT NULL,
    contact_email   text NOT NULL DEFAULT '',
    tags            text[] NOT NULL DEFAULT '{}',
    sync_scope      text NOT NULL DEFAULT 'private' CHECK (sync_scope IN ('private', 'public')),
    cadence         text NOT NULL CHECK (cadence IN ('daily', 'weekly', 'monthly')),
    weekdays        smallint[] NOT NULL DEFAULT '{}',   -- ISO: 1 Monday .. 7 Sunday
    month_day       smallint CHECK (month_day BETWEEN 1 AND 31),
    time_of_day     time NOT NULL,                      -- local time in WB_TIME_ZONE
    mode            text NOT NULL DEFAULT 'draft' CHECK (mode IN ('draft', 'publish')),
    paused          boolean NOT NULL DEFAULT false,
    -- occurrences before this instant are never made: set at creation, on resume and when
    -- the cadence changes, so none of those makes a burst of past occurrences
    anchor_at       timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (cadence <> 'weekly' OR cardinality(weekdays) > 0),
    CHECK (cadence <> 'monthly' OR month_day IS NOT NULL)
);
CREATE INDEX recurring_templates_owner ON recurring_templates (owner_id, created_at);

-- What each template made: one row per occurrence, ever. The UNIQUE pair is the guard that
-- makes an occurrence exactly once across restarts and processes: the row is inserted
-- (ON CONFLICT DO NOTHING) in the same transaction that creates the draft or the request.
CREATE TABLE recurring_occurrences (
    template_id       text NOT NULL REFERENCES recurring_templates(id) ON DELETE CASCADE,
    occurrence_start  timestamptz NOT NULL,
    made_at           timestamptz NOT NULL DEFAULT now(),
    outcome           text NOT NULL CHECK (outcome IN ('draft', 'request', 'skipped')),
    draft_id          text,      -- no foreign key: the draft is published or deleted later
    request_id        text,
    note              text NOT NULL DEFAULT '',
    PRIMARY KEY (template_id, occurrence_start)
);
CREATE INDEX recurring_occurrences_recent ON recurring_occurrences (template_id, made_at DESC);
