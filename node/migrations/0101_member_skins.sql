-- A member's chosen skin (#20). Its own table: a column on users would count as a profile
-- change for the sync engine and re-publish the member.
CREATE TABLE member_skins (
    user_id         text PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    skin            text NOT NULL CHECK (skin ~ '^[a-z][a-z0-9-]{0,39}$'),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
