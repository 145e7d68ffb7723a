//! This host's presence in its deployment: a lease on itself (`host:<owner>`), renewed every
//! ten seconds, and the count of the hosts holding one. Limits meant for the deployment are
//! split by that count, since a balancer spreads the work over the hosts: a webhook source's
//! deliveries per second and a tenant's plugin calls per minute. A host that stops renewing
//! (it died or lost the database) drops out of the count within half a minute; one that stops
//! cleanly, at once.

use crate::Pipeline;
use std::time::Duration;
use tenure_store::StoreError;

/// The names of the hosts' leases on themselves.
const HOST_LEASE_PREFIX: &str = "host:";
/// How long a host counts as alive after it last renewed its lease.
const HOST_LEASE_MS: i64 = 30_000;
/// How often a host renews it and counts the others.
const RENEW_EVERY: Duration = Duration::from_secs(10);

impl Pipeline {
    /// Takes or renews the lease `name` for this host until `hold` from now; false while another
    /// live host holds it, or when the store cannot say (logged).
    pub(crate) async fn holds_lease(&self, name: &str, hold: Duration) -> bool {
        let now = self.now();
        let until = now.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX / 2));
        match self.store.hold_lease(name, &self.owner, now, until).await {
            Ok(held) => held,
            Err(e) => {
                tracing::error!(lease = name, error = %e, "cannot take or renew a lease");
                false
            }
        }
    }

    fn host_lease(&self) -> String {
        format!("{HOST_LEASE_PREFIX}{}", self.owner)
    }

    /// Renews this host's lease on itself and records how many hosts are alive; that count.
    pub async fn refresh_live_hosts(&self) -> Result<u32, StoreError> {
        let now = self.now();
        self.store
            .hold_lease(&self.host_lease(), &self.owner, now, now + HOST_LEASE_MS)
            .await?;
        let hosts = self.store.live_leases(HOST_LEASE_PREFIX, now).await?;
        self.runtime.set_live_hosts(hosts);
        let hosts = self.runtime.live_hosts();
        self.metrics.hosts_alive.set(i64::from(hosts));
        Ok(hosts)
    }

    /// The deployment's hosts alive, as last counted (1 for a host alone).
    pub fn live_hosts(&self) -> u32 {
        self.runtime.live_hosts()
    }

    /// Gives up this host's lease on itself (it stops): the others count one host fewer at once.
    pub(crate) async fn leave_deployment(&self) {
        if let Err(e) = self.store.release_lease(&self.host_lease(), &self.owner).await {
            tracing::warn!(error = %e, "the host's own lease was not released");
        }
    }
}

/// Keeps this host counted among the deployment's hosts while the workers run.
pub(crate) async fn run(p: std::sync::Arc<Pipeline>) {
    let mut last = 1;
    loop {
        match p.refresh_live_hosts().await {
            Ok(hosts) if hosts != last => {
                tracing::info!(hosts, "hosts alive in the deployment");
                last = hosts;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot renew the host's own lease"),
        }
        tokio::time::sleep(RENEW_EVERY).await;
    }
}
