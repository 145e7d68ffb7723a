//! Growing from one host to several: everything an embedded SQLite store holds copied
//! into an empty PostgreSQL store (events, jobs, operations, links, the audit log with
//! its chain, secrets, rule sets, plugins, accounts), then checked: every table holds as
//! many rows as the source, and the copied audit chain verifies up to the source's head.
//! Rows keep their ids, so references between them (a job's event, an audit entry's job)
//! hold; sealed secrets and the chain's hashes are copied as they are, so the target
//! needs the source's master key.

use super::PgStore;
use crate::{AuditStore, StoreError, StoreResult};
use rusqlite::types::Value;
use serde::Serialize;
use sqlx::{Postgres, QueryBuilder};
use std::path::Path;

/// Tables in the order they are copied (a row's references are copied before it).
const TABLES: &[&str] = &[
    "events",
    "jobs",
    "operations",
    "links",
    "conflicts",
    "holds",
    "guards",
    "guard_admissions",
    "audit",
    "kv",
    "kv_usage",
    "cursors",
    "secrets",
    "rule_set_versions",
    "rule_set_current",
    "name_claims",
    "webhook_tokens",
    "identities",
    "scheduled_actions",
    "lifecycles",
    "reports",
    "deliveries",
    "notifications",
    "plugin_versions",
    "plugin_activations",
    "users",
    "sessions",
    "api_tokens",
    "leases",
];

/// Rows written per statement.
const BATCH: usize = 500;

/// What was copied.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// Rows per table, in copy order (the same on both sides once checked).
    pub tables: Vec<(String, i64)>,
    /// The audit chain's head on both sides after the copy.
    pub audit_head_seq: i64,
    pub audit_head_hash: String,
}

/// A column's type on the PostgreSQL side, which decides how a SQLite value is bound.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Integer,
    Boolean,
    Text,
    Bytes,
    Float,
}

fn kind_of(data_type: &str) -> StoreResult<Kind> {
    Ok(match data_type {
        "bigint" | "integer" | "smallint" => Kind::Integer,
        "boolean" => Kind::Boolean,
        "text" => Kind::Text,
        "bytea" => Kind::Bytes,
        "double precision" | "real" => Kind::Float,
        other => {
            return Err(StoreError::Database(format!(
                "cannot copy a column of type {other}"
            )));
        }
    })
}

/// Binds one SQLite value as the PostgreSQL column wants it. The audit's hashes of rows
/// older than the compact encoding are hex text; they are stored as their 32 bytes.
fn push(
    b: &mut sqlx::query_builder::Separated<'_, Postgres, &'static str>,
    (table, column): (&str, &str),
    kind: Kind,
    value: Value,
) -> StoreResult<()> {
    let mismatch = |v: &Value| {
        StoreError::Database(format!(
            "{table}.{column}: cannot copy {v:?} into a {kind:?} column"
        ))
    };
    match (kind, value) {
        (Kind::Integer, Value::Null) => b.push_bind(None::<i64>),
        (Kind::Integer, Value::Integer(n)) => b.push_bind(n),
        (Kind::Boolean, Value::Null) => b.push_bind(None::<bool>),
        (Kind::Boolean, Value::Integer(n)) => b.push_bind(n != 0),
        (Kind::Float, Value::Null) => b.push_bind(None::<f64>),
        (Kind::Float, Value::Real(x)) => b.push_bind(x),
        (Kind::Float, Value::Integer(n)) => b.push_bind(n as f64),
        (Kind::Text, Value::Null) => b.push_bind(None::<String>),
        (Kind::Text, Value::Text(t)) => b.push_bind(t),
        (Kind::Text, Value::Integer(n)) => b.push_bind(n.to_string()),
        (Kind::Bytes, Value::Null) => b.push_bind(None::<Vec<u8>>),
        (Kind::Bytes, Value::Text(t)) if table == "audit" && column == "hash" => {
            b.push_bind(hex::decode(&t).map_err(|e| StoreError::Database(format!("audit.hash {t:?}: {e}")))?)
        }
        (Kind::Bytes, Value::Text(t)) => b.push_bind(t.into_bytes()),
        (Kind::Bytes, Value::Blob(bytes)) => b.push_bind(bytes),
        (_, other) => return Err(mismatch(&other)),
    };
    Ok(())
}

impl PgStore {
    /// Copies the SQLite database at `sqlite` into this store, which must be empty, gathers
    /// the planner's statistics and checks the copy. The source is only read (stop its host
    /// first: what it writes meanwhile is not copied).
    pub async fn copy_from_sqlite(&self, sqlite: &Path) -> StoreResult<CopyReport> {
        let empty: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM audit)
                AND NOT EXISTS (SELECT 1 FROM secrets) AND NOT EXISTS (SELECT 1 FROM users)",
        )
        .fetch_one(self.pool())
        .await?;
        if !empty {
            return Err(StoreError::Conflict(
                "the PostgreSQL store is not empty: copy into a new database".into(),
            ));
        }
        let source =
            rusqlite::Connection::open_with_flags(sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut w = self.begin().await?;
        let mut tables = Vec::new();
        for &table in TABLES {
            let columns = copied_columns(&source, w.conn(), table).await?;
            let count = copy_table(&source, &mut w, table, &columns).await?;
            tables.push((table.to_string(), count));
        }
        // The chain goes on from the copied head; new ids follow the copied ones.
        let head: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(w.conn())
                .await?;
        if let Some((seq, hash)) = &head {
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(seq)
                .bind(hash)
                .execute(w.conn())
                .await?;
        }
        for &table in TABLES {
            let sequence: Option<Option<String>> = sqlx::query_scalar(
                "SELECT pg_get_serial_sequence(table_name::text, column_name::text) FROM
                    information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'id'",
            )
            .bind(table)
            .fetch_optional(w.conn())
            .await?;
            if let Some(Some(sequence)) = sequence {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT setval($1, coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )))
                .bind(sequence)
                .execute(w.conn())
                .await?;
            }
        }
        w.commit().await?;
        // Statistics for the copied sizes now, not at autovacuum's first pass: the hosts
        // that start next plan their statements (and keep those plans) on them.
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {}", TABLES.join(", "))))
            .execute(self.pool())
            .await?;
        self.check_copy(&source, tables).await
    }

    /// Every table holds as many rows as the source's, and the audit chain verifies to the
    /// source's head.
    async fn check_copy(
        &self,
        source: &rusqlite::Connection,
        tables: Vec<(String, i64)>,
    ) -> StoreResult<CopyReport> {
        for (table, copied) in &tables {
            let there: i64 = source.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            let here: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(self.pool())
                .await?;
            if there != here || here != *copied {
                return Err(StoreError::Database(format!(
                    "{table}: {there} rows in SQLite, {here} in PostgreSQL after copying {copied}"
                )));
            }
        }
        let report = self.verify_audit().await?;
        if let Some(problem) = &report.problem {
            return Err(StoreError::Database(format!(
                "the copied audit chain does not verify at entry {}: {} (is TENURE_MASTER_KEY the \
                 source's key?)",
                problem.seq, problem.reason
            )));
        }
        let source_head: i64 =
            source.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))?;
        if report.head_seq != source_head {
            return Err(StoreError::Database(format!(
                "the copied audit chain ends at {} but the source's at {source_head}",
                report.head_seq
            )));
        }
        Ok(CopyReport {
            tables,
            audit_head_seq: report.head_seq,
            audit_head_hash: report.head_hash,
        })
    }
}

/// The columns both sides have, with their PostgreSQL kinds.
async fn copied_columns(
    source: &rusqlite::Connection,
    target: &mut sqlx::PgConnection,
    table: &str,
) -> StoreResult<Vec<(String, Kind)>> {
    let in_source: Vec<String> = source
        .prepare("SELECT name FROM pragma_table_info(?1)")?
        .query_map([table], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let in_target: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(target)
    .await?;
    in_target
        .into_iter()
        .filter(|(name, _)| in_source.contains(name))
        .map(|(name, data_type)| Ok((name, kind_of(&data_type)?)))
        .collect()
}

async fn copy_table(
    source: &rusqlite::Connection,
    w: &mut super::write::PgWrite,
    table: &'static str,
    columns: &[(String, Kind)],
) -> StoreResult<i64> {
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let list = names.join(", ");
    // In the order rows were written (a table without row ids has no such order to keep).
    let without_rowid: bool = source.query_row(
        "SELECT coalesce(instr(upper(sql), 'WITHOUT ROWID') > 0, 0) FROM sqlite_master WHERE type =
            'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    let order = if without_rowid { "" } else { " ORDER BY rowid" };
    let mut select = source.prepare(&format!("SELECT {list} FROM {table}{order}"))?;
    let mut rows = select.query([])?;
    let mut count = 0_i64;
    loop {
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
        let mut done = false;
        while batch.len() < BATCH {
            match rows.next()? {
                Some(r) => batch.push(
                    (0..columns.len())
                        .map(|i| r.get::<_, Value>(i))
                        .collect::<Result<_, _>>()?,
                ),
                None => {
                    done = true;
                    break;
                }
            }
        }
        count += batch.len() as i64;
        if !batch.is_empty() {
            insert(w, table, &list, columns, batch).await?;
        }
        if done {
            return Ok(count);
        }
    }
}

async fn insert(
    w: &mut super::write::PgWrite,
    table: &'static str,
    list: &str,
    columns: &[(String, Kind)],
    batch: Vec<Vec<Value>>,
) -> StoreResult<()> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("INSERT INTO {table} ({list}) OVERRIDING SYSTEM VALUE "));
    let mut failed = None;
    q.push_values(batch, |mut b, row| {
        for ((name, kind), value) in columns.iter().zip(row) {
            if let Err(e) = push(&mut b, (table, name), *kind, value) {
                failed.get_or_insert(e);
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    q.build().execute(w.conn()).await?;
    Ok(())
}
