-- Sync engine: the node's hash chain, what it has received from other origins,
-- trusted keys, the pending-key queue, peers and the job log.

-- One row: where this node's own chain stands.
CREATE TABLE node_sync_state (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    origin          text NOT NULL,         -- key id of the node's first key, for life
    sequence        bigint NOT NULL DEFAULT 0,   -- last exported Sequence (0: none yet)
    last_digest     text,                  -- SHA-256 of the last exported manifest
    watermark       bigint NOT NULL DEFAULT 0,   -- highest change_seq covered by an export
    last_export_at  timestamptz
);

-- "Dirty" local rows: changed since an export last looked at them. An export reads
-- only these (cost grows with changes, not with the database) and then sets
-- published_revision = revision. Independent of commit order, unlike a bare
-- change_seq watermark.
CREATE INDEX users_sync_dirty ON users (change_seq)
    WHERE origin IS NULL AND published_revision IS DISTINCT FROM revision;
CREATE INDEX requests_sync_dirty ON requests (change_seq)
    WHERE origin IS NULL AND published_revision IS DISTINCT FROM revision;
CREATE INDEX comments_sync_dirty ON comments (change_seq)
    WHERE origin IS NULL AND published_revision IS DISTINCT FROM revision;
CREATE INDEX comments_request_published ON comments (request_id) WHERE published;

-- Bundles accepted from each origin: duplicates, gaps and equivocation are judged here.
CREATE TABLE sync_received (
    origin          text NOT NULL,
    sequence        bigint NOT NULL,       -- 0 for schema-1 bundles (no chain)
    digest          text NOT NULL,
    previous        text,
    kind            text NOT NULL,
    schema_version  integer NOT NULL,
    key_id          text NOT NULL,
    instance        text,
    record_count    integer NOT NULL,
    peer            text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, sequence, digest)
);
CREATE UNIQUE INDEX sync_received_digest ON sync_received (digest);
CREATE UNIQUE INDEX sync_received_chain ON sync_received (origin, sequence) WHERE sequence > 0;

-- Sequences of an origin we know exist but have not received (to fetch later).
CREATE TABLE sync_gaps (
    origin          text NOT NULL,
    sequence        bigint NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    peer            text,
    PRIMARY KEY (origin, sequence)
);

-- Two different manifests with one (origin, sequence): rejected, kept for the operator.
CREATE TABLE sync_equivocations (
    id              bigserial PRIMARY KEY,
    origin          text NOT NULL,
    sequence        bigint NOT NULL,
    known_digest    text NOT NULL,
    rejected_digest text NOT NULL,
    peer            text,
    manifest        bytea NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (origin, sequence, rejected_digest)
);

-- Keys allowed to sign for an origin: pinned by an operator or approved from the queue.
CREATE TABLE sync_trusted_keys (
    origin          text NOT NULL,
    key_id          text NOT NULL,
    public_key      bytea,
    source          text NOT NULL CHECK (source IN ('pinned', 'approved', 'self')),
    peer            text,
    added_by        text,
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, key_id)
);

-- Authentic bundles signed by a key nobody trusts yet, waiting for an operator.
CREATE TABLE sync_pending (
    id              text PRIMARY KEY,
    digest          text NOT NULL UNIQUE,
    origin          text NOT NULL,
    key_id          text NOT NULL,
    public_key      bytea NOT NULL,
    sequence        bigint,
    record_count    integer NOT NULL,
    envelope        bytea NOT NULL,        -- the exact CBOR envelope, replayed on approval
    peer            text,
    received_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync_peers (
    id              text PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('dir', 'hub')),
    location        text NOT NULL,          -- directory path or hub base URL
    api             text NOT NULL DEFAULT 'v2' CHECK (api IN ('v2', 'v1')),
    token           text,                   -- bearer token for the hub (never printed in full)
    token_hash      text,                   -- sha256 of the token a hub presents to /sync/inbox
    schedule        text,
    cursor          bigint NOT NULL DEFAULT 0,   -- hub: last ?since= position consumed
    seen            text[] NOT NULL DEFAULT '{}', -- dir: files already consumed
    last_success_at timestamptz,
    last_failure_at timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_peers_token_hash ON sync_peers (token_hash) WHERE token_hash IS NOT NULL;

-- Vouch edges received from other origins (inviter -> invitee, by origin/id refs).
CREATE TABLE sync_vouches (
    origin          text NOT NULL,
    origin_id       text NOT NULL,
    inviter         text,
    invitee         text,
    revision        bigint NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, origin_id)
);

CREATE TABLE sync_jobs (
    id              bigserial PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    duration_ms     integer NOT NULL DEFAULT 0,
    actor           text NOT NULL,          -- cli:<user>, inbox, app
    peer            text,
    kind            text NOT NULL,          -- export, import, push, pull, inbox, approve
    result          text NOT NULL,          -- ok, noop, duplicate, pending, rejected, error
    error_code      text,
    bundle_bytes    bigint NOT NULL DEFAULT 0,
    bundles         integer NOT NULL DEFAULT 0,
    records_in      integer NOT NULL DEFAULT 0,
    records_applied integer NOT NULL DEFAULT 0,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX sync_jobs_started ON sync_jobs (started_at DESC);

-- Schema-1 records get their revision from Updated-At in microseconds, which does
-- not fit in integer.
ALTER TABLE users ALTER COLUMN revision TYPE bigint, ALTER COLUMN published_revision TYPE bigint;
ALTER TABLE requests ALTER COLUMN revision TYPE bigint, ALTER COLUMN published_revision TYPE bigint;
ALTER TABLE comments ALTER COLUMN revision TYPE bigint, ALTER COLUMN published_revision TYPE bigint;

-- Every bundle of this node's own chain, as its exact CBOR envelope: pushes and
-- directory writes are views of these bytes, so a sequence is never signed twice.
CREATE TABLE sync_outbox (
    sequence        bigint PRIMARY KEY,
    digest          text NOT NULL UNIQUE,
    kind            text NOT NULL,
    record_count    integer NOT NULL,
    envelope        bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE sync_peers ADD COLUMN push_sequence bigint NOT NULL DEFAULT 0;
