//! The KPIs over time, computed from the events, jobs and operations of a window.

use crate::kpis::{Hire, SeriesBuilder};
use crate::*;
use rusqlite::{Connection, OptionalExtension, params};

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

/// The series for one tenant (see [`AuditStore::kpi_series`]).
pub(super) fn kpi_series(
    c: &Connection,
    tenant: &str,
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
) -> StoreResult<KpiSeries> {
    let mut series = SeriesBuilder::new(since_ms, until_ms, bucket_ms);
    let first = first_event_at(c, since_ms)?;
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
        let received_ms: i64 = r.get(0)?;
        let source: String = r.get(1)?;
        let provisioned: Option<bool> = r.get(2)?;
        let finished: Option<i64> = r.get(3)?;
        let start_date: Option<String> = r.get(4)?;
        let zone: Option<String> = r.get(5)?;
        let hire = match (provisioned, finished) {
            (Some(true), Some(finished_ms)) => Some(Hire {
                received_ms,
                finished_ms,
                start_date: start_date.as_deref(),
                time_zone: zone.as_deref(),
            }),
            _ => None,
        };
        series.event(
            received_ms,
            &source,
            r.get::<_, Option<i64>>(6)?.unwrap_or(0),
            hire,
        );
    }
    let mut operations = c.prepare_cached(
        "SELECT started_ms, destination, failures FROM operations
         WHERE tenant = ?1 AND started_ms >= ?2 AND started_ms < ?3",
    )?;
    let mut rows = operations.query(params![tenant, since_ms, until_ms])?;
    while let Some(r) = rows.next()? {
        series.operation(r.get(0)?, &r.get::<_, String>(1)?, r.get(2)?);
    }
    Ok(series.finish())
}
