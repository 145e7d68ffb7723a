//! The KPIs over time: per time bucket, per source and per destination.

use serde::Serialize;

/// The most buckets one series may have.
pub const MAX_KPI_BUCKETS: i64 = 1_000;

/// KPIs per time bucket from `since_ms` to `until_ms`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct KpiSeries {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket_ms: i64,
    /// One point per bucket and source that received events in it, oldest first.
    pub sources: Vec<SourcePoint>,
    /// One point per bucket and destination that had operations in it, oldest first.
    pub destinations: Vec<DestinationPoint>,
}

/// A source's events in one bucket (by when they arrived) and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SourcePoint {
    /// The bucket's first millisecond.
    pub start_ms: i64,
    pub source: String,
    pub events: i64,
    /// Joiners and rehires whose job completed.
    pub provisioned: i64,
    /// Milliseconds from receipt to done for those, median and 95th percentile.
    pub time_to_provision_p50_ms: Option<i64>,
    pub time_to_provision_p95_ms: Option<i64>,
    /// Of the provisioned with a start date, those done before the day began where they work.
    pub first_day_ready: i64,
    pub first_day_total: i64,
    /// Failed connector operations for these events.
    pub failures: i64,
}

/// A destination's connector operations that started in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DestinationPoint {
    pub start_ms: i64,
    pub destination: String,
    pub operations: i64,
    /// Failed attempts of those operations.
    pub failures: i64,
}

/// The first millisecond of the bucket holding `at`.
pub fn bucket_of(at_ms: i64, since_ms: i64, bucket_ms: i64) -> i64 {
    since_ms + (at_ms - since_ms).div_euclid(bucket_ms) * bucket_ms
}

/// Midnight UTC of an ISO date (`2026-03-01`), in milliseconds.
pub(crate) fn date_start_ms(date: &str) -> Option<i64> {
    let mut parts = date.get(..10)?.split('-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    Some(crate::days_from_civil(y, m, d) * 86_400_000)
}

/// The instant a calendar day (`YYYY-MM-DD`) begins in an IANA zone (UTC when the zone
/// is absent or unknown; a midnight a clock change skips begins at the first instant after).
pub(crate) fn local_day_start_ms(date: &str, zone: Option<&str>) -> Option<i64> {
    use chrono::TimeZone;
    let day = chrono::NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok()?;
    let zone: chrono_tz::Tz = zone.and_then(|z| z.parse().ok()).unwrap_or(chrono_tz::UTC);
    let mut local = day.and_hms_opt(0, 0, 0)?;
    for _ in 0..4 {
        if let Some(at) = zone.from_local_datetime(&local).earliest() {
            return Some(at.timestamp_millis());
        }
        local += chrono::Duration::minutes(30);
    }
    date_start_ms(date)
}

/// The value at fraction `p` of sorted values (nearest rank).
pub(crate) fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get(((last as f64) * p).round() as usize).copied()
}

/// A joiner or rehire whose job completed, as the KPIs count it.
pub(crate) struct Hire<'a> {
    pub received_ms: i64,
    pub finished_ms: i64,
    pub start_date: Option<&'a str>,
    /// The person's IANA zone (their first day begins at their own midnight).
    pub time_zone: Option<&'a str>,
}

/// Times to provision, and first days with access, of a set of hires.
#[derive(Default)]
pub(crate) struct HireStats {
    durations: Vec<i64>,
    pub first_day_ready: i64,
    pub first_day_total: i64,
}

impl HireStats {
    pub fn add(&mut self, hire: Hire<'_>) {
        self.durations.push(hire.finished_ms - hire.received_ms);
        if let Some(day_starts) = hire
            .start_date
            .and_then(|d| local_day_start_ms(d, hire.time_zone))
        {
            self.first_day_total += 1;
            if hire.finished_ms < day_starts {
                self.first_day_ready += 1;
            }
        }
    }

    /// The median and 95th percentile time to provision.
    pub fn percentiles(&mut self) -> (Option<i64>, Option<i64>) {
        self.durations.sort_unstable();
        (
            percentile(&self.durations, 0.5),
            percentile(&self.durations, 0.95),
        )
    }

    /// The KPIs with the counts the store gives.
    pub fn kpis(mut self, events: i64, completed_jobs: i64, dead_jobs: i64, failures: i64) -> crate::Kpis {
        let (p50, p95) = self.percentiles();
        let (ready, total) = (self.first_day_ready, self.first_day_total);
        crate::Kpis {
            events,
            completed_jobs,
            dead_jobs,
            time_to_provision_p50_ms: p50,
            time_to_provision_p95_ms: p95,
            first_day_ready: ready,
            first_day_total: total,
            first_day_access_rate: (total > 0).then(|| ready as f64 / total as f64),
            errors_per_1000_events: if events > 0 {
                failures as f64 * 1000.0 / events as f64
            } else {
                0.0
            },
        }
    }
}

/// Builds a [`KpiSeries`] from a window's events and operations, as any backend reads them.
pub(crate) struct SeriesBuilder {
    since_ms: i64,
    until_ms: i64,
    bucket_ms: i64,
    sources: std::collections::BTreeMap<(i64, String), (SourcePoint, HireStats)>,
    destinations: std::collections::BTreeMap<(i64, String), DestinationPoint>,
}

impl SeriesBuilder {
    pub fn new(since_ms: i64, until_ms: i64, bucket_ms: i64) -> Self {
        SeriesBuilder {
            since_ms,
            until_ms,
            bucket_ms: bucket_ms.max(1),
            sources: Default::default(),
            destinations: Default::default(),
        }
    }

    /// An event received in the window: its source, its operations' failures, and the hire
    /// it provisioned, if it did.
    pub fn event(&mut self, received_ms: i64, source: &str, failures: i64, hire: Option<Hire<'_>>) {
        let start = bucket_of(received_ms, self.since_ms, self.bucket_ms);
        let (point, hires) = self.sources.entry((start, source.to_string())).or_default();
        point.start_ms = start;
        point.source = source.to_string();
        point.events += 1;
        point.failures += failures;
        if let Some(hire) = hire {
            point.provisioned += 1;
            hires.add(hire);
        }
    }

    /// A connector operation started in the window.
    pub fn operation(&mut self, started_ms: i64, destination: &str, failures: i64) {
        let start = bucket_of(started_ms, self.since_ms, self.bucket_ms);
        let point = self
            .destinations
            .entry((start, destination.to_string()))
            .or_default();
        point.start_ms = start;
        point.destination = destination.to_string();
        point.operations += 1;
        point.failures += failures;
    }

    pub fn finish(self) -> KpiSeries {
        KpiSeries {
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            bucket_ms: self.bucket_ms,
            sources: self
                .sources
                .into_values()
                .map(|(mut point, mut hires)| {
                    (point.time_to_provision_p50_ms, point.time_to_provision_p95_ms) = hires.percentiles();
                    point.first_day_ready = hires.first_day_ready;
                    point.first_day_total = hires.first_day_total;
                    point
                })
                .collect(),
            destinations: self.destinations.into_values().collect(),
        }
    }
}
