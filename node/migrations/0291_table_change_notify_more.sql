-- Issue 24 with #20 and #23: the session cache (node/caches.py "viewer") also holds the
-- member's roles, the SYNC_PUBLIC_SCOPE mode in force and the unread-message count, so
-- writes to their tables must make it stale from any process, like 0290's tables.
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON member_roles
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON node_public_scope
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
CREATE TRIGGER wb_table_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION wb_table_changed();
