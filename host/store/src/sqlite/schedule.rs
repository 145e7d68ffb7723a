//! Dated actions and lifecycle records.

use super::{SqliteStore, check_lease};
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};

/// The people whose manager is `?2`.
pub(super) const REPORTS_OF: &str =
    "SELECT person_key FROM lifecycles WHERE tenant = ?1 AND manager_key = ?2 ORDER BY person_key";
/// A person's open scheduled actions (the clause after `FROM scheduled_actions`).
pub(super) const OPEN_ACTIONS_OF: &str =
    "WHERE tenant = ?1 AND person_key = ?2 AND state IN ('pending', 'queued') ORDER BY id";

const ACTION_COLUMNS: &str =
    "id, tenant, person_key, destination, action, due_ms, state, reason, created_ms, finished_ms, note";

/// The state column of a person whose state was never applied.
const NEVER_APPLIED: &str = "new";

fn lifecycle_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LifecycleRow> {
    let state: String = r.get(1)?;
    let state = match state.as_str() {
        NEVER_APPLIED => None,
        _ => Some(r.get(1)?),
    };
    Ok(LifecycleRow {
        person_key: r.get(0)?,
        state,
        manager_key: r.get(2)?,
        doc: r.get(3)?,
        updated_ms: r.get(4)?,
        name: r.get(5)?,
        email: r.get(6)?,
    })
}

const LIFECYCLE_COLUMNS: &str = "person_key, state, manager_key, doc, updated_ms, name, email";

/// `text` as a LIKE pattern that finds it anywhere (its own `%`, `_` and `\` taken literally).
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn action_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduledAction> {
    Ok(ScheduledAction {
        id: r.get(0)?,
        tenant: r.get(1)?,
        person_key: r.get(2)?,
        destination: r.get(3)?,
        action: r.get(4)?,
        due_ms: r.get(5)?,
        state: r.get(6)?,
        reason: r.get(7)?,
        created_ms: r.get(8)?,
        finished_ms: r.get(9)?,
        note: r.get(10)?,
    })
}

/// Inserts or replaces a person's lifecycle record.
pub(super) fn write_lifecycle(c: &Connection, tenant: &str, row: &LifecycleRow) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO lifecycles (tenant, person_key, state, manager_key, doc, updated_ms, name, email)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (tenant, person_key) DO UPDATE SET state = excluded.state,
           manager_key = excluded.manager_key, doc = excluded.doc, updated_ms = excluded.updated_ms,
           name = coalesce(excluded.name, lifecycles.name),
           email = coalesce(excluded.email, lifecycles.email)",
    )?
    .execute(params![
        tenant,
        row.person_key,
        row.state.map_or(NEVER_APPLIED, LifecycleState::as_str),
        row.manager_key,
        row.doc,
        row.updated_ms,
        row.name,
        row.email
    ])?;
    Ok(())
}

#[async_trait::async_trait]
impl ScheduleStore for SqliteStore {
    async fn schedule_action(&self, a: NewScheduledAction) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let added = ctx
                    .conn
                    .prepare_cached(
                        "INSERT INTO scheduled_actions (tenant, person_key, destination, action, due_ms, \
                            state, reason, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![
                        a.tenant,
                        a.person_key,
                        a.destination,
                        a.action,
                        a.due_ms,
                        a.reason,
                        a.now_ms
                    ])?;
                Ok(added == 1)
            })
            .await
    }

    async fn reschedule_action(&self, a: NewScheduledAction) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let c = ctx.conn;
                let open: Option<(i64, ActionState, i64)> = c
                    .prepare_cached(
                        "SELECT id, state, due_ms FROM scheduled_actions
                         WHERE tenant = ?1 AND person_key = ?2 AND destination = ?3 AND action = ?4
                           AND state IN ('pending', 'queued')",
                    )?
                    .query_row(params![a.tenant, a.person_key, a.destination, a.action], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                match open {
                    Some((_, ActionState::Queued, _)) => Ok(false),
                    Some((_, _, due)) if due == a.due_ms => Ok(false),
                    Some((id, _, _)) => {
                        c.prepare_cached(
                            "UPDATE scheduled_actions SET due_ms = ?2, reason = ?3 WHERE id = \
                            ?1",
                        )?
                        .execute(params![id, a.due_ms, a.reason])?;
                        Ok(true)
                    }
                    None => {
                        c.prepare_cached(
                            "INSERT INTO scheduled_actions (tenant, person_key, destination, action, due_ms, \
                                state, reason, created_ms)
                             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
                        )?
                        .execute(params![a.tenant, a.person_key, a.destination, a.action, a.due_ms,
                            a.reason, a.now_ms])?;
                        Ok(true)
                    }
                }
            })
            .await
    }

    async fn cancel_actions(
        &self,
        tenant: &str,
        person_key: &str,
        destination: Option<&str>,
        action: ActionMatch,
        note: &str,
        now_ms: i64,
    ) -> StoreResult<u64> {
        let (kind, prefix) = match action {
            ActionMatch::Is(a) => (a.to_column(), false),
            ActionMatch::AnyLeaverStep => ("leaver-step-".to_string(), true),
        };
        let args = (
            tenant.to_string(),
            person_key.to_string(),
            destination.map(String::from),
            kind,
            note.to_string(),
        );
        self.writer
            .write(move |ctx| {
                let (tenant, person_key, destination, kind, note) = &args;
                Ok(ctx
                    .conn
                    .prepare_cached(
                        "UPDATE scheduled_actions SET state = 'cancelled', finished_ms = ?5, note = ?6
                         WHERE tenant = ?1 AND person_key = ?2 AND (?3 IS NULL OR destination = ?3)
                           AND (action = ?4 OR (?7 AND substr(action, 1, length(?4)) = ?4))
                           AND state IN ('pending', 'queued')",
                    )?
                    .execute(params![
                        tenant,
                        person_key,
                        destination,
                        kind,
                        now_ms,
                        note,
                        prefix
                    ])? as u64)
            })
            .await
    }

    async fn take_due_actions(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduledAction>> {
        // Scanned every second: an idle host answers from a reader, without a write.
        let any_due = self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT 1 FROM scheduled_actions WHERE state = 'pending' AND due_ms <= ?1 LIMIT 1",
            )?
            .query_row(params![now_ms], |_| Ok(()))
            .optional()?
            .is_some())
        })?;
        if !any_due {
            return Ok(Vec::new());
        }
        self.writer
            .write(move |ctx| {
                let due: Vec<ScheduledAction> = ctx
                    .conn
                    .prepare_cached(&format!(
                        "UPDATE scheduled_actions SET state = 'queued'
                         WHERE id IN (SELECT id FROM scheduled_actions WHERE state = 'pending' AND due_ms <= \
                             ?1
                                      ORDER BY due_ms LIMIT ?2)
                         RETURNING {ACTION_COLUMNS}"
                    ))?
                    .query_map(params![now_ms, limit as i64], action_row)?
                    .collect::<Result<_, _>>()?;
                Ok(due)
            })
            .await
    }

    async fn finish_action(&self, id: i64, state: ActionState, note: &str, now_ms: i64) -> StoreResult<()> {
        let note = note.to_string();
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .prepare_cached(
                        "UPDATE scheduled_actions SET state = ?2, note = ?3, finished_ms = ?4
                         WHERE id = ?1 AND state IN ('pending', 'queued')",
                    )?
                    .execute(params![id, state, note, now_ms])?;
                Ok(())
            })
            .await
    }

    async fn defer_action(&self, id: i64, due_ms: i64, note: &str) -> StoreResult<bool> {
        let note = note.to_string();
        self.writer
            .write(move |ctx| {
                let changed = ctx
                    .conn
                    .prepare_cached(
                        "UPDATE scheduled_actions SET state = 'pending', due_ms = ?2, note = ?3
                         WHERE id = ?1 AND state IN ('pending', 'queued')",
                    )?
                    .execute(params![id, due_ms, note])?;
                Ok(changed == 1)
            })
            .await
    }

    async fn scheduled_action(&self, id: i64) -> StoreResult<Option<ScheduledAction>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM scheduled_actions WHERE id = ?1"
            ))?
            .query_row(params![id], action_row)
            .optional()?)
        })
    }

    async fn scheduled_actions(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ScheduledAction>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM scheduled_actions
                 WHERE tenant = ?1 AND (?2 = 0 OR state IN ('pending', 'queued')) ORDER BY id DESC LIMIT \
                     10000"
            ))?
            .query_map(params![tenant, open_only as i64], action_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn open_actions(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<ScheduledAction>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {ACTION_COLUMNS} FROM scheduled_actions {OPEN_ACTIONS_OF}"
            ))?
            .query_map(params![tenant, person_key], action_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn lifecycle(&self, tenant: &str, person_key: &str) -> StoreResult<Option<LifecycleRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {LIFECYCLE_COLUMNS} FROM lifecycles WHERE tenant = ?1 AND person_key = ?2"
            ))?
            .query_row(params![tenant, person_key], lifecycle_row)
            .optional()?)
        })
    }

    async fn put_lifecycle(&self, lease: &JobLease, tenant: &str, row: LifecycleRow) -> StoreResult<()> {
        let (lease, tenant) = (lease.clone(), tenant.to_string());
        self.writer
            .write(move |ctx| {
                check_lease(ctx.conn, &lease)?;
                write_lifecycle(ctx.conn, &tenant, &row)
            })
            .await
    }

    async fn lifecycles(&self, tenant: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {LIFECYCLE_COLUMNS} FROM lifecycles WHERE tenant = ?1 ORDER BY person_key LIMIT ?2"
            ))?
            .query_map(params![tenant, limit as i64], lifecycle_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn find_people(&self, tenant: &str, text: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>> {
        let pattern = contains_pattern(text.trim());
        self.read_blocking({
            let tenant = tenant.to_string();
            move |c| {
                // A scan of the tenant's lifecycle rows (LIKE with a leading wildcard uses no
                // index); it stops at `limit` matches.
                Ok(c.prepare_cached(&format!(
                    "SELECT {LIFECYCLE_COLUMNS} FROM lifecycles WHERE tenant = ?1
                       AND (name LIKE ?2 ESCAPE '\\' OR email LIKE ?2 ESCAPE '\\'
                            OR person_key LIKE ?2 ESCAPE '\\')
                     ORDER BY name IS NULL, name COLLATE NOCASE, person_key LIMIT ?3"
                ))?
                .query_map(params![tenant, pattern, limit as i64], lifecycle_row)?
                .collect::<Result<_, _>>()?)
            }
        })
        .await
    }

    async fn known_people(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                // Each side stops at the page size (an index walk), so a page costs the
                // same at the millionth person as at the first.
                "SELECT person_key FROM (SELECT person_key FROM lifecycles WHERE tenant = ?1
                     AND person_key > ?2 ORDER BY person_key LIMIT ?3)
                 UNION SELECT person_key FROM (SELECT DISTINCT person_key FROM links INDEXED BY links_person
                     WHERE tenant = ?1 AND person_key > ?2 ORDER BY person_key LIMIT ?3)
                 ORDER BY 1 LIMIT ?3",
            )?
            .query_map(params![tenant, after.unwrap_or(""), limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
        })
    }

    async fn reports_of(&self, tenant: &str, manager_keys: Vec<String>) -> StoreResult<Vec<String>> {
        self.read(|c| {
            let mut out = Vec::new();
            let mut q = c.prepare_cached(REPORTS_OF)?;
            for key in &manager_keys {
                for row in q.query_map(params![tenant, key], |r| r.get::<_, String>(0))? {
                    let person = row?;
                    if !out.contains(&person) {
                        out.push(person);
                    }
                }
            }
            Ok(out)
        })
    }
}
