//! What other hosts changed. Hosts sharing one database learn of work and of new
//! versions from a feed ([`ChangeFeed`]) instead of waiting for their next poll: on
//! PostgreSQL, writes `NOTIFY` and every host `LISTEN`s; the embedded store has one
//! host, which wakes its own workers, so its feed stays silent. Polling remains the
//! fallback either way: a feed may miss what happened while it reconnected ([`Change::Resync`]).

use tokio::sync::broadcast;

/// One change another host may need to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Jobs became runnable (an intake, a release, a replay, a person's earlier job ended).
    Jobs,
    /// A webhook delivery was stored, to be enriched.
    Deliveries,
    /// A tenant published (or rolled back to) another rule-set version.
    RuleSet { tenant: String },
    /// A tenant activated or rolled back a plugin version.
    Plugins,
    /// The feed reconnected and may have missed changes: look at everything again.
    Resync,
}

impl Change {
    /// The change as a notification's payload.
    pub fn to_payload(&self) -> String {
        match self {
            Change::Jobs => "jobs".into(),
            Change::Deliveries => "deliveries".into(),
            Change::RuleSet { tenant } => format!("rule-set:{tenant}"),
            Change::Plugins => "plugins".into(),
            Change::Resync => "resync".into(),
        }
    }

    /// The change a payload names (an unknown one is a resync: look at everything).
    pub fn parse(payload: &str) -> Change {
        match payload {
            "jobs" => Change::Jobs,
            "deliveries" => Change::Deliveries,
            "plugins" => Change::Plugins,
            _ => match payload.strip_prefix("rule-set:") {
                Some(tenant) => Change::RuleSet {
                    tenant: tenant.to_string(),
                },
                None => Change::Resync,
            },
        }
    }
}

/// Changes made by other hosts.
pub trait ChangeFeed {
    /// A receiver of the changes made from now on.
    fn changes(&self) -> broadcast::Receiver<Change>;
}

/// How many changes a slow receiver may fall behind before it is told to resync.
pub const CHANGE_BACKLOG: usize = 1024;

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn changes_round_trip_through_their_payload() {
        for change in [
            Change::Jobs,
            Change::Deliveries,
            Change::Plugins,
            Change::Resync,
            Change::RuleSet {
                tenant: "acme:eu".into(),
            },
        ] {
            assert_eq!(Change::parse(&change.to_payload()), change);
        }
        assert_eq!(Change::parse("something new"), Change::Resync);
    }
}
