-- Feed and thread indexes for the requests feature.
-- The "all statuses" feed pages newest first across statuses: one index in feed order.
CREATE INDEX requests_feed_all ON requests (created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- Live comment counts and threads without visiting deleted rows.
CREATE INDEX comments_live ON comments (request_id, created_at, id) WHERE deleted_at IS NULL;
