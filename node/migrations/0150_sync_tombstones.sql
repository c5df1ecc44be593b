-- Tombstones are state, not events: per origin, every record a peer withdrew, with the
-- highest withdrawn revision and the sequence of the bundle that withdrew it. An import
-- checks every live record against it before storing, so a copy at or below that
-- revision never comes back, whatever order bundles arrive in or who relays them.
CREATE TABLE sync_tombstones (
    origin text NOT NULL,
    entity text NOT NULL,
    origin_id text NOT NULL,
    revision bigint NOT NULL,
    sequence bigint,
    digest text NOT NULL,
    withdrawn_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, entity, origin_id)
);

-- the rows already tombstoned are the starting state
INSERT INTO sync_tombstones (origin, entity, origin_id, revision, digest)
SELECT origin, 'user', origin_id, revision, '' FROM users
 WHERE origin IS NOT NULL AND deleted_at IS NOT NULL
UNION ALL
SELECT origin, 'request', origin_id, revision, '' FROM requests
 WHERE origin IS NOT NULL AND deleted_at IS NOT NULL
UNION ALL
SELECT origin, 'comment', origin_id, revision, '' FROM comments
 WHERE origin IS NOT NULL AND deleted_at IS NOT NULL
UNION ALL
SELECT origin, 'vouch', origin_id, revision, '' FROM sync_vouches WHERE deleted
ON CONFLICT DO NOTHING;
