-- Signing keys the hub operator revoked (e.g. leaked): removed from hub_trusted_keys,
-- bundles they sign are refused (403 revoked_key) and no rotation announcement, peer
-- registration or approval trusts them again while the row exists.
CREATE TABLE hub_key_revocations (
    origin      text NOT NULL,
    key_id      text NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    PRIMARY KEY (origin, key_id)
);
