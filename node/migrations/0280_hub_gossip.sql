-- Checkpoint gossip (#22): nodes ask each other (GET /sync/checkpoints) for the newest
-- signed checkpoint they hold of each hub; each one is checked against our own view of
-- that hub's log. A split view becomes a fork incident with both signed notes.

-- The newest note each source told us of each of our hub peers' logs, once checked
-- (consistent, or an incident was recorded): the same note is not checked twice.
CREATE TABLE sync_hub_gossip (
    source      text NOT NULL,           -- base URL of the node that told us
    peer        text NOT NULL,           -- our hub peer whose log the note belongs to
    size        bigint NOT NULL,
    root        bytea NOT NULL,
    note        bytea NOT NULL,          -- the signed checkpoint, exact bytes
    checked_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, peer)
);

-- Every node asked, with the outcome of the last exchange (shown in the control center).
CREATE TABLE sync_gossip_sources (
    source      text PRIMARY KEY,
    asked_at    timestamptz NOT NULL DEFAULT now(),
    notes       integer NOT NULL DEFAULT 0,   -- checkpoints it sent that matched our hubs
    error       text                          -- why the last exchange failed (NULL: ok)
);
