-- Member roles (#23): designations an admin grants on top of membership.
--   reviewer       may approve a waiting sign-in of another member (peer approval)
--   house_manager  may keep recurring request templates
-- Local state: no change tracking, never exported, never sent to a hub.
CREATE TABLE member_roles (
    user_id     text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('reviewer', 'house_manager')),
    granted_by  text REFERENCES users(id) ON DELETE SET NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX member_roles_role ON member_roles (role, granted_at);
