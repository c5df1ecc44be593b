-- The tags of a request as exported in its Tags header (#23): "food transport", sorted,
-- kept in step with request_tags by node.tags. A change raises the request's revision
-- (wb_track_change compares every column), so a public request is re-exported with them.
ALTER TABLE requests ADD COLUMN tags text NOT NULL DEFAULT '';
