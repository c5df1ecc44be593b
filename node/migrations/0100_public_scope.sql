-- SYNC_PUBLIC_SCOPE (#20): who may let data leave the node.
-- node_public_scope holds the mode in force (members | admins | off); the node writes it
-- from the setting at start-up and audits every change, so a lowered mode is never a
-- silent one. publication_requests are a member's "make public" under `admins`: nothing
-- leaves until an admin approves.
CREATE TABLE node_public_scope (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    mode            text NOT NULL CHECK (mode IN ('members', 'admins', 'off')),
    changed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE publication_requests (
    id              text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('request', 'comment', 'user')),
    record_id       text NOT NULL,
    requested_by    text REFERENCES users(id) ON DELETE SET NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'declined', 'cancelled')),
    decided_by      text REFERENCES users(id) ON DELETE SET NULL,
    decided_via     text,
    decided_at      timestamptz,
    note            text
);
CREATE UNIQUE INDEX publication_requests_one_pending
    ON publication_requests (kind, record_id) WHERE status = 'pending';
CREATE INDEX publication_requests_status ON publication_requests (status, requested_at);
