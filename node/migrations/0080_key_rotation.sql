-- Key rotation and chain checks of the sync engine.

-- A key announced by a `key` record signed by an already trusted key of the origin is
-- trusted with source 'rotation'; announced_by is the key that signed the announcement.
ALTER TABLE sync_trusted_keys DROP CONSTRAINT IF EXISTS sync_trusted_keys_source_check;
ALTER TABLE sync_trusted_keys ADD CONSTRAINT sync_trusted_keys_source_check
    CHECK (source IN ('pinned', 'approved', 'self', 'rotation'));
ALTER TABLE sync_trusted_keys ADD COLUMN announced_by text;

-- This node's own signing keys, oldest first: the first one is the origin. A rotation
-- adds a row (announced in chain link announced_sequence) and retires the previous one.
CREATE TABLE node_keys (
    key_id              text PRIMARY KEY,
    public_key          bytea NOT NULL,
    previous_key_id     text,
    valid_from          timestamptz NOT NULL DEFAULT now(),
    announced_sequence  bigint,
    retired_at          timestamptz,
    retired_file        text           -- where the retired private key was kept (audit)
);

-- A bundle whose Previous is not the digest of the origin's predecessor we hold (or a
-- predecessor that does not match the Previous of its successor): kept for the operator.
CREATE TABLE sync_chain_breaks (
    id                  bigserial PRIMARY KEY,
    origin              text NOT NULL,
    sequence            bigint NOT NULL,   -- the bundle whose Previous does not match
    previous            text,              -- its Previous
    expected            text NOT NULL,     -- digest of the predecessor we hold
    digest              text NOT NULL,     -- the bundle's own digest
    peer                text,
    detected_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (origin, sequence, digest)
);

-- Gap fetching: how often a missing sequence was looked for, to back off on peers that
-- do not have it either.
ALTER TABLE sync_gaps ADD COLUMN attempts integer NOT NULL DEFAULT 0,
                      ADD COLUMN last_attempt_at timestamptz;
