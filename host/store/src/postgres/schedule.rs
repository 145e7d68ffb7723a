//! Dated actions and lifecycle records. Due actions are taken with `FOR UPDATE SKIP
//! LOCKED`, so each fires on exactly one host.

use super::row::RowExt;
use super::{PgStore, check_lease};
use crate::*;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

macro_rules! action_columns {
    () => {
        "id, tenant, person_key, destination, action, due_ms, state, reason, created_ms, finished_ms, note"
    };
}

macro_rules! lifecycle_columns {
    () => {
        "person_key, state, manager_key, doc, updated_ms, name, email"
    };
}

/// The reports of each manager given: one index walk per manager (a subquery each). With
/// `manager_key = ANY($2)` instead, the plan PostgreSQL keeps for a connection, made while the
/// table was small, walked the tenant's whole part of the manager index and filtered the
/// managers, for every job, however large the table had grown since (0.7 ms a job at 5,000
/// people).
pub(super) const REPORTS_OF: &str = "SELECT m.key, ARRAY(SELECT l.person_key FROM lifecycles l
                      WHERE l.tenant = $1 AND l.manager_key = m.key ORDER BY l.person_key)
     FROM unnest($2::TEXT[]) AS m(key)";

/// A person's open (pending or queued) actions, in no order. (With `ORDER BY id`, the plan
/// PostgreSQL keeps for a connection, made while the table was small, walked the tenant's
/// every action ever, done ones included, in id order and filtered the person's.)
pub(super) const OPEN_ACTIONS_OF: &str = concat!(
    "SELECT ",
    action_columns!(),
    " FROM scheduled_actions WHERE tenant = $1 AND person_key = $2 AND state IN ('pending', 'queued')"
);

/// The state column of a person whose state was never applied.
const NEVER_APPLIED: &str = "new";

fn lifecycle_row(r: &PgRow) -> StoreResult<LifecycleRow> {
    let state: &str = r.at(1)?;
    Ok(LifecycleRow {
        person_key: r.at(0)?,
        state: match state {
            NEVER_APPLIED => None,
            _ => Some(r.parsed(1)?),
        },
        manager_key: r.at(2)?,
        doc: r.at(3)?,
        updated_ms: r.at(4)?,
        name: r.at(5)?,
        email: r.at(6)?,
    })
}

fn action_row(r: &PgRow) -> StoreResult<ScheduledAction> {
    Ok(ScheduledAction {
        id: r.at(0)?,
        tenant: r.at(1)?,
        person_key: r.at(2)?,
        destination: r.at(3)?,
        action: r.parsed(4)?,
        due_ms: r.at(5)?,
        state: r.parsed(6)?,
        reason: r.at(7)?,
        created_ms: r.at(8)?,
        finished_ms: r.at(9)?,
        note: r.at(10)?,
    })
}

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

/// Inserts or replaces a person's lifecycle record.
pub(super) async fn write_lifecycle(
    c: &mut PgConnection,
    tenant: &str,
    row: &LifecycleRow,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO lifecycles (tenant, person_key, state, manager_key, doc, updated_ms, name, email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant, person_key) DO UPDATE SET state = excluded.state,
           manager_key = excluded.manager_key, doc = excluded.doc, updated_ms = excluded.updated_ms,
           name = coalesce(excluded.name, lifecycles.name),
           email = coalesce(excluded.email, lifecycles.email)",
    )
    .bind(tenant)
    .bind(&row.person_key)
    .bind(row.state.map_or(NEVER_APPLIED, LifecycleState::as_str))
    .bind(&row.manager_key)
    .bind(&row.doc)
    .bind(row.updated_ms)
    .bind(&row.name)
    .bind(&row.email)
    .execute(c)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl ScheduleStore for PgStore {
    async fn schedule_action(&self, a: NewScheduledAction) -> StoreResult<bool> {
        let added = sqlx::query(
            "INSERT INTO scheduled_actions (tenant, person_key, destination, action, due_ms, state, reason,
                 created_ms)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&a.tenant)
        .bind(&a.person_key)
        .bind(&a.destination)
        .bind(a.action.to_column())
        .bind(a.due_ms)
        .bind(&a.reason)
        .bind(a.now_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(added == 1)
    }

    async fn reschedule_action(&self, a: NewScheduledAction) -> StoreResult<bool> {
        let mut w = self.begin().await?;
        let open: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, state, due_ms FROM scheduled_actions
             WHERE tenant = $1 AND person_key = $2 AND destination = $3 AND action = $4
               AND state IN ('pending', 'queued') FOR UPDATE",
        )
        .bind(&a.tenant)
        .bind(&a.person_key)
        .bind(&a.destination)
        .bind(a.action.to_column())
        .fetch_optional(w.conn())
        .await?;
        let changed =
            match open {
                Some((_, state, _)) if state == ActionState::Queued.as_str() => false,
                Some((_, _, due)) if due == a.due_ms => false,
                Some((id, _, _)) => {
                    sqlx::query("UPDATE scheduled_actions SET due_ms = $2, reason = $3 WHERE id = $1")
                        .bind(id)
                        .bind(a.due_ms)
                        .bind(&a.reason)
                        .execute(w.conn())
                        .await?;
                    true
                }
                None => sqlx::query(
                    "INSERT INTO scheduled_actions (tenant, person_key, destination, action, due_ms, state,
                         reason, created_ms)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&a.tenant)
                .bind(&a.person_key)
                .bind(&a.destination)
                .bind(a.action.to_column())
                .bind(a.due_ms)
                .bind(&a.reason)
                .bind(a.now_ms)
                .execute(w.conn())
                .await?
                .rows_affected()
                    == 1,
            };
        w.commit().await?;
        Ok(changed)
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
        Ok(sqlx::query(
            "UPDATE scheduled_actions SET state = 'cancelled', finished_ms = $5, note = $6
             WHERE tenant = $1 AND person_key = $2 AND ($3::text IS NULL OR destination = $3)
               AND (action = $4 OR ($7 AND starts_with(action, $4)))
               AND state IN ('pending', 'queued')",
        )
        .bind(tenant)
        .bind(person_key)
        .bind(destination)
        .bind(kind)
        .bind(now_ms)
        .bind(note)
        .bind(prefix)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    async fn take_due_actions(&self, now_ms: i64, limit: usize) -> StoreResult<Vec<ScheduledAction>> {
        let mut due = sqlx::query(concat!(
            "UPDATE scheduled_actions SET state = 'queued'
             WHERE id IN (SELECT id FROM scheduled_actions WHERE state = 'pending' AND due_ms <= $1
                          ORDER BY due_ms LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING ",
            action_columns!()
        ))
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(action_row)
        .collect::<StoreResult<Vec<_>>>()?;
        due.sort_by_key(|a| (a.due_ms, a.id));
        Ok(due)
    }

    async fn finish_action(&self, id: i64, state: ActionState, note: &str, now_ms: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE scheduled_actions SET state = $2, note = $3, finished_ms = $4
             WHERE id = $1 AND state IN ('pending', 'queued')",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(note)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn defer_action(&self, id: i64, due_ms: i64, note: &str) -> StoreResult<bool> {
        Ok(sqlx::query(
            "UPDATE scheduled_actions SET state = 'pending', due_ms = $2, note = $3
             WHERE id = $1 AND state IN ('pending', 'queued')",
        )
        .bind(id)
        .bind(due_ms)
        .bind(note)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    async fn scheduled_action(&self, id: i64) -> StoreResult<Option<ScheduledAction>> {
        sqlx::query(concat!(
            "SELECT ",
            action_columns!(),
            " FROM scheduled_actions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(|r| action_row(&r))
        .transpose()
    }

    async fn scheduled_actions(&self, tenant: &str, open_only: bool) -> StoreResult<Vec<ScheduledAction>> {
        sqlx::query(concat!(
            "SELECT ",
            action_columns!(),
            " FROM scheduled_actions WHERE tenant = $1 AND (NOT $2 OR state IN ('pending', 'queued'))
              ORDER BY id DESC LIMIT 10000"
        ))
        .bind(tenant)
        .bind(open_only)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(action_row)
        .collect()
    }

    async fn open_actions(&self, tenant: &str, person_key: &str) -> StoreResult<Vec<ScheduledAction>> {
        let mut actions = sqlx::query(OPEN_ACTIONS_OF)
            .bind(tenant)
            .bind(person_key)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(action_row)
            .collect::<StoreResult<Vec<ScheduledAction>>>()?;
        // Oldest first.
        actions.sort_by_key(|a| a.id);
        Ok(actions)
    }

    async fn lifecycle(&self, tenant: &str, person_key: &str) -> StoreResult<Option<LifecycleRow>> {
        sqlx::query(concat!(
            "SELECT ",
            lifecycle_columns!(),
            " FROM lifecycles WHERE tenant = $1 AND person_key = $2"
        ))
        .bind(tenant)
        .bind(person_key)
        .fetch_optional(self.pool())
        .await?
        .map(|r| lifecycle_row(&r))
        .transpose()
    }

    async fn put_lifecycle(&self, lease: &JobLease, tenant: &str, row: LifecycleRow) -> StoreResult<()> {
        let mut w = self.begin().await?;
        check_lease(w.conn(), lease).await?;
        write_lifecycle(w.conn(), tenant, &row).await?;
        w.commit().await
    }

    async fn find_people(&self, tenant: &str, text: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>> {
        sqlx::query(concat!(
            "SELECT ",
            lifecycle_columns!(),
            " FROM lifecycles WHERE tenant = $1
                AND (name ILIKE $2 ESCAPE '\\' OR email ILIKE $2 ESCAPE '\\' OR person_key ILIKE $2
                    ESCAPE '\\')
              ORDER BY name IS NULL, lower(name), person_key LIMIT $3"
        ))
        .bind(tenant)
        .bind(contains_pattern(text.trim()))
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(lifecycle_row)
        .collect()
    }

    async fn lifecycles(&self, tenant: &str, limit: usize) -> StoreResult<Vec<LifecycleRow>> {
        sqlx::query(concat!(
            "SELECT ",
            lifecycle_columns!(),
            " FROM lifecycles WHERE tenant = $1 ORDER BY person_key LIMIT $2"
        ))
        .bind(tenant)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(lifecycle_row)
        .collect()
    }

    async fn known_people(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        // Each side stops at the page size (an index walk), so a page costs the same at the
        // millionth person as at the first.
        Ok(sqlx::query_scalar(
            "SELECT person_key FROM (
                 (SELECT person_key FROM lifecycles WHERE tenant = $1 AND person_key > $2
                  ORDER BY person_key LIMIT $3)
                 UNION
                 (SELECT DISTINCT person_key FROM links WHERE tenant = $1 AND person_key > $2
                  ORDER BY person_key LIMIT $3)) people
             ORDER BY 1 LIMIT $3",
        )
        .bind(tenant)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?)
    }

    async fn reports_of(&self, tenant: &str, manager_keys: Vec<String>) -> StoreResult<Vec<String>> {
        let rows: Vec<(String, Vec<String>)> = sqlx::query_as(REPORTS_OF)
            .bind(tenant)
            .bind(&manager_keys)
            .fetch_all(self.pool())
            .await?;
        // In the order of the managers given, each person once.
        let mut out: Vec<String> = Vec::new();
        for manager in &manager_keys {
            for (_, reports) in rows.iter().filter(|(m, _)| m == manager) {
                for person in reports {
                    if !out.contains(person) {
                        out.push(person.clone());
                    }
                }
            }
        }
        Ok(out)
    }
}
