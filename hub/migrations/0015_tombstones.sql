-- Tombstones are state, not events: per origin, every withdrawn record with the highest
-- revision a tombstone withdrew and the sequence of the bundle that carried it. Every
-- incoming bundle is checked against it before it is logged (a copy at or below that
-- revision is withheld from the stored bundle, whatever the arrival order and whoever
-- pushes it), and pruning the log never deletes from it.
CREATE TABLE hub_tombstones (
    origin text NOT NULL,
    entity text NOT NULL,
    id text NOT NULL,
    revision bigint NOT NULL,   -- copies with revision <= this are withdrawn
    sequence bigint,            -- the withdrawing bundle's Sequence (NULL: schema 1)
    digest text NOT NULL,       -- the withdrawing bundle (may since be pruned)
    withdrawn_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, entity, id)
);

-- the index already kept the tombstones it had seen: they are the starting state
INSERT INTO hub_tombstones (origin, entity, id, revision, sequence, digest)
SELECT r.origin, r.entity, r.id, r.revision, b.sequence, r.digest
  FROM hub_records r LEFT JOIN hub_bundles b ON b.digest = r.digest
 WHERE r.deleted;
