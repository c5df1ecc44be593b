-- Core node schema: members, sessions, login requests, invites, help requests,
-- comments, audit log. Rows with origin IS NULL are this node's own; rows with an
-- origin came from another node through a verified bundle and are read-only here.

CREATE SEQUENCE node_change_seq;

-- Local syncable rows get a new revision and a place in the node-wide change
-- sequence whenever a column other than the bookkeeping ones changes.
CREATE FUNCTION wb_track_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ignored text[] := ARRAY['revision', 'change_seq', 'updated_at', 'published',
                            'published_revision'];
BEGIN
    IF NEW.origin IS NOT NULL THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.change_seq := nextval('node_change_seq');
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN
        NEW.revision := OLD.revision + 1;
        NEW.change_seq := nextval('node_change_seq');
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id              text PRIMARY KEY,
    origin          text,              -- NULL: local member; else key id of the owning node
    origin_id       text,              -- the record ID at its origin (remote rows only)
    instance        text,              -- the origin's public URL (remote rows only)
    username        text NOT NULL,
    display_name    text NOT NULL DEFAULT '',
    bio             text NOT NULL DEFAULT '',
    contact_email   text,
    share_contact   boolean NOT NULL DEFAULT false,
    is_admin        boolean NOT NULL DEFAULT false,
    disabled        boolean NOT NULL DEFAULT false,
    invited_by      text REFERENCES users(id),
    invite_id       text,
    avatar_path     text,
    sync_scope      text NOT NULL DEFAULT 'private' CHECK (sync_scope IN ('private', 'public')),
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    revision        integer NOT NULL DEFAULT 1,
    change_seq      bigint,
    published       boolean NOT NULL DEFAULT false,
    published_revision integer,
    CHECK ((origin IS NULL) = (origin_id IS NULL))
);
CREATE UNIQUE INDEX users_local_username ON users (lower(username)) WHERE origin IS NULL;
CREATE UNIQUE INDEX users_origin_key ON users (origin, origin_id) WHERE origin IS NOT NULL;
CREATE INDEX users_change_seq ON users (change_seq) WHERE origin IS NULL;
CREATE INDEX users_invited_by ON users (invited_by);
CREATE TRIGGER users_track BEFORE INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION wb_track_change();

CREATE TABLE sessions (
    id_hash         text PRIMARY KEY,  -- sha256 of the cookie value; the value itself is never stored
    user_id         text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status          text NOT NULL CHECK (status IN ('pending', 'active')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    ip              text,
    user_agent      text NOT NULL DEFAULT '',
    revoked_at      timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE auth_requests (
    id              text PRIMARY KEY,
    user_id         text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_hash    text NOT NULL REFERENCES sessions(id_hash) ON DELETE CASCADE,
    code            text NOT NULL,     -- short-lived; shown only to the requesting device
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'locked')),
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    decided_at      timestamptz,
    decided_by      text REFERENCES users(id),
    ip              text,
    user_agent      text NOT NULL DEFAULT ''
);
CREATE INDEX auth_requests_user ON auth_requests (user_id, status);

CREATE TABLE invites (
    id              text PRIMARY KEY,
    token_hash      text NOT NULL UNIQUE,
    created_by      text REFERENCES users(id) ON DELETE SET NULL,
    max_uses        integer NOT NULL DEFAULT 1 CHECK (max_uses > 0),
    use_count       integer NOT NULL DEFAULT 0 CHECK (use_count >= 0 AND use_count <= max_uses),
    expires_at      timestamptz,
    auto_approve    boolean NOT NULL DEFAULT true,
    disabled        boolean NOT NULL DEFAULT false,
    suggested_username text NOT NULL DEFAULT '',
    suggested_bio   text NOT NULL DEFAULT '',
    gratitude       text NOT NULL DEFAULT '',
    support_message text NOT NULL DEFAULT '',
    help_examples   text NOT NULL DEFAULT '',
    fun_details     text NOT NULL DEFAULT '',
    photo_path      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE requests (
    id              text PRIMARY KEY,
    origin          text,
    origin_id       text,
    instance        text,
    title           text NOT NULL DEFAULT '',
    description     text NOT NULL,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('pending', 'open', 'completed')),
    created_by      text REFERENCES users(id),
    contact_email   text,
    sync_scope      text NOT NULL DEFAULT 'private' CHECK (sync_scope IN ('private', 'public')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    deleted_at      timestamptz,
    revision        integer NOT NULL DEFAULT 1,
    change_seq      bigint,
    published       boolean NOT NULL DEFAULT false,
    published_revision integer,
    search          tsvector GENERATED ALWAYS AS
                    (to_tsvector('simple', coalesce(title, '') || ' ' || description)) STORED,
    CHECK ((origin IS NULL) = (origin_id IS NULL))
);
CREATE UNIQUE INDEX requests_origin_key ON requests (origin, origin_id) WHERE origin IS NOT NULL;
CREATE INDEX requests_feed ON requests (status, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX requests_creator ON requests (created_by, status);
CREATE INDEX requests_change_seq ON requests (change_seq) WHERE origin IS NULL;
CREATE INDEX requests_search ON requests USING gin (search);
CREATE TRIGGER requests_track BEFORE INSERT OR UPDATE ON requests
    FOR EACH ROW EXECUTE FUNCTION wb_track_change();

CREATE TABLE comments (
    id              text PRIMARY KEY,
    origin          text,
    origin_id       text,
    instance        text,
    request_id      text NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    created_by      text REFERENCES users(id),
    body            text NOT NULL,
    sync_scope      text NOT NULL DEFAULT 'private' CHECK (sync_scope IN ('private', 'public')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    revision        integer NOT NULL DEFAULT 1,
    change_seq      bigint,
    published       boolean NOT NULL DEFAULT false,
    published_revision integer,
    CHECK ((origin IS NULL) = (origin_id IS NULL))
);
CREATE UNIQUE INDEX comments_origin_key ON comments (origin, origin_id) WHERE origin IS NOT NULL;
CREATE INDEX comments_thread ON comments (request_id, created_at, id);
CREATE INDEX comments_change_seq ON comments (change_seq) WHERE origin IS NULL;
CREATE TRIGGER comments_track BEFORE INSERT OR UPDATE ON comments
    FOR EACH ROW EXECUTE FUNCTION wb_track_change();

CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_id        text REFERENCES users(id) ON DELETE SET NULL,
    action          text NOT NULL,
    target          text,
    ip              text,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_action ON audit_log (action, at DESC);
