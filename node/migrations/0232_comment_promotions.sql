-- A comment promoted to its own request (#23): the link both ways, local only (the new
-- request starts private; this table has no change tracking and is never exported).
CREATE TABLE comment_promotions (
    comment_id   text PRIMARY KEY REFERENCES comments(id) ON DELETE CASCADE,
    request_id   text NOT NULL UNIQUE REFERENCES requests(id) ON DELETE CASCADE,
    promoted_by  text REFERENCES users(id) ON DELETE SET NULL,
    promoted_at  timestamptz NOT NULL DEFAULT now()
);
