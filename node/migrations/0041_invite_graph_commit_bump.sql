-- Bump the invite graph version at commit time, once per transaction.
--
-- 0040 bumped it from a statement trigger, which takes the counter row's lock in the
-- middle of a transaction: two transactions that each change users rows and then wait on
-- each other's rows could deadlock through it. Deferred constraint triggers run at
-- commit, after every other statement, so the lock is held only while committing.
-- A transaction-local setting makes only the first changed row of a transaction bump.
-- The WHEN clause fires only for columns the map draws or that decide visibility.

DROP TRIGGER users_invite_graph_ins ON users;
DROP TRIGGER users_invite_graph_upd ON users;

CREATE OR REPLACE FUNCTION wb_bump_invite_graph() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('wb.invite_graph_bumped', true) IS DISTINCT FROM 'on' THEN
        PERFORM set_config('wb.invite_graph_bumped', 'on', true);
        UPDATE invite_graph_version SET version = version + 1 WHERE id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER users_invite_graph_ins AFTER INSERT OR DELETE ON users
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION wb_bump_invite_graph();

CREATE CONSTRAINT TRIGGER users_invite_graph_upd AFTER UPDATE ON users
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (
        OLD.invited_by IS DISTINCT FROM NEW.invited_by
        OR OLD.username IS DISTINCT FROM NEW.username
        OR OLD.display_name IS DISTINCT FROM NEW.display_name
        OR OLD.sync_scope IS DISTINCT FROM NEW.sync_scope
        OR OLD.disabled IS DISTINCT FROM NEW.disabled
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
        OR OLD.is_admin IS DISTINCT FROM NEW.is_admin
        OR OLD.origin IS DISTINCT FROM NEW.origin)
    EXECUTE FUNCTION wb_bump_invite_graph();
