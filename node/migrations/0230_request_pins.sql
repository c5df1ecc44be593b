-- Pinned requests (#23): an admin's order of requests shown above the feed. Local state:
-- no change tracking, never exported, never sent to a hub.
CREATE TABLE request_pins (
    request_id  text PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,
    position    integer NOT NULL CHECK (position BETWEEN 1 AND 1000),
    note        text NOT NULL DEFAULT '' CHECK (length(note) <= 120),
    ends_at     timestamptz,
    pinned_by   text REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_pins_order ON request_pins (position, created_at);
