-- Hubs this hub follows: their public stream is read from the cursor and every frame is
-- ingested here as if the upstream (a registered hub peer) had pushed it.
CREATE TABLE hub_upstreams (
    name text PRIMARY KEY REFERENCES hub_peers (name) ON DELETE CASCADE,
    url text NOT NULL,
    cursor bigint NOT NULL DEFAULT 0,
    last_error text,
    connected_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
