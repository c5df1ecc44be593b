-- Transparency log (#22): an RFC 6962 Merkle tree over the log, one leaf per log entry
-- (hub_seq, origin, origin sequence, manifest digest), appended inside the ingest
-- transaction. Leaves, stored hashes and checkpoints are kept forever: pruning and
-- scrubbing never touch these tables.
CREATE TABLE hub_tlog_state (
    id integer PRIMARY KEY CHECK (id = 1),
    size bigint NOT NULL DEFAULT 0,             -- leaves in the tree
    frontier bytea NOT NULL DEFAULT ''::bytea,  -- hashes of its complete subtrees, largest first
    last_hub_seq bigint NOT NULL DEFAULT 0      -- hub_seq of the last leaf
);
INSERT INTO hub_tlog_state (id) VALUES (1);

CREATE TABLE hub_tlog_leaves (
    idx bigint PRIMARY KEY,
    hub_seq bigint NOT NULL UNIQUE,
    origin text NOT NULL,
    sequence bigint,
    entry bytea NOT NULL  -- the leaf's exact bytes (protocol.tlog.leaf_entry)
);
CREATE INDEX hub_tlog_leaves_origin ON hub_tlog_leaves (origin, sequence);

-- the hash of every complete subtree: (level, idx) covers leaves [idx << level, (idx+1) << level)
CREATE TABLE hub_tlog_hashes (
    level smallint NOT NULL,
    idx bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (level, idx)
);

-- every checkpoint this hub signed (a node holding one can ask for consistency with it)
CREATE TABLE hub_tlog_checkpoints (
    size bigint PRIMARY KEY,
    root bytea NOT NULL,
    note bytea NOT NULL,
    last_hub_seq bigint NOT NULL DEFAULT 0,  -- hub_seq of its last leaf (0: empty tree)
    created_at timestamptz NOT NULL DEFAULT now()
);
