//! The one writer thread: it owns the write connection, runs queued writes in
//! batches (one transaction and one fsync for many callers: group commit),
//! isolates each write in a savepoint, and hands the batch to the syncer
//! ([`super::durability`]), which answers its callers once it is durable.
//!
//! The audit chain's head is read from the database inside each batch's write
//! transaction, never kept between batches: another process (a CLI command
//! next to a running server) may have appended since, and SQLite's write lock
//! orders the two.

use super::durability::{Committed, Syncer};
use crate::audit::{GENESIS, entry_hash_text, redact};
use crate::compact_json::{self, Compact};
use crate::{AuditRecord, StoreError, StoreResult};
use crossbeam_channel as channel;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// Most writes committed together.
const MAX_BATCH: usize = 32;

/// The audit chain's head, kept by the writer.
#[derive(Clone)]
pub(crate) struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// What a write sees: the connection (inside the batch transaction) and the audit chain.
pub(crate) struct WriteCtx<'c> {
    pub conn: &'c Connection,
    head: &'c mut ChainHead,
    key: &'c [u8; 32],
    pub now_ms: i64,
}

/// An audit record redacted and encoded, ready to be chained. Store methods prepare
/// their records on the caller's thread, so the one writer thread only hashes and inserts.
pub(crate) struct PreparedAudit {
    record: AuditRecord,
    /// The details as JSON text (what the hash covers).
    data: String,
    /// The details as stored (compressed when that makes them smaller).
    stored: Compact,
}

impl From<AuditRecord> for PreparedAudit {
    fn from(mut record: AuditRecord) -> Self {
        let data = redact(std::mem::take(&mut record.data)).to_string();
        PreparedAudit::encoded(record, data)
    }
}

impl PreparedAudit {
    /// A record whose details were encoded (and redacted) already.
    pub fn encoded(record: AuditRecord, data: String) -> Self {
        let stored = compact_json::compress(&data);
        PreparedAudit { record, data, stored }
    }
}

/// Prepares records before they go to the writer.
pub(crate) fn prepare(records: Vec<AuditRecord>) -> Vec<PreparedAudit> {
    records.into_iter().map(PreparedAudit::from).collect()
}

impl WriteCtx<'_> {
    /// The chain's head so far in this transaction.
    pub fn chain_head(&self) -> &ChainHead {
        self.head
    }

    /// Appends one audit entry to the chain (redacted, timestamped, hashed).
    pub fn audit(&mut self, record: impl Into<PreparedAudit>) -> StoreResult<()> {
        let PreparedAudit { record, data, stored } = record.into();
        let seq = self.head.seq + 1;
        let hash = entry_hash_text(self.key, &self.head.hash, seq, self.now_ms, &record, &data);
        self.conn
            .prepare_cached(
                "INSERT INTO audit (seq, ts_ms, tenant, kind, actor, person_key, destination, event_id, \
                    job_id, data, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                seq,
                self.now_ms,
                record.tenant,
                record.kind,
                record.actor,
                record.person_key,
                record.destination,
                record.event_id,
                record.job_id,
                stored,
                hash_to_stored(&hash)
            ])?;
        self.head.seq = seq;
        self.head.hash = hash;
        Ok(())
    }

    pub fn audit_all<R: Into<PreparedAudit>>(&mut self, records: Vec<R>) -> StoreResult<()> {
        records.into_iter().try_for_each(|r| self.audit(r))
    }
}

pub(crate) trait WriteOp: Send {
    /// Runs the write; false means it failed and must be rolled back.
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn reply(self: Box<Self>, commit: StoreResult<()>);
    /// Whether the caller is answered at commit, before the batch is durable.
    fn answered_at_commit(&self) -> bool;
    /// Whether this is a liveness probe, answered without a transaction.
    fn is_probe(&self) -> bool {
        false
    }
}

struct Op<R, F> {
    f: Option<F>,
    at_commit: bool,
    result: Option<StoreResult<R>>,
    tx: oneshot::Sender<StoreResult<R>>,
}

impl<R, F> WriteOp for Op<R, F>
where
    R: Send,
    F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<R> + Send,
{
    fn run(&mut self, ctx: &mut WriteCtx<'_>) -> bool {
        let Some(f) = self.f.take() else { return false };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx)))
            .unwrap_or_else(|_| Err(StoreError::Database("a store write panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answered_at_commit(&self) -> bool {
        self.at_commit
    }

    fn reply(self: Box<Self>, commit: StoreResult<()>) {
        let answer = match (commit, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(r)) => r,
            (Ok(()), None) => Err(StoreError::Database("write was not run".into())),
        };
        let _ = self.tx.send(answer);
    }
}

/// A handle for queueing writes. Urgent writes (event intake, whose client waits
/// for the acknowledgement) make up the next batch, ahead of the workers' writes.
#[derive(Clone)]
pub(crate) struct Writer {
    urgent: channel::Sender<Box<dyn WriteOp>>,
    normal: channel::Sender<Box<dyn WriteOp>>,
    progress: Arc<Progress>,
}

/// How far the batches have got: committed, and answered at commit (see
/// [`Writer::write_visible`]). Batches are numbered from 1.
#[derive(Default)]
pub(crate) struct Progress {
    committed: AtomicU64,
    answered_early: AtomicU64,
}

impl Writer {
    /// Starts the writer thread on `conn`, answering through `syncer`.
    pub fn start(conn: Connection, key: [u8; 32], syncer: Syncer) -> StoreResult<Writer> {
        let (urgent, urgent_rx) = channel::unbounded::<Box<dyn WriteOp>>();
        let (normal, normal_rx) = channel::unbounded::<Box<dyn WriteOp>>();
        let progress = Arc::new(Progress::default());
        let batches = progress.clone();
        std::thread::Builder::new()
            .name("tenure-store-writer".into())
            .spawn(move || run(conn, urgent_rx, normal_rx, key, syncer, batches))
            .map_err(|e| StoreError::Io(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            urgent,
            normal,
            progress,
        })
    }

    /// [`Writer::write`], answered as soon as the batch commits: the write is visible
    /// to every later read and write, and durable with the next batch that is answered
    /// after its fsync (the WAL is recovered as a prefix). For writes whose loss in a
    /// power failure would be repaired by the writes that follow them (a plugin's
    /// key-value data, which the host's record of the call follows); anything that
    /// leaves the host on their strength waits for [`Writer::early_answers_durable`].
    pub async fn write_visible<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<R> + Send + 'static,
    {
        Self::send(&self.normal, f, true).await
    }

    /// Resolves when the writer thread reaches this call in its queue: it is alive
    /// and draining. Writes nothing (no transaction, no fsync).
    pub async fn probe(&self) -> StoreResult<()> {
        let (tx, rx) = oneshot::channel();
        self.urgent
            .send(Box::new(Probe(tx)))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    /// How many batches the writer has run (committed or rolled back).
    #[cfg(test)]
    pub fn batches_committed(&self) -> u64 {
        self.progress.committed.load(Ordering::Acquire)
    }

    /// The batch number that every write answered at commit so far is in; durable
    /// once the syncer reports it.
    pub fn early_answers_durable(&self) -> u64 {
        self.progress.answered_early.load(Ordering::Acquire)
    }

    /// [`Writer::write`] ahead of the workers' writes.
    pub async fn write_urgent<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<R> + Send + 'static,
    {
        Self::send(&self.urgent, f, false).await
    }

    /// Runs `f` in the next batch; resolves after the batch commits.
    pub async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<R> + Send + 'static,
    {
        Self::send(&self.normal, f, false).await
    }

    async fn send<R, F>(queue: &channel::Sender<Box<dyn WriteOp>>, f: F, at_commit: bool) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        queue
            .send(Box::new(Op {
                f: Some(f),
                at_commit,
                result: None,
                tx,
            }))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// A liveness probe in the writer's queue.
struct Probe(oneshot::Sender<()>);

impl WriteOp for Probe {
    fn run(&mut self, _ctx: &mut WriteCtx<'_>) -> bool {
        true
    }

    fn reply(self: Box<Self>, _commit: StoreResult<()>) {
        let _ = self.0.send(());
    }

    fn answered_at_commit(&self) -> bool {
        true
    }

    fn is_probe(&self) -> bool {
        true
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A hash (hex) as stored: its 32 bytes.
fn hash_to_stored(hex_hash: &str) -> Vec<u8> {
    hex::decode(hex_hash).unwrap_or_else(|_| hex_hash.as_bytes().to_vec())
}

/// A stored hash in hex (32 bytes, or hex text in rows older than the compact encoding).
pub(crate) fn stored_hash(value: rusqlite::types::ValueRef<'_>) -> String {
    match value {
        rusqlite::types::ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
        rusqlite::types::ValueRef::Blob(bytes) => hex::encode(bytes),
        _ => String::new(),
    }
}

/// The chain's head as the database has it (read inside the write transaction).
pub(crate) fn read_head(conn: &Connection) -> StoreResult<ChainHead> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| {
            Ok(ChainHead {
                seq: r.get(0)?,
                hash: stored_hash(r.get_ref(1)?),
            })
        })
        .optional()?;
    Ok(head.unwrap_or_else(|| ChainHead {
        seq: 0,
        hash: GENESIS.into(),
    }))
}

fn run(
    conn: Connection,
    urgent: channel::Receiver<Box<dyn WriteOp>>,
    normal: channel::Receiver<Box<dyn WriteOp>>,
    key: [u8; 32],
    syncer: Syncer,
    progress: Arc<Progress>,
) {
    while let Some(mut batch) = next_batch(&urgent, &normal) {
        if batch.iter().any(|op| op.is_probe()) {
            let (probes, writes): (Vec<_>, Vec<_>) = batch.into_iter().partition(|op| op.is_probe());
            probes.into_iter().for_each(|probe| probe.reply(Ok(())));
            batch = writes;
            if batch.is_empty() {
                continue;
            }
        }
        let (commit, head) = match run_batch(&conn, &mut batch, &key) {
            Ok(head) => (Ok(()), head),
            Err(e) => {
                tracing::error!(error = %e, "store batch failed; rolled back");
                (Err(e), None)
            }
        };
        let number = progress.committed.fetch_add(1, Ordering::AcqRel) + 1;
        if commit.is_ok() && batch.iter().any(|op| op.answered_at_commit()) {
            progress.answered_early.store(number, Ordering::Release);
            let (early, later): (Vec<_>, Vec<_>) = batch.into_iter().partition(|op| op.answered_at_commit());
            early.into_iter().for_each(|op| op.reply(Ok(())));
            batch = later;
        }
        // Answered once durable, while this thread writes the next batch.
        syncer.pass(Committed {
            number,
            ops: batch,
            commit,
            head,
        });
    }
}

/// The next batch to run, waiting for one; None once every handle is gone.
///
/// Urgent writes (a client waits for their acknowledgement) are batched on their own,
/// ahead of the workers' writes: they wait at most for the batch already running, never
/// for workers' writes run in their transaction, and their commit is fsynced as soon as
/// it is made. Measured at a steady 2,000 events/s (docs/profiling.md): the store's share
/// of an acknowledgement fell from a median of 3.7 to 2.0 ms, with throughput unchanged.
fn next_batch(
    urgent: &channel::Receiver<Box<dyn WriteOp>>,
    normal: &channel::Receiver<Box<dyn WriteOp>>,
) -> Option<Vec<Box<dyn WriteOp>>> {
    let fill = |queue: &channel::Receiver<Box<dyn WriteOp>>, first: Box<dyn WriteOp>| {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        batch
    };
    if let Ok(first) = urgent.try_recv() {
        return Some(fill(urgent, first));
    }
    channel::select! {
        recv(urgent) -> op => op.ok().map(|first| fill(urgent, first)),
        recv(normal) -> op => op.ok().map(|first| fill(normal, first)),
    }
}

/// Runs a batch in one transaction; the chain's new head if it grew.
fn run_batch(
    conn: &Connection,
    batch: &mut [Box<dyn WriteOp>],
    key: &[u8; 32],
) -> StoreResult<Option<ChainHead>> {
    let exec = |sql: &str| -> StoreResult<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    exec("BEGIN IMMEDIATE")?;
    let started = match read_head(conn) {
        Ok(h) => h,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    };
    let mut chain = started.clone();
    let head = &mut chain;
    let now = now_ms();
    for op in batch.iter_mut() {
        let saved = head.clone();
        let step = (|| -> StoreResult<()> {
            exec("SAVEPOINT op")?;
            let mut ctx = WriteCtx {
                conn,
                head,
                key,
                now_ms: now,
            };
            if !op.run(&mut ctx) {
                exec("ROLLBACK TO op")?;
                *head = saved.clone();
            }
            exec("RELEASE op")
        })();
        if let Err(e) = step {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    if let Err(e) = exec("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok((chain.seq != started.seq).then_some(chain))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that says which queue it was sent to (through `answered_at_commit`).
    struct Tagged {
        urgent: bool,
    }

    impl WriteOp for Tagged {
        fn run(&mut self, _ctx: &mut WriteCtx<'_>) -> bool {
            true
        }
        fn reply(self: Box<Self>, _commit: StoreResult<()>) {}
        fn answered_at_commit(&self) -> bool {
            self.urgent
        }
    }

    fn tags(batch: &[Box<dyn WriteOp>]) -> Vec<&'static str> {
        let tag = |op: &dyn WriteOp| {
            if op.answered_at_commit() {
                "urgent"
            } else {
                "normal"
            }
        };
        batch.iter().map(|op| tag(op.as_ref())).collect()
    }

    #[test]
    fn urgent_writes_are_batched_on_their_own_and_ahead() {
        let (urgent_tx, urgent) = channel::unbounded::<Box<dyn WriteOp>>();
        let (normal_tx, normal) = channel::unbounded::<Box<dyn WriteOp>>();
        for _ in 0..3 {
            normal_tx.send(Box::new(Tagged { urgent: false })).unwrap();
        }
        for _ in 0..MAX_BATCH + 2 {
            urgent_tx.send(Box::new(Tagged { urgent: true })).unwrap();
        }
        let first = next_batch(&urgent, &normal).unwrap();
        assert_eq!(
            tags(&first),
            vec!["urgent"; MAX_BATCH],
            "a full batch of urgent writes first"
        );
        let second = next_batch(&urgent, &normal).unwrap();
        assert_eq!(
            tags(&second),
            vec!["urgent"; 2],
            "the rest of them, without the workers' writes"
        );
        normal_tx.send(Box::new(Tagged { urgent: false })).unwrap();
        let third = next_batch(&urgent, &normal).unwrap();
        assert_eq!(
            tags(&third),
            vec!["normal"; 4],
            "then the workers' writes, together"
        );
        drop((urgent_tx, normal_tx));
        assert!(
            next_batch(&urgent, &normal).is_none(),
            "every handle gone: the writer stops"
        );
    }
}
