-- What an unapproved (half-authenticated) device writes belongs to that device's sign-in
-- request: approving that request publishes it, denying or expiring it discards it, and
-- approving another device of the same member never touches it (issue 14).
-- SET NULL, never CASCADE: sign-in requests go when their session is cleaned up, and an
-- approved device's requests are ordinary open requests by then. Pending ones are
-- discarded explicitly (deny, sign-out, expiry) before that.
ALTER TABLE requests ADD COLUMN auth_request_id text
    REFERENCES auth_requests(id) ON DELETE SET NULL;
CREATE INDEX requests_auth_request ON requests (auth_request_id)
    WHERE auth_request_id IS NOT NULL;
