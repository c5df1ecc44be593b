-- Direct messages between members (#23). Local and private: no change tracking, never
-- exported, fed, published or shown to the copilot. A conversation is between exactly two
-- local members (member_low < member_high, one row per pair); a message's recipient is kept
-- so the unread count is one index lookup (the session query folds it in on every page).
CREATE TABLE message_threads (
    id              text PRIMARY KEY,
    member_low      text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    member_high     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now(),
    CHECK (member_low < member_high),
    UNIQUE (member_low, member_high)
);
CREATE INDEX message_threads_low ON message_threads (member_low, last_message_at DESC);
CREATE INDEX message_threads_high ON message_threads (member_high, last_message_at DESC);

CREATE TABLE messages (
    id              text PRIMARY KEY,
    -- commit order within a conversation (the thread row is locked before the insert):
    -- the live stream's cursor
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    thread_id       text NOT NULL REFERENCES message_threads(id) ON DELETE CASCADE,
    sender_id       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    recipient_id    text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    read_at         timestamptz,
    CHECK (sender_id <> recipient_id)
);
CREATE INDEX messages_thread ON messages (thread_id, seq);
CREATE INDEX messages_unread ON messages (recipient_id, thread_id) WHERE read_at IS NULL;

-- A member blocks another: neither can write to the other.
CREATE TABLE message_blocks (
    blocker_id      text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    blocked_id      text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX message_blocks_blocked ON message_blocks (blocked_id);

-- A recipient reports a message: admins read that message's body, and only that one.
CREATE TABLE message_reports (
    id              text PRIMARY KEY,
    message_id      text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    reporter_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason          text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at      timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     text REFERENCES users(id) ON DELETE SET NULL,
    resolution      text NOT NULL DEFAULT '' CHECK (length(resolution) <= 500),
    UNIQUE (message_id, reporter_id)
);
CREATE INDEX message_reports_open ON message_reports (created_at) WHERE resolved_at IS NULL;
