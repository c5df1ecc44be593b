-- Group commit of the log (#26): an ingest transaction stores the bundle, its index rows
-- and a row here, and commits on its own, side by side with other pushes; the log
-- sequence is then given to every pending row at once by one short transaction under
-- the hub_state row lock (hub.queries.sequence_pending). Before, each push held that
-- lock through its own commit, so every push waited for every earlier push's WAL flush
-- in turn; now one flush covers all the pushes that arrived meanwhile.
CREATE TABLE hub_log_pending (
    id bigserial PRIMARY KEY,   -- arrival order of the committed pushes
    digest text NOT NULL UNIQUE REFERENCES hub_bundles (digest),
    origin text NOT NULL,
    entities text[] NOT NULL,
    received_from text,
    hops integer NOT NULL DEFAULT 0
);
