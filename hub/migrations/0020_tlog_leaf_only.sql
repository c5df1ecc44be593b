-- Transparency log (#22), cheaper ingest: the ingest transaction appends only the LEAF
-- (its index and exact bytes), in commit order, while it holds the hub_state row lock.
-- The leaf hashes, the stored subtree hashes and hub_tlog_state (size, frontier) are
-- computed afterwards, set by set, by the checkpoint job before it signs
-- (hub.queries_tlog.extend): hub_tlog_state now describes the hashed prefix of the
-- leaves. Measured: the old trigger spent ~250 us per ingest inside the serialized part
-- (docs/benchmarks.md, "Transparency log"); this one ~90 us.
CREATE OR REPLACE FUNCTION hub_tlog_on_log() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_idx bigint;
    last_seq bigint;
    seq_of bigint;
BEGIN
    SELECT idx, hub_seq INTO last_idx, last_seq FROM hub_tlog_leaves ORDER BY idx DESC LIMIT 1;
    IF NOT FOUND THEN
        last_idx := -1;
        last_seq := 0;
    END IF;
    IF last_seq >= NEW.seq THEN
        RETURN NULL;  -- already a leaf
    END IF;
    IF last_seq = NEW.seq - 1 THEN  -- the usual case: the next leaf, three indexed statements
        SELECT sequence INTO seq_of FROM hub_bundles WHERE digest = NEW.digest;
        INSERT INTO hub_tlog_leaves (idx, hub_seq, origin, sequence, entry)
        VALUES (last_idx + 1, NEW.seq, NEW.origin, seq_of,
                convert_to('whiteballoon-hub-log-entry/1' || E'\nhub-seq ' || NEW.seq
                           || E'\norigin ' || NEW.origin || E'\nsequence '
                           || coalesce(seq_of::text, '-') || E'\ndigest ' || NEW.digest
                           || E'\n', 'UTF8'));
        RETURN NULL;
    END IF;
    -- leaves behind the log (a hub upgraded with a log, a trigger once disabled): the
    -- retained entries between come first, in log order, then this one
    INSERT INTO hub_tlog_leaves (idx, hub_seq, origin, sequence, entry)
    SELECT last_idx + row_number() OVER (ORDER BY l.seq), l.seq, l.origin, b.sequence,
           convert_to(format(E'whiteballoon-hub-log-entry/1\nhub-seq %s\norigin %s\nsequence %s\ndigest %s\n',
                             l.seq, l.origin, coalesce(b.sequence::text, '-'), l.digest), 'UTF8')
      FROM hub_log l JOIN hub_bundles b USING (digest)
     WHERE l.seq > last_seq AND l.seq <= NEW.seq
     ORDER BY l.seq;
    RETURN NULL;
END $$;

DROP FUNCTION hub_tlog_append(bigint, text, bigint, text);
