-- Mutual Aid Copilot: admin switch and gateway key, MCP tokens, conversations,
-- proposals awaiting confirmation, and the audit of every invocation.

CREATE TABLE copilot_settings (
    id              integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    enabled         boolean NOT NULL DEFAULT false,
    api_key         text,              -- gateway key entered by an admin (never logged)
    key_verified_at timestamptz,
    updated_by      text REFERENCES users(id) ON DELETE SET NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO copilot_settings (id) VALUES (1);

CREATE TABLE copilot_tokens (
    id              text PRIMARY KEY,
    token_hash      text NOT NULL UNIQUE,  -- sha256 of the bearer token; the token is shown once
    admin_id        text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz
);

CREATE TABLE copilot_audit (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    admin_id        text REFERENCES users(id) ON DELETE SET NULL,
    via             text NOT NULL CHECK (via IN ('web', 'mcp', 'cli')),
    tool            text NOT NULL,     -- a tool name, or 'chat' for one assistant turn
    arguments       jsonb NOT NULL DEFAULT '{}'::jsonb,   -- scrubbed
    result_summary  text NOT NULL DEFAULT '',             -- scrubbed
    prompt          text,              -- scrubbed
    response        text,              -- scrubbed
    latency_ms      integer NOT NULL DEFAULT 0,
    success         boolean NOT NULL,
    error_code      text,
    feedback        smallint CHECK (feedback IN (-1, 1))
);
CREATE INDEX copilot_audit_at ON copilot_audit (at DESC);
CREATE INDEX copilot_audit_admin ON copilot_audit (admin_id, at DESC);

CREATE TABLE copilot_messages (
    id              bigserial PRIMARY KEY,
    admin_id        text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant', 'note')),
    content         text NOT NULL,     -- scrubbed
    audit_id        bigint REFERENCES copilot_audit(id) ON DELETE SET NULL,
    feedback        smallint CHECK (feedback IN (-1, 1)),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX copilot_messages_admin ON copilot_messages (admin_id, id);

CREATE TABLE copilot_proposals (
    id              text PRIMARY KEY,
    admin_id        text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tool            text NOT NULL,
    arguments       jsonb NOT NULL,
    reason          text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'confirmed', 'dismissed', 'failed')),
    result          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz
);
CREATE INDEX copilot_proposals_admin ON copilot_proposals (admin_id, status, created_at);
