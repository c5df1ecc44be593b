-- Withdrawing a record (made private, deleted, its member disabled, a contact no longer
-- shared) must reach every stored outbox bundle that holds it, or a peer added later
-- would still receive it (issue 14). The trigger queues the record's bundle path in the
-- same transaction as the withdrawal, whoever made it (page, CLI, copilot, SQL);
-- node.sync.outbox_scrub withholds the file from every stored bundle (in the withdrawing
-- transaction for the pages, and before any outbox read); tombstones are never withheld.
CREATE TABLE sync_outbox_withdrawn (
    path            text PRIMARY KEY,
    queued_at       timestamptz NOT NULL DEFAULT now(),
    -- every stored bundle up to this sequence is known to be free of the record; a row
    -- stays while the record is withdrawn, so a bundle an export wrote concurrently from
    -- a stale read is scrubbed too. It goes when the record becomes public again.
    scrubbed_through bigint NOT NULL DEFAULT 0
);

-- The record paths each stored bundle was signed with (NULL: not indexed yet; filled on
-- demand). A withheld file stays listed, as it does in the manifest.
ALTER TABLE sync_outbox ADD COLUMN paths text[];
CREATE INDEX sync_outbox_paths ON sync_outbox USING gin (paths);

CREATE FUNCTION wb_outbox_withdraw() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_live boolean;
    is_live boolean := false;
BEGIN
    IF OLD.origin IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        was_live := OLD.sync_scope = 'public' AND OLD.deleted_at IS NULL AND NOT OLD.disabled;
        IF TG_OP = 'UPDATE' THEN
            is_live := NEW.sync_scope = 'public' AND NEW.deleted_at IS NULL AND NOT NEW.disabled
                       AND NOT (OLD.share_contact AND NOT NEW.share_contact)
                       AND NOT (OLD.share_contact AND NEW.contact_email IS DISTINCT FROM
                                OLD.contact_email);
        END IF;
        IF was_live AND NOT is_live THEN
            INSERT INTO sync_outbox_withdrawn (path) VALUES ('users/' || OLD.id || '.sync.txt')
                ON CONFLICT (path) DO UPDATE SET scrubbed_through = 0;
        ELSIF is_live AND NOT was_live THEN
            DELETE FROM sync_outbox_withdrawn WHERE path = 'users/' || OLD.id || '.sync.txt';
        END IF;
    ELSIF TG_TABLE_NAME = 'requests' THEN
        -- a pending request never left (a discarded one needs no queue row)
        was_live := OLD.sync_scope = 'public' AND OLD.deleted_at IS NULL
                    AND OLD.status <> 'pending';
        IF TG_OP = 'UPDATE' THEN
            is_live := NEW.sync_scope = 'public' AND NEW.deleted_at IS NULL
                       AND NEW.status <> 'pending';
        END IF;
        IF was_live AND NOT is_live THEN
            INSERT INTO sync_outbox_withdrawn (path)
                SELECT 'requests/' || OLD.id || '.sync.txt'
                UNION SELECT 'comments/' || c.id || '.sync.txt' FROM comments c
                       WHERE c.request_id = OLD.id AND c.origin IS NULL
                ON CONFLICT (path) DO UPDATE SET scrubbed_through = 0;
        ELSIF is_live AND NOT was_live THEN
            DELETE FROM sync_outbox_withdrawn
             WHERE path = 'requests/' || OLD.id || '.sync.txt'
                OR path IN (SELECT 'comments/' || c.id || '.sync.txt' FROM comments c
                             WHERE c.request_id = OLD.id AND c.origin IS NULL
                               AND c.sync_scope = 'public' AND c.deleted_at IS NULL);
        END IF;
    ELSIF TG_TABLE_NAME = 'comments' THEN
        was_live := OLD.sync_scope = 'public' AND OLD.deleted_at IS NULL;
        IF TG_OP = 'UPDATE' THEN
            is_live := NEW.sync_scope = 'public' AND NEW.deleted_at IS NULL;
        END IF;
        IF was_live AND NOT is_live THEN
            INSERT INTO sync_outbox_withdrawn (path) VALUES ('comments/' || OLD.id || '.sync.txt')
                ON CONFLICT (path) DO UPDATE SET scrubbed_through = 0;
        ELSIF is_live AND NOT was_live THEN
            DELETE FROM sync_outbox_withdrawn WHERE path = 'comments/' || OLD.id || '.sync.txt';
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_outbox_withdraw AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION wb_outbox_withdraw();
CREATE TRIGGER requests_outbox_withdraw AFTER UPDATE OR DELETE ON requests
    FOR EACH ROW EXECUTE FUNCTION wb_outbox_withdraw();
CREATE TRIGGER comments_outbox_withdraw AFTER UPDATE OR DELETE ON comments
    FOR EACH ROW EXECUTE FUNCTION wb_outbox_withdraw();
