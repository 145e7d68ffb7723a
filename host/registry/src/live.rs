//! Rules shadows on live events: for a chosen period, each person whose job completed is compared
//! under the candidate and the active version (as a shadow over everyone compares them), off the
//! job's path; the report is kept when the period ends.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use tenure_pipeline::JobListener;
use tokio::sync::mpsc;

/// People waiting to be compared, per run; past it, completions are counted as missed.
pub const LIVE_QUEUE: usize = 10_000;

/// The longest live shadow (a week).
pub const MAX_LIVE_SECONDS: u64 = 7 * 24 * 3600;

/// The live shadow runs, one per tenant at most.
#[derive(Default)]
pub struct LiveShadows {
    /// Read on every completed job (a shared lock), written only when a run starts or ends.
    runs: RwLock<HashMap<String, LiveRun>>,
}

struct LiveRun {
    people: mpsc::Sender<String>,
    missed: AtomicU64,
}

impl LiveShadows {
    /// Starts a tenant's run; the receiver gets each person whose job completes. None when the
    /// tenant already has one running.
    pub(crate) fn start(&self, tenant: &str) -> Option<mpsc::Receiver<String>> {
        let mut runs = self.runs.write().unwrap_or_else(|p| p.into_inner());
        if runs.contains_key(tenant) {
            return None;
        }
        let (people, receiver) = mpsc::channel(LIVE_QUEUE);
        runs.insert(
            tenant.to_string(),
            LiveRun {
                people,
                missed: AtomicU64::new(0),
            },
        );
        Some(receiver)
    }

    /// Ends a tenant's run; how many completions it had no room for.
    pub(crate) fn end(&self, tenant: &str) -> u64 {
        let mut runs = self.runs.write().unwrap_or_else(|p| p.into_inner());
        runs.remove(tenant).map_or(0, |r| r.missed.into_inner())
    }
}

impl JobListener for LiveShadows {
    fn completed(&self, tenant: &str, person_key: &str) {
        let runs = self.runs.read().unwrap_or_else(|p| p.into_inner());
        if let Some(run) = runs.get(tenant)
            && run.people.try_send(person_key.to_string()).is_err()
        {
            run.missed.fetch_add(1, Ordering::Relaxed);
        }
    }
}
