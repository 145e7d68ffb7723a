//! The KPIs over time, computed from the events, jobs and operations of a window.

use super::local_day_start_ms;
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

/// The first event id received at or after `at_ms`: events are stored in the order they
/// arrive, so a binary search over ids finds the window without an index on time.
fn first_event_at(c: &Connection, at_ms: i64) -> StoreResult<i64> {
    let Some(max) = c.query_row("SELECT max(id) FROM events", [], |r| r.get::<_, Option<i64>>(0))? else {
        return Ok(1);
    };
    let mut at = c.prepare_cached("SELECT received_ms FROM events WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    let (mut low, mut high) = (1_i64, max + 1);
    while low < high {
        let mid = low + (high - low) / 2;
        let received: Option<i64> = at.query_row([mid], |r| r.get(0)).optional()?;
        if received.is_none_or(|t| t >= at_ms) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    Ok(low)
}

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
pub(super) fn kpi_series(
    c: &Connection,
    tenant: &str,
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
) -> StoreResult<KpiSeries> {
    let bucket_ms = bucket_ms.max(1);
    let first = first_event_at(c, since_ms)?;
    let mut sources: BTreeMap<(i64, String), SourceAcc> = BTreeMap::new();
    let mut events = c.prepare_cached(
        "SELECT e.received_ms, e.source, e.kind IN ('joiner', 'rehire') AND j.state = 'completed',
                j.finished_ms, e.start_date, json_extract(l.doc, '$.time_zone'),
                (SELECT coalesce(sum(o.failures), 0) FROM operations o WHERE o.job_id = j.id)
         FROM events e
         LEFT JOIN jobs j ON j.event_id = e.id
         LEFT JOIN lifecycles l ON l.tenant = e.tenant AND l.person_key = e.person_key
         WHERE e.id >= ?1 AND e.tenant = ?2 AND e.received_ms >= ?3 AND e.received_ms < ?4",
    )?;
    let mut rows = events.query(params![first, tenant, since_ms, until_ms])?;
    while let Some(r) = rows.next()? {
        let received: i64 = r.get(0)?;
        let source: String = r.get(1)?;
        let start = kpis::bucket_of(received, since_ms, bucket_ms);
        let acc = sources.entry((start, source.clone())).or_default();
        acc.point.start_ms = start;
        acc.point.source = source;
        acc.point.events += 1;
        acc.point.failures += r.get::<_, Option<i64>>(6)?.unwrap_or(0);
        let provisioned: Option<bool> = r.get(2)?;
        let finished: Option<i64> = r.get(3)?;
        if let (Some(true), Some(finished)) = (provisioned, finished) {
            acc.point.provisioned += 1;
            acc.durations.push(finished - received);
            let start_date: Option<String> = r.get(4)?;
            let zone: Option<String> = r.get(5)?;
            if let Some(day_starts) = start_date.and_then(|d| local_day_start_ms(&d, zone.as_deref())) {
                acc.point.first_day_total += 1;
                if finished < day_starts {
                    acc.point.first_day_ready += 1;
                }
            }
        }
    }
    let mut destinations: BTreeMap<(i64, String), DestinationPoint> = BTreeMap::new();
    let mut operations = c.prepare_cached(
        "SELECT started_ms, destination, failures FROM operations
         WHERE tenant = ?1 AND started_ms >= ?2 AND started_ms < ?3",
    )?;
    let mut rows = operations.query(params![tenant, since_ms, until_ms])?;
    while let Some(r) = rows.next()? {
        let start = kpis::bucket_of(r.get(0)?, since_ms, bucket_ms);
        let destination: String = r.get(1)?;
        let point = destinations.entry((start, destination.clone())).or_default();
        point.start_ms = start;
        point.destination = destination;
        point.operations += 1;
        point.failures += r.get::<_, i64>(2)?;
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
