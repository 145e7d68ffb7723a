//! Making a committed batch durable before its callers hear of it, off the writer
//! thread.
//!
//! SQLite's own `synchronous=FULL` fsyncs the WAL inside `COMMIT`, so the one writer
//! waits for the disk after every batch and writes nothing meanwhile. Instead the
//! connection runs with `synchronous=NORMAL` (the WAL is written at commit, synced
//! before each checkpoint) and this syncer thread fsyncs the WAL after each commit,
//! then answers the batch's callers and records the audit head. The writer goes on
//! with the next batch while the disk works, and several batches that committed
//! during one fsync share the next one.
//!
//! An acknowledged write is exactly as durable as under `FULL`: its caller is answered
//! only after an fsync that began after its commit. The WAL is recovered as a
//! prefix (its frames' checksums chain), so a batch lost to power failure takes every
//! later batch with it, and nothing outside the database was done on a later batch's
//! strength (every caller waits for its own write's fsync first). Reads on other
//! connections may see a commit a few hundred microseconds before it is durable.

use super::head::HeadRecorder;
use super::writer::{ChainHead, WriteOp};
use crate::{StoreError, StoreResult};
use crossbeam_channel as channel;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What a write must survive before its caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Power loss: the WAL is fsynced before the answer (SQLite's `FULL`, pipelined).
    #[default]
    PowerLoss,
    /// A process crash: the answer follows the commit (SQLite's `NORMAL`).
    ProcessCrash,
}

/// A batch the writer committed (or rolled back), waiting to be answered.
pub(crate) struct Committed {
    /// The batch's number (from 1, in commit order).
    pub number: u64,
    pub ops: Vec<Box<dyn WriteOp>>,
    pub commit: StoreResult<()>,
    /// The audit chain's head after the batch, when the batch appended to it.
    pub head: Option<ChainHead>,
}

/// The database's write-ahead log, opened to be fsynced.
struct WalFile {
    path: PathBuf,
    file: Option<File>,
}

impl WalFile {
    fn new(database: &Path) -> WalFile {
        let mut name = database.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push("-wal");
        WalFile {
            path: database.with_file_name(name),
            file: None,
        }
    }

    /// Flushes the WAL's data to the disk. The file is reopened when it was replaced
    /// (SQLite deletes the WAL only when it is empty and fully checkpointed, after
    /// syncing the database, so a missing file has nothing to flush).
    fn sync(&mut self) -> StoreResult<()> {
        if self.file.as_ref().is_none_or(|f| !same_file(f, &self.path)) {
            self.file = match File::open(&self.path) {
                Ok(f) => Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(StoreError::Io(format!("{}: {e}", self.path.display()))),
            };
        }
        match &self.file {
            Some(f) => f
                .sync_data()
                .map_err(|e| StoreError::Io(format!("fsync of {}: {e}", self.path.display()))),
            None => Ok(()),
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, _path: &Path) -> bool {
    false
}

/// The handle the writer passes committed batches to.
pub(crate) struct Syncer {
    tx: channel::Sender<Committed>,
}

/// The number of the last batch known durable.
pub(crate) type DurableBatch = tokio::sync::watch::Receiver<u64>;

impl Syncer {
    /// Starts the syncer thread for the database at `database`.
    pub fn start(
        database: &Path,
        durability: Durability,
        recorder: HeadRecorder,
    ) -> StoreResult<(Syncer, DurableBatch)> {
        let (tx, rx) = channel::unbounded::<Committed>();
        let (durable_tx, durable_rx) = tokio::sync::watch::channel(0);
        let wal = (durability == Durability::PowerLoss).then(|| WalFile::new(database));
        std::thread::Builder::new()
            .name("tenure-store-sync".into())
            .spawn(move || run(rx, wal, recorder, durable_tx))
            .map_err(|e| StoreError::Io(format!("cannot start the sync thread: {e}")))?;
        Ok((Syncer { tx }, durable_rx))
    }

    /// Hands a batch over; answers it directly if the syncer has stopped.
    pub fn pass(&self, batch: Committed) {
        if let Err(channel::SendError(batch)) = self.tx.send(batch) {
            answer(batch, &Err(StoreError::Closed));
        }
    }
}

fn run(
    rx: channel::Receiver<Committed>,
    mut wal: Option<WalFile>,
    mut recorder: HeadRecorder,
    durable: tokio::sync::watch::Sender<u64>,
) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        let committed_any = batches.iter().any(|b| b.commit.is_ok());
        let synced = match wal.as_mut() {
            Some(wal) if committed_any => wal.sync(),
            _ => Ok(()),
        };
        match &synced {
            Ok(()) => {
                if let Some(head) = batches.iter().rev().find_map(|b| b.head.as_ref()) {
                    recorder.record(head);
                }
                let last = batches.iter().map(|b| b.number).max().unwrap_or(0);
                durable.send_if_modified(|n| {
                    let newer = last > *n;
                    *n = (*n).max(last);
                    newer
                });
            }
            Err(e) => tracing::error!(error = %e, "the store's WAL could not be made durable"),
        }
        for batch in batches {
            answer(batch, &synced);
        }
    }
}

/// Answers a batch's callers: its commit's outcome, unless the sync failed.
fn answer(batch: Committed, synced: &StoreResult<()>) {
    let outcome = match (&batch.commit, synced) {
        (Err(e), _) => Err(e.clone()),
        (Ok(()), Err(e)) => Err(e.clone()),
        (Ok(()), Ok(())) => Ok(()),
    };
    for op in batch.ops {
        op.reply(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_wal_has_nothing_to_sync_and_a_replaced_one_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = WalFile::new(&dir.path().join("t.db"));
        assert!(wal.sync().is_ok());
        assert!(wal.file.is_none(), "no WAL, nothing opened");
        std::fs::write(dir.path().join("t.db-wal"), b"frames").unwrap();
        wal.sync().unwrap();
        assert!(wal.file.as_ref().is_some_and(|f| same_file(f, &wal.path)));
        std::fs::remove_file(&wal.path).unwrap();
        std::fs::write(&wal.path, b"new frames").unwrap();
        assert!(!wal.file.as_ref().is_some_and(|f| same_file(f, &wal.path)));
        wal.sync().unwrap();
        assert!(
            wal.file.as_ref().is_some_and(|f| same_file(f, &wal.path)),
            "the new file is synced"
        );
    }
}
