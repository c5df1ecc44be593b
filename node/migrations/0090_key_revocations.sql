-- Signing keys an operator revoked (e.g. leaked): removed from sync_trusted_keys and
-- never trusted again for the origin, whether by a rotation announcement, a pin or an
-- approval, until the revocation itself is removed (`wb sync keys unrevoke`). Bundles
-- they sign are refused with `revoked_key`.
CREATE TABLE sync_key_revocations (
    origin          text NOT NULL,
    key_id          text NOT NULL,
    revoked_at      timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    PRIMARY KEY (origin, key_id)
);
