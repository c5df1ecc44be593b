-- Peer approval of sign-ins (#23): every decision on a sign-in request (approved or
-- denied; by the member's own device, an admin, a reviewer, the inviter or the operator
-- at the command line) is appended to a hash chain. Each row's hash is SHA-256 over the
-- previous row's hash and a canonical encoding of the row (node/auth/ledger.py), so an
-- edited, deleted or reordered row is found by `wb session ledger --verify`.
-- Rows name members by id AND username, without foreign keys: a later rename or deletion
-- never rewrites history. Local state: no change tracking, never exported, never sent
-- to a hub, never shown to the copilot.
CREATE TABLE approval_ledger (
    seq          bigint PRIMARY KEY CHECK (seq > 0),
    at           timestamptz NOT NULL,
    request_id   text NOT NULL,
    member_id    text NOT NULL,
    member       text NOT NULL,
    reviewer_id  text,
    reviewer     text NOT NULL,
    capacity     text NOT NULL,
    decision     text NOT NULL,
    note         text NOT NULL DEFAULT '',
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    -- two rows after the same row would be a fork: refused even if the lock were skipped
    CONSTRAINT approval_ledger_no_fork UNIQUE (prev_hash)
);
