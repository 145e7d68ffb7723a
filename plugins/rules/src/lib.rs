//! The `rules` plugin: Tenure's first-party rule engine (`tenure-rules-engine`)
//! behind the `rules-plugin` world.
//!
//! Unique naming requests travel to the host as reserved attributes (names
//! starting with `$`, which no destination uses): `$unique:<attr>` holds the
//! candidates in order, `$unique-in:<attr>` the destinations where the value must
//! be free, `$unique-rename:<attr>` whether an HR change may rename.

use tenure_rules_engine::{Attr, Person as EnginePerson, Request, RuleSet, TraceLevel};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::rules::{Context, Evaluation, TraceEntry, TraceLevel as WitTraceLevel};
use tenure_sdk::types::{Attribute, DesiredAccount, Person, PluginError, Ticket, Value};

/// The loaded rule set.
struct Rules {
    rules: RuleSet,
}

impl tenure_sdk::Rules for Rules {
    type Settings = ();
    const CALL_ARENA: bool = true;

    fn new(rule_set: String, _: ()) -> Result<Self, PluginError> {
        let rules = RuleSet::parse(&rule_set)
            .map_err(|e| invalid_input(if e.field.is_empty() { "rule-set" } else { &e.field }, e.reason))?;
        log::info!(
            "rule set loaded: {} destinations, {} rules",
            rules.destinations().count(),
            rules.rule_count()
        );
        Ok(Rules { rules })
    }

    fn evaluate(&mut self, person: Person, context: Context) -> Result<Evaluation, PluginError> {
        let input = to_engine(person);
        let request = Request {
            event: tenure_sdk::person::event_kind_name(context.event),
            destinations: &context.destinations,
            now_ms: context.now_ms,
            trace: match context.trace {
                WitTraceLevel::None => TraceLevel::None,
                WitTraceLevel::Matched => TraceLevel::Matched,
                WitTraceLevel::All => TraceLevel::All,
            },
        };
        let result = self
            .rules
            .evaluate(&input, &request)
            .map_err(|e| invalid_input(&e.field, e.reason))?;
        Ok(Evaluation {
            accounts: result.accounts.into_iter().map(to_wit_account).collect(),
            trace: result
                .trace
                .into_iter()
                .map(|t| TraceEntry {
                    destination: t.destination,
                    rule: t.rule,
                    matched: t.matched,
                    reason: t.reason,
                    inputs: t.inputs.into_iter().map(|(k, v)| (k, to_wit_value(v))).collect(),
                    contributed: t.contributed,
                })
                .collect(),
        })
    }
}

fn to_wit_value(a: Attr) -> Value {
    match a {
        Attr::Absent => Value::Absent,
        Attr::Text(t) => Value::Text(t),
        Attr::Many(m) => Value::Many(m),
        Attr::Number(n) => Value::Number(n),
        Attr::Flag(b) => Value::Flag(b),
    }
}

fn to_wit_account(d: tenure_rules_engine::Desired) -> DesiredAccount {
    let mut attributes: Vec<Attribute> = d
        .attributes
        .into_iter()
        .map(|(name, v)| Attribute {
            name,
            value: to_wit_value(v),
        })
        .collect();
    for u in d.unique {
        attributes.push(Attribute {
            name: format!("$unique:{}", u.attribute),
            value: Value::Many(u.candidates),
        });
        attributes.push(Attribute {
            name: format!("$unique-in:{}", u.attribute),
            value: Value::Many(u.unique_in),
        });
        attributes.push(Attribute {
            name: format!("$unique-rename:{}", u.attribute),
            value: Value::Flag(u.rename_on_change),
        });
    }
    if !d.redacted.is_empty() {
        // Read by the host: applied, but shown as `[redacted]` in audits and previews.
        attributes.push(Attribute {
            name: "$redacted".into(),
            value: Value::Many(d.redacted),
        });
    }
    DesiredAccount {
        destination: d.destination,
        attributes,
        container: d.container,
        groups: d.groups,
        licenses: d.licenses,
        app_assignments: d.apps,
        enabled: d.enabled,
        expires_at: d.expires_at,
        tickets: d
            .tickets
            .into_iter()
            .map(|t| Ticket {
                template: t.template,
                fields: t.fields,
            })
            .collect(),
    }
}

/// The WIT person as the engine's (moves the strings, no copies).
pub fn to_engine(p: Person) -> EnginePerson {
    let labeled = |l: Vec<tenure_sdk::types::LabeledValue>| {
        l.into_iter().map(|v| (v.kind, v.value, v.primary)).collect()
    };
    EnginePerson {
        ids: p.ids.into_iter().map(|i| (i.source, i.id)).collect(),
        given_name: p.given_name,
        family_name: p.family_name,
        preferred_name: p.preferred_name,
        emails: labeled(p.emails),
        phones: labeled(p.phones),
        title: p.title,
        department: p.department,
        team: p.team,
        location: p.location,
        country: p.country,
        time_zone: p.time_zone,
        manager: p.manager.map(|m| m.id),
        employment_type: p
            .employment_type
            .map(|t| tenure_sdk::person::employment_type_name(t).to_string()),
        start_date: p.start_date,
        end_date: p.end_date,
        status: tenure_sdk::person::status_name(p.status).to_string(),
        custom: p
            .custom
            .into_iter()
            .map(|(k, v)| {
                let a = match v {
                    Value::Absent => Attr::Absent,
                    Value::Text(t) => Attr::Text(t),
                    Value::Many(m) => Attr::Many(m),
                    Value::Number(n) => Attr::Number(n),
                    Value::Flag(b) => Attr::Flag(b),
                };
                (k, a)
            })
            .collect(),
    }
}

tenure_sdk::rules_plugin!(Rules);
