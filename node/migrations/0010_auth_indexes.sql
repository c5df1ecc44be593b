-- Auth look-ups that run on every page of a half-authenticated device, on the
-- "approve a device" list and on the invite list.
CREATE INDEX auth_requests_session ON auth_requests (session_hash, created_at DESC);
CREATE INDEX auth_requests_pending ON auth_requests (expires_at) WHERE status = 'pending';
CREATE INDEX invites_created_by ON invites (created_by, created_at DESC);
CREATE INDEX sessions_live ON sessions (status) WHERE revoked_at IS NULL;
