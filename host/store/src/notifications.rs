//! Notifications: rendered messages waiting to be sent on a tenant's channel (email, Slack,
//! Teams), each once per de-duplication key, claimed with a lease by the senders, retried with
//! backoff and dead (audited, replayable) when their attempts run out.

use crate::*;
use async_trait::async_trait;
use serde::Serialize;

crate::column_enum! {
    /// Where a notification stands.
    pub enum NotificationState {
        /// Waiting to be sent (first time or after a failure).
        Pending = "pending",
        Sending = "sending",
        Sent = "sent",
        /// Attempts exhausted, or refused for good by the channel.
        Dead = "dead",
    }
}

/// A notification to queue.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub tenant: String,
    /// The channel's name in the tenant's config.
    pub channel: String,
    /// What happened (`account-ready`, `guard-tripped`, ...).
    pub event: String,
    /// Queued once: a second notification with the same key is not queued.
    pub dedupe_key: String,
    pub person_key: Option<String>,
    /// Email addresses (empty for chat channels).
    pub recipients: Vec<String>,
    pub subject: String,
    pub body: String,
    pub max_attempts: u32,
    /// When it is queued, by the pipeline's clock (it is due at once).
    pub now_ms: i64,
    /// Written with the notification (`notification.queued`) when it is queued.
    pub audit: Vec<AuditRecord>,
}

/// A queued notification.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NotificationRow {
    pub id: i64,
    pub tenant: String,
    pub channel: String,
    pub event: String,
    pub dedupe_key: String,
    pub person_key: Option<String>,
    pub recipients: Vec<String>,
    pub state: NotificationState,
    /// Attempts so far (the one running included).
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at_ms: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub sent_ms: Option<i64>,
    /// Shown to whoever may read the tenant's notifications; never written to the audit.
    pub subject: String,
    #[serde(skip)]
    pub body: String,
}

/// How a sending attempt ended.
#[derive(Debug, Clone)]
pub enum NotificationFinish {
    Sent,
    /// Try again at `run_at_ms`; `charge` false gives the attempt back (the channel's rate limit).
    Retry {
        run_at_ms: i64,
        error: String,
        charge: bool,
    },
    Dead {
        error: String,
    },
}

/// The notification queue.
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Queues a notification with its audit, in one transaction; `None` (nothing written) when
    /// one with the same tenant and key was queued before.
    async fn queue_notification(&self, n: NewNotification) -> StoreResult<Option<i64>>;
    /// Claims up to `limit` notifications due (or whose lease expired).
    async fn claim_notifications(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<NotificationRow>>;
    /// Ends a sending attempt with its audit; false (nothing written) when `owner` lost the lease.
    async fn finish_notification(
        &self,
        id: i64,
        owner: &str,
        finish: NotificationFinish,
        audit: Vec<AuditRecord>,
    ) -> StoreResult<bool>;
    /// A tenant's notifications, newest first.
    async fn notifications(&self, tenant: &str, limit: usize) -> StoreResult<Vec<NotificationRow>>;
}
