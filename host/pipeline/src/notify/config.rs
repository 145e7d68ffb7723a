//! `[tenants.T.notifications]`: the channels a tenant's notifications go to, and which events
//! send what to whom.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenure_capabilities::notify::ChannelConfig;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyOn {
    /// A person's accounts were created (to the hiring manager, with the day-1 checklist).
    AccountReady,
    /// A contract ends in one of `lifecycle.contract_notice_days`.
    ContractEnding,
    /// A job gave up (dead-lettered).
    JobDead,
    /// A job waits for a person (a rules error, a conflict, a guard).
    JobHeld,
    /// Tenure found accounts it cannot match safely; a person must decide.
    ConflictOpened,
    /// The mass-change guard stopped a destination's changes until someone approves.
    GuardTripped,
    /// Reconciliation found destinations that differ from what the rules want.
    DriftFound,
    /// A followed ticket a leaver's steps wait for stayed open past `alert_after`.
    TicketOverdue,
}

impl NotifyOn {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::AccountReady => "account-ready",
            NotifyOn::ContractEnding => "contract-ending",
            NotifyOn::JobDead => "job-dead",
            NotifyOn::JobHeld => "job-held",
            NotifyOn::ConflictOpened => "conflict-opened",
            NotifyOn::GuardTripped => "guard-tripped",
            NotifyOn::DriftFound => "drift-found",
            NotifyOn::TicketOverdue => "ticket-overdue",
        }
    }
}

/// Who an email goes to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String")]
#[schemars(with = "String")]
pub enum Recipient {
    /// `manager`: the person's manager (their primary email).
    Manager,
    /// `person`: the person themselves.
    Person,
    /// An address (`it@example.com`).
    Address(String),
}

impl TryFrom<String> for Recipient {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "manager" => Ok(Recipient::Manager),
            "person" => Ok(Recipient::Person),
            a if a.contains('@') && !a.contains(char::is_whitespace) => Ok(Recipient::Address(s)),
            _ => Err(format!("{s:?} is not manager, person or an email address")),
        }
    }
}

/// `[[tenants.T.notifications.rules]]`: on an event, a message on a channel.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRule {
    /// The event that sends the message.
    pub on: NotifyOn,
    /// A channel of `notifications.channels`.
    pub channel: String,
    /// Email recipients (`manager`, `person` or addresses); chat channels post to their channel.
    #[serde(default)]
    pub to: Vec<Recipient>,
    /// A minijinja template for the subject (default: the event's own).
    #[serde(default)]
    pub subject: Option<String>,
    /// A minijinja template for the body (default: the event's own).
    #[serde(default)]
    pub body: Option<String>,
}

/// `[tenants.T.notifications]`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Where messages go, by name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Which event sends what to whom on which channel.
    #[serde(default)]
    pub rules: Vec<NotificationRule>,
    /// Attempts before a notification is dead (audited; it is never retried forever).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The console's root, for links in messages (`https://tenure.example.com`).
    #[serde(default)]
    pub console_url: Option<String>,
}

fn default_attempts() -> u32 {
    8
}

impl NotificationsConfig {
    /// Every problem, naming the setting (`notifications.rules[1].channel: ...`).
    pub fn check(&self) -> Result<(), String> {
        for (name, channel) in &self.channels {
            channel
                .check()
                .map_err(|e| format!("notifications.channels.{name}.{e}"))?;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("notifications.rules[{i}]");
            let Some(channel) = self.channels.get(&rule.channel) else {
                return Err(format!("{at}.channel: no channel named {:?}", rule.channel));
            };
            if channel.addressed() && rule.to.is_empty() {
                return Err(format!("{at}.to: an email channel needs recipients"));
            }
            for (field, template) in [("subject", &rule.subject), ("body", &rule.body)] {
                if let Some(t) = template {
                    super::templates::check(t).map_err(|e| format!("{at}.{field}: {e}"))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<NotificationsConfig, String> {
        toml::from_str::<NotificationsConfig>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn rules_are_checked_naming_the_setting() {
        let email =
            "[channels.it]\nkind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"t@example.com\"\n";
        let c = config(&format!(
            "{email}[[rules]]\non = \"account-ready\"\nchannel = \"it\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.check().unwrap_err(),
            "notifications.rules[0].to: an email channel needs recipients"
        );
        let c = config(&format!(
            "{email}[[rules]]\non = \"job-dead\"\nchannel = \"slack\"\n"
        ))
        .unwrap();
        assert!(
            c.check()
                .unwrap_err()
                .starts_with("notifications.rules[0].channel")
        );
        let c = config(&format!(
            "{email}[[rules]]\non = \"job-dead\"\nchannel = \"it\"\nto = [\"it@example.com\"]\n\
             body = \"{{{{ oops\"\n"
        ))
        .unwrap();
        assert!(c.check().unwrap_err().starts_with("notifications.rules[0].body"));
        let bad_to = config(&format!(
            "{email}[[rules]]\non = \"job-dead\"\nchannel = \"it\"\nto = [\"boss\"]\n"
        ));
        assert!(
            bad_to
                .unwrap_err()
                .contains("not manager, person or an email address")
        );
        let unknown = config(&format!("{email}[[rules]]\non = \"lunch\"\nchannel = \"it\"\n"));
        assert!(unknown.is_err());
        let ok = config(&format!(
            "{email}[[rules]]\non = \"account-ready\"\nchannel = \"it\"\n\
             to = [\"manager\", \"it@example.com\"]\n"
        ))
        .unwrap();
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(
            ok.rules[0].to,
            [Recipient::Manager, Recipient::Address("it@example.com".into())]
        );
    }
}
