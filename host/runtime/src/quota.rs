//! A tenant's share of the plugin host ([`PluginQuota`]): calls running at once and calls started
//! per minute, over all its plugins. Each tenant has its own state, so one tenant over its quota
//! delays only its own calls. Calls per minute are the deployment's: with several hosts each
//! allows its share ([`LiveHosts`]); calls running at once are each host's.

use crate::error::CallError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenure_capabilities::PluginQuota;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a tenant over its concurrency limit is told to wait before trying again.
const CONCURRENCY_RETRY: Duration = Duration::from_secs(1);

/// The longest a call waits in line for the tenant's calls per minute; a call whose turn is further
/// off is put off instead, so a tenant's backlog does not hold the host's shared workers.
const MAX_RATE_WAIT: Duration = Duration::from_secs(2);

/// How many hosts of the deployment are alive (each holds a lease on itself; the pipeline counts
/// them), so that a limit meant for the deployment is split between them; 1 for a host alone.
#[derive(Debug)]
pub struct LiveHosts(AtomicU32);

impl Default for LiveHosts {
    fn default() -> Self {
        LiveHosts(AtomicU32::new(1))
    }
}

impl LiveHosts {
    /// Records the count (at least this host).
    pub fn set(&self, hosts: u64) {
        self.0
            .store(hosts.clamp(1, u64::from(u32::MAX)) as u32, Ordering::Relaxed);
    }

    /// The hosts alive, this one included.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed).max(1)
    }
}

/// A token bucket of calls per minute, for the deployment; this host fills it at its share of the
/// rate, up to its share of the burst. Tokens below zero are turns promised to calls waiting in
/// line; `put_off` counts calls sent away recently, so each is told a later turn than the last
/// (spread out, they come back one by one instead of all at once).
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    put_off: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: u32) -> Self {
        let burst = (f64::from(per_minute) / 10.0).max(1.0);
        Bucket {
            per_second: f64::from(per_minute) / 60.0,
            burst,
            tokens: burst,
            put_off: 0.0,
            at: Instant::now(),
        }
    }

    /// Takes a turn as one of `hosts`: at once, or after the returned wait (at most `max_wait`);
    /// or says how long until the caller should come back.
    fn take(&mut self, now: Instant, max_wait: Duration, hosts: u32) -> Result<Duration, Duration> {
        let hosts = f64::from(hosts.max(1));
        let (per_second, burst) = (self.per_second / hosts, (self.burst / hosts).max(1.0));
        let earned = now.duration_since(self.at).as_secs_f64() * per_second;
        self.tokens = (self.tokens + earned).min(burst);
        self.put_off = (self.put_off - earned).max(0.0);
        self.at = now;
        if per_second <= 0.0 {
            return Err(Duration::from_secs(60));
        }
        let wait = ((1.0 - self.tokens) / per_second).max(0.0);
        if wait <= max_wait.as_secs_f64() {
            self.tokens -= 1.0;
            return Ok(Duration::from_secs_f64(wait));
        }
        self.put_off += 1.0;
        Err(Duration::from_secs_f64(wait + self.put_off / per_second))
    }
}

/// What a tenant's quota refused, counted for metrics.
#[derive(Debug, Default)]
pub struct QuotaCounters {
    /// Calls put off because the tenant had started its calls per minute.
    pub rate_refused: AtomicU64,
    /// Calls that waited their whole deadline for one of the tenant's concurrent slots.
    pub concurrency_refused: AtomicU64,
}

/// One tenant's quota state.
#[derive(Debug)]
pub(crate) struct TenantQuota {
    tenant: String,
    quota: PluginQuota,
    running: Option<std::sync::Arc<Semaphore>>,
    bucket: Option<Mutex<Bucket>>,
    hosts: std::sync::Arc<LiveHosts>,
    pub(crate) counters: std::sync::Arc<QuotaCounters>,
}

impl TenantQuota {
    pub(crate) fn new(
        tenant: &str,
        quota: &PluginQuota,
        counters: std::sync::Arc<QuotaCounters>,
        hosts: std::sync::Arc<LiveHosts>,
    ) -> Self {
        TenantQuota {
            tenant: tenant.to_string(),
            quota: quota.clone(),
            running: quota
                .max_concurrent_calls
                .map(|n| std::sync::Arc::new(Semaphore::new(n.max(1) as usize))),
            bucket: quota.calls_per_minute.map(|n| Mutex::new(Bucket::new(n))),
            hosts,
            counters,
        }
    }

    /// Admits one call of `plugin`: a token from the tenant's calls per minute, then one of its
    /// concurrent slots (waiting up to `until`). The permit is held for the call.
    pub(crate) async fn admit(
        &self,
        plugin: impl Fn() -> String,
        until: tokio::time::Instant,
    ) -> Result<Option<OwnedSemaphorePermit>, CallError> {
        if let Some(bucket) = &self.bucket {
            let max_wait = until
                .saturating_duration_since(tokio::time::Instant::now())
                .min(MAX_RATE_WAIT);
            let hosts = self.hosts.get();
            let turn = bucket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(Instant::now(), max_wait, hosts);
            match turn {
                Ok(wait) if wait.is_zero() => {}
                Ok(wait) => tokio::time::sleep(wait).await,
                Err(come_back) => {
                    self.counters.rate_refused.fetch_add(1, Ordering::Relaxed);
                    return Err(CallError::OverQuota {
                        plugin: plugin(),
                        reason: format!(
                            "tenant {} started its {} plugin calls per minute \
                             (tenants.{}.plugin_quota.calls_per_minute){}",
                            self.tenant,
                            self.quota.calls_per_minute.unwrap_or_default(),
                            self.tenant,
                            if hosts > 1 {
                                format!(", this host's share of {hosts} hosts")
                            } else {
                                String::new()
                            }
                        ),
                        retry_after_ms: come_back.as_millis().max(1) as u64,
                    });
                }
            }
        }
        let Some(running) = &self.running else {
            return Ok(None);
        };
        match tokio::time::timeout_at(until, running.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => {
                self.counters.concurrency_refused.fetch_add(1, Ordering::Relaxed);
                Err(CallError::OverQuota {
                    plugin: plugin(),
                    reason: format!(
                        "tenant {} has its {} plugin calls running for the whole deadline \
                         (tenants.{}.plugin_quota.max_concurrent_calls)",
                        self.tenant,
                        self.quota.max_concurrent_calls.unwrap_or_default(),
                        self.tenant
                    ),
                    retry_after_ms: CONCURRENCY_RETRY.as_millis() as u64,
                })
            }
        }
    }

    /// Calls of the tenant running now (when it has a concurrency limit).
    pub(crate) fn running(&self) -> Option<u64> {
        let (max, running) = (self.quota.max_concurrent_calls?, self.running.as_ref()?);
        Some(u64::from(max.max(1)).saturating_sub(running.available_permits() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_a_tenth_of_a_minute_at_once_then_turns_in_line_then_later_turns() {
        let start = Instant::now();
        let none = Duration::ZERO;
        let mut b = Bucket::new(60);
        for _ in 0..6 {
            assert_eq!(b.take(start, none, 1), Ok(Duration::ZERO));
        }
        // Out of tokens: a call that may wait 2 s gets the next turn, one second off.
        let wait = b.take(start, Duration::from_secs(2), 1).unwrap();
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        let second = b.take(start, Duration::from_secs(2), 1).unwrap();
        assert!(second > Duration::from_millis(1990), "the turn after: {second:?}");
        // Calls that cannot wait so long are sent away, each to a later turn than the last.
        let first_away = b.take(start, none, 1).unwrap_err();
        let second_away = b.take(start, none, 1).unwrap_err();
        assert!(first_away >= Duration::from_secs(3), "{first_away:?}");
        assert!(
            second_away >= first_away + Duration::from_millis(990),
            "{second_away:?}"
        );
        let mut slow = Bucket::new(1);
        assert_eq!(slow.take(start, none, 1), Ok(Duration::ZERO));
        assert!(slow.take(start, none, 1).unwrap_err() >= Duration::from_secs(59));
    }

    #[test]
    fn each_of_several_hosts_fills_its_share_of_the_bucket() {
        let start = Instant::now();
        let none = Duration::ZERO;
        // 60 a minute for the deployment, three hosts: a burst of 2 here, then one every 3 s.
        let mut b = Bucket::new(60);
        for _ in 0..2 {
            assert_eq!(b.take(start, none, 3), Ok(Duration::ZERO));
        }
        let wait = b.take(start, Duration::from_secs(5), 3).unwrap();
        assert!(
            wait > Duration::from_millis(2_990) && wait <= Duration::from_secs(3),
            "{wait:?}"
        );
        // A host alone again has the whole rate.
        let later = start + Duration::from_secs(10);
        for _ in 0..6 {
            assert_eq!(b.take(later, none, 1), Ok(Duration::ZERO));
        }
        assert!(b.take(later, none, 1).is_err());
        let hosts = LiveHosts::default();
        assert_eq!(hosts.get(), 1);
        hosts.set(0);
        assert_eq!(hosts.get(), 1, "never fewer than this host");
        hosts.set(4);
        assert_eq!(hosts.get(), 4);
    }
}
