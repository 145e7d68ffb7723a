//! The KPIs over time, computed from the events, jobs and operations of a window.

use super::audit_log::time_zone_of;
use super::row::RowExt;
use crate::kpis::{Hire, SeriesBuilder};
use crate::*;
use sqlx::PgPool;

/// The series for one tenant (see [`AuditStore::kpi_series`]).
pub(super) async fn kpi_series(
    pool: &PgPool,
    tenant: &str,
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
) -> StoreResult<KpiSeries> {
    let mut series = SeriesBuilder::new(since_ms, until_ms, bucket_ms);
    let rows = sqlx::query(
        "SELECT e.received_ms, e.source,
                coalesce(e.kind IN ('joiner', 'rehire') AND j.state = 'completed', false),
                j.finished_ms, e.start_date, CASE WHEN e.start_date IS NOT NULL THEN l.doc END,
                (SELECT coalesce(sum(o.failures), 0)::bigint FROM operations o WHERE o.job_id = j.id)
         FROM events e
         LEFT JOIN jobs j ON j.event_id = e.id
         LEFT JOIN lifecycles l ON l.tenant = e.tenant AND l.person_key = e.person_key
         WHERE e.tenant = $1 AND e.received_ms >= $2 AND e.received_ms < $3",
    )
    .bind(tenant)
    .bind(since_ms)
    .bind(until_ms)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let received_ms: i64 = r.at(0)?;
        let source: &str = r.at(1)?;
        let provisioned: bool = r.at(2)?;
        let finished: Option<i64> = r.at(3)?;
        let start_date: Option<&str> = r.at(4)?;
        let zone = time_zone_of(r.at::<Option<&str>>(5)?);
        let hire = match (provisioned, finished) {
            (true, Some(finished_ms)) => Some(Hire {
                received_ms,
                finished_ms,
                start_date,
                time_zone: zone.as_deref(),
            }),
            _ => None,
        };
        series.event(received_ms, source, r.at::<Option<i64>>(6)?.unwrap_or(0), hire);
    }
    let rows = sqlx::query(
        "SELECT started_ms, destination, failures FROM operations
         WHERE tenant = $1 AND started_ms >= $2 AND started_ms < $3",
    )
    .bind(tenant)
    .bind(since_ms)
    .bind(until_ms)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        series.operation(r.at(0)?, r.at::<&str>(1)?, r.at(2)?);
    }
    Ok(series.finish())
}
