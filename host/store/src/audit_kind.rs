//! Every kind of audit entry: the vocabulary of the audit log, one spelling each.

crate::column_enum! {
    /// What an audit entry records.
    pub enum AuditKind {
        /// An event was stored with its job.
        EventReceived = "event.received",
        /// An event older than one already applied was skipped.
        EventSuperseded = "event.superseded",
        /// A mover or update effective on a later day was kept for that day's wake-up.
        EventDeferred = "event.deferred",
        /// A job held on a rules error gave way to a newer record.
        JobSuperseded = "job.superseded",
        /// An attempt ended with every destination applied.
        JobCompleted = "job.completed",
        /// An attempt ended; the job runs again later.
        JobRetry = "job.retry",
        /// The job gave up (attempts exhausted or a permanent failure).
        JobDead = "job.dead",
        /// The job waits for a person (a conflict, a guard, a rules error).
        JobHeld = "job.held",
        /// An operator made a dead, held or cancelled job run again.
        JobReplayed = "job.replayed",
        /// An operator cancelled a job.
        JobCancelled = "job.cancelled",
        /// A held job went back to the queue (a fixed rule set, an approval).
        JobReleased = "job.released",
        /// The rules gave the desired accounts.
        RulesEvaluated = "rules.evaluated",
        /// The rules failed on the person's data.
        RulesFailed = "rules.failed",
        /// A rule-set version was stored.
        RulesDrafted = "rules.drafted",
        /// A rule-set version became the one that runs.
        RulesPublished = "rules.published",
        /// An earlier rule-set version was brought back.
        RulesRolledBack = "rules.rolled-back",
        /// The configured rule set became version 1.
        RulesImported = "rules.imported",
        /// The person's state changed what the rules asked for.
        LifecycleShaped = "lifecycle.shaped",
        /// The person's state changed.
        LifecycleChanged = "lifecycle.changed",
        /// A withdrawal after the start date was not applied.
        LifecycleWithdrawalIgnored = "lifecycle.withdrawal_ignored",
        /// A joiner was recognised as a rehire.
        LifecycleRehire = "lifecycle.rehire",
        /// A unique value was settled for an attribute.
        NameAssigned = "name.assigned",
        /// An account taken over kept its unique value.
        NameKept = "name.kept",
        /// An existing account was linked by the merge policy.
        LinkMerged = "link.merged",
        /// An existing account was linked by a person's decision.
        LinkResolved = "link.resolved",
        /// An account a crashed attempt created was linked.
        LinkRecovered = "link.recovered",
        /// A destination was left alone for this event.
        DestinationSkipped = "destination.skipped",
        /// A matching conflict waits for a person.
        ConflictOpened = "conflict.opened",
        /// A person decided a conflict.
        ConflictResolved = "conflict.resolved",
        /// The operations planned for a destination.
        PlanCreated = "plan.created",
        /// A connector applied an operation.
        OpApplied = "op.applied",
        /// An operation failed.
        OpFailed = "op.failed",
        /// An operation was recorded but not sent.
        OpAbandoned = "op.abandoned",
        /// An interrupted operation's outcome could not be confirmed.
        OpUnconfirmed = "op.unconfirmed",
        /// A supervised destination held a person's plan for approval.
        PlanHeld = "plan.held",
        /// An observed destination planned a person's operations and applied none.
        PlanObserved = "plan.observed",
        /// A person approved a held plan.
        PlanApproved = "plan.approved",
        /// A person rejected a held plan: the destination is left alone for that event.
        PlanRejected = "plan.rejected",
        /// The mass-change guard stopped destructive changes.
        GuardTripped = "guard.tripped",
        /// A person approved a tripped guard.
        GuardApproved = "guard.approved",
        /// A destructive change went ahead under an approval.
        GuardApprovedChange = "guard.approved_change",
        /// A leaver's account was scheduled for deletion.
        DeprovisionScheduled = "deprovision.scheduled",
        /// A scheduled deletion no longer applies.
        DeprovisionCancelled = "deprovision.cancelled",
        /// A leaver's account was deleted after the grace period.
        DeprovisionDeleted = "deprovision.deleted",
        /// What a leave takes away was remembered.
        LeaveSaved = "leave.saved",
        /// What a leave took away was given back.
        LeaveRestored = "leave.restored",
        /// A staged leaver step was scheduled.
        LeaverStepScheduled = "leaver.step_scheduled",
        /// A staged leaver step was carried out.
        LeaverStepDone = "leaver.step_done",
        /// A leaver step or deletion waits for a ticket to close.
        LeaverTicketAwaited = "leaver.ticket_awaited",
        /// A followed ticket stayed open past its `alert_after`.
        TicketOverdue = "ticket.overdue",
        /// A staged leaver step was cancelled.
        LeaverStepCancelled = "leaver.step_cancelled",
        /// A returning person's open leaver steps were cancelled.
        LeaverStepsCancelled = "leaver.steps_cancelled",
        /// A contract-expiry notice was sent.
        ContractNoticeSent = "contract.notice_sent",
        /// A contract-expiry notice no longer applies.
        ContractNoticeCancelled = "contract.notice_cancelled",
        /// A newly provisioned manager's reports were queued.
        ManagerReportsRefreshed = "manager.reports_refreshed",
        /// A reconciliation run finished.
        ReconcileCompleted = "reconcile.completed",
        /// A verified webhook delivery was stored.
        WebhookReceived = "webhook.received",
        /// A webhook delivery was refused.
        WebhookRejected = "webhook.rejected",
        /// An IT administrator uploaded a payload for a webhook source without its signature.
        SourcePayloadOverride = "source.payload-override",
        /// A webhook delivery repeated content already received.
        WebhookRedelivered = "webhook.redelivered",
        /// A vendor's test delivery was acknowledged.
        WebhookPing = "webhook.ping",
        /// A delivery became events.
        WebhookEnriched = "webhook.enriched",
        /// A source plugin refused a delivery's record.
        WebhookEventRejected = "webhook.event_rejected",
        /// A delivery's enrichment gave up.
        WebhookDead = "webhook.dead",
        /// A notification was queued (its channel, event and recipients; never its body).
        NotificationQueued = "notification.queued",
        /// A notification was sent.
        NotificationSent = "notification.sent",
        /// A notification could not be sent; it is tried again later.
        NotificationFailed = "notification.failed",
        /// A notification gave up (attempts exhausted, or refused by the channel).
        NotificationDead = "notification.dead",
        /// A plugin version was kept in the registry (uploaded or seeded), with its digest and signer.
        PluginUploaded = "plugin.uploaded",
        /// A tenant made a plugin version the one it runs.
        PluginActivated = "plugin.activated",
        /// A tenant went back to an earlier plugin version.
        PluginRolledBack = "plugin.rolled-back",
        /// A candidate plugin version ran in shadow beside the active one (its report's counts).
        PluginShadowed = "plugin.shadowed",
        /// The audit log was exported.
        AdminAuditExported = "admin.audit_exported",
        /// The audit chain was verified.
        AdminAuditVerified = "admin.audit_verified",
        /// The database's audit head was recorded again after a mismatch (with the reason).
        AuditHeadAccepted = "audit.head-accepted",
        /// A signed checkpoint of the chain's head was taken (its sequence and public key).
        AuditCheckpointed = "audit.checkpointed",
        /// An access review was exported.
        AdminAccessReviewExported = "admin.access_review_exported",
        /// A secret was stored.
        AdminSecretSet = "admin.secret_set",
        /// An initial password was revealed (once).
        AdminInitialPasswordRevealed = "admin.initial_password_revealed",
        /// An operator made a delivery run again.
        AdminDeliveryReplayed = "admin.delivery_replayed",
        /// A person signed in (with the session's expiry).
        AuthSignedIn = "auth.signed_in",
        /// A sign-in was refused (wrong password, unknown or disabled account, locked).
        AuthSignInRefused = "auth.sign_in_refused",
        /// Repeated failures locked an account for a while.
        AuthLocked = "auth.locked",
        /// A person signed out.
        AuthSignedOut = "auth.signed_out",
        /// An account for a person was made.
        AdminUserCreated = "admin.user_created",
        /// A person's account changed (roles, password, disabled).
        AdminUserChanged = "admin.user_changed",
        /// An API token was made (its digest kept; the token shown once).
        AdminTokenCreated = "admin.token_created",
        /// An API token was revoked.
        AdminTokenRevoked = "admin.token_revoked",
    }
}

impl AuditKind {
    /// The family (`op` of `op.applied`), for filters.
    pub fn family(self) -> &'static str {
        self.as_str().split('.').next().unwrap_or_default()
    }
}
