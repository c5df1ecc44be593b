-- Hub schema: peers and trust, received bundles (exact bytes), the public record index,
-- the durable log (hub sequence in commit order), origin chain state, subscriptions.
-- Chain gaps are not stored: they are computed from hub_bundles (origin, sequence).

CREATE TABLE hub_state (
    id integer PRIMARY KEY CHECK (id = 1),
    -- last hub sequence handed out; bumped inside the ingest transaction, so the row
    -- lock orders committers and sequences are gap-free and in commit order
    last_seq bigint NOT NULL DEFAULT 0,
    -- entries with seq <= pruned_through are no longer retained
    pruned_through bigint NOT NULL DEFAULT 0,
    -- HMAC secret of admin CSRF tokens, shared by every hub process on this database
    csrf_secret text NOT NULL DEFAULT md5(random()::text || clock_timestamp()::text)
                                      || md5(random()::text || clock_timestamp()::text)
);
INSERT INTO hub_state (id) VALUES (1);

CREATE TABLE hub_peers (
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    kind text NOT NULL DEFAULT 'node' CHECK (kind IN ('node', 'hub')),
    token_hash text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    max_bundle_bytes bigint,
    rate_per_minute integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_push_at timestamptz,
    pushes bigint NOT NULL DEFAULT 0
);

CREATE TABLE hub_trusted_keys (
    origin text NOT NULL,
    key_id text NOT NULL,
    public_key bytea NOT NULL,
    peer_name text REFERENCES hub_peers (name) ON DELETE SET NULL,
    approved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, key_id)
);

CREATE TABLE hub_pending_keys (
    origin text NOT NULL,
    key_id text NOT NULL,
    public_key bytea NOT NULL,
    peer_name text,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, key_id)
);

CREATE TABLE hub_pending_bundles (
    digest text PRIMARY KEY,
    origin text NOT NULL,
    key_id text NOT NULL,
    sequence bigint,
    peer_name text,
    hops integer NOT NULL DEFAULT 0,
    container bytea NOT NULL,  -- CBOR envelope of the public part, exact file bytes
    received_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (origin, key_id) REFERENCES hub_pending_keys (origin, key_id) ON DELETE CASCADE
);

CREATE TABLE hub_bundles (
    digest text PRIMARY KEY,
    origin text NOT NULL,
    instance text,
    sequence bigint,
    previous text,
    kind text,
    schema_version integer NOT NULL,
    key_id text NOT NULL,
    signed_at text,
    container bytea NOT NULL,  -- CBOR envelope: manifest, sig, public files, keys (exact bytes)
    record_count integer NOT NULL,
    withheld_count integer NOT NULL,
    received_from text,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (origin, sequence)
);

-- already compressed-enough text; skipping pglz saves CPU on every ingest
ALTER TABLE hub_bundles ALTER COLUMN container SET STORAGE EXTERNAL;

CREATE TABLE hub_log (
    seq bigint PRIMARY KEY,
    digest text NOT NULL UNIQUE REFERENCES hub_bundles (digest),
    origin text NOT NULL,
    entities text[] NOT NULL,
    received_from text,
    hops integer NOT NULL DEFAULT 0,
    committed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hub_records (
    origin text NOT NULL,
    entity text NOT NULL,
    id text NOT NULL,
    revision bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    instance text,
    updated_at text,
    head text NOT NULL,     -- the record's header block, exactly as signed; '' for tombstones
    body text NOT NULL,     -- the record's body; '' for tombstones
    title text,
    status text,
    parent_ref text,        -- a comment's Request (origin/id)
    created_at text,
    digest text NOT NULL,   -- bundle that carried this revision
    PRIMARY KEY (origin, entity, id)
);
CREATE INDEX hub_records_feed ON hub_records (entity, updated_at DESC) WHERE NOT deleted;
CREATE INDEX hub_records_parent ON hub_records (parent_ref) WHERE NOT deleted;
-- search is a scan with ILIKE per word (no tsvector kept): computing one per record cost
-- more than a third of ingest time; see docs/hub-guide.md

CREATE TABLE hub_origins (
    origin text PRIMARY KEY,
    instance text,
    last_sequence bigint,
    last_digest text,
    bundles bigint NOT NULL DEFAULT 0,
    records bigint NOT NULL DEFAULT 0,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hub_equivocations (
    origin text NOT NULL,
    sequence bigint NOT NULL,
    kept_digest text NOT NULL,
    rejected_digest text NOT NULL,
    peer_name text,
    manifest bytea NOT NULL,
    sig bytea NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, sequence, rejected_digest)
);

CREATE TABLE hub_subscriptions (
    id text PRIMARY KEY,
    peer_name text NOT NULL REFERENCES hub_peers (name) ON DELETE CASCADE,
    mode text NOT NULL DEFAULT 'push' CHECK (mode IN ('push', 'pull')),
    inbox_url text,
    inbox_token text,       -- sent as the bearer token to the subscriber's inbox
    origins text[],         -- NULL: every origin
    entities text[],        -- NULL: every entity
    cursor bigint NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    last_delivered_at timestamptz,
    delivered bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (mode <> 'push' OR inbox_url IS NOT NULL)
);

CREATE TABLE hub_ingest_errors (
    code text PRIMARY KEY,
    count bigint NOT NULL DEFAULT 0,
    last_message text,
    last_peer text,
    last_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hub_admin_tokens (
    token_hash text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hub_admin_sessions (
    id_hash text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE TABLE hub_blocklist (
    origin text PRIMARY KEY,
    reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
