-- Issue 24: the node's in-process caches (service/tablecache.py) hold an answer until a
-- table it was read from changes. Every write to these tables, from any process (the web
-- app, a CLI command, a job, a sync import), sends NOTIFY wb_table_changed '<table>' in
-- its own transaction; PostgreSQL delivers it at commit and folds duplicates.

CREATE FUNCTION wb_table_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wb_table_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON member_skins
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON auth_requests
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON requests
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON comments
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON request_pins
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON community_tags
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON request_tags
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();

-- Sessions: every change but the once-a-minute last-seen touch of a page view (which
-- would otherwise make every cached viewer stale each time any member loads a page).
CREATE TRIGGER wb_table_changed AFTER INSERT OR DELETE OR TRUNCATE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed_update AFTER UPDATE ON sessions
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_seen_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_seen_at'))
    EXECUTE FUNCTION wb_table_changed();
