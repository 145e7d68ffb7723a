//! The embedded store: one SQLite file in WAL mode, a writer thread that
//! group-commits, and a small pool of reader connections. Each aggregate's
//! implementation is a file of its own; this one opens the database and holds
//! what several of them share.

mod access;
mod audit_log;
mod deliveries;
mod durability;
mod events;
mod guards;
mod head;
mod health;
mod holds;
mod jobs;
mod kpis;
mod kv;
mod leases;
mod names;
mod notifications;
mod operations;
mod plugins;
mod retention;
mod rule_sets;
mod schedule;
mod secrets;
mod writer;

use crate::crypto::MasterKey;
use crate::*;
pub use durability::Durability;
use durability::Syncer;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use writer::Writer;

/// How the embedded store opens its file.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// What an acknowledged write survives.
    pub durability: Durability,
    /// Open even when the audit head file disagrees with the database (the recovery:
    /// `tenure audit accept-head`, which records the mismatch and re-records the head).
    pub accept_audit_head: bool,
}

/// The embedded SQLite store.
pub struct SqliteStore {
    writer: Writer,
    /// The last batch the syncer made durable.
    durable: durability::DurableBatch,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    head_file: PathBuf,
    audit_key: [u8; 32],
    master: MasterKey,
    /// How the head file disagreed with the database at open, when told to go on.
    head_mismatch: Option<String>,
    /// Stays silent: one host makes every change and wakes its own workers.
    changes: tokio::sync::broadcast::Sender<Change>,
    me: Weak<SqliteStore>,
}

const SCHEMA: &str = include_str!("schema.sql");

impl SqliteStore {
    /// Opens (creating if needed) the database and starts its writer.
    pub fn open(options: &SqliteOptions, master: MasterKey) -> StoreResult<Arc<SqliteStore>> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        }
        let conn = Connection::open(&options.path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The WAL is fsynced off the writer thread when power loss must be survived
        // (see `durability`); SQLite itself syncs it before each checkpoint.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Each write runs in a savepoint: keep its sub-journal in memory (a temporary
        // file took a write system call per page changed).
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoint every few megabytes of WAL, and cut the file back to a bounded
        // size when SQLite restarts it.
        conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
        conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // The writer runs a few dozen distinct statements; keep them all prepared.
        conn.set_prepared_statement_cache_capacity(256);
        conn.execute_batch(SCHEMA)?;
        migrate_audit_to_compact(&conn)?;
        add_people_search_columns(&conn)?;
        let audit_key = master.derive("tenure audit chain v1");
        let head_file = head_file_for(&options.path);
        let database_head = writer::read_head(&conn)?;
        let head_mismatch = head::check(&head_file, &audit_key, &database_head, options.accept_audit_head)?;
        let recorder = head::HeadRecorder::new(head_file.clone(), audit_key);
        let (syncer, durable) = Syncer::start(&options.path, options.durability, recorder)?;
        let writer = Writer::start(conn, audit_key, syncer)?;
        Ok(Arc::new_cyclic(|me| SqliteStore {
            writer,
            durable,
            readers: Mutex::new(Vec::new()),
            path: options.path.clone(),
            head_file,
            audit_key,
            master,
            head_mismatch,
            changes: tokio::sync::broadcast::channel(1).0,
            me: me.clone(),
        }))
    }

    /// Records the database's audit head in the head file again after a mismatch the store
    /// was opened to accept, and audits that (the mismatch, `reason` and `actor`). Returns
    /// the mismatch, or None when there was none.
    pub async fn accept_audit_head(&self, reason: &str, actor: &str) -> StoreResult<Option<String>> {
        let Some(mismatch) = self.head_mismatch.clone() else {
            return Ok(None);
        };
        let database_head = self.read(writer::read_head)?;
        head::force_write(&self.head_file, &self.audit_key, &database_head);
        let record = AuditRecord::new("*", AuditKind::AuditHeadAccepted, actor).data(serde_json::json!({
            "mismatch": mismatch,
            "reason": reason,
            "head_seq": database_head.seq,
        }));
        self.writer.write(move |ctx| ctx.audit(record)).await?;
        Ok(Some(mismatch))
    }

    /// Waits until every write answered at commit so far is durable (see
    /// [`Writer::write_visible`]).
    pub(crate) async fn settle_early_answers(&self) -> StoreResult<()> {
        let target = self.writer.early_answers_durable();
        if *self.durable.borrow() >= target {
            return Ok(());
        }
        let mut durable = self.durable.clone();
        durable
            .wait_for(|n| *n >= target)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Closed)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on a pooled reader connection.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.set_prepared_statement_cache_capacity(128);
                c
            }
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < 8 {
            pool.push(conn);
        }
        result
    }

    /// Runs a long read (export, verify) off the async threads.
    async fn read_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let me = self.me.upgrade().ok_or(StoreError::Closed)?;
        tokio::task::spawn_blocking(move || me.read(f))
            .await
            .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

impl ChangeFeed for SqliteStore {
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

impl StoreKeys for SqliteStore {
    fn master_key(&self) -> &MasterKey {
        &self.master
    }
}

/// Drops the stored previous-hash column of an audit table made before the compact encoding
/// (each entry's previous hash is the hash of the entry before it). The rows keep their details
/// and hashes as text, which reads back as before.
fn migrate_audit_to_compact(conn: &Connection) -> StoreResult<()> {
    let has_previous = |conn: &Connection| -> StoreResult<bool> {
        Ok(conn
            .prepare("SELECT 1 FROM pragma_table_info('audit') WHERE name = 'prev_hash'")?
            .exists([])?)
    };
    if !has_previous(conn)? {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        if has_previous(conn)? {
            conn.execute_batch("ALTER TABLE audit DROP COLUMN prev_hash")?;
            tracing::info!("audit table migrated to the compact encoding");
        }
        Ok(())
    })();
    conn.execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
    result
}

/// Adds the name and email columns (people search) to a lifecycle table made before them; the
/// next job of each person fills them.
fn add_people_search_columns(conn: &Connection) -> StoreResult<()> {
    let has_name = conn
        .prepare("SELECT 1 FROM pragma_table_info('lifecycles') WHERE name = 'name'")?
        .exists([])?;
    if !has_name {
        conn.execute_batch(
            "BEGIN IMMEDIATE; ALTER TABLE lifecycles ADD COLUMN name TEXT; \
             ALTER TABLE lifecycles ADD COLUMN email TEXT; COMMIT;",
        )?;
        tracing::info!("lifecycle table migrated: people can be found by name and email");
    }
    Ok(())
}

impl rusqlite::ToSql for crate::compact_json::Compact {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use crate::compact_json::Compact;
        Ok(match self {
            Compact::Text(text) => rusqlite::types::ToSqlOutput::from(text.as_str()),
            Compact::Compressed(bytes) => rusqlite::types::ToSqlOutput::from(bytes.as_slice()),
        })
    }
}

/// A stored JSON document (audit details, an event body) as text, whichever form it was
/// stored in; one that cannot be read back becomes a note saying why (which then fails the audit
/// chain's check, or the event's decoding, by name).
pub(crate) fn stored_json(value: rusqlite::types::ValueRef<'_>) -> String {
    match value {
        rusqlite::types::ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
        rusqlite::types::ValueRef::Blob(bytes) => {
            crate::compact_json::decompress(bytes).unwrap_or_else(|e| format!("<unreadable: {e}>"))
        }
        _ => String::new(),
    }
}

fn head_file_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".audit-head");
    path.with_file_name(name)
}

/// States and kinds are text columns, each in its enum's one spelling; an unknown
/// spelling read back is an error naming it.
macro_rules! text_columns {
    ($($t:ty => $text:ident),* $(,)?) => {
        $(
            impl rusqlite::ToSql for $t {
                fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                    Ok(rusqlite::types::ToSqlOutput::from(self.$text()))
                }
            }

            impl rusqlite::types::FromSql for $t {
                fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                    v.as_str()?.parse().map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
                }
            }
        )*
    };
}

text_columns!(
    JobState => as_str,
    DeliveryState => as_str,
    NotificationState => as_str,
    StoredPluginKind => as_str,
    OperationKind => as_str,
    OperationStatus => as_str,
    ConflictKind => as_str,
    HoldState => as_str,
    ActionState => as_str,
    LifecycleState => as_str,
    ReportKind => as_str,
    AuditKind => as_str,
    RecordKind => to_column,
    ActionKind => to_column,
);

const EVENT_COLUMNS: &str = "e.id, e.tenant, e.source, e.kind, e.person_key, e.source_record_id, \
    e.idempotency_key, e.actor, e.received_ms, e.body";

fn event_row(r: &Row<'_>, at: usize) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(at)?,
        tenant: r.get(at + 1)?,
        source: r.get(at + 2)?,
        kind: r.get(at + 3)?,
        person_key: r.get(at + 4)?,
        source_record_id: r.get(at + 5)?,
        idempotency_key: r.get(at + 6)?,
        actor: r.get(at + 7)?,
        received_ms: r.get(at + 8)?,
        body: stored_json(r.get_ref(at + 9)?),
    })
}

fn load_event(c: &Connection, id: i64) -> StoreResult<EventRow> {
    Ok(
        c.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?1"))?
            .query_row([id], |r| event_row(r, 0))?,
    )
}

/// Refuses a write of an attempt that no longer holds its job's lease.
fn check_lease(c: &Connection, lease: &JobLease) -> StoreResult<()> {
    let held = c
        .prepare_cached(
            "SELECT 1 FROM jobs WHERE id = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = 'running'",
        )?
        .query_row(params![lease.job_id, lease.owner, lease.attempt], |_| Ok(()))
        .optional()?
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

#[cfg(test)]
mod tests;
