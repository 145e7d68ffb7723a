//! The plugin's settings (`[tenants.T.plugins.lever] settings = { ... }`).

use crate::names::NameSplit;
use tenure_sdk::errors::invalid_input;
use tenure_sdk::types::PluginError;

/// What a hire without a start date (no offer, or none with `anticipated_start_date`) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartWithoutOffer {
    /// Nothing until Lever (or a linked HR record) gives a start date: no access
    /// before anyone has said when the person starts.
    Wait,
    /// The day Lever marked the hire is the start date.
    HireDate,
}

/// What `candidateDeleted` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The hire is withdrawn: accounts made for it go (the host applies a withdrawal
    /// only before the start date; someone who already started is left to the HR system).
    Withdraw,
    Ignore,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The source name on person ids.
    pub source: String,
    pub name_split: NameSplit,
    pub deleted: Deleted,
    pub start_without_offer: StartWithoutOffer,
    /// The offer field (identifier) holding a contract's end date, if any.
    pub end_date_field: Option<String>,
    /// How long one poll call spends enriching before it hands back a cursor
    /// (keep it well under the plugin's `deadline_ms`).
    pub poll_budget_ms: i64,
    /// Opportunities per listed page (Lever allows 1 to 100).
    pub page_size: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: "lever".into(),
            name_split: NameSplit::Auto,
            deleted: Deleted::Withdraw,
            start_without_offer: StartWithoutOffer::Wait,
            end_date_field: None,
            poll_budget_ms: 5_000,
            page_size: 50,
        }
    }
}

impl Settings {
    /// Reads the settings; every error names the setting.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Settings, PluginError> {
        let mut s = Settings::default();
        for (k, v) in pairs {
            let bad = |expected: &str| invalid_input(format!("settings.{k}"), format!("{v:?}: {expected}"));
            match k.as_str() {
                "source" if !v.is_empty() => s.source = v,
                "source" => return Err(bad("must not be empty")),
                "name_split" => {
                    s.name_split =
                        NameSplit::parse(&v).ok_or_else(|| bad("use auto, last-space or first-space"))?
                }
                "deleted" => {
                    s.deleted = match v.as_str() {
                        "withdraw" => Deleted::Withdraw,
                        "ignore" => Deleted::Ignore,
                        _ => return Err(bad("use withdraw or ignore")),
                    }
                }
                "start_without_offer" => {
                    s.start_without_offer = match v.as_str() {
                        "wait" => StartWithoutOffer::Wait,
                        "hire-date" => StartWithoutOffer::HireDate,
                        _ => return Err(bad("use wait or hire-date")),
                    }
                }
                "end_date_field" if !v.is_empty() => s.end_date_field = Some(v),
                "end_date_field" => s.end_date_field = None,
                "poll_budget_ms" => {
                    s.poll_budget_ms = v
                        .parse()
                        .ok()
                        .filter(|ms| (100..=600_000).contains(ms))
                        .ok_or_else(|| bad("a number of milliseconds from 100 to 600000"))?
                }
                "page_size" => {
                    s.page_size = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| bad("a number from 1 to 100"))?
                }
                _ => return Err(invalid_input(format!("settings.{k}"), "unknown setting")),
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_safe_ones_and_errors_name_the_setting() {
        let s = Settings::parse(Vec::new()).unwrap();
        assert_eq!(s.deleted, Deleted::Withdraw);
        assert_eq!(s.start_without_offer, StartWithoutOffer::Wait);
        assert_eq!(s.name_split, NameSplit::Auto);
        let s = Settings::parse(pairs(&[
            ("end_date_field", "contract_end"),
            ("deleted", "ignore"),
        ]))
        .unwrap();
        assert_eq!(s.end_date_field.as_deref(), Some("contract_end"));
        let Err(PluginError::InvalidInput(e)) = Settings::parse(pairs(&[("page_size", "500")])) else {
            panic!("page_size 500 must be refused");
        };
        assert_eq!(e.field, "settings.page_size");
        let Err(PluginError::InvalidInput(e)) = Settings::parse(pairs(&[("colour", "red")])) else {
            panic!("an unknown setting must be refused");
        };
        assert_eq!(e.field, "settings.colour");
    }
}
