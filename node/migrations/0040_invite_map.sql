-- Invite map cache. A single counter, bumped in the same transaction as any change to
-- the columns the map draws (who invited whom, names, visibility), versions the graph:
-- a cached map is fresh while its graph_version equals the counter. Readers take the
-- counter and the graph from one snapshot, so a concurrent change can never be cached
-- under the new version.

CREATE TABLE invite_graph_version (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    version     bigint NOT NULL DEFAULT 1
);
INSERT INTO invite_graph_version (id, version) VALUES (true, 1);

CREATE FUNCTION wb_bump_invite_graph() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE invite_graph_version SET version = version + 1 WHERE id;
    RETURN NULL;
END;
$$;

-- Statement-level: a bulk import bumps once. UPDATE OF fires only when one of these
-- columns is in the statement's SET list, so bio or avatar edits leave caches alone.
CREATE TRIGGER users_invite_graph_ins AFTER INSERT OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION wb_bump_invite_graph();
CREATE TRIGGER users_invite_graph_upd
    AFTER UPDATE OF invited_by, username, display_name, sync_scope, disabled, deleted_at,
                    is_admin, origin
    ON users FOR EACH STATEMENT EXECUTE FUNCTION wb_bump_invite_graph();

CREATE TABLE invite_map_cache (
    viewer_id       text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    depth           smallint NOT NULL CHECK (depth BETWEEN 1 AND 3),
    graph_version   bigint NOT NULL,
    nodes           jsonb NOT NULL,      -- what the viewer may see, anonymised already
    svg             text NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    compute_ms      double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (viewer_id, depth)
);
CREATE INDEX invite_map_cache_version ON invite_map_cache (graph_version);

-- Directory search over local members.
CREATE INDEX users_local_created ON users (created_at DESC, id DESC) WHERE origin IS NULL;
