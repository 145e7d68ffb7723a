//! The `rules-basic` plugin: the table-driven engine of
//! `tenure-rules-basic-engine`, exposed through the `rules-plugin` world.

use tenure_rules_basic_engine::{Record, RuleSet, TraceLevel};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::rules::{Context, Evaluation, TraceEntry, TraceLevel as WitTraceLevel};
use tenure_sdk::types::{Attribute, DesiredAccount, Person, PluginError, Value};

/// The loaded rule table.
struct RulesBasic {
    rules: RuleSet,
}

impl tenure_sdk::Rules for RulesBasic {
    type Settings = ();
    const CALL_ARENA: bool = true;

    fn new(rule_set: String, _: ()) -> Result<Self, PluginError> {
        let rules = RuleSet::parse(&rule_set).map_err(|e| invalid_input("rule-set", e.to_string()))?;
        log::info!("loaded {} rules", rules.rule_count());
        Ok(RulesBasic { rules })
    }

    fn evaluate(&mut self, person: Person, context: Context) -> Result<Evaluation, PluginError> {
        let record = flatten(&person);
        let mut trace = Vec::new();
        let level = match context.trace {
            WitTraceLevel::None => TraceLevel::None,
            WitTraceLevel::Matched => TraceLevel::Matched,
            WitTraceLevel::All => TraceLevel::All,
        };
        let desired = self
            .rules
            .evaluate(&record, &context.destinations, level, &mut trace);
        Ok(Evaluation {
            accounts: desired
                .into_iter()
                .map(|d| DesiredAccount {
                    destination: d.destination,
                    attributes: d
                        .attributes
                        .into_iter()
                        .map(|(name, v)| Attribute {
                            name,
                            value: Value::Text(v),
                        })
                        .collect(),
                    container: d.container,
                    groups: d.groups,
                    licenses: d.licenses,
                    app_assignments: d.apps,
                    enabled: d.enabled,
                    expires_at: None,
                    tickets: Vec::new(),
                })
                .collect(),
            trace: trace
                .into_iter()
                .map(|t| TraceEntry {
                    destination: t.destination,
                    reason: if t.matched {
                        "condition matched".into()
                    } else {
                        "condition not met".into()
                    },
                    rule: t.rule,
                    matched: t.matched,
                    inputs: t
                        .inputs
                        .into_iter()
                        .map(|(k, v)| (k, v.map(Value::Text).unwrap_or(Value::Absent)))
                        .collect(),
                    contributed: t.contributed,
                })
                .collect(),
        })
    }
}

/// The person as flat attributes the rules can test (borrowed, no copies).
pub fn flatten(p: &Person) -> Record<'_> {
    let mut r: Record<'_> = Vec::with_capacity(16 + p.custom.len());
    let fields = [
        ("given_name", &p.given_name),
        ("family_name", &p.family_name),
        ("preferred_name", &p.preferred_name),
        ("title", &p.title),
        ("department", &p.department),
        ("team", &p.team),
        ("location", &p.location),
        ("country", &p.country),
        ("time_zone", &p.time_zone),
        ("start_date", &p.start_date),
        ("end_date", &p.end_date),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            r.push((name, v.as_str()));
        }
    }
    if let Some(id) = p.ids.first() {
        r.push(("id", id.id.as_str()));
    }
    if let Some(email) = tenure_sdk::person::primary_email(p) {
        r.push(("email", email));
    }
    if let Some(t) = p.employment_type {
        r.push(("employment_type", tenure_sdk::person::employment_type_name(t)));
    }
    r.push(("status", tenure_sdk::person::status_name(p.status)));
    for (k, v) in &p.custom {
        if let Value::Text(s) = v {
            r.push((k.as_str(), s.as_str()));
        }
    }
    r
}

tenure_sdk::rules_plugin!(RulesBasic);
