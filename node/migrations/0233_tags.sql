-- Tags of requests (#23): a per-community list kept by admins, each with a background
-- colour and the text colour (black or white) that reaches WCAG AA contrast on it.
CREATE TABLE community_tags (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    colour      text NOT NULL CHECK (colour ~ '^#[0-9a-f]{6}$'),
    text_colour text NOT NULL CHECK (text_colour IN ('#000000', '#ffffff')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE request_tags (
    request_id  text NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    tag         text NOT NULL REFERENCES community_tags(name) ON DELETE CASCADE,
    PRIMARY KEY (request_id, tag)
);
CREATE INDEX request_tags_tag ON request_tags (tag, request_id);
