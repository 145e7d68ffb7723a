//! The audit chain's head outside the database (`<db>.audit-head`), so a cut tail is
//! caught: `<seq> <hash> <mac>`, the MAC keyed from the master key, replaced
//! atomically (written beside, then renamed). At open the store compares it with the
//! database's head and refuses to start on a mismatch.

use super::writer::ChainHead;
use crate::{StoreError, StoreResult};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// What the head file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadFile {
    /// No file (a new store, or one whose file was removed).
    Missing,
    /// A head whose MAC holds.
    Recorded { seq: i64, hash: String },
    /// A head written before heads carried a MAC: trusted once, if it matches the database.
    Unsigned { seq: i64, hash: String },
    /// A file that is not a head, or whose MAC does not hold.
    Tampered(String),
}

impl HeadFile {
    /// The head it records, if any.
    pub fn head(&self) -> Option<(i64, String)> {
        match self {
            HeadFile::Recorded { seq, hash } | HeadFile::Unsigned { seq, hash } => Some((*seq, hash.clone())),
            HeadFile::Missing | HeadFile::Tampered(_) => None,
        }
    }
}

fn mac(key: &[u8; 32], seq: i64, hash: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a 32-byte key");
    m.update(format!("tenure audit head\n{seq}\n{hash}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Reads and checks the head file.
pub(crate) fn read(path: &Path, key: &[u8; 32]) -> HeadFile {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HeadFile::Missing,
        Err(e) => return HeadFile::Tampered(format!("cannot be read: {e}")),
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let seq = parts.first().and_then(|s| s.parse::<i64>().ok());
    match (seq, parts.as_slice()) {
        (Some(seq), [_, hash]) => HeadFile::Unsigned {
            seq,
            hash: hash.to_string(),
        },
        (Some(seq), [_, hash, tag]) if mac(key, seq, hash) == *tag => HeadFile::Recorded {
            seq,
            hash: hash.to_string(),
        },
        (Some(_), [_, _, _]) => HeadFile::Tampered("its MAC does not match: it was edited".into()),
        _ => HeadFile::Tampered("it is not an audit head".into()),
    }
}

/// The length of one record: the sequence, the hash and the MAC, padded with spaces, so
/// a later record always overwrites all of an earlier one.
const RECORD_LEN: usize = 200;

fn record_text(key: &[u8; 32], head: &ChainHead) -> Vec<u8> {
    let mut text = format!("{} {} {}", head.seq, head.hash, mac(key, head.seq, &head.hash)).into_bytes();
    text.resize(RECORD_LEN - 1, b' ');
    text.push(b'\n');
    text
}

/// Keeps the head file up to date from the writer thread: the file stays open and each
/// commit overwrites its one fixed-length record in place (one small write at offset 0, no
/// read, no new file). The recorded head never moves back within this process; another
/// process's later head may be overwritten by an earlier one, which the checks allow (a
/// head file behind the database is not a cut).
pub(crate) struct HeadRecorder {
    path: std::path::PathBuf,
    key: [u8; 32],
    file: Option<std::fs::File>,
    recorded: i64,
}

impl HeadRecorder {
    pub fn new(path: std::path::PathBuf, key: [u8; 32]) -> Self {
        HeadRecorder {
            path,
            key,
            file: None,
            recorded: i64::MIN,
        }
    }

    /// Records `head` (best effort: a failure is logged once per opening).
    pub fn record(&mut self, head: &ChainHead) {
        if head.seq <= self.recorded {
            return;
        }
        if self.file.is_none() {
            match std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&self.path)
            {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot record the audit head");
                    return;
                }
            }
        }
        let text = record_text(&self.key, head);
        let written = self.file.as_mut().map(|f| {
            use std::io::{Seek, SeekFrom, Write};
            f.seek(SeekFrom::Start(0)).and_then(|_| f.write_all(&text))
        });
        match written {
            Some(Ok(())) => self.recorded = head.seq,
            _ => self.file = None,
        }
    }
}

/// Records `head` whatever the file holds, written beside and renamed (at open and on
/// accepting a mismatch, never per commit).
pub(crate) fn force_write(path: &Path, key: &[u8; 32], head: &ChainHead) {
    let mut beside = path.as_os_str().to_owned();
    beside.push(".new");
    if std::fs::write(&beside, record_text(key, head)).is_ok() {
        let _ = std::fs::rename(&beside, path);
    }
}

/// Compares the head file with the database's head at open. `Ok(None)`: they agree (an
/// unsigned head that agrees is signed now). `Ok(Some(why))`: they disagree and `accept`
/// said to go on. Otherwise the error names the mismatch and the recovery.
pub(crate) fn check(
    path: &Path,
    key: &[u8; 32],
    database: &ChainHead,
    accept: bool,
) -> StoreResult<Option<String>> {
    let file = read(path, key);
    let mismatch = match &file {
        HeadFile::Missing if database.seq == 0 => None,
        HeadFile::Missing => Some(format!(
            "the audit log holds {} entries but its head file {} is missing",
            database.seq,
            path.display()
        )),
        HeadFile::Tampered(why) => Some(format!("the audit head file {}: {why}", path.display())),
        HeadFile::Recorded { seq, hash } | HeadFile::Unsigned { seq, hash } => {
            if *seq > database.seq {
                Some(format!(
                    "the audit log ends at entry {} but its head file records entry {seq}: \
                     entries were removed",
                    database.seq
                ))
            } else if *seq == database.seq && *hash != database.hash {
                Some(format!(
                    "the audit log's last entry {seq} does not match its head file: it was changed"
                ))
            } else {
                None
            }
        }
    };
    match mismatch {
        None => {
            if matches!(file, HeadFile::Unsigned { .. }) || (file == HeadFile::Missing && database.seq == 0) {
                force_write(path, key, database);
            }
            Ok(None)
        }
        Some(why) if accept => Ok(Some(why)),
        Some(why) => Err(StoreError::AuditHead(format!(
            "{why}. Tenure will not write to an audit log that may have been cut. Run `tenure audit \
             verify` to see what holds, then `tenure audit accept-head --reason TEXT` to record the \
             database's head again (audited); see docs/security.md"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: i64, hash: &str) -> ChainHead {
        ChainHead {
            seq,
            hash: hash.into(),
        }
    }

    #[test]
    fn the_head_file_is_signed_and_checked_against_the_database() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db.audit-head");
        let key = [7u8; 32];
        assert_eq!(check(&path, &key, &head(0, "g"), false).expect("new store"), None);
        let mut recorder = HeadRecorder::new(path.clone(), key);
        recorder.record(&head(5, "h5"));
        assert_eq!(
            read(&path, &key),
            HeadFile::Recorded {
                seq: 5,
                hash: "h5".into()
            }
        );
        recorder.record(&head(4, "h4"));
        assert_eq!(
            read(&path, &key).head(),
            Some((5, "h5".into())),
            "never moved back"
        );
        // A record always overwrites all of the one before it (a shorter sequence number too).
        let mut other = HeadRecorder::new(dir.path().join("u.db.audit-head"), key);
        other.record(&head(123_456_789, "long"));
        other.recorded = i64::MIN;
        other.record(&head(7, "h7"));
        assert_eq!(
            read(&dir.path().join("u.db.audit-head"), &key),
            HeadFile::Recorded {
                seq: 7,
                hash: "h7".into()
            }
        );
        assert!(
            check(&path, &key, &head(5, "h5"), false)
                .expect("agrees")
                .is_none()
        );
        assert!(
            check(&path, &key, &head(6, "h6"), false)
                .expect("behind is fine")
                .is_none()
        );

        let cut = check(&path, &key, &head(3, "h3"), false).unwrap_err().to_string();
        assert!(
            cut.contains("entries were removed") && cut.contains("accept-head"),
            "{cut}"
        );
        let changed = check(&path, &key, &head(5, "other"), false)
            .unwrap_err()
            .to_string();
        assert!(changed.contains("was changed"), "{changed}");
        assert!(
            check(&path, &key, &head(3, "h3"), true)
                .expect("accepted")
                .is_some()
        );

        std::fs::write(&path, "9 h9 0000").expect("forge");
        let forged = check(&path, &key, &head(5, "h5"), false).unwrap_err().to_string();
        assert!(forged.contains("MAC does not match"), "{forged}");
        std::fs::remove_file(&path).expect("remove");
        let missing = check(&path, &key, &head(5, "h5"), false).unwrap_err().to_string();
        assert!(missing.contains("is missing"), "{missing}");

        std::fs::write(&path, "5 h5\n").expect("an old, unsigned head");
        assert!(
            check(&path, &key, &head(5, "h5"), false)
                .expect("trusted once")
                .is_none()
        );
        assert_eq!(
            read(&path, &key),
            HeadFile::Recorded {
                seq: 5,
                hash: "h5".into()
            },
            "and signed now"
        );
    }
}
