//! Impact previews per tenant: one at a time, and a few a minute. A preview
//! evaluates the rules twice for everyone in the tenant, on the plugin instances
//! that provisioning needs too, so no tenant can run them back to back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Previews a tenant may start at once after a quiet spell.
const BURST: f64 = 3.0;
/// How often a tenant earns another preview.
const EVERY: Duration = Duration::from_secs(20);

/// Why a preview may not start now, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub reason: String,
    pub retry_after_secs: u64,
}

#[derive(Debug, Default)]
struct TenantState {
    running: bool,
    tokens: f64,
    at: Option<Instant>,
}

/// The previews each tenant may start.
#[derive(Debug, Default)]
pub(crate) struct ImpactThrottle {
    tenants: Mutex<HashMap<String, TenantState>>,
}

/// Ends the tenant's running preview when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    throttle: Arc<ImpactThrottle>,
    tenant: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut tenants = self.throttle.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = tenants.get_mut(&self.tenant) {
            state.running = false;
        }
    }
}

impl ImpactThrottle {
    /// Starts a preview for `tenant`, or says why not.
    pub fn start(self: &Arc<Self>, tenant: &str) -> Result<Running, Throttled> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let state = tenants.entry(tenant.to_string()).or_default();
        let earned = state.at.map_or(BURST, |at| {
            now.duration_since(at).as_secs_f64() / EVERY.as_secs_f64()
        });
        state.tokens = (state.tokens + earned).min(BURST);
        state.at = Some(now);
        if state.running {
            return Err(Throttled {
                reason: "an impact preview for this tenant is running; retry when it ends".into(),
                retry_after_secs: 5,
            });
        }
        if state.tokens < 1.0 {
            let wait = ((1.0 - state.tokens) * EVERY.as_secs_f64()).ceil() as u64;
            return Err(Throttled {
                reason: format!(
                    "at most {BURST} impact previews in a row and one every {} s per tenant; retry in \
                        {wait} s",
                    EVERY.as_secs()
                ),
                retry_after_secs: wait.max(1),
            });
        }
        state.tokens -= 1.0;
        state.running = true;
        Ok(Running {
            throttle: self.clone(),
            tenant: tenant.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_preview_at_a_time_and_a_burst_then_one_every_interval() {
        let throttle = Arc::new(ImpactThrottle::default());
        let first = throttle.start("acme").unwrap();
        let busy = throttle.start("acme").unwrap_err();
        assert!(busy.reason.contains("running"), "{busy:?}");
        assert!(throttle.start("other").is_ok(), "tenants are apart");
        drop(first);
        drop(throttle.start("acme").unwrap());
        drop(throttle.start("acme").unwrap());
        let spent = throttle.start("acme").unwrap_err();
        assert!(spent.reason.contains("retry in"), "{spent:?}");
        assert!(spent.retry_after_secs >= 1 && spent.retry_after_secs <= EVERY.as_secs());
    }
}
