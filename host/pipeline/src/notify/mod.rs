//! Notifications: the host telling people what happened (accounts ready, a contract ending, a
//! job that gave up or waits, a conflict, a tripped guard, drift). A tenant's rules say which
//! events go to which channel and to whom; each message is rendered when its event happens and
//! queued once per de-duplication key in the store, then sent by [`sender`] with retries,
//! per-channel rate limits and a dead state, never blocking the job that raised it. The audit
//! records each message's channel, event and recipient count, never its body.

pub mod config;
pub(crate) mod sender;
pub mod templates;

pub use config::{NotificationRule, NotificationsConfig, NotifyOn, Recipient};

use crate::Pipeline;
use crate::audit_events::{self as ev, AuditEvent};
use serde_json::{Value, json};
use tenure_store::NewNotification;

/// An event that may notify.
#[derive(Debug, Clone)]
pub struct Notice {
    pub on: NotifyOn,
    /// What makes two notices the same (a retry of the job, a second trip of the same guard).
    pub key: String,
    pub person_key: Option<String>,
    pub person_email: Option<String>,
    pub manager_email: Option<String>,
    /// The facts the templates see (the person, accounts, dates, errors).
    pub vars: Value,
}

impl Notice {
    pub fn new(on: NotifyOn, key: impl Into<String>, vars: Value) -> Notice {
        Notice {
            on,
            key: key.into(),
            person_key: None,
            person_email: None,
            manager_email: None,
            vars,
        }
    }

    pub fn person(mut self, key: &str, email: Option<String>, manager_email: Option<String>) -> Notice {
        self.person_key = Some(key.to_string());
        self.person_email = email;
        self.manager_email = manager_email;
        self
    }
}

/// A custom attribute's text (`manager_email` from Lever).
pub fn custom_text(p: &tenure_runtime::wit::Person, name: &str) -> Option<String> {
    p.custom
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| match v {
            tenure_runtime::wit::Value::Text(t) if !t.trim().is_empty() => Some(t.clone()),
            _ => None,
        })
}

/// A person's primary email (or their first).
pub fn primary_email_of(p: &tenure_runtime::wit::Person) -> Option<String> {
    p.emails
        .iter()
        .find(|e| e.primary)
        .or(p.emails.first())
        .map(|e| e.value.clone())
}

/// The facts templates see of a person (never an attribute a rule set computed).
pub fn person_vars(p: &tenure_runtime::wit::Person) -> Value {
    let given = p.preferred_name.as_ref().or(p.given_name.as_ref());
    let name = [given, p.family_name.as_ref()]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let email = primary_email_of(p);
    json!({
        "name": name,
        "given_name": given,
        "family_name": p.family_name,
        "email": email,
        "title": p.title,
        "department": p.department,
        "location": p.location,
        "start_date": p.start_date,
        "end_date": p.end_date,
    })
}

impl Pipeline {
    /// Queues the messages the tenant's rules ask for on `notice`. Never fails its caller: a
    /// message that cannot be rendered or queued is logged.
    pub(crate) async fn notify(&self, tenant: &str, notice: Notice) {
        for message in self.messages(tenant, &notice) {
            let queued = self.store.queue_notification(message).await;
            match queued {
                Ok(Some(_)) => self.notifications_waiting.notify_one(),
                Ok(None) => {}
                Err(e) => tracing::error!(tenant, event = notice.on.as_str(), error = %e,
                    "cannot queue a notification"),
            }
        }
    }

    /// The messages the tenant's rules ask for on `notice`, rendered and addressed, to be
    /// queued (a job's go with its end). One that cannot be rendered or addressed is logged
    /// and left out.
    pub(crate) fn messages(&self, tenant: &str, notice: &Notice) -> Vec<NewNotification> {
        let mut out = Vec::new();
        let Some(config) = self.config.tenants.get(tenant).map(|t| &t.notifications) else {
            return out;
        };
        for (i, rule) in config.rules.iter().enumerate().filter(|(_, r)| r.on == notice.on) {
            let Some(channel) = config.channels.get(&rule.channel) else {
                continue; // refused when the config was loaded
            };
            let mut recipients: Vec<String> = Vec::new();
            if channel.addressed() {
                for r in &rule.to {
                    let address = match r {
                        Recipient::Manager => notice.manager_email.clone(),
                        Recipient::Person => notice.person_email.clone(),
                        Recipient::Address(a) => Some(a.clone()),
                    };
                    match address {
                        Some(a) if !recipients.contains(&a) => recipients.push(a),
                        Some(_) => {}
                        None => tracing::warn!(tenant, event = notice.on.as_str(), recipient = ?r,
                            "a notification recipient has no email address; left out"),
                    }
                }
                if recipients.is_empty() {
                    tracing::warn!(
                        tenant,
                        event = notice.on.as_str(),
                        "no recipient; notification not queued"
                    );
                    continue;
                }
            }
            let mut vars = notice.vars.clone();
            if let Value::Object(m) = &mut vars {
                let link = match (&config.console_url, &notice.person_key) {
                    (Some(root), Some(p)) => {
                        Value::String(format!("{}/people/{p}", root.trim_end_matches('/')))
                    }
                    _ => Value::Null,
                };
                m.entry("links")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|l| l.insert("person".into(), link));
                m.insert("person_key".into(), json!(notice.person_key));
            }
            let (default_subject, default_body) = templates::default_for(notice.on);
            let rendered = templates::render(rule.subject.as_deref().unwrap_or(default_subject), &vars)
                .and_then(|s| {
                    templates::render(rule.body.as_deref().unwrap_or(default_body), &vars).map(|b| (s, b))
                });
            let (subject, body) = match rendered {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(tenant, event = notice.on.as_str(), rule = i, error = %e,
                        "a notification template failed; not queued");
                    continue;
                }
            };
            let dedupe_key = format!("{}:{}:{}", notice.on.as_str(), notice.key, rule.channel);
            let audit = ev::NotificationQueued {
                channel: &rule.channel,
                event: notice.on,
                dedupe_key: &dedupe_key,
                recipients: recipients.len(),
            }
            .record(tenant, "system");
            let audit = match &notice.person_key {
                Some(p) => audit.person(p),
                None => audit,
            };
            out.push(NewNotification {
                tenant: tenant.to_string(),
                channel: rule.channel.clone(),
                event: notice.on.as_str().to_string(),
                dedupe_key,
                person_key: notice.person_key.clone(),
                recipients,
                subject: subject.lines().next().unwrap_or_default().to_string(),
                body,
                max_attempts: config.max_attempts.max(1),
                now_ms: self.now(),
                audit: vec![audit],
            });
        }
        out
    }
}
