-- SYNC_PUBLIC_SCOPE admin switch (#20): an admin changes the mode in force on /sync/review
-- (or the JSON API, or `wb sync public-scope MODE`). The setting is the node's initial
-- value: `configured` remembers the setting last seen at start-up, so a restart with the
-- same setting keeps an admin's choice, and a changed setting wins again (audited).
ALTER TABLE node_public_scope
    ADD COLUMN configured text CHECK (configured IN ('members', 'admins', 'off')),
    ADD COLUMN source text NOT NULL DEFAULT 'setting' CHECK (source IN ('setting', 'admin')),
    ADD COLUMN changed_by text REFERENCES users(id) ON DELETE SET NULL;
UPDATE node_public_scope SET configured = mode;
