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
