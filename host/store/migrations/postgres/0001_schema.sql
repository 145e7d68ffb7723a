-- Tenure's schema on PostgreSQL (several hosts, one database). The same tables as the
-- embedded SQLite schema (host/store/src/sqlite/schema.sql), kept side by side with it.
-- Times are milliseconds since the Unix epoch. Keys compare byte by byte (COLLATE "C"), as
-- in SQLite, whatever the database's locale, so pages and orders agree on both backends.

CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    idempotency_key TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    source_record_id TEXT COLLATE "C" NOT NULL,
    start_date TEXT,
    occurred_ms BIGINT,
    -- JSON text, or a format byte and the JSON compressed (see `compact_json`).
    body BYTEA NOT NULL,
    actor TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX events_record ON events (tenant, source, source_record_id);
CREATE INDEX events_person_id ON events (tenant, person_key, id);
CREATE INDEX events_received ON events (tenant, received_ms);

CREATE TABLE jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    event_id BIGINT NOT NULL REFERENCES events (id),
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    last_error TEXT,
    hold_reason TEXT,
    created_ms BIGINT NOT NULL,
    finished_ms BIGINT
);
CREATE INDEX jobs_person ON jobs (tenant, person_key, id);
CREATE INDEX jobs_event ON jobs (event_id);
CREATE INDEX jobs_waiting ON jobs (id) WHERE state IN ('available', 'retryable');
CREATE INDEX jobs_waiting_tenant ON jobs (tenant, id) WHERE state IN ('available', 'retryable');
CREATE INDEX jobs_running ON jobs (lease_until_ms) WHERE state = 'running';
CREATE INDEX jobs_state ON jobs (tenant, state, id);

CREATE TABLE operations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id BIGINT NOT NULL REFERENCES jobs (id),
    tenant TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    op_key TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    destructive BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    anchor TEXT,
    failures BIGINT NOT NULL DEFAULT 0,
    started_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    UNIQUE (job_id, op_key)
);
CREATE INDEX operations_window ON operations (tenant, destination, started_ms);
CREATE INDEX operations_started ON operations (tenant, started_ms);

CREATE TABLE links (
    tenant TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    anchor TEXT COLLATE "C" NOT NULL,
    managed_groups TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, destination, person_key)
);
CREATE INDEX links_anchor ON links (tenant, destination, anchor);
CREATE INDEX links_person ON links (tenant, person_key);

CREATE TABLE conflicts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    job_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    candidates TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX conflicts_job ON conflicts (tenant, job_id, destination);

CREATE TABLE holds (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    job_id BIGINT NOT NULL,
    operations TEXT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_ms BIGINT,
    note TEXT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX holds_job ON holds (tenant, job_id, destination);
CREATE INDEX holds_state ON holds (tenant, state, id);

CREATE TABLE guards (
    tenant TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    tripped BOOLEAN NOT NULL,
    budget BIGINT NOT NULL,
    reason TEXT,
    tripped_ms BIGINT,
    PRIMARY KEY (tenant, destination)
);

-- The hash-chained audit log. One chain for the deployment: entries are appended under the
-- lock of `audit_head`'s row, so concurrent hosts keep one verifiable order.
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    tenant TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    person_key TEXT COLLATE "C",
    destination TEXT COLLATE "C",
    event_id BIGINT,
    job_id BIGINT,
    -- JSON text, or a format byte and the JSON compressed (see `compact_json`).
    data BYTEA NOT NULL,
    -- HMAC over the previous entry's hash and this entry (32 bytes).
    hash BYTEA NOT NULL
);
CREATE INDEX audit_person ON audit (tenant, person_key, seq);
CREATE INDEX audit_time ON audit (ts_ms);
CREATE FUNCTION tenure_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION tenure_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION tenure_audit_append_only();
-- The chain's head: its one row is locked by every append.
CREATE TABLE audit_head (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE kv (
    tenant TEXT COLLATE "C" NOT NULL,
    plugin TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (tenant, plugin, key)
);
CREATE TABLE kv_usage (
    tenant TEXT COLLATE "C" NOT NULL,
    plugin TEXT COLLATE "C" NOT NULL,
    keys BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (tenant, plugin)
);

CREATE TABLE cursors (
    tenant TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    cursor TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, source)
);

CREATE TABLE secrets (
    name TEXT COLLATE "C" PRIMARY KEY,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    updated_ms BIGINT NOT NULL
);

CREATE TABLE guard_admissions (
    tenant TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    job_id BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, destination, job_id)
);
CREATE INDEX guard_admissions_window ON guard_admissions (tenant, destination, at_ms);

CREATE TABLE rule_set_versions (
    tenant TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    tests_passed BOOLEAN NOT NULL,
    tests TEXT NOT NULL,
    PRIMARY KEY (tenant, version)
);
CREATE TABLE rule_set_current (
    tenant TEXT COLLATE "C" PRIMARY KEY,
    version BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    published_ms BIGINT NOT NULL
);

CREATE TABLE name_claims (
    tenant TEXT COLLATE "C" NOT NULL,
    attribute TEXT COLLATE "C" NOT NULL,
    value_key TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    claimed_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, attribute, value_key)
);
CREATE INDEX name_claims_person ON name_claims (tenant, attribute, person_key);

CREATE TABLE webhook_tokens (
    tenant TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    token TEXT COLLATE "C" NOT NULL,
    seen_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, source, token)
);
CREATE INDEX webhook_tokens_source_seen ON webhook_tokens (tenant, source, seen_ms);

CREATE TABLE identities (
    tenant TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, key)
);

CREATE TABLE scheduled_actions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    due_ms BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'done', 'cancelled')),
    reason TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    note TEXT
);
CREATE UNIQUE INDEX scheduled_actions_open
    ON scheduled_actions (tenant, person_key, destination, action) WHERE state IN ('pending', 'queued');
CREATE INDEX scheduled_actions_due ON scheduled_actions (due_ms) WHERE state = 'pending';
CREATE INDEX scheduled_actions_tenant ON scheduled_actions (tenant, id);

CREATE TABLE lifecycles (
    tenant TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C" NOT NULL,
    state TEXT NOT NULL,
    manager_key TEXT COLLATE "C",
    doc TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    name TEXT,
    email TEXT,
    PRIMARY KEY (tenant, person_key)
);
CREATE INDEX lifecycles_by_manager ON lifecycles (tenant, manager_key, person_key);

CREATE TABLE reports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX reports_tenant ON reports (tenant, kind, id);

CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    token TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    event TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BYTEA NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'rejected', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    last_error TEXT,
    events BIGINT NOT NULL DEFAULT 0,
    received_ms BIGINT NOT NULL,
    finished_ms BIGINT,
    UNIQUE (tenant, source, digest)
);
CREATE INDEX deliveries_token ON deliveries (tenant, source, token);
CREATE INDEX deliveries_ready ON deliveries (run_at_ms) WHERE state IN ('pending', 'running');
CREATE INDEX deliveries_list ON deliveries (tenant, source, id);

CREATE TABLE notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    channel TEXT NOT NULL,
    event TEXT NOT NULL,
    dedupe_key TEXT COLLATE "C" NOT NULL,
    person_key TEXT COLLATE "C",
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at_ms BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_ms BIGINT,
    last_error TEXT,
    created_ms BIGINT NOT NULL,
    sent_ms BIGINT,
    UNIQUE (tenant, dedupe_key)
);
CREATE INDEX notifications_ready ON notifications (run_at_ms) WHERE state IN ('pending', 'sending');
CREATE INDEX notifications_list ON notifications (tenant, id);
CREATE INDEX notifications_sent ON notifications (sent_ms) WHERE state = 'sent';

CREATE TABLE plugin_versions (
    id BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    owner TEXT COLLATE "C" NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('rules', 'connector', 'source')),
    wit TEXT NOT NULL,
    manifest TEXT NOT NULL,
    component BYTEA NOT NULL,
    signer TEXT,
    uploaded_by TEXT NOT NULL,
    uploaded_ms BIGINT NOT NULL,
    PRIMARY KEY (name, owner, sha256)
);
CREATE TABLE plugin_activations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    label TEXT NOT NULL,
    activated_by TEXT NOT NULL,
    activated_ms BIGINT NOT NULL,
    reason TEXT
);

CREATE TABLE users (
    tenant TEXT COLLATE "C" NOT NULL,
    login TEXT COLLATE "C" NOT NULL,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    password_hash TEXT,
    disabled BOOLEAN NOT NULL DEFAULT false,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    created_ms BIGINT NOT NULL,
    last_sign_in_ms BIGINT,
    PRIMARY KEY (tenant, login)
);
CREATE TABLE sessions (
    digest BYTEA PRIMARY KEY,
    tenant TEXT COLLATE "C" NOT NULL,
    login TEXT COLLATE "C" NOT NULL,
    csrf_digest BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (tenant, login);
CREATE INDEX sessions_expiry ON sessions (expires_ms);
CREATE TABLE api_tokens (
    tenant TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    role TEXT NOT NULL,
    sources TEXT NOT NULL,
    digest BYTEA NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Which master key the deployment uses (an HMAC under it, never the key): a host started
-- with another key is refused before it can seal secrets or chain audit entries no other
-- host could open or verify.
CREATE TABLE deployment (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    key_check BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);

-- Leases on work one host does alone (a source's polls), by name.
CREATE TABLE leases (
    name TEXT COLLATE "C" PRIMARY KEY,
    owner TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
