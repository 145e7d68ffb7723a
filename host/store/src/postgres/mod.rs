//! The PostgreSQL store: several Tenure hosts on one database. Each aggregate's
//! implementation is a file of its own; this one opens the pool, runs the migrations
//! and holds what several of them share. Every write is one transaction
//! ([`write::PgWrite`]); hosts coordinate through the database only: row locks,
//! `FOR UPDATE SKIP LOCKED` claims, unique constraints and advisory locks.

mod access;
mod audit_log;
mod copy;
mod deliveries;
mod events;
mod guards;
mod health;
mod holds;
mod jobs;
mod kpis;
mod kv;
mod leases;
mod names;
mod notifications;
mod operations;
#[cfg(test)]
mod plans;
mod plugins;
mod retention;
mod row;
mod rule_sets;
mod schedule;
mod seal;
mod secrets;
mod write;

use crate::crypto::MasterKey;
use crate::*;
pub use copy::CopyReport;
use row::RowExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use write::PgWrite;

/// How the PostgreSQL store connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database` (with `sslmode=...` when TLS is wanted).
    pub url: String,
    /// Connections this host keeps open at most.
    pub max_connections: u32,
    /// A schema of its own (created when missing) instead of the user's default search path.
    pub schema: Option<String>,
}

impl PgOptions {
    /// The options for `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            max_connections: 16,
            schema: None,
        }
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
    audit_key: [u8; 32],
    master: MasterKey,
    /// The changes other hosts announced (see [`ChangeFeed`]).
    changes: tokio::sync::broadcast::Sender<Change>,
    /// The channel they are announced on.
    channel: String,
    /// The task that listens for them; stopped with the store.
    listener: tokio::task::AbortHandle,
    /// The task that chains audit entries; stopped with the store.
    sealer: tokio::task::AbortHandle,
    me: Weak<PgStore>,
}

/// The channel writes `NOTIFY` their changes on: one per deployment (a schema of its own
/// gets a channel of its own, since channels are shared by the whole database).
fn changes_channel(schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("tenure_changes_{schema}"),
        None => "tenure_changes".into(),
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.sealer.abort();
    }
}

impl ChangeFeed for PgStore {
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

/// Listens for the changes every host announces and hands them to this host's receivers.
/// After a lost connection it reconnects and announces a resync (what was sent meanwhile
/// is lost), retrying once a second while the database cannot be reached.
async fn listen(pool: PgPool, channel: String, changes: tokio::sync::broadcast::Sender<Change>) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other hosts' changes; polling meanwhile");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "cannot listen for other hosts' changes; polling meanwhile");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        let _ = changes.send(Change::Resync);
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let _ = changes.send(Change::parse(n.payload()));
                }
                // The connection was lost: the next call reconnects.
                Ok(None) => {
                    let _ = changes.send(Change::Resync);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the change feed; reconnecting");
                    let _ = changes.send(Change::Resync);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// The schema's migrations, applied in order under the migrator's advisory lock (so hosts
/// starting together apply each once).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../migrations/postgres/0001_schema.sql"),
    ),
    (
        2,
        "audit pending",
        include_str!("../../migrations/postgres/0002_audit_pending.sql"),
    ),
    (
        3,
        "kv apply",
        include_str!("../../migrations/postgres/0003_kv_apply.sql"),
    ),
];

impl PgStore {
    /// Connects, applies the migrations not yet applied and returns the store.
    pub async fn open(options: &PgOptions, master: MasterKey) -> StoreResult<Arc<PgStore>> {
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Database(format!("store.url: {e}")))?
            .application_name("tenure");
        if let Some(schema) = &options.schema {
            if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StoreError::Database(format!(
                    "store schema {schema:?}: use letters, digits and underscores only"
                )));
            }
            let mut first = <PgConnection as sqlx::Connection>::connect_with(&connect).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut first)
            .await?;
            sqlx::Connection::close(first).await?;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // The migrations' "already exists, skipping" notices are not news.
        connect = connect.options([("client_min_messages", "warning")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_with(connect)
            .await?;
        migrator()
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(format!("migration: {e}")))?;
        check_master_key(&pool, &master).await?;
        let audit_key = master.derive("tenure audit chain v1");
        let (changes, _) = tokio::sync::broadcast::channel(CHANGE_BACKLOG);
        let channel = changes_channel(options.schema.as_deref());
        let listener = tokio::spawn(listen(pool.clone(), channel.clone(), changes.clone())).abort_handle();
        let sealer = tokio::spawn(seal::run(pool.clone(), audit_key)).abort_handle();
        Ok(Arc::new_cyclic(|me| PgStore {
            pool,
            audit_key,
            master,
            changes,
            channel,
            listener,
            sealer,
            me: me.clone(),
        }))
    }

    /// Starts a write: one transaction, its audit entries stored with it (chained after).
    pub(crate) async fn begin(&self) -> StoreResult<PgWrite> {
        PgWrite::begin(&self.pool, &self.channel).await
    }

    /// Chains every audit entry committed so far (before the chain is read).
    pub(crate) async fn seal(&self) -> StoreResult<u64> {
        seal::seal(&self.pool, &self.audit_key).await
    }

    /// The pool, for reads.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.listener.abort();
        self.sealer.abort();
        self.pool.close().await;
    }
}

impl StoreKeys for PgStore {
    fn master_key(&self) -> &MasterKey {
        &self.master
    }
}

/// Records the deployment's master key (as an HMAC under it) on first open, and refuses a
/// host whose key differs.
async fn check_master_key(pool: &PgPool, master: &MasterKey) -> StoreResult<()> {
    let check = master.derive("tenure deployment key check v1").to_vec();
    sqlx::query(
        "INSERT INTO deployment (id, key_check, created_ms) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(&check)
    .bind(write::now_ms())
    .execute(pool)
    .await?;
    let recorded: Vec<u8> = sqlx::query_scalar("SELECT key_check FROM deployment WHERE id = 1")
        .fetch_one(pool)
        .await?;
    if recorded != check {
        return Err(StoreError::Crypto(
            "this host's master key is not the one the database was made with: every host of a deployment \
             needs the same key (TENURE_MASTER_KEY)"
                .into(),
        ));
    }
    Ok(())
}

fn migrator() -> sqlx::migrate::Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            sqlx::migrate::Migration::new(
                *version,
                Cow::Borrowed(*description),
                sqlx::migrate::MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    sqlx::migrate::Migrator {
        migrations: Cow::Owned(migrations),
        table_name: Cow::Borrowed("tenure_migrations"),
        ..sqlx::migrate::Migrator::DEFAULT
    }
}

/// An event's columns (table alias `e`).
macro_rules! event_columns {
    () => {
        "e.id, e.tenant, e.source, e.kind, e.person_key, e.source_record_id, e.idempotency_key, e.actor, \
         e.received_ms, e.body"
    };
}
pub(crate) use event_columns;

fn event_row(r: &PgRow, at: usize) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: r.at(at)?,
        tenant: r.at(at + 1)?,
        source: r.at(at + 2)?,
        kind: r.parsed(at + 3)?,
        person_key: r.at(at + 4)?,
        source_record_id: r.at(at + 5)?,
        idempotency_key: r.at(at + 6)?,
        actor: r.at(at + 7)?,
        received_ms: r.at(at + 8)?,
        body: row::stored_json(&r.at::<Vec<u8>>(at + 9)?),
    })
}

async fn load_event(c: &mut PgConnection, id: i64) -> StoreResult<EventRow> {
    let r = sqlx::query(concat!(
        "SELECT ",
        event_columns!(),
        " FROM events e WHERE e.id = $1"
    ))
    .bind(id)
    .fetch_one(c)
    .await?;
    event_row(&r, 0)
}

/// Refuses a write of an attempt that no longer holds its job's lease, and locks the job's
/// row until the write commits (so no other host can claim it meanwhile).
async fn check_lease(c: &mut PgConnection, lease: &JobLease) -> StoreResult<()> {
    let held = sqlx::query(
        "SELECT 1 FROM jobs WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND state = 'running' \
         FOR UPDATE",
    )
    .bind(lease.job_id)
    .bind(&lease.owner)
    .bind(i64::from(lease.attempt))
    .fetch_optional(c)
    .await?
    .is_some();
    if held {
        Ok(())
    } else {
        Err(StoreError::Fenced(format!(
            "attempt {} of job {} no longer holds its lease",
            lease.attempt, lease.job_id
        )))
    }
}

/// Serialises writes about one thing across hosts until the transaction ends (a guard's
/// window, a plugin's key-value key, a tenant's rule-set numbering).
async fn lock_for(c: &mut PgConnection, purpose: LockPurpose, key: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(purpose as i32)
        .bind(key)
        .execute(c)
        .await?;
    Ok(())
}

/// The first key of a transaction-scoped advisory lock: what is locked. (2, a plugin's
/// key-value key, and 5, the exact quota check of a key-value namespace, are taken in the
/// `tenure_kv_apply` function.)
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
enum LockPurpose {
    Guard = 1,
    RuleSetVersions = 3,
    Identity = 4,
}

/// A count or attempt number read back (stored as BIGINT).
fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}
