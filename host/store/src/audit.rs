//! The audit chain: each entry's hash is an HMAC (keyed by a key derived from
//! the master key) over the previous hash and the entry's fields, so an edited,
//! reordered or removed entry breaks the chain, and nobody without the key can
//! forge a consistent one. The head (last sequence and hash) is also written
//! beside the database so that a truncated tail is caught too.

use crate::{AuditEntry, AuditRecord};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Computes an entry's hash from its fields and its data as stored (JSON text).
pub fn entry_hash_text(
    key: &[u8],
    prev_hash: &str,
    seq: i64,
    ts_ms: i64,
    r: &AuditRecord,
    data: &str,
) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    let fields = (
        prev_hash,
        seq,
        ts_ms,
        &r.tenant,
        &r.kind,
        &r.actor,
        &r.person_key,
        &r.destination,
        r.event_id,
        r.job_id,
    );
    mac.update(serde_json::to_string(&fields).unwrap_or_default().as_bytes());
    mac.update(b"\n");
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Computes an entry's hash.
pub fn entry_hash(key: &[u8], prev_hash: &str, seq: i64, ts_ms: i64, r: &AuditRecord) -> String {
    entry_hash_text(key, prev_hash, seq, ts_ms, r, &r.data.to_string())
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct VerifyReport {
    pub entries: i64,
    pub head_seq: i64,
    pub head_hash: String,
    /// None when the chain holds; otherwise the first broken entry and why.
    pub problem: Option<VerifyProblem>,
    /// The log has entries but no head file, so a cut tail would go unnoticed.
    pub head_file_missing: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct VerifyProblem {
    pub seq: i64,
    pub reason: String,
}

impl VerifyReport {
    /// The chain holds and its head is recorded outside the database.
    pub fn ok(&self) -> bool {
        self.problem.is_none() && !self.head_file_missing
    }
}

/// Checks a sequence of entries (in `seq` order) against the chain rules.
pub struct Verifier<'k> {
    key: &'k [u8],
    prev_hash: String,
    expected_seq: i64,
    count: i64,
    /// Heads that signed checkpoints recorded, in sequence order, not yet reached.
    anchors: std::collections::VecDeque<AuditAnchor>,
    pub problem: Option<VerifyProblem>,
}

/// A head the chain must pass through: an entry's sequence and hash, from a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    pub seq: i64,
    pub hash: String,
}

impl<'k> Verifier<'k> {
    pub fn new(key: &'k [u8]) -> Self {
        Verifier {
            key,
            prev_hash: GENESIS.into(),
            expected_seq: 1,
            count: 0,
            anchors: Default::default(),
            problem: None,
        }
    }

    /// Also requires the chain to pass through each anchor (from signed checkpoints).
    pub fn with_anchors(mut self, mut anchors: Vec<AuditAnchor>) -> Self {
        anchors.sort_by_key(|a| a.seq);
        self.anchors = anchors.into();
        self
    }

    /// The hash the next entry must chain from.
    pub fn previous_hash(&self) -> &str {
        &self.prev_hash
    }

    /// Feeds the next entry; stops checking after the first problem.
    pub fn push(&mut self, e: &AuditEntry) {
        self.push_stored(e, &e.record.data.to_string());
    }

    /// Feeds the next entry with its data exactly as stored.
    pub fn push_stored(&mut self, e: &AuditEntry, data: &str) {
        if self.problem.is_some() {
            return;
        }
        self.count += 1;
        let fail = |reason: String| Some(VerifyProblem { seq: e.seq, reason });
        if e.seq != self.expected_seq {
            self.problem = fail(format!(
                "entry {} follows {}: entries are missing or reordered",
                e.seq,
                self.expected_seq - 1
            ));
        } else if e.prev_hash != self.prev_hash {
            self.problem = fail("its previous-hash does not match the entry before it".into());
        } else if entry_hash_text(self.key, &e.prev_hash, e.seq, e.ts_ms, &e.record, data) != e.hash {
            self.problem = fail("its content does not match its hash (edited)".into());
        }
        while self.problem.is_none() && self.anchors.front().is_some_and(|a| a.seq <= e.seq) {
            if let Some(anchor) = self.anchors.pop_front()
                && anchor.seq == e.seq
                && anchor.hash != e.hash
            {
                self.problem = fail(
                    "it differs from the signed checkpoint at this entry: the log up to it was rewritten"
                        .into(),
                );
            }
        }
        self.prev_hash = e.hash.clone();
        self.expected_seq = e.seq + 1;
    }

    /// Ends the check against the head recorded outside the database.
    pub fn finish(mut self, recorded_head: Option<(i64, String)>) -> VerifyReport {
        let head_seq = self.expected_seq - 1;
        if self.problem.is_none()
            && let Some(anchor) = self.anchors.back()
        {
            self.problem = Some(VerifyProblem {
                seq: head_seq + 1,
                reason: format!(
                    "the log ends at {head_seq} but a signed checkpoint covers entry {}: entries were \
                     removed",
                    anchor.seq
                ),
            });
        }
        if self.problem.is_none()
            && let Some((seq, hash)) = recorded_head
        {
            if seq > head_seq {
                self.problem = Some(VerifyProblem {
                    seq: head_seq + 1,
                    reason: format!(
                        "the log ends at {head_seq} but the recorded head is {seq}: entries were removed"
                    ),
                });
            } else if seq == head_seq && hash != self.prev_hash {
                self.problem = Some(VerifyProblem {
                    seq,
                    reason: "the last entry does not match the recorded head".into(),
                });
            }
        }
        VerifyReport {
            entries: self.count,
            head_seq,
            head_hash: self.prev_hash,
            problem: self.problem,
            head_file_missing: false,
        }
    }
}

/// Keys whose values never reach the audit log or the logs.
const SECRET_KEYS: &[&str] = &[
    "password",
    "unicodepwd",
    "userpassword",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "credential",
];

/// Replaces the values of secret-looking keys (at any depth) with `[redacted]`.
pub fn redact(mut value: serde_json::Value) -> serde_json::Value {
    redact_in_place(&mut value);
    value
}

fn redact_in_place(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                if SECRET_KEYS.iter().any(|s| lower.contains(s)) {
                    *v = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_in_place(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        _ => {}
    }
}

/// How audit entries are exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line, formulas neutralised.
    Csv,
}

impl ExportFormat {
    /// From its name (`json`, `jsonl`, `csv`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "json" => Some(ExportFormat::Json),
            "jsonl" => Some(ExportFormat::Jsonl),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Json => "application/json",
            ExportFormat::Jsonl => "application/x-ndjson",
            ExportFormat::Csv => "text/csv",
        }
    }
}

/// Renders an export page by page, so it is sent as it is read.
#[derive(Debug)]
pub struct ExportWriter {
    format: ExportFormat,
    started: bool,
    written: usize,
}

impl ExportWriter {
    pub fn new(format: ExportFormat) -> Self {
        ExportWriter {
            format,
            started: false,
            written: 0,
        }
    }

    /// Entries written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// The text of the next page (with the header or opening bracket before the first).
    pub fn page(&mut self, entries: &[AuditEntry]) -> String {
        let mut out = String::new();
        if !self.started {
            self.started = true;
            match self.format {
                ExportFormat::Json => out.push('['),
                ExportFormat::Csv => {
                    out.push_str(CSV_HEADER);
                    out.push('\n');
                }
                ExportFormat::Jsonl => {}
            }
        }
        for e in entries {
            match self.format {
                ExportFormat::Json => {
                    if self.written > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(e).unwrap_or_default());
                }
                ExportFormat::Jsonl => {
                    out.push_str(&serde_json::to_string(e).unwrap_or_default());
                    out.push('\n');
                }
                ExportFormat::Csv => {
                    out.push_str(&csv_row(e));
                    out.push('\n');
                }
            }
            self.written += 1;
        }
        out
    }

    /// What closes the export.
    pub fn finish(&mut self) -> String {
        let mut out = self.page(&[]);
        if self.format == ExportFormat::Json {
            out.push(']');
        }
        out
    }
}

/// Renders entries as JSON Lines or CSV in one piece (`None` for another format name).
pub fn render(entries: &[AuditEntry], format: &str) -> Option<String> {
    let format = ExportFormat::parse(format).filter(|f| *f != ExportFormat::Json)?;
    let mut writer = ExportWriter::new(format);
    let mut out = writer.page(entries);
    out.push_str(&writer.finish());
    Some(out)
}

/// The CSV header of [`csv_row`].
pub const CSV_HEADER: &str = "seq,ts_ms,tenant,kind,actor,person,destination,event_id,job_id,data,hash";

/// A CSV field (RFC 4180 quoting) that a spreadsheet will not run: a leading `=`, `+`,
/// `-`, `@`, tab or carriage return is neutralised with a `'`.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One entry as a CSV line (RFC 4180 quoting, formulas neutralised).
pub fn csv_row(e: &AuditEntry) -> String {
    let q = csv_field;
    let r = &e.record;
    [
        e.seq.to_string(),
        e.ts_ms.to_string(),
        q(&r.tenant),
        q(r.kind.as_str()),
        q(&r.actor),
        q(r.person_key.as_deref().unwrap_or("")),
        q(r.destination.as_deref().unwrap_or("")),
        r.event_id.map(|v| v.to_string()).unwrap_or_default(),
        r.job_id.map(|v| v.to_string()).unwrap_or_default(),
        q(&r.data.to_string()),
        e.hash.clone(),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_exports_never_carry_a_formula_a_spreadsheet_would_run() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        for text in ["+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(
                csv_field(text).trim_start_matches('"').starts_with('\''),
                "{text:?}"
            );
        }
        assert_eq!(csv_field("ada"), "ada");
        let mut record = AuditRecord::new("t", crate::AuditKind::AdminSecretSet, "=cmd|' /C calc'!A0");
        record.person_key = Some("@evil".into());
        let row = csv_row(&AuditEntry {
            seq: 1,
            ts_ms: 1,
            record,
            prev_hash: String::new(),
            hash: "h".into(),
        });
        assert!(row.contains(",'=cmd|' /C calc'!A0,'@evil,"), "{row}");
    }

    fn entry(seq: i64, prev: &str, key: &[u8]) -> AuditEntry {
        let record = AuditRecord::new("t", crate::AuditKind::AdminSecretSet, "a");
        let hash = entry_hash(key, prev, seq, 10, &record);
        AuditEntry {
            seq,
            ts_ms: 10,
            record,
            prev_hash: prev.into(),
            hash,
        }
    }

    #[test]
    fn chain_detects_edit_reorder_and_removal() {
        let key = b"k";
        let a = entry(1, GENESIS, key);
        let b = entry(2, &a.hash, key);
        let c = entry(3, &b.hash, key);
        let run = |entries: &[&AuditEntry], head: Option<(i64, String)>| {
            let mut v = Verifier::new(key);
            entries.iter().for_each(|e| v.push(e));
            v.finish(head)
        };
        assert!(run(&[&a, &b, &c], Some((3, c.hash.clone()))).ok());
        let mut edited = b.clone();
        edited.record.actor = "mallory".into();
        assert_eq!(run(&[&a, &edited, &c], None).problem.unwrap().seq, 2);
        assert_eq!(run(&[&a, &c], None).problem.unwrap().seq, 3);
        let truncated = run(&[&a, &b], Some((3, c.hash.clone())));
        assert!(truncated.problem.unwrap().reason.contains("removed"));
        // A different key cannot produce the same chain.
        let mut v = Verifier::new(b"other");
        v.push(&a);
        assert!(v.finish(None).problem.is_some());
    }

    #[test]
    fn the_chain_must_pass_through_every_anchor_from_a_checkpoint() {
        let key = b"k";
        let a = entry(1, GENESIS, key);
        let b = entry(2, &a.hash, key);
        let c = entry(3, &b.hash, key);
        let anchor = |e: &AuditEntry| AuditAnchor {
            seq: e.seq,
            hash: e.hash.clone(),
        };
        let run = |entries: &[&AuditEntry], anchors: Vec<AuditAnchor>| {
            let mut v = Verifier::new(key).with_anchors(anchors);
            entries.iter().for_each(|e| v.push(e));
            v.finish(None)
        };
        assert!(run(&[&a, &b, &c], vec![anchor(&c), anchor(&a)]).ok());
        // A chain rebuilt after entry 1 (valid on its own) no longer passes the anchor at 2.
        let mut rebuilt = entry(2, &a.hash, key);
        rebuilt.ts_ms = 11;
        rebuilt.hash = entry_hash(key, &a.hash, 2, 11, &rebuilt.record);
        let rewritten = run(&[&a, &rebuilt], vec![anchor(&b)]);
        let problem = rewritten.problem.unwrap();
        assert_eq!(problem.seq, 2);
        assert!(problem.reason.contains("signed checkpoint"), "{}", problem.reason);
        // Cut below the anchor, with no head file to say so: the anchor does.
        let cut = run(&[&a], vec![anchor(&c)]);
        assert!(cut.problem.unwrap().reason.contains("covers entry 3"));
    }

    #[test]
    fn redaction_reaches_nested_secret_keys() {
        let v = redact(serde_json::json!({"user": "x", "nested": [{"unicodePwd": "p", "apiToken": "t"}]}));
        assert_eq!(v["nested"][0]["unicodePwd"], "[redacted]");
        assert_eq!(v["nested"][0]["apiToken"], "[redacted]");
        assert_eq!(v["user"], "x");
    }
}
