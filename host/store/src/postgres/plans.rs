//! The statements every job runs keep an index walk by their whole key in the plan
//! PostgreSQL caches for a connection, even when that plan is made while the store is small:
//! sqlx prepares each statement once per connection, and PostgreSQL keeps a generic plan
//! made from the table's size at the time until the table is analyzed again.

use super::{PgOptions, PgStore, operations, schedule};
use crate::crypto::MasterKey;

mod postgres_bed {
    include!("../../tests/support/postgres_bed.rs");
}

/// A statement every job runs, and how to plan it on a small store.
struct HotStatement {
    /// The prepared statement's name.
    name: &'static str,
    sql: &'static str,
    /// Its arguments, as `EXECUTE` takes them.
    args: &'static str,
    /// The rows its table holds when it is planned.
    rows: &'static str,
    /// The column its index condition must hold (never a filter).
    key: &'static str,
}

const HOT_STATEMENTS: [HotStatement; 3] = [
    HotStatement {
        name: "reports_of",
        sql: schedule::REPORTS_OF,
        args: "('t', ARRAY['m', 'x'])",
        rows: "INSERT INTO lifecycles (tenant, person_key, state, doc, updated_ms)
               SELECT 't', 'hr:' || n, 'active', repeat('x', 300), 0 FROM generate_series(1, 30) n",
        key: "manager_key",
    },
    HotStatement {
        name: "link_of",
        sql: operations::LINK_OF,
        args: "('t', 'sandbox', 'hr:7')",
        rows: "INSERT INTO links (tenant, destination, person_key, anchor, managed_groups, updated_ms)
               SELECT 't', d, 'hr:' || n, 'a-' || n, '[]', 0
               FROM generate_series(1, 30) n, unnest(ARRAY['sandbox', 'ldap']) d",
        key: "person_key",
    },
    HotStatement {
        name: "open_actions_of",
        sql: schedule::OPEN_ACTIONS_OF,
        args: "('t', 'hr:7')",
        rows: "INSERT INTO scheduled_actions (tenant, person_key, destination, action, due_ms, state, reason,
                                              created_ms)
               SELECT 't', 'hr:' || n, '', 'refresh', 0, s, 'test', 0
               FROM generate_series(1, 30) n, unnest(ARRAY['done', 'cancelled', 'pending']) s",
        key: "person_key",
    },
];

#[tokio::test]
async fn the_statements_every_job_runs_walk_an_index_by_their_whole_key_when_planned_on_a_small_store() {
    let options = PgOptions {
        max_connections: 1,
        schema: Some(postgres_bed::fresh_schema("plans")),
        ..PgOptions::new(postgres_bed::url())
    };
    let store = PgStore::open(&options, MasterKey::from_bytes([7; 32]))
        .await
        .expect("open the PostgreSQL store");
    let mut conn = store.pool().acquire().await.expect("a connection");
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .expect("set the plan cache mode");
    for HotStatement {
        name,
        sql,
        args,
        rows,
        key,
    } in HOT_STATEMENTS
    {
        sqlx::raw_sql(rows)
            .execute(&mut *conn)
            .await
            .expect("the table's rows");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {name} AS {sql}")))
            .execute(&mut *conn)
            .await
            .expect("prepare");
        let plan: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE {name}{args}")))
                .fetch_all(&mut *conn)
                .await
                .expect("explain");
        let walks = |step: &String| step.contains("Index Cond") && step.contains(key);
        let filters = |step: &String| step.contains("Filter") && step.contains(key);
        assert!(plan.iter().any(walks), "{name}: {plan:#?}");
        assert!(!plan.iter().any(filters), "{name}: {plan:#?}");
        assert!(
            !plan.iter().any(|step| step.contains("Seq Scan")),
            "{name}: {plan:#?}"
        );
    }
    drop(conn);
    store.close().await;
}
