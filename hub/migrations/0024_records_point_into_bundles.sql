-- An index row points into its bundle instead of copying from it (#24): what a
-- schema-2 row held twice was its header block (the stored envelope, hub_bundles.container,
-- holds every file's bytes as signed) and the bundle's 64-character digest. A row now
-- keeps the bundle's id (`bundle`, a new identity of hub_bundles) in place of the digest,
-- and `head_at`/`head_len` in place of the head: where its header block lies in that
-- envelope (from 0; its bytes). The body stays in the row (search reads it).
--
-- A row holds its own copies instead (head and digest, no pointer) when it has no head
-- to point at: a tombstone (head ''), a schema-1 record (its head is the mapped schema-2
-- one, never signed), a file the ingest did not find in the envelope; and so does
-- every row of a bundle whose envelope is rewritten (a scrub) or deleted (pruning): its
-- head and digest are copied into the row first, in the same transaction
-- (hub.queries_log.inline_heads). Rows stored before this migration keep theirs.
ALTER TABLE hub_bundles ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY,
    ADD CONSTRAINT hub_bundles_id_key UNIQUE (id);

ALTER TABLE hub_records ALTER COLUMN head DROP NOT NULL,
    ALTER COLUMN digest DROP NOT NULL,
    ADD COLUMN bundle bigint,
    ADD COLUMN head_at integer,
    ADD COLUMN head_len integer,
    ADD CONSTRAINT hub_records_points_or_holds CHECK (
        (bundle IS NULL) = (head_at IS NULL) AND (bundle IS NULL) = (head_len IS NULL)
        AND (bundle IS NULL) = (head IS NOT NULL) AND (bundle IS NULL) = (digest IS NOT NULL)
        AND coalesce(head_at >= 0 AND head_len >= 0, true));
