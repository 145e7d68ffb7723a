//! Who may post what: the sources a caller may speak for, the namespace of its
//! idempotency keys, and how far in the future an event may claim to have happened.

use crate::event::{InvalidEvent, ValidEvent};
use crate::sources::SourceConfig;

/// Whoever posts events through the API.
#[derive(Debug, Clone, Copy)]
pub struct Poster<'a> {
    /// The token's name: the actor in the audit, and the namespace of its idempotency keys.
    pub name: &'a str,
    /// The sources it may post for.
    pub sources: SourceScope<'a>,
}

/// The sources a poster may speak for.
#[derive(Debug, Clone, Copy)]
pub enum SourceScope<'a> {
    /// Exactly these (a token's `sources`).
    Only(&'a [String]),
    /// Any source the tenant does not receive by signed webhook or by polling: those
    /// speak only through their own channel.
    PushSources,
}

/// A caller posted for a source it may not speak for.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct NotAllowed {
    pub field: String,
    pub reason: String,
}

impl Poster<'_> {
    /// Checks the event's source and every id's source against what this poster may speak for.
    pub fn check(&self, configured: &[SourceConfig], event: &ValidEvent) -> Result<(), NotAllowed> {
        self.may_post_for("source", &event.source, configured)?;
        for (i, id) in event.event.person.ids.iter().enumerate() {
            self.may_post_for(&format!("person.ids[{i}].source"), &id.source, configured)?;
        }
        Ok(())
    }

    /// Whether this poster may speak for `source`; the error names `field`.
    pub fn may_post_for(
        &self,
        field: &str,
        source: &str,
        configured: &[SourceConfig],
    ) -> Result<(), NotAllowed> {
        let refuse = |reason: String| NotAllowed {
            field: field.into(),
            reason,
        };
        match self.sources {
            SourceScope::Only(list) if list.iter().any(|s| s == source) => Ok(()),
            SourceScope::Only(list) => Err(refuse(format!(
                "token {:?} may post for {} only, not {source:?}",
                self.name,
                if list.is_empty() {
                    "no source".to_string()
                } else {
                    list.join(", ")
                }
            ))),
            SourceScope::PushSources => match configured.iter().find(|s| s.name == source) {
                Some(s) if s.webhook.is_some() => Err(refuse(format!(
                    "{source:?} is received by signed webhook; its events come only through /hooks/{source}"
                ))),
                Some(s) if s.poll_secs.is_some() || s.poll_cron.is_some() => Err(refuse(format!(
                    "{source:?} is polled; its events come only from its plugin"
                ))),
                _ => Ok(()),
            },
        }
    }

    /// Whether this poster may upload a payload for `source` through the source's own
    /// plugin (a bound token: one of its sources; otherwise any configured source).
    pub fn may_upload_for(&self, source: &str) -> Result<(), NotAllowed> {
        match self.sources {
            SourceScope::Only(_) => self.may_post_for("source", source, &[]),
            SourceScope::PushSources => Ok(()),
        }
    }

    /// The stored idempotency key of a client-supplied one: in this poster's own
    /// namespace, which no source record's key (`<source>:<record id>`) can enter,
    /// because a source name never holds `~`.
    pub fn client_key(&self, key: &str) -> String {
        format!("~{}/{key}", self.name)
    }
}

/// How a payload was uploaded: the request's headers (for a signature check; never
/// handed to the plugin) and what vouches for it.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub headers: &'a [(String, String)],
    pub authority: PayloadAuthority<'a>,
}

/// What vouches for a payload uploaded for a source that receives signed webhooks.
#[derive(Debug, Clone, Copy)]
pub enum PayloadAuthority<'a> {
    /// The payload must carry the source's webhook signature.
    Signature,
    /// An IT administrator's stated reason (audited) stands in for the signature.
    Reason(&'a str),
}

/// Refuses an event that says it happened (`occurred_ms`) more than `max_skew_ms` after it
/// was received (it would supersede every later event for the person).
pub fn check_not_in_future(
    occurred_ms: Option<i64>,
    received_ms: i64,
    max_skew_ms: i64,
) -> Result<(), InvalidEvent> {
    let Some(at) = occurred_ms else {
        return Ok(());
    };
    if at > received_ms.saturating_add(max_skew_ms) {
        return Err(InvalidEvent {
            field: "occurred_at".into(),
            reason: format!(
                "is {} s in the future; at most {} s of clock skew is accepted",
                (at - received_ms) / 1000,
                max_skew_ms / 1000
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, webhook: bool, poll: bool) -> SourceConfig {
        let mut config = serde_json::json!({ "name": name, "plugin": "p" });
        if poll {
            config["poll_secs"] = 60.into();
        }
        if webhook {
            config["webhook"] = serde_json::json!({ "signature_tokens": { "*": "k" } });
        }
        serde_json::from_value(config).expect("source config")
    }

    #[test]
    fn a_bound_token_speaks_only_for_its_sources_and_others_not_for_webhook_or_polled_ones() {
        let configured = [
            source("lever", true, false),
            source("hris", false, true),
            source("csv", false, false),
        ];
        let hr = ["hr".to_string()];
        let bound = Poster {
            name: "feed",
            sources: SourceScope::Only(&hr),
        };
        assert!(bound.may_post_for("source", "hr", &configured).is_ok());
        let e = bound.may_post_for("source", "lever", &configured).unwrap_err();
        assert!(e.reason.contains("may post for hr only"), "{e}");
        let open = Poster {
            name: "it",
            sources: SourceScope::PushSources,
        };
        assert!(open.may_post_for("source", "csv", &configured).is_ok());
        assert!(open.may_post_for("source", "api", &configured).is_ok());
        assert!(
            open.may_post_for("source", "lever", &configured)
                .unwrap_err()
                .reason
                .contains("webhook")
        );
        assert!(
            open.may_post_for("source", "hris", &configured)
                .unwrap_err()
                .reason
                .contains("polled")
        );
    }

    #[test]
    fn client_keys_never_meet_source_record_keys() {
        let p = Poster {
            name: "hr-feed",
            sources: SourceScope::PushSources,
        };
        assert_eq!(p.client_key("hr:E1:leaver"), "~hr-feed/hr:E1:leaver");
        assert!(crate::event::check_source("~hr-feed").is_err());
    }
}
