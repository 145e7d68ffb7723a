//! The KPIs over time, computed from the events, jobs and operations of a window.

use super::audit_log::time_zone_of;
use super::row::RowExt;
use crate::*;
use sqlx::PgPool;
use std::collections::BTreeMap;

#[derive(Default)]
struct SourceAcc {
    point: SourcePoint,
    durations: Vec<i64>,
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get(((last as f64) * p).round() as usize).copied()
}

/// The series for one tenant (see [`AuditStore::kpi_series`]).
pub(super) async fn kpi_series(
    pool: &PgPool,
    tenant: &str,
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
) -> StoreResult<KpiSeries> {
    let bucket_ms = bucket_ms.max(1);
    let mut sources: BTreeMap<(i64, String), SourceAcc> = BTreeMap::new();
    let rows = sqlx::query(
        "SELECT e.received_ms, e.source, coalesce(e.kind IN ('joiner', 'rehire') AND j.state =
            'completed', false),
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
        let received: i64 = r.at(0)?;
        let source: String = r.at(1)?;
        let start = kpis::bucket_of(received, since_ms, bucket_ms);
        let acc = sources.entry((start, source.clone())).or_default();
        acc.point.start_ms = start;
        acc.point.source = source;
        acc.point.events += 1;
        acc.point.failures += r.at::<Option<i64>>(6)?.unwrap_or(0);
        let provisioned: bool = r.at(2)?;
        let finished: Option<i64> = r.at(3)?;
        if let (true, Some(finished)) = (provisioned, finished) {
            acc.point.provisioned += 1;
            acc.durations.push(finished - received);
            let start_date: Option<String> = r.at(4)?;
            let zone = time_zone_of(r.at::<Option<&str>>(5)?);
            if let Some(day_starts) =
                start_date.and_then(|d| crate::sqlite::local_day_start_ms(&d, zone.as_deref()))
            {
                acc.point.first_day_total += 1;
                if finished < day_starts {
                    acc.point.first_day_ready += 1;
                }
            }
        }
    }
    let mut destinations: BTreeMap<(i64, String), DestinationPoint> = BTreeMap::new();
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
        let start = kpis::bucket_of(r.at(0)?, since_ms, bucket_ms);
        let destination: String = r.at(1)?;
        let point = destinations.entry((start, destination.clone())).or_default();
        point.start_ms = start;
        point.destination = destination;
        point.operations += 1;
        point.failures += r.at::<i64>(2)?;
    }
    Ok(KpiSeries {
        since_ms,
        until_ms,
        bucket_ms,
        sources: sources
            .into_values()
            .map(|mut acc| {
                acc.durations.sort_unstable();
                acc.point.time_to_provision_p50_ms = percentile(&acc.durations, 0.5);
                acc.point.time_to_provision_p95_ms = percentile(&acc.durations, 0.95);
                acc.point
            })
            .collect(),
        destinations: destinations.into_values().collect(),
    })
}
