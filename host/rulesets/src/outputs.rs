//! Publish-time check that every output a rule set gives a destination can be applied there.
//!
//! A rule set in the `rules` plugin's document format (YAML or JSON) names its outputs per
//! destination (`then:` of each rule, `defaults:`). Each output kind needs something of the
//! destination's connector: an org unit needs a `move` operation, licences, apps and expiry need
//! the connector to keep them (`keeps` in its manifest), distribution lists and Microsoft 365
//! groups likewise. An output the destination cannot take refuses the publish with a message
//! naming the destination, the output and the rule, never a silent drop at apply time. Rule sets
//! in other formats (a plugin's own language) are checked at plan time instead, where licences,
//! apps and expiry a destination does not keep are reported as unsupported.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use tenure_runtime::AccessField;
use tenure_runtime::wit::connector::OperationKind;

/// An output kind of the document format, and what the destination must have for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Output {
    Container,
    Licenses,
    Apps,
    Expires,
    DistributionLists,
    M365Groups,
}

/// What a destination needs to take an output.
enum Needs {
    Operation(OperationKind),
    Keeps(AccessField),
}

impl Output {
    const ALL: [(&'static str, Output); 6] = [
        ("container", Output::Container),
        ("licenses", Output::Licenses),
        ("apps", Output::Apps),
        ("expires", Output::Expires),
        ("distribution_lists", Output::DistributionLists),
        ("m365_groups", Output::M365Groups),
    ];

    /// The key in the document.
    pub fn key(self) -> &'static str {
        Output::ALL
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(k, _)| *k)
            .unwrap_or_default()
    }

    fn needs(self) -> Needs {
        match self {
            Output::Container => Needs::Operation(OperationKind::Move),
            Output::Licenses => Needs::Keeps(AccessField::Licenses),
            Output::Apps => Needs::Keeps(AccessField::AppAssignments),
            Output::Expires => Needs::Keeps(AccessField::Expiry),
            Output::DistributionLists => Needs::Keeps(AccessField::DistributionLists),
            Output::M365Groups => Needs::Keeps(AccessField::M365Groups),
        }
    }
}

/// Where a rule set uses an output: `rule "engineering"` or `defaults`.
pub type UsedBy = Vec<String>;

/// The outputs each destination of a document is given, with the rules that give them; `None`
/// when the document is not in the `rules` plugin's format.
pub fn outputs_used(document: &str) -> Option<BTreeMap<String, BTreeMap<Output, UsedBy>>> {
    let doc: Json = serde_yaml_ng::from_str(document).ok()?;
    let destinations = doc.get("destinations")?.as_object()?;
    let mut used = BTreeMap::new();
    for (name, destination) in destinations {
        let mut outputs: BTreeMap<Output, UsedBy> = BTreeMap::new();
        let mut note = |block: Option<&Json>, by: String| {
            let Some(block) = block.and_then(Json::as_object) else {
                return;
            };
            for (key, output) in Output::ALL {
                if block.get(key).is_some_and(|v| !v.is_null()) {
                    outputs.entry(output).or_default().push(by.clone());
                }
            }
        };
        for (i, rule) in destination
            .get("rules")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let rule_name = rule
                .get("name")
                .and_then(Json::as_str)
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            note(rule.get("then"), format!("rule {rule_name:?}"));
        }
        note(destination.get("defaults"), "defaults".into());
        used.insert(name.clone(), outputs);
    }
    Some(used)
}

/// A ticket template a rule set gives a destination, and where (`rule "x"` or `defaults`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketUse {
    pub by: String,
    pub template: String,
    /// The fields as written (a value may be a `${...}` expression).
    pub fields: Vec<(String, String)>,
}

/// The ticket templates of a rule set in the document format, per destination (`None` for
/// documents in another format).
pub fn tickets_used(document: &str) -> Option<BTreeMap<String, Vec<TicketUse>>> {
    let doc: Json = serde_yaml_ng::from_str(document).ok()?;
    let destinations = doc.get("destinations")?.as_object()?;
    let mut used = BTreeMap::new();
    for (name, destination) in destinations {
        let mut tickets = Vec::new();
        let mut note = |block: Option<&Json>, by: String| {
            let listed = block.and_then(|b| b.get("tickets")).and_then(Json::as_array);
            for t in listed.into_iter().flatten() {
                let Some(template) = t.get("template").and_then(Json::as_str) else {
                    continue;
                };
                let fields = t
                    .get("fields")
                    .and_then(Json::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect();
                tickets.push(TicketUse {
                    by: by.clone(),
                    template: template.to_string(),
                    fields,
                });
            }
        };
        for (i, rule) in destination
            .get("rules")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let rule_name = rule
                .get("name")
                .and_then(Json::as_str)
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            note(rule.get("then"), format!("rule {rule_name:?}"));
        }
        note(destination.get("defaults"), "defaults".into());
        if !tickets.is_empty() {
            used.insert(name.clone(), tickets);
        }
    }
    Some(used)
}

/// The refusals for one destination: each output its connector cannot apply, named.
pub fn refusals(
    destination: &str,
    connector: &str,
    used: &BTreeMap<Output, UsedBy>,
    operations: &[OperationKind],
    keeps: &[AccessField],
) -> Vec<String> {
    used.iter()
        .filter_map(|(output, by)| {
            let why = match output.needs() {
                Needs::Operation(op) if !operations.contains(&op) => {
                    format!("its connector {connector:?} cannot move accounts between containers")
                }
                Needs::Keeps(field) if !keeps.contains(&field) => format!(
                    "its connector {connector:?} does not keep {} (its manifest's `keeps`)",
                    field.as_str()
                ),
                _ => return None,
            };
            Some(format!(
                "destination {destination:?} cannot take `{}` ({}): {why}",
                output.key(),
                by.join(", ")
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "
destinations:
  okta:
    rules:
      - name: engineering
        when: person.department == \"Engineering\"
        then: { groups: [Engineering], apps: [Slack], container: OU=Eng }
    defaults: { licenses: [E3] }
  google:
    rules:
      - then: { distribution_lists: [all@example.test] }
";

    #[test]
    fn outputs_are_found_per_destination_with_their_rules() {
        let used = outputs_used(DOC).unwrap();
        let okta = &used["okta"];
        assert_eq!(okta[&Output::Apps], ["rule \"engineering\""]);
        assert_eq!(okta[&Output::Licenses], ["defaults"]);
        assert!(!okta.contains_key(&Output::Expires));
        assert_eq!(used["google"][&Output::DistributionLists], ["rule \"#1\""]);
        assert!(outputs_used("destination x\nrule a: x == 1 => group:G\n").is_none());
    }

    #[test]
    fn what_a_connector_cannot_apply_is_refused_by_name() {
        let used = outputs_used(DOC).unwrap();
        let ops = [OperationKind::Create, OperationKind::Update];
        let refused = refusals(
            "okta",
            "okta",
            &used["okta"],
            &ops,
            &[AccessField::AppAssignments],
        );
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused[0].contains("`container` (rule \"engineering\")") && refused[0].contains("move"));
        assert!(
            refused[1].contains("`licenses` (defaults)") && refused[1].contains("does not keep licenses")
        );
        let google = refusals(
            "google",
            "google",
            &used["google"],
            &ops,
            &[AccessField::DistributionLists],
        );
        assert!(google.is_empty(), "{google:?}");
    }
}
