//! The queue's dispatcher: claims due jobs up to the concurrency limit, runs
//! each on its own task, keeps their leases alive, and drains on shutdown.

use crate::Pipeline;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// How often the dispatcher looks for due scheduled actions.
const SCHEDULE_SCAN: Duration = Duration::from_secs(1);

impl Pipeline {
    /// Runs the workers until `shutdown` turns true, then waits (up to `drain`) for
    /// in-flight jobs. A job still running at exit is picked up again when its lease expires.
    pub async fn run_workers(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, drain: Duration) {
        let q = self.config.queue.clone();
        let slots = Arc::new(Semaphore::new(q.concurrency.max(1)));
        let enrich_slots = Arc::new(Semaphore::new(q.enrich_concurrency.max(1)));
        let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let enriching: Arc<Mutex<HashSet<i64>>> = Arc::default();
        let heartbeat = tokio::spawn(heartbeat(self.clone(), in_flight.clone(), enriching.clone()));
        let retention = tokio::spawn(crate::retention::run(self.clone()));
        let notifications = tokio::spawn(crate::notify::sender::run(self.clone()));
        let follow = tokio::spawn(self.clone().follow_changes(shutdown.clone()));
        let presence = tokio::spawn(crate::presence::run(self.clone()));
        let mut last_delivery_scan: Option<std::time::Instant> = None;
        let mut tenants: Vec<String> = self.config.tenants.keys().cloned().collect();
        let mut last_schedule_scan: Option<std::time::Instant> = None;
        // By the pipeline's clock, as the reconciliations' leases are.
        let mut last_reconcile_sweep = self.now();
        if let Err(e) = self.requeue_taken_actions().await {
            tracing::error!(error = %e, "cannot requeue scheduled actions taken before a restart");
        }
        if let Err(e) = self.plan_reconciliations().await {
            tracing::error!(error = %e, "cannot schedule reconciliations");
        }
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Dated actions (grace-period deletions) become jobs when due; scanned once a second.
            if last_schedule_scan.is_none_or(|t| t.elapsed() >= SCHEDULE_SCAN) {
                last_schedule_scan = Some(std::time::Instant::now());
                if let Err(e) = self.fire_due_actions().await {
                    tracing::error!(error = %e, "cannot queue due scheduled actions");
                }
                let lease_ms = crate::scheduled_reconcile::RECONCILE_LEASE.as_millis() as i64;
                if self.now() - last_reconcile_sweep >= lease_ms {
                    last_reconcile_sweep = self.now();
                    if let Err(e) = self.end_abandoned_reconciliations().await {
                        tracing::error!(error = %e, "cannot end abandoned reconciliations");
                    }
                }
            }
            // Stored webhook deliveries: right after one arrives, and once a second for retries.
            let arrived = self
                .deliveries_waiting
                .swap(false, std::sync::atomic::Ordering::AcqRel);
            if (arrived || last_delivery_scan.is_none_or(|t| t.elapsed() >= SCHEDULE_SCAN))
                && enrich_slots.available_permits() > 0
            {
                last_delivery_scan = Some(std::time::Instant::now());
                self.dispatch_deliveries(&enrich_slots, &enriching).await;
            }
            let free = slots.available_permits();
            let busy = q.concurrency.max(1) - free;
            let mut claimed_all = false;
            // Claim in batches: while most slots are busy, wait for a few to free up
            // (one store write claims many jobs).
            if free > 0 && (busy == 0 || free * 4 >= q.concurrency.max(1)) {
                // Rotate the tenants' order so that no tenant always gets the first share.
                if !tenants.is_empty() {
                    tenants.rotate_left(1);
                }
                match self
                    .store
                    .claim(&self.owner, self.now(), q.lease_ms as i64, free, tenants.clone())
                    .await
                {
                    Ok(jobs) => {
                        claimed_all = jobs.len() == free;
                        let leased_until = std::time::Instant::now() + Duration::from_millis(q.lease_ms);
                        for job in jobs {
                            let Ok(permit) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            self.lease_confirmed(job.id, Some(leased_until));
                            in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(job.id);
                            self.metrics.in_flight.inc();
                            let (me, flights) = (self.clone(), in_flight.clone());
                            tokio::spawn(async move {
                                let id = job.id;
                                me.process(job).await;
                                flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                                me.lease_confirmed(id, None);
                                me.metrics.in_flight.dec();
                                drop(permit);
                                me.wake.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot claim jobs"),
                }
            }
            if claimed_all {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(q.poll_ms).min(SCHEDULE_SCAN)) => {}
                changed = shutdown.changed() => {
                    // Its sender is gone, so no one can ask for a stop any more: stop now
                    // (otherwise `changed` answers at once forever and this loop spins).
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(drain, slots.acquire_many(q.concurrency.max(1) as u32)).await;
        let _ = tokio::time::timeout(
            drain,
            enrich_slots.acquire_many(q.enrich_concurrency.max(1) as u32),
        )
        .await;
        heartbeat.abort();
        retention.abort();
        notifications.abort();
        follow.abort();
        presence.abort();
        self.leave_deployment().await;
    }

    /// Claims due webhook deliveries for the free enrichment slots and enriches each on its own task.
    async fn dispatch_deliveries(
        self: &Arc<Self>,
        slots: &Arc<Semaphore>,
        enriching: &Arc<Mutex<HashSet<i64>>>,
    ) {
        let free = slots.available_permits();
        let lease = self.config.queue.lease_ms as i64;
        let claimed = match self
            .store
            .claim_deliveries(&self.owner, self.now(), lease, free)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim webhook deliveries");
                return;
            }
        };
        if claimed.len() == free {
            // There may be more: look again on the next turn.
            self.deliveries_waiting
                .store(true, std::sync::atomic::Ordering::Release);
        }
        for d in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            enriching.lock().unwrap_or_else(|p| p.into_inner()).insert(d.id);
            let (me, flights) = (self.clone(), enriching.clone());
            tokio::spawn(async move {
                let id = d.id;
                me.enrich(d).await;
                flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                drop(permit);
                me.deliveries_waiting
                    .store(true, std::sync::atomic::Ordering::Release);
                me.wake.notify_one();
            });
        }
    }
}

/// Extends the leases of running jobs and enrichments every third of the lease.
async fn heartbeat(
    p: Arc<Pipeline>,
    in_flight: Arc<Mutex<HashSet<i64>>>,
    enriching: Arc<Mutex<HashSet<i64>>>,
) {
    let lease = p.config.queue.lease_ms as i64;
    let every = Duration::from_millis((lease / 3).max(50) as u64);
    loop {
        tokio::time::sleep(every).await;
        let ids: Vec<i64> = in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        let deliveries: Vec<i64> = enriching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        if !deliveries.is_empty()
            && let Err(e) = p
                .store
                .extend_delivery_leases(&p.owner, deliveries, p.now() + lease)
                .await
        {
            tracing::error!(error = %e, "cannot extend enrichment leases");
        }
        if ids.is_empty() {
            continue;
        }
        let sent = std::time::Instant::now();
        match p
            .store
            .extend_leases(&p.owner, ids.clone(), p.now() + lease)
            .await
        {
            Ok(held) => {
                let until = sent + Duration::from_millis(lease as u64);
                for id in ids {
                    // A job whose lease another attempt holds now stops at its next step.
                    let confirmed = if held.contains(&id) { until } else { sent };
                    if in_flight.lock().unwrap_or_else(|p| p.into_inner()).contains(&id) {
                        p.lease_confirmed(id, Some(confirmed));
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot extend leases"),
        }
    }
}
