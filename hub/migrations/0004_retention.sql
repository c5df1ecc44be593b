-- Log retention: `wb hub prune` and the prune job delete log entries (and their bundles)
-- older than WB_HUB_RETENTION_DAYS, except the latest bundle of each origin, and raise
-- hub_state.pruned_through. Chain gaps below an origin's pruned_sequence are not gaps.
ALTER TABLE hub_origins ADD COLUMN pruned_sequence bigint NOT NULL DEFAULT 0;
CREATE INDEX hub_log_committed_at ON hub_log (committed_at);
