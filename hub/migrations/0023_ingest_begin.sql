-- Fewer round trips per push (#24): what a push's transaction asks first, in one call.
-- The origin's and key's standing first: a push from a blocked origin or by a revoked
-- or unknown key stops there, without touching the origin's lock (an untrusted key must
-- not make an origin's pushes wait). Then the origin's advisory lock (exclusive for a
-- bundle carrying tombstones, shared for any other: see hub.queries.store_bundle), and
-- whether the origin has any tombstone. A PL/pgSQL function takes a fresh snapshot for
-- each of its statements: the question asked after the lock sees every tombstone
-- committed by the push that held it (one SELECT calling the lock would answer from a
-- snapshot taken before it waited).
CREATE FUNCTION hub_ingest_begin(p_origin text, p_key_id text, p_exclusive boolean,
                                 OUT blocked boolean, OUT revoked boolean,
                                 OUT trusted boolean, OUT tombstones boolean)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SELECT EXISTS (SELECT 1 FROM hub_blocklist b WHERE b.origin = p_origin),
           EXISTS (SELECT 1 FROM hub_key_revocations r
                    WHERE r.origin = p_origin AND r.key_id = p_key_id),
           EXISTS (SELECT 1 FROM hub_trusted_keys k
                    WHERE k.origin = p_origin AND k.key_id = p_key_id)
      INTO blocked, revoked, trusted;
    IF blocked OR revoked OR NOT trusted THEN
        tombstones := false;
        RETURN;
    END IF;
    IF p_exclusive THEN
        PERFORM pg_advisory_xact_lock(hashtext('wb-hub-origin:' || p_origin));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(hashtext('wb-hub-origin:' || p_origin));
    END IF;
    SELECT EXISTS (SELECT 1 FROM hub_tombstones t WHERE t.origin = p_origin)
      INTO tombstones;
END $$;
