-- What an unapproved (half-authenticated) device writes belongs to that device's sign-in
-- request: approving that request publishes it, denying or expiring it discards it, and
-- approving another device of the same member never touches it (issue 14).
ALTER TABLE requests ADD COLUMN auth_request_id text
    REFERENCES auth_requests(id) ON DELETE CASCADE;
CREATE INDEX requests_auth_request ON requests (auth_request_id)
    WHERE auth_request_id IS NOT NULL;
