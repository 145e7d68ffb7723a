//! Every audit entry the host writes, as a typed event: one struct per kind,
//! declared once here with the shape of its details (like Vector's internal
//! events), so the log is consistent and each kind is found by its name.
//! The store writes a few entries of its own within its transactions
//! (`event.received`, `job.replayed`, ...); their kinds are in [`AuditKind`].

use crate::FailureClass;
use crate::lifecycle::State;
use serde::Serialize;
use tenure_store::{ActionKind, AuditKind, AuditRecord, ConflictKind, OperationKind, OperationStatus};

/// A typed audit event: its kind and its details.
pub trait AuditEvent: Serialize {
    fn kind(&self) -> AuditKind;

    /// The record of this event by `actor` in `tenant`.
    fn record(&self, tenant: &str, actor: &str) -> AuditRecord {
        AuditRecord::new(tenant, self.kind(), actor).data(serde_json::to_value(self).unwrap_or_default())
    }
}

/// Declares an event struct with borrowed fields and its kind.
macro_rules! events {
    ($(
        $(#[$meta:meta])*
        $name:ident $(<$lt:lifetime>)? => $kind:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Serialize)]
            pub struct $name $(<$lt>)? {
                $( $(#[$fmeta])* pub $field: $ty, )*
            }

            impl $(<$lt>)? AuditEvent for $name $(<$lt>)? {
                fn kind(&self) -> AuditKind {
                    AuditKind::$kind
                }
            }
        )*
    };
}

/// A rule that fired, as the audit keeps it.
#[derive(Debug, Serialize)]
pub struct FiredRule<'a> {
    pub destination: &'a str,
    pub rule: &'a str,
    pub reason: &'a str,
    pub inputs: serde_json::Map<String, serde_json::Value>,
    pub contributed: &'a [String],
}

/// What the rules asked of one destination (redacted values masked).
#[derive(Debug, Serialize)]
pub struct RulesOutput<'a> {
    pub destination: &'a str,
    pub container: &'a Option<String>,
    pub groups: &'a [String],
    pub licenses: &'a [String],
    pub apps: &'a [String],
    pub enabled: bool,
    pub expires_at: &'a Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// One planned operation, as the audit lists it.
#[derive(Debug, Serialize)]
pub struct PlannedOpView<'a> {
    pub op: OperationKind,
    pub key: &'a str,
    pub target: &'a Option<String>,
    pub destructive: bool,
}

/// How an existing account came to be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkedBy {
    /// The merge policy.
    Merged,
    /// A person decided a conflict.
    Resolved,
    /// A create a crash interrupted.
    Recovered,
}

/// An existing account linked to the person.
#[derive(Debug, Serialize)]
pub struct Linked<'a> {
    #[serde(skip)]
    pub by: LinkedBy,
    pub anchor: &'a str,
    pub dry_run: bool,
}

impl AuditEvent for Linked<'_> {
    fn kind(&self) -> AuditKind {
        match self.by {
            LinkedBy::Merged => AuditKind::LinkMerged,
            LinkedBy::Resolved => AuditKind::LinkResolved,
            LinkedBy::Recovered => AuditKind::LinkRecovered,
        }
    }
}

/// An operation an earlier attempt started, settled by the next one.
#[derive(Debug, Serialize)]
pub struct OpRecovered<'a> {
    #[serde(skip)]
    pub effect: Option<bool>,
    pub op: OperationKind,
    pub key: &'a str,
    pub target: &'a Option<String>,
    pub status: OperationStatus,
    pub recovered: bool,
    pub note: &'a str,
}

impl AuditEvent for OpRecovered<'_> {
    fn kind(&self) -> AuditKind {
        match self.effect {
            Some(true) => AuditKind::OpApplied,
            Some(false) => AuditKind::OpAbandoned,
            None => AuditKind::OpUnconfirmed,
        }
    }
}

/// A rule-set version published (or an earlier one brought back).
#[derive(Debug, Serialize)]
pub struct RulesPublished<'a> {
    #[serde(skip)]
    pub rollback: bool,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
}

impl AuditEvent for RulesPublished<'_> {
    fn kind(&self) -> AuditKind {
        if self.rollback {
            AuditKind::RulesRolledBack
        } else {
            AuditKind::RulesPublished
        }
    }
}

/// A webhook delivery stored: a real one, or a vendor's test ping.
#[derive(Debug, Serialize)]
pub struct WebhookStored<'a> {
    #[serde(skip)]
    pub ping: bool,
    pub event: &'a str,
    pub triggered_at: u64,
}

impl AuditEvent for WebhookStored<'_> {
    fn kind(&self) -> AuditKind {
        if self.ping {
            AuditKind::WebhookPing
        } else {
            AuditKind::WebhookReceived
        }
    }
}

/// The `rules.evaluated` entry of an evaluation: the rules that fired and what
/// they asked of each destination, redacted values masked.
pub fn rules_evaluated<'a>(
    rules: &'a tenure_runtime::PluginHandle,
    evaluation: &'a tenure_runtime::wit::rules::Evaluation,
) -> RulesEvaluated<'a> {
    let fired = evaluation
        .trace
        .iter()
        .filter(|t| t.matched)
        .map(|t| FiredRule {
            destination: &t.destination,
            rule: &t.rule,
            reason: &t.reason,
            inputs: t
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
                .collect(),
            contributed: &t.contributed,
        })
        .collect();
    let outputs = evaluation
        .accounts
        .iter()
        .map(|a| RulesOutput {
            destination: &a.destination,
            container: &a.container,
            groups: &a.groups,
            licenses: &a.licenses,
            apps: &a.app_assignments,
            enabled: a.enabled,
            expires_at: &a.expires_at,
            attributes: crate::redaction::audit_attributes(a),
        })
        .collect();
    RulesEvaluated {
        plugin: rules.plugin(),
        version: rules.version(),
        fired,
        outputs,
    }
}

events! {
    /// A plugin version kept in the registry: uploaded through the API or seeded from the plugins
    /// directory (then offered to every tenant).
    PluginUploaded<'a> => PluginUploaded {
        plugin: &'a str,
        version: &'a str,
        sha256: &'a str,
        kind: &'a str,
        wit: &'a str,
        owner: Option<&'a str>,
        signer: Option<&'a str>,
        size_bytes: usize,
    }
    PluginActivated<'a> => PluginActivated { plugin: &'a str, version: &'a str, previous: &'a str }
    PluginRolledBack<'a> => PluginRolledBack { plugin: &'a str, version: &'a str, previous: &'a str }
    PluginShadowed<'a> => PluginShadowed {
        plugin: &'a str,
        version: &'a str,
        against: Option<&'a str>,
        report: i64,
        people: usize,
        errors: usize,
    }
    /// An event older than one already applied, skipped.
    EventSuperseded<'a> => EventSuperseded { occurred_at: Option<&'a str>, newer_event: i64 }
    EventDeferred<'a> => EventDeferred { effective_date: &'a str }
    JobCompleted => JobCompleted { attempt: u32 }
    /// A notification queued: where, why and to how many; never its body.
    NotificationQueued<'a> => NotificationQueued {
        channel: &'a str,
        event: crate::notify::NotifyOn,
        dedupe_key: &'a str,
        recipients: usize,
    }
    NotificationSent<'a> => NotificationSent {
        notification: i64,
        channel: &'a str,
        attempt: u32,
        summary: &'a str,
    }
    NotificationFailed<'a> => NotificationFailed {
        notification: i64,
        channel: &'a str,
        attempt: u32,
        error: &'a str,
        retry_at_ms: i64,
    }
    NotificationDead<'a> => NotificationDead {
        notification: i64,
        channel: &'a str,
        attempt: u32,
        error: &'a str,
    }
    JobRetry<'a> => JobRetry { attempt: u32, error: &'a str, retry_at_ms: i64, counts_as_attempt: bool }
    JobDead<'a> => JobDead { attempt: u32, error: &'a str }
    JobHeld<'a> => JobHeld { attempt: u32, reason: &'a str }
    RulesFailed<'a> => RulesFailed { class: FailureClass, error: &'a str }
    RulesEvaluated<'a> => RulesEvaluated {
        plugin: &'a str,
        version: &'a str,
        fired: Vec<FiredRule<'a>>,
        outputs: Vec<RulesOutput<'a>>,
    }
    RulesDrafted<'a> => RulesDrafted { message: &'a str, tests: serde_json::Value }
    RulesImported => RulesImported { tests: serde_json::Value }
    LifecycleShaped<'a> => LifecycleShaped { state: State, why: &'a str }
    LifecycleChanged<'a> => LifecycleChanged {
        from: Option<State>,
        to: State,
        time_zone: &'a Option<String>,
        start_date: &'a Option<String>,
        last_day: &'a Option<String>,
        end_date: &'a Option<String>,
        leave_from: &'a Option<String>,
        leave_until: &'a Option<String>,
    }
    LifecycleWithdrawalIgnored<'a> => LifecycleWithdrawalIgnored { start_date: &'a Option<String>,
        why: &'static str }
    LifecycleRehire => LifecycleRehire { why: &'static str }
    NameAssigned<'a> => NameAssigned {
        attribute: &'a str,
        value: &'a str,
        taken: &'a [String],
        unchecked: &'a [String],
        dry_run: bool,
    }
    NameKept<'a> => NameKept {
        attribute: &'a str,
        value: &'a str,
        instead_of: tenure_runtime::wit::Value,
        why: &'static str,
    }
    DestinationSkipped<'a> => DestinationSkipped { why: &'a str }
    ConflictOpened<'a> => ConflictOpened { kind: ConflictKind, candidates: &'a [String], dry_run: bool }
    PlanCreated<'a> => PlanCreated {
        /// The connector version that planned (and applies) it.
        connector_version: &'a str,
        operations: Vec<PlannedOpView<'a>>,
        unsupported: &'a [String],
        dry_run: bool,
    }
    PlanHeld => PlanHeld {
        /// How many operations wait for approval.
        operations: usize,
        /// The approved plan this one replaces: the destination changed after the approval,
        /// and the new plan asks for more than was approved.
        replaces_approved: Option<i64>,
    }
    PlanObserved<'a> => PlanObserved {
        /// The connector version that planned it.
        connector_version: &'a str,
        operations: Vec<PlannedOpView<'a>>,
        unsupported: &'a [String],
    }
    OpApplied<'a> => OpApplied {
        op: OperationKind,
        key: &'a str,
        target: &'a Option<String>,
        anchor: Option<&'a str>,
        status: OperationStatus,
        duration_ms: u64,
        summary: &'a str,
    }
    OpFailed<'a> => OpFailed {
        op: OperationKind,
        key: &'a str,
        target: &'a Option<String>,
        status: OperationStatus,
        duration_ms: u64,
        class: FailureClass,
        error: &'a str,
        retry_after_ms: Option<u64>,
    }
    OpAbandoned<'a> => OpAbandoned { op: OperationKind, key: &'a str, target: &'a Option<String>,
        why: &'a str }
    /// The store fills in the details (why, recent, managed) when the guard trips.
    GuardTripped => GuardTripped {}
    GuardApprovedChange => GuardApprovedChange { recent: i64 }
    DeprovisionScheduled => DeprovisionScheduled { action: ActionKind, due_ms: i64 }
    /// A due deletion that no longer applied.
    DeprovisionCancelled<'a> => DeprovisionCancelled { action: i64, why: &'a str }
    /// Deletions cancelled because the person is back.
    DeprovisionsCancelled<'a> => DeprovisionCancelled { action: ActionKind, cancelled: u64, why: &'a str }
    DeprovisionDeleted<'a> => DeprovisionDeleted { action: i64, anchor: Option<&'a str> }
    LeaveSaved<'a> => LeaveSaved {
        enabled: bool,
        container: &'a Option<String>,
        groups: &'a [String],
        licenses: &'a [String],
        apps: &'a [String],
    }
    LeaveRestored<'a> => LeaveRestored { enabled: bool, container: &'a Option<String>, groups: &'a [String] }
    LeaverStepScheduled<'a> => LeaverStepScheduled { step: usize, action: &'a str, due_ms: i64 }
    LeaverStepDone<'a> => LeaverStepDone { step: usize, action: &'a str, scheduled: i64 }
    LeaverStepCancelled<'a> => LeaverStepCancelled { step: usize, scheduled: i64, why: &'a str }
    LeaverTicketAwaited<'a> => LeaverTicketAwaited { action: &'a ActionKind, desk: &'a str, ticket: &'a str,
        template: &'a str, ticket_state: &'a str, until_ms: i64 }
    TicketOverdue<'a> => TicketOverdue { desk: &'a str, ticket: &'a str, template: &'a str,
        opened_ms: i64 }
    LeaverStepsCancelled<'a> => LeaverStepsCancelled { cancelled: u64, why: &'a str }
    ContractNoticeSent<'a> => ContractNoticeSent {
        fields: serde_json::Map<String, serde_json::Value>,
        ticket: Option<&'a str>,
        destination: Option<&'a str>,
    }
    ContractNoticeCancelled<'a> => ContractNoticeCancelled { days_before: u32, why: &'a str }
    ManagerReportsRefreshed<'a> => ManagerReportsRefreshed { reports: &'a [String],
        destinations: &'a [String] }
    ReconcileCompleted<'a> => ReconcileCompleted { report: i64, summary: serde_json::Value,
        repairs: &'a [String] }
    SourcePayloadOverride<'a> => SourcePayloadOverride { source: &'a str, reason: &'a str, bytes: usize }
    WebhookRejected<'a> => WebhookRejected {
        #[serde(skip_serializing_if = "Option::is_none")]
        delivery: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        event: Option<&'a str>,
        status: u16,
        field: &'a str,
        reason: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        left_out_before: Option<u64>,
    }
    WebhookEnriched<'a> => WebhookEnriched { delivery: i64, event: &'a str, events: usize, attempt: u32 }
    WebhookEventRejected<'a> => WebhookEventRejected { delivery: i64, field: &'a str, reason: &'a str }
    WebhookDead<'a> => WebhookDead {
        delivery: i64,
        event: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        attempts: Option<u32>,
        error: &'a str,
    }
    AdminInitialPasswordRevealed<'a> => AdminInitialPasswordRevealed { dn: &'a str }
    AdminAuditExported<'a> => AdminAuditExported { format: &'a str, entries: Option<usize> }
    AdminAuditVerified => AdminAuditVerified { entries: i64, ok: bool }
    AdminAccessReviewExported<'a> => AdminAccessReviewExported { destination: Option<&'a str> }
    AdminSecretSet<'a> => AdminSecretSet { name: &'a str }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_kind_and_its_details() {
        let r = JobRetry {
            attempt: 2,
            error: "transient: boom",
            retry_at_ms: 10,
            counts_as_attempt: true,
        }
        .record("t", "system");
        assert_eq!(r.kind, AuditKind::JobRetry);
        assert_eq!(
            r.data,
            serde_json::json!({ "attempt": 2, "error": "transient: \
                boom", "retry_at_ms": 10, "counts_as_attempt": true })
        );
        let linked = Linked {
            by: LinkedBy::Recovered,
            anchor: "CN=a",
            dry_run: false,
        };
        assert_eq!(linked.kind(), AuditKind::LinkRecovered);
        assert_eq!(
            linked.record("t", "x").data,
            serde_json::json!({ "anchor": "CN=a", "dry_run": false })
        );
    }
}
