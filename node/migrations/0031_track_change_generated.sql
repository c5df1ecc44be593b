-- In a BEFORE UPDATE trigger the generated column requests.search is still NULL in
-- NEW, so wb_track_change saw every UPDATE of a request (even one touching only the
-- sync bookkeeping columns) as a change and bumped its revision and change_seq. The
-- sync engine's own "published" marking then made every request dirty again. Ignore
-- generated columns: they are derived from columns that are compared anyway.
CREATE OR REPLACE FUNCTION wb_track_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ignored text[] := ARRAY['revision', 'change_seq', 'updated_at', 'published',
                            'published_revision', 'search'];
BEGIN
    IF NEW.origin IS NOT NULL THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.change_seq := nextval('node_change_seq');
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN
        NEW.revision := OLD.revision + 1;
        NEW.change_seq := nextval('node_change_seq');
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;
