-- Drafts of requests (#23): a member's own unfinished requests. Local and private to their
-- author: no change tracking, never exported, never shown to anyone else (admins included).
CREATE TABLE request_drafts (
    id              text PRIMARY KEY,
    owner_id        text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title           text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    contact_email   text NOT NULL DEFAULT '',
    sync_scope      text NOT NULL DEFAULT 'private' CHECK (sync_scope IN ('private', 'public')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_drafts_owner ON request_drafts (owner_id, updated_at DESC);
