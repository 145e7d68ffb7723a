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

/// A ticket template a rule set gives a destination, and where (`rule "x"` or `defaults`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketUse {
    pub by: String,
    pub template: String,
    /// The fields as written (a value may be a `${...}` expression).
    pub fields: Vec<(String, String)>,
}

/// What a document gives each destination: its outputs with the rules that give them, and its
/// ticket templates (destinations with none are left out of `tickets`).
#[derive(Debug, Default)]
pub struct Uses {
    pub outputs: BTreeMap<String, BTreeMap<Output, UsedBy>>,
    pub tickets: BTreeMap<String, Vec<TicketUse>>,
}

/// What a document in the `rules` plugin's format gives each destination, read in one pass;
/// `None` when the document is in another format.
pub fn uses(document: &str) -> Option<Uses> {
    let doc: Json = serde_yaml_ng::from_str(document).ok()?;
    let destinations = doc.get("destinations")?.as_object()?;
    let mut uses = Uses::default();
    for (name, destination) in destinations {
        let mut outputs: BTreeMap<Output, UsedBy> = BTreeMap::new();
        let mut tickets = Vec::new();
        for (by, block) in blocks(destination) {
            for (key, output) in Output::ALL {
                if block.get(key).is_some_and(|v| !v.is_null()) {
                    outputs.entry(output).or_default().push(by.clone());
                }
            }
            tickets.extend(tickets_of(block, &by));
        }
        uses.outputs.insert(name.clone(), outputs);
        if !tickets.is_empty() {
            uses.tickets.insert(name.clone(), tickets);
        }
    }
    Some(uses)
}

/// A destination's blocks that give outputs: each rule's `then` (`rule "name"`, or `rule "#n"`
/// for an unnamed one) and the `defaults`.
fn blocks(destination: &Json) -> Vec<(String, &serde_json::Map<String, Json>)> {
    let rules = destination
        .get("rules")
        .and_then(Json::as_array)
        .into_iter()
        .flatten();
    let mut out: Vec<_> = rules
        .enumerate()
        .filter_map(|(i, rule)| {
            let name = rule
                .get("name")
                .and_then(Json::as_str)
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            Some((format!("rule {name:?}"), rule.get("then")?.as_object()?))
        })
        .collect();
    out.extend(
        destination
            .get("defaults")
            .and_then(Json::as_object)
            .map(|d| ("defaults".to_string(), d)),
    );
    out
}

/// The ticket templates one block asks for.
fn tickets_of(block: &serde_json::Map<String, Json>, by: &str) -> Vec<TicketUse> {
    let listed = block
        .get("tickets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten();
    listed
        .filter_map(|t| {
            let template = t.get("template")?.as_str()?.to_string();
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
            Some(TicketUse {
                by: by.to_string(),
                template,
                fields,
            })
        })
        .collect()
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
        let used = uses(DOC).unwrap().outputs;
        let okta = &used["okta"];
        assert_eq!(okta[&Output::Apps], ["rule \"engineering\""]);
        assert_eq!(okta[&Output::Licenses], ["defaults"]);
        assert!(!okta.contains_key(&Output::Expires));
        assert_eq!(used["google"][&Output::DistributionLists], ["rule \"#1\""]);
        assert!(uses("destination x\nrule a: x == 1 => group:G\n").is_none());
    }

    #[test]
    fn what_a_connector_cannot_apply_is_refused_by_name() {
        let used = uses(DOC).unwrap().outputs;
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
