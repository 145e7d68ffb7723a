//! The store's behaviour, written once against the aggregate traits: ordering,
//! leases and fencing, idempotency, claims, the audit chain and every query the
//! pipeline uses. Every backend runs all of it with [`conformance_suite!`]:
//!
//! ```text
//! async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) { ... }
//! tenure_store::conformance_suite!(sqlite);
//! ```
//!
//! Cases take a fresh, empty store. Writes are timestamped by the backend's own
//! clock, so cases use the real time for `now_ms` arguments.

pub mod access;
pub mod audit;
pub mod deliveries;
pub mod events;
pub mod guards;
pub mod leases;
pub mod notifications;
pub mod operations;
pub mod plugins;
pub mod queue;
pub mod retention;
pub mod rule_sets;
pub mod schedule;
pub mod secrets;

use crate::*;
use std::sync::Arc;

/// Every case, as `module::case`.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            events::intake_deduplicates_by_idempotency_key,
            events::intake_links_people_across_sources,
            events::intake_stores_the_cursor_with_its_events,
            events::events_are_found_by_record_person_and_source,
            events::a_newer_record_supersedes_a_job_held_on_a_rules_error,
            events::newer_applied_finds_completed_newer_records,
            events::unique_names_are_claimed_once_case_insensitively,
            queue::claims_run_each_persons_jobs_in_order,
            queue::expired_leases_go_to_another_owner_and_fence_the_old_attempt,
            queue::heartbeats_extend_only_leases_still_held,
            queue::retries_end_in_dead_letter_and_a_replay,
            queue::an_uncharged_retry_gives_the_attempt_back,
            queue::held_jobs_are_released_by_reason,
            queue::cancel_and_replay_are_checked_and_audited,
            queue::a_tenants_backlog_does_not_starve_another,
            queue::unfinished_jobs_are_seen_per_person,
            operations::an_operation_is_one_record_per_key_across_attempts,
            operations::of_several_results_for_one_link_the_last_stands,
            operations::links_are_written_found_counted_and_removed,
            operations::finish_records_the_operations_results_and_the_lifecycle,
            guards::the_guard_trips_over_its_limit_and_an_approval_gives_a_budget,
            guards::conflicts_are_decided_once_and_release_their_job,
            guards::held_plans_are_decided_once_in_bulk_and_release_their_jobs,
            notifications::notifications_are_queued_once_per_key,
            notifications::notifications_go_with_the_jobs_end,
            notifications::notifications_are_leased_retried_and_end_sent_or_dead,
            plugins::plugin_versions_are_kept_once_per_owner_and_activations_in_order,
            schedule::actions_keep_their_first_date_fire_once_and_cancel,
            schedule::reschedule_moves_a_pending_action_and_leaves_a_queued_one,
            schedule::a_deferred_action_waits_again_and_fires_at_its_new_date,
            schedule::cancelling_leaver_steps_matches_every_step,
            schedule::lifecycle_records_are_fenced_listed_and_find_reports,
            schedule::people_are_found_by_name_email_or_key,
            rule_sets::rule_set_versions_number_up_and_publish_a_head,
            audit::the_audit_chain_links_every_entry_and_verifies,
            audit::audit_entries_are_filtered_and_redacted,
            audit::reports_are_stored_listed_without_bodies_and_finished_in_place,
            audit::kpis_count_events_jobs_and_time_to_provision,
            audit::first_day_access_counts_from_the_persons_midnight,
            audit::kpis_over_time_are_bucketed_per_source_and_destination,
            deliveries::deliveries_are_deduplicated_by_token_and_content,
            deliveries::deliveries_are_leased_and_end_with_their_events,
            deliveries::each_source_keeps_its_replay_tokens_for_its_own_window,
            secrets::secrets_round_trip_and_a_taken_secret_is_gone,
            secrets::key_value_data_keeps_namespaces_apart,
            secrets::a_write_of_a_key_changed_since_it_was_read_is_refused,
            secrets::concurrent_writes_never_carry_a_namespace_past_its_quota,
            secrets::the_store_answers_and_counts_its_queue,
            retention::finished_operational_rows_are_pruned_and_open_work_stays,
            access::accounts_are_made_once_changed_and_listed,
            access::failures_lock_an_account_and_a_sign_in_clears_them,
            access::sessions_end_by_time_sign_out_password_change_and_disabling,
            access::api_tokens_are_kept_as_digests_named_once_and_revoked,
            leases::a_lease_has_one_holder_until_it_runs_out_or_is_given_up,
            leases::live_leases_are_counted_by_prefix_until_they_run_out,
        );
    };
    (@cases $make:path; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, _keep) = $make().await;
                $crate::conformance::$module::$case(store).await;
            }
        )*
    };
}

/// Milliseconds since the epoch, by the system clock (what the backend stamps writes with).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// A joiner event for `person`, keyed `key`, in tenant `t`.
pub fn event(key: &str, person: &str) -> NewEvent {
    NewEvent {
        tenant: "t".into(),
        source: "hr".into(),
        idempotency_key: key.into(),
        person_key: person.into(),
        kind: RecordKind::Person(EventKind::Joiner),
        body: format!("{{\"record\":\"{key}\"}}"),
        source_record_id: key.into(),
        start_date: None,
        occurred_ms: None,
        actor: "test".into(),
        received_ms: now(),
        max_attempts: 3,
        link_keys: Vec::new(),
    }
}

/// Stores events; panics on a store error (cases assert behaviour, not plumbing).
pub async fn intake(store: &Arc<dyn Store>, events: Vec<NewEvent>) -> Vec<Intake> {
    store.intake(events, None).await.expect("intake")
}

/// Claims every runnable job for `owner` now, with a minute's lease.
pub async fn claim(store: &Arc<dyn Store>, owner: &str) -> Vec<ClaimedJob> {
    store
        .claim(owner, now(), 60_000, 100, vec![])
        .await
        .expect("claim")
}

/// Ends an attempt as completed; whether the lease still held.
pub async fn complete(store: &Arc<dyn Store>, lease: &JobLease) -> bool {
    store
        .finish(lease, Finish::Completed, vec![], vec![], None, vec![])
        .await
        .expect("finish")
}

/// A tenant's jobs in a state (or all), oldest first.
pub async fn jobs(store: &Arc<dyn Store>, state: Option<JobState>) -> Vec<JobRow> {
    let mut rows = store
        .jobs(JobFilter {
            tenant: "t".into(),
            state,
            person_key: None,
            limit: 1000,
        })
        .await
        .expect("jobs");
    rows.reverse();
    rows
}

/// Audit entries of tenant `t` of one kind.
pub async fn audited(store: &Arc<dyn Store>, kind: AuditKind) -> Vec<AuditEntry> {
    store
        .audit(AuditFilter {
            tenant: Some("t".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.record.kind == kind)
        .collect()
}
