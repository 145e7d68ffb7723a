-- Audit entries are written with their change, in the same transaction, but chained in
-- batches afterwards (see `postgres::seal`): a write no longer waits for the one head row
-- that every host's writes share, and one lock of it chains hundreds of entries.
CREATE TABLE audit_pending (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    tenant TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    person_key TEXT COLLATE "C",
    destination TEXT COLLATE "C",
    event_id BIGINT,
    job_id BIGINT,
    -- The redacted details as JSON text: what the entry's hash will cover.
    data TEXT NOT NULL
);
