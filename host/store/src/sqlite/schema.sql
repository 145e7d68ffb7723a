-- Tenure's embedded schema (SQLite, WAL). Times are milliseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    person_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    source_record_id TEXT NOT NULL,
    start_date TEXT,
    -- When the source says the change happened (ms), to recognise events that arrive late.
    occurred_ms INTEGER,
    body TEXT NOT NULL,
    actor TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX IF NOT EXISTS events_record ON events (tenant, source, source_record_id);
-- A person's records newest first (a withdrawal is read with the record before it), and their
-- newest record from each source (every job reads it: a person has few records to group).
CREATE INDEX IF NOT EXISTS events_person_id ON events (tenant, person_key, id);
-- Its work is done by events_person_id: one index fewer written per event.
DROP INDEX IF EXISTS events_person;

CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    person_key TEXT NOT NULL,
    event_id INTEGER NOT NULL REFERENCES events (id),
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ms INTEGER,
    last_error TEXT,
    hold_reason TEXT,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (state, run_at_ms);
CREATE INDEX IF NOT EXISTS jobs_person ON jobs (tenant, person_key, id);
CREATE INDEX IF NOT EXISTS jobs_event ON jobs (event_id);
-- Waiting jobs in arrival order: the claim walks this and stops at its limit.
CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs (id) WHERE state IN ('available', 'retryable');
-- The same per tenant, for a fair share of every claim.
CREATE INDEX IF NOT EXISTS jobs_waiting_tenant ON jobs (tenant, id) WHERE state IN ('available', 'retryable');

CREATE TABLE IF NOT EXISTS operations (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    tenant TEXT NOT NULL,
    destination TEXT NOT NULL,
    op_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT,
    destructive INTEGER NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    anchor TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    UNIQUE (job_id, op_key)
);
CREATE INDEX IF NOT EXISTS operations_window ON operations (tenant, destination, started_ms);

CREATE TABLE IF NOT EXISTS links (
    tenant TEXT NOT NULL,
    destination TEXT NOT NULL,
    person_key TEXT NOT NULL,
    anchor TEXT NOT NULL,
    managed_groups TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, destination, person_key)
);
CREATE INDEX IF NOT EXISTS links_anchor ON links (tenant, destination, anchor);
-- Everyone linked in any destination, in key order (reconciliation's page walk).
CREATE INDEX IF NOT EXISTS links_person ON links (tenant, person_key);

CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    destination TEXT NOT NULL,
    person_key TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    candidates TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conflicts_job ON conflicts (tenant, job_id, destination);

-- Plans a supervised destination holds for a person's approval.
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    destination TEXT NOT NULL,
    person_key TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    operations TEXT NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT,
    decided_ms INTEGER,
    note TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS holds_job ON holds (tenant, job_id, destination);
CREATE INDEX IF NOT EXISTS holds_state ON holds (tenant, state, id);

CREATE TABLE IF NOT EXISTS guards (
    tenant TEXT NOT NULL,
    destination TEXT NOT NULL,
    tripped INTEGER NOT NULL,
    budget INTEGER NOT NULL,
    reason TEXT,
    tripped_ms INTEGER,
    PRIMARY KEY (tenant, destination)
);

CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    person_key TEXT,
    destination TEXT,
    event_id INTEGER,
    job_id INTEGER,
    -- JSON text, or a format byte and the JSON compressed (see `audit_codec`).
    data BLOB NOT NULL,
    -- HMAC over the previous entry's hash and this entry (32 bytes; hex text in older rows).
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_person ON audit (tenant, person_key, seq);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE IF NOT EXISTS kv (
    tenant TEXT NOT NULL,
    plugin TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (tenant, plugin, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv_usage (
    tenant TEXT NOT NULL,
    plugin TEXT NOT NULL,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (tenant, plugin)
);

CREATE TABLE IF NOT EXISTS cursors (
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    cursor TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, source)
);

CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- People admitted past a destination's mass-change guard (one row per job).
CREATE TABLE IF NOT EXISTS guard_admissions (
    tenant TEXT NOT NULL,
    destination TEXT NOT NULL,
    job_id INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, destination, job_id)
);
CREATE INDEX IF NOT EXISTS guard_admissions_window ON guard_admissions (tenant, destination, at_ms);

-- Rule-set versions (drafts until published), with author, change log and test results.
CREATE TABLE IF NOT EXISTS rule_set_versions (
    tenant TEXT NOT NULL,
    version INTEGER NOT NULL,
    document TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    tests_passed INTEGER NOT NULL,
    tests TEXT NOT NULL,
    PRIMARY KEY (tenant, version)
);
-- The version each tenant runs now.
CREATE TABLE IF NOT EXISTS rule_set_current (
    tenant TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    published_ms INTEGER NOT NULL
);

-- Unique names taken per tenant and attribute, so that two people never get the
-- same value, even while neither account exists yet.
CREATE TABLE IF NOT EXISTS name_claims (
    tenant TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value_key TEXT NOT NULL,
    value TEXT NOT NULL,
    person_key TEXT NOT NULL,
    claimed_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, attribute, value_key)
);
CREATE INDEX IF NOT EXISTS name_claims_person ON name_claims (tenant, attribute, person_key);

-- Webhook delivery tokens seen (replay protection), kept as long as a delivery could still be fresh.
CREATE TABLE IF NOT EXISTS webhook_tokens (
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    token TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, source, token)
);
DROP INDEX IF EXISTS webhook_tokens_seen;
CREATE INDEX IF NOT EXISTS webhook_tokens_source_seen ON webhook_tokens (tenant, source, seen_ms);

-- Keys that identify one person across sources (email, an HR id, ...) -> the person's key.
CREATE TABLE IF NOT EXISTS identities (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    person_key TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;

-- Dated actions the host runs later, such as deleting a leaver's account after the grace
-- period. One pending or queued action per person, destination and kind.
CREATE TABLE IF NOT EXISTS scheduled_actions (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    person_key TEXT NOT NULL,
    destination TEXT NOT NULL,
    action TEXT NOT NULL,
    due_ms INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'done', 'cancelled')),
    reason TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    note TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS scheduled_actions_open
    ON scheduled_actions (tenant, person_key, destination, action) WHERE state IN ('pending', 'queued');
CREATE INDEX IF NOT EXISTS scheduled_actions_due ON scheduled_actions (due_ms) WHERE state = 'pending';

-- Each person's lifecycle facts (start date, last day, leave, contract end) and
-- the state last applied; the manager column finds a manager's reports.
CREATE TABLE IF NOT EXISTS lifecycles (
    tenant TEXT NOT NULL,
    person_key TEXT NOT NULL,
    state TEXT NOT NULL,
    manager_key TEXT,
    doc TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    -- Who the person is, for finding them by name or email (the newest record's).
    name TEXT,
    email TEXT,
    PRIMARY KEY (tenant, person_key)
);
-- A manager's reports (looked up when the manager's account is made). A full index: SQLite's
-- planner passed over the earlier partial one for the primary key's tenant prefix.
DROP INDEX IF EXISTS lifecycles_manager;
CREATE INDEX IF NOT EXISTS lifecycles_by_manager ON lifecycles (tenant, manager_key, person_key);

-- Reports a job produced (reconciliation runs, access reviews), as JSON.
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_tenant ON reports (tenant, kind, id);

-- Verified webhook deliveries, stored raw before they are acknowledged, and enriched
-- into events by the source's plugin afterwards (with retries and a dead state).
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    token TEXT NOT NULL,
    digest TEXT NOT NULL,
    event TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'rejected', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ms INTEGER,
    last_error TEXT,
    events INTEGER NOT NULL DEFAULT 0,
    received_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    UNIQUE (tenant, source, digest)
);
CREATE INDEX IF NOT EXISTS deliveries_token ON deliveries (tenant, source, token);
CREATE INDEX IF NOT EXISTS deliveries_ready ON deliveries (run_at_ms) WHERE state IN ('pending', 'running');
CREATE INDEX IF NOT EXISTS deliveries_list ON deliveries (tenant, source, id);

-- Notifications waiting to be sent on a tenant's channel, once per de-duplication key.
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    channel TEXT NOT NULL,
    event TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    person_key TEXT,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ms INTEGER,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    sent_ms INTEGER,
    UNIQUE (tenant, dedupe_key)
);
CREATE INDEX IF NOT EXISTS notifications_ready ON notifications (run_at_ms) WHERE state IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS notifications_list ON notifications (tenant, id);
CREATE INDEX IF NOT EXISTS notifications_sent ON notifications (sent_ms) WHERE state = 'sent';

-- The plugin registry: components by name, owner ('' = offered to every tenant) and digest.
CREATE TABLE IF NOT EXISTS plugin_versions (
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    label TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('rules', 'connector', 'source')),
    wit TEXT NOT NULL,
    manifest TEXT NOT NULL,
    component BLOB NOT NULL,
    signer TEXT,
    uploaded_by TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    PRIMARY KEY (name, owner, sha256)
);
-- Each tenant's choices of a version, newest last.
CREATE TABLE IF NOT EXISTS plugin_activations (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    activated_by TEXT NOT NULL,
    activated_ms INTEGER NOT NULL,
    reason TEXT
);

-- People's accounts (argon2id hashes, made by the API) and their lockout state.
CREATE TABLE IF NOT EXISTS users (
    tenant TEXT NOT NULL,
    login TEXT NOT NULL,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER,
    created_ms INTEGER NOT NULL,
    last_sign_in_ms INTEGER,
    PRIMARY KEY (tenant, login)
);
-- Server-side sessions by the SHA-256 of their id; the CSRF token's digest beside it.
CREATE TABLE IF NOT EXISTS sessions (
    digest BLOB PRIMARY KEY,
    tenant TEXT NOT NULL,
    login TEXT NOT NULL,
    csrf_digest BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (tenant, login);
-- API tokens made at run time, kept as SHA-256 digests (the token is shown once).
CREATE TABLE IF NOT EXISTS api_tokens (
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    sources TEXT NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Leases on work one host does alone (a source's polls), by name.
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until_ms INTEGER NOT NULL
);
