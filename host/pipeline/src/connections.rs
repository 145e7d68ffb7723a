//! Each destination's health as this host sees it: when a change last went through, the last
//! failure (its class and message), and whether it asked to be left alone (a 429's
//! `Retry-After`). Kept in memory per host, like the metrics.

use crate::{Failure, FailureClass, Pipeline, PipelineError};
use serde::Serialize;

/// What one host last saw of a destination.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    last_success_ms: Option<i64>,
    last_error: Option<LastError>,
}

/// A destination's last failure.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LastError {
    pub at_ms: i64,
    pub class: FailureClass,
    pub message: String,
}

/// A destination's health, as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DestinationHealth {
    pub destination: String,
    pub connector: String,
    /// When an operation last went through (ms since the epoch), since this host started.
    pub last_success_ms: Option<i64>,
    pub last_error: Option<LastError>,
    /// Calls are held back this much longer, for this reason (a 429's `Retry-After`).
    pub held_back_ms: Option<u64>,
    pub held_back_because: Option<String>,
}

impl Pipeline {
    /// An operation went through in `destination`.
    pub(crate) fn destination_succeeded(&self, tenant: &str, destination: &str) {
        let mut seen = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        seen.entry((tenant.to_string(), destination.to_string()))
            .or_default()
            .last_success_ms = Some(self.now());
    }

    /// `destination` failed with `f`.
    pub(crate) fn destination_failed(&self, tenant: &str, destination: &str, f: &Failure) {
        let mut seen = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        seen.entry((tenant.to_string(), destination.to_string()))
            .or_default()
            .last_error = Some(LastError {
            at_ms: self.now(),
            class: f.class,
            message: f.message.clone(),
        });
    }

    /// Every destination of a tenant, in its order, with what this host saw of it.
    pub fn connections(&self, tenant: &str) -> Result<Vec<DestinationHealth>, PipelineError> {
        let t = self.tenant(tenant)?;
        let seen = self.connections.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(t.destinations
            .iter()
            .map(|d| {
                let s = seen
                    .get(&(tenant.to_string(), d.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                let held = self.throttled(tenant, &d.name);
                DestinationHealth {
                    destination: d.name.clone(),
                    connector: d.connector.clone(),
                    last_success_ms: s.last_success_ms,
                    last_error: s.last_error,
                    held_back_ms: held.as_ref().map(|(wait, _)| wait.as_millis() as u64),
                    held_back_because: held.map(|(_, why)| why),
                }
            })
            .collect())
    }
}
