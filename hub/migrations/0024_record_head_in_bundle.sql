-- A record's header block is stored once (#24): an index row of a schema-2 record no
-- longer copies it, it points at it inside the stored envelope of the bundle that
-- carried the row's revision (hub_bundles.container, whose bytes hold every file as
-- signed): head_at is where the header block starts in it (from 0), head_len its bytes.
-- The body stays in the row (search reads it). A row keeps its head inline (head set,
-- no pointer) when it has no such bytes to point at: a tombstone (''), a schema-1
-- record (its head is the mapped schema-2 one, never signed), a file the ingest did not
-- find in the envelope, and every row whose bundle's envelope is rewritten (a scrub) or
-- deleted (pruning): its head is copied into the row first, in the same transaction
-- (hub.queries_log.inline_heads). Rows stored before this migration keep theirs.
ALTER TABLE hub_records ALTER COLUMN head DROP NOT NULL,
    ADD COLUMN head_at integer,
    ADD COLUMN head_len integer,
    ADD CONSTRAINT hub_records_head_somewhere CHECK (
        (head IS NULL) = (head_at IS NOT NULL) AND (head_at IS NULL) = (head_len IS NULL)
        AND coalesce(head_at >= 0 AND head_len >= 0, true));
