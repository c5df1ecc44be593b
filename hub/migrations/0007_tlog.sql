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

-- Append one leaf per log entry, in the ingest transaction, by a trigger on hub_log: no
-- extra round trip while the hub_state row lock (which orders committers) is held. The
-- leaf bytes are protocol.tlog.leaf_entry's (tests compare both). A tree behind the log
-- (a log older than the tree) first appends the retained entries it lacks.
CREATE FUNCTION hub_tlog_append(p_seq bigint, p_origin text, p_sequence bigint,
                                p_digest text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    st record;
    r record;
    entry bytea;
    h bytea;
    fr bytea;
    lvl integer := 0;
    idx bigint;
    n integer;
BEGIN
    SELECT size, frontier, last_hub_seq INTO st FROM hub_tlog_state WHERE id = 1;
    IF st.last_hub_seq >= p_seq THEN
        RETURN;  -- already a leaf
    END IF;
    IF st.last_hub_seq < p_seq - 1 THEN
        FOR r IN SELECT l.seq, l.origin, b.sequence, l.digest
                   FROM hub_log l JOIN hub_bundles b USING (digest)
                  WHERE l.seq > st.last_hub_seq AND l.seq < p_seq ORDER BY l.seq LOOP
            PERFORM hub_tlog_append(r.seq, r.origin, r.sequence, r.digest);
        END LOOP;
        SELECT size, frontier, last_hub_seq INTO st FROM hub_tlog_state WHERE id = 1;
    END IF;
    entry := convert_to(format(E'whiteballoon-hub-log-entry/1\nhub-seq %s\norigin %s\nsequence %s\ndigest %s\n',
                               p_seq, p_origin, coalesce(p_sequence::text, '-'), p_digest),
                        'UTF8');
    h := sha256('\x00'::bytea || entry);
    INSERT INTO hub_tlog_leaves (idx, hub_seq, origin, sequence, entry)
    VALUES (st.size, p_seq, p_origin, p_sequence, entry);
    INSERT INTO hub_tlog_hashes (level, idx, hash) VALUES (0, st.size, h);
    fr := st.frontier;
    idx := st.size;
    WHILE idx % 2 = 1 LOOP
        n := length(fr);
        h := sha256('\x01'::bytea || substring(fr FROM n - 31 FOR 32) || h);
        fr := substring(fr FROM 1 FOR n - 32);
        lvl := lvl + 1;
        idx := idx / 2;
        INSERT INTO hub_tlog_hashes (level, idx, hash) VALUES (lvl, idx, h);
    END LOOP;
    UPDATE hub_tlog_state SET size = st.size + 1, frontier = fr || h, last_hub_seq = p_seq
     WHERE id = 1;
END $$;

CREATE FUNCTION hub_tlog_on_log() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hub_tlog_append(NEW.seq, NEW.origin,
                            (SELECT sequence FROM hub_bundles WHERE digest = NEW.digest),
                            NEW.digest);
    RETURN NULL;
END $$;

CREATE TRIGGER hub_tlog_append AFTER INSERT ON hub_log
    FOR EACH ROW EXECUTE FUNCTION hub_tlog_on_log();

-- Witnessing (C2SP tlog-witness): the logs this hub cosigns, with the newest checkpoint
-- it cosigned of each; and the cosignatures other witnesses gave this hub's checkpoints.
CREATE TABLE hub_witness_logs (
    origin      text PRIMARY KEY,
    size        bigint NOT NULL,
    root        bytea NOT NULL,
    note        bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hub_tlog_cosignatures (
    witness     text NOT NULL,           -- the witness URL it was asked at
    size        bigint NOT NULL REFERENCES hub_tlog_checkpoints (size),
    line        text NOT NULL,           -- the signature line, exactly as returned
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (witness, size)
);
