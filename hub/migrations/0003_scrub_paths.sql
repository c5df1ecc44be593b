-- The record paths each stored bundle still carries, so that a tombstone can scrub the
-- earlier copies of its record from every bundle of the log: once a record is private
-- or deleted, the hub forwards no byte of any earlier revision of it.
ALTER TABLE hub_bundles ADD COLUMN paths text[] NOT NULL DEFAULT '{}';
