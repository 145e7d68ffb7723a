//! The plugin's settings (`[tenants.T.plugins.lever] settings = { ... }`).

use crate::names::NameSplit;
use serde::Deserialize;
use tenure_sdk::errors::invalid_input;
use tenure_sdk::types::PluginError;

/// What a hire without a start date (no offer, or none with `anticipated_start_date`) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartWithoutOffer {
    /// Nothing until Lever (or a linked HR record) gives a start date: no access
    /// before anyone has said when the person starts.
    Wait,
    /// The day Lever marked the hire is the start date.
    HireDate,
}

/// What `candidateDeleted` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deleted {
    /// The hire is withdrawn: accounts made for it go (the host applies a withdrawal
    /// only before the start date; someone who already started is left to the HR system).
    Withdraw,
    Ignore,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    #[cfg(test)]
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Settings, PluginError> {
        tenure_sdk::settings::from_pairs::<Settings>(pairs)?.checked()
    }

    /// Checks what the types alone do not: ranges and empty texts.
    pub fn checked(mut self) -> Result<Settings, PluginError> {
        if self.source.is_empty() {
            return Err(invalid_input("settings.source", "must not be empty"));
        }
        if !(100..=600_000).contains(&self.poll_budget_ms) {
            return Err(invalid_input(
                "settings.poll_budget_ms",
                format!(
                    "{}: a number of milliseconds from 100 to 600000",
                    self.poll_budget_ms
                ),
            ));
        }
        if !(1..=100).contains(&self.page_size) {
            return Err(invalid_input(
                "settings.page_size",
                format!("{}: a number from 1 to 100", self.page_size),
            ));
        }
        self.end_date_field = self.end_date_field.filter(|f| !f.is_empty());
        Ok(self)
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
