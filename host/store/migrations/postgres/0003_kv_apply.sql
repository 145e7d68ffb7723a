-- A namespace's key-value usage counted in several rows (shards), so writes to one
-- namespace from many workers do not all wait on one row until their commits; the quota
-- check sums them (and locks them all only when the namespace nears its quota).
ALTER TABLE kv_usage ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE kv_usage DROP CONSTRAINT kv_usage_pkey;
ALTER TABLE kv_usage ADD PRIMARY KEY (tenant, plugin, shard);

-- A plugin call's key-value writes in one round trip (see `postgres::kv`): the keys locked
-- in the order of their hashes, the values the call read checked, the writes and the
-- namespace's usage changed, and the quota checked, all in the caller's statement (so its
-- transaction). Returns 'done', or 'changed' with the key that no longer holds what the
-- call read. Raises SQLSTATE TNK01 with the totals ("<keys> <bytes>") when the quota
-- refuses the writes, and TNK02 when the quick check found the namespace past half its
-- quota (the caller calls again with p_exact); either rolls the writes back.
--
-- A namespace's usage is counted in p_shards rows, this write changing the one its
-- connection picks, last. The quick way (its shard, then the sum) is taken only for a
-- change of at most 1/(2 * p_shards) of the quota while the namespace stays within half of
-- it: then even one such write in flight on every other shard cannot carry it past the
-- quota. Otherwise every shard of the namespace is locked and the exact sum checked; such
-- checks of one namespace take turns by an advisory lock, so their row locks never wait on
-- each other in a circle.
CREATE FUNCTION tenure_kv_apply(
    p_tenant TEXT, p_plugin TEXT,
    p_expected_keys TEXT[], p_expected_values BYTEA[],
    p_keys TEXT[], p_values BYTEA[],
    p_quota_keys BIGINT, p_quota_bytes BIGINT, p_shards INTEGER, p_exact BOOLEAN
) RETURNS TABLE (outcome TEXT, changed_key TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    i INTEGER;
    now_value BYTEA;
    delta_keys BIGINT;
    delta_bytes BIGINT;
    total_keys BIGINT;
    total_bytes BIGINT;
    quick BOOLEAN;
BEGIN
    PERFORM pg_advisory_xact_lock(2, h)
    FROM (SELECT DISTINCT hashtext(p_tenant || E'\n' || p_plugin || E'\n' || k) AS h
          FROM unnest(p_expected_keys || p_keys) k ORDER BY h) l;
    FOR i IN 1 .. coalesce(array_length(p_expected_keys, 1), 0) LOOP
        SELECT kv.value INTO now_value FROM kv
        WHERE kv.tenant = p_tenant AND kv.plugin = p_plugin AND kv.key = p_expected_keys[i];
        IF now_value IS DISTINCT FROM p_expected_values[i] THEN
            RETURN QUERY SELECT 'changed'::TEXT, p_expected_keys[i];
            RETURN;
        END IF;
    END LOOP;
    -- What the writes change (each key written once; a null value removes it). The old
    -- value of each key is looked up by the whole primary key.
    SELECT coalesce(sum((w.v IS NOT NULL)::INT - (w.old IS NOT NULL)::INT), 0),
           coalesce(sum(CASE WHEN w.v IS NOT NULL THEN octet_length(w.k) + octet_length(w.v) ELSE 0 END
                        - CASE WHEN w.old IS NOT NULL THEN octet_length(w.k) + w.old ELSE 0 END), 0)
    INTO delta_keys, delta_bytes
    FROM (SELECT u.k, u.v, (SELECT octet_length(kv.value) FROM kv
                            WHERE kv.tenant = p_tenant AND kv.plugin = p_plugin AND kv.key = u.k) AS old
          FROM unnest(p_keys, p_values) AS u(k, v)) w;
    quick := NOT p_exact AND delta_keys <= p_quota_keys / (2 * p_shards)
        AND delta_bytes <= p_quota_bytes / (2 * p_shards);
    IF NOT quick THEN
        PERFORM pg_advisory_xact_lock(5, hashtext(p_tenant || E'\n' || p_plugin));
        INSERT INTO kv_usage (tenant, plugin, shard, keys, bytes)
        SELECT p_tenant, p_plugin, s::SMALLINT, 0, 0 FROM generate_series(0, p_shards - 1) s
        ON CONFLICT (tenant, plugin, shard) DO NOTHING;
        SELECT coalesce(sum(l.keys), 0) + delta_keys, coalesce(sum(l.bytes), 0) + delta_bytes
        INTO total_keys, total_bytes
        FROM (SELECT u.keys, u.bytes FROM kv_usage u
              WHERE u.tenant = p_tenant AND u.plugin = p_plugin ORDER BY u.shard FOR UPDATE) l;
    END IF;
    INSERT INTO kv (tenant, plugin, key, value)
    SELECT p_tenant, p_plugin, u.k, u.v FROM unnest(p_keys, p_values) AS u(k, v) WHERE u.v IS NOT NULL
    ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = excluded.value;
    IF array_position(p_values, NULL) IS NOT NULL THEN
        DELETE FROM kv WHERE ctid = ANY(ARRAY(
            SELECT (SELECT kv.ctid FROM kv
                    WHERE kv.tenant = p_tenant AND kv.plugin = p_plugin AND kv.key = u.k)
            FROM unnest(p_keys, p_values) AS u(k, v) WHERE u.v IS NULL));
    END IF;
    INSERT INTO kv_usage (tenant, plugin, shard, keys, bytes)
    VALUES (p_tenant, p_plugin, (pg_backend_pid() % p_shards)::SMALLINT, delta_keys, delta_bytes)
    ON CONFLICT (tenant, plugin, shard) DO UPDATE
        SET keys = kv_usage.keys + excluded.keys, bytes = kv_usage.bytes + excluded.bytes;
    IF quick THEN
        SELECT coalesce(sum(u.keys), 0), coalesce(sum(u.bytes), 0) INTO total_keys, total_bytes
        FROM kv_usage u WHERE u.tenant = p_tenant AND u.plugin = p_plugin;
        IF total_keys > p_quota_keys / 2 OR total_bytes > p_quota_bytes / 2 THEN
            RAISE EXCEPTION USING ERRCODE = 'TNK02', MESSAGE = 'past half its quota: check exactly';
        END IF;
    END IF;
    IF total_keys > p_quota_keys OR total_bytes > p_quota_bytes THEN
        RAISE EXCEPTION USING ERRCODE = 'TNK01', MESSAGE = total_keys || ' ' || total_bytes;
    END IF;
    RETURN QUERY SELECT 'done'::TEXT, NULL::TEXT;
END
$$;
