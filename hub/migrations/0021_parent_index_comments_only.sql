-- Only comments have a parent_ref: the parent index kept one entry per record (NULL for
-- every request), so each ingested request paid an index insertion nobody reads. The
-- comment lookup (hub.queries_public.comments_for) says parent_ref IS NOT NULL itself, so
-- the planner matches this index with any parameter.
DROP INDEX hub_records_parent;
CREATE INDEX hub_records_parent ON hub_records (parent_ref)
    WHERE NOT deleted AND parent_ref IS NOT NULL;
