//! `sandbox`: Tenure's first-party sandbox destination.
//!
//! Accounts live in the plugin's private key-value store (SQLite-backed in
//! `tenure serve`), so the whole flow (intake, plan, apply, audit) runs with
//! no directory or SaaS server. It behaves like a careful real destination:
//! matching attributes are unique (a second create with the same value is a
//! `conflict`), unknown anchors are `not-found`, adding a member twice or
//! removing a non-member succeeds.
//!
//! Keys: `account/<anchor>` (JSON), `by/<attribute>/<lowercased value>` -> anchor,
//! `ticket/<n>`, `seq`. Anchors are `sbx-<first matching value>` (stable and unique
//! without an atomic counter). Lookup also accepts the attribute `anchor`.
//! Settings: `match_attributes` (comma-separated, default `employeeId,mail`).

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use tenure_sdk::connector::{Capabilities, Guest, OperationKind};
use tenure_sdk::host::kv;
use tenure_sdk::reserved;
use tenure_sdk::types::{
    Account, Attribute, DesiredAccount, MatchKey, Operation, Outcome, PluginError, Value,
};

thread_local! {
    static MATCH: RefCell<Vec<String>> = RefCell::new(vec!["employeeId".into(), "mail".into()]);
}

#[derive(Serialize, Deserialize, Clone)]
enum Stored {
    Absent,
    Text(String),
    Many(Vec<String>),
    Number(i64),
    Flag(bool),
}

#[derive(Serialize, Deserialize)]
struct Record {
    anchor: String,
    attributes: Vec<(String, Stored)>,
    container: Option<String>,
    groups: Vec<String>,
    licenses: Vec<String>,
    apps: Vec<String>,
    enabled: bool,
    expires_at: Option<String>,
}

fn to_stored(v: &Value) -> Stored {
    match v {
        Value::Absent => Stored::Absent,
        Value::Text(t) => Stored::Text(t.clone()),
        Value::Many(m) => Stored::Many(m.clone()),
        Value::Number(n) => Stored::Number(*n),
        Value::Flag(f) => Stored::Flag(*f),
    }
}

fn to_value(v: &Stored) -> Value {
    match v {
        Stored::Absent => Value::Absent,
        Stored::Text(t) => Value::Text(t.clone()),
        Stored::Many(m) => Value::Many(m.clone()),
        Stored::Number(n) => Value::Number(*n),
        Stored::Flag(f) => Value::Flag(*f),
    }
}

fn text_of(v: &Stored) -> Option<String> {
    match v {
        Stored::Text(t) => Some(t.clone()),
        Stored::Number(n) => Some(n.to_string()),
        Stored::Flag(f) => Some(f.to_string()),
        Stored::Many(m) => m.first().cloned(),
        Stored::Absent => None,
    }
}

fn storage(e: kv::KvError) -> PluginError {
    PluginError::Transient(format!("key-value store: {e:?}"))
}

fn get(key: &str) -> Result<Option<Vec<u8>>, PluginError> {
    kv::get(key).map_err(storage)
}

fn set(key: &str, value: &[u8]) -> Result<(), PluginError> {
    kv::set(key, value).map_err(storage)
}

fn index_key(attribute: &str, value: &str) -> String {
    format!("by/{attribute}/{}", value.to_lowercase())
}

fn load(anchor: &str) -> Result<Record, PluginError> {
    let raw = get(&format!("account/{anchor}"))?
        .ok_or_else(|| PluginError::NotFound(format!("no account {anchor}")))?;
    serde_json::from_slice(&raw)
        .map_err(|e| PluginError::Permanent(format!("account {anchor} is corrupt: {e}")))
}

fn save(record: &Record) -> Result<(), PluginError> {
    let raw = serde_json::to_vec(record).map_err(|e| PluginError::Permanent(e.to_string()))?;
    set(&format!("account/{}", record.anchor), &raw)
}

fn matched_values(record: &Record) -> Vec<(String, String)> {
    MATCH.with(|m| {
        m.borrow()
            .iter()
            .filter_map(|name| {
                record
                    .attributes
                    .iter()
                    .find(|(n, _)| n == name)
                    .and_then(|(_, v)| text_of(v))
                    // An empty value identifies nobody: it is never held unique.
                    .filter(|v| !v.is_empty())
                    .map(|v| (name.clone(), v))
            })
            .collect()
    })
}

fn to_account(r: Record) -> Account {
    Account {
        anchor: r.anchor,
        attributes: r
            .attributes
            .iter()
            .map(|(n, v)| Attribute {
                name: n.clone(),
                value: to_value(v),
            })
            .collect(),
        container: r.container,
        groups: r.groups,
        licenses: r.licenses,
        app_assignments: r.apps,
        enabled: r.enabled,
        expires_at: r.expires_at,
    }
}

fn next_seq(key: &str) -> Result<u64, PluginError> {
    let n = get(key)?
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    set(key, n.to_string().as_bytes())?;
    Ok(n)
}

fn derived_anchor(value: &str) -> String {
    let safe: String = value
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("sbx-{safe}")
}

fn create(d: DesiredAccount) -> Result<Outcome, PluginError> {
    let mut record = Record {
        anchor: String::new(),
        attributes: d
            .attributes
            .iter()
            .filter(|a| !matches!(a.value, Value::Absent))
            .map(|a| (a.name.clone(), to_stored(&a.value)))
            .collect(),
        container: d.container,
        groups: d.groups,
        licenses: d.licenses,
        apps: d.app_assignments,
        enabled: d.enabled,
        expires_at: d.expires_at,
    };
    let manager_note = resolve_manager(&mut record.attributes)?;
    let keys = matched_values(&record);
    for (name, value) in &keys {
        if get(&index_key(name, value))?.is_some() {
            return Err(PluginError::Conflict(format!(
                "{name} {value:?} is already taken"
            )));
        }
    }
    // The key-value store has no atomic counter, and creates for different people run
    // in parallel, so the anchor comes from the (unique) first matching value.
    record.anchor = match keys.first() {
        Some((name, value)) if MATCH.with(|m| m.borrow().first() == Some(name)) => derived_anchor(value),
        _ => format!("sbx-n{}", next_seq("seq")?),
    };
    if get(&format!("account/{}", record.anchor))?.is_some() {
        return Err(PluginError::Conflict(format!(
            "account {} already exists",
            record.anchor
        )));
    }
    save(&record)?;
    for (name, value) in &keys {
        set(&index_key(name, value), record.anchor.as_bytes())?;
    }
    Ok(Outcome {
        anchor: Some(record.anchor.clone()),
        summary: format!(
            "created {} in {}{}",
            record.anchor,
            record.container.as_deref().unwrap_or("(root)"),
            manager_note.map(|n| format!("; {n}")).unwrap_or_default()
        ),
    })
}

/// Keeps `manager` only when it names an account here (by the first matching
/// attribute), as a directory resolves it to a DN; returns a note otherwise.
fn resolve_manager(attributes: &mut Vec<(String, Stored)>) -> Result<Option<String>, PluginError> {
    let Some(at) = attributes.iter().position(|(n, _)| n == "manager") else {
        return Ok(None);
    };
    let reference = text_of(&attributes[at].1).unwrap_or_default();
    if reference.is_empty() {
        attributes.remove(at);
        return Ok(None);
    }
    let first = MATCH.with(|m| m.borrow().first().cloned()).unwrap_or_default();
    if get(&index_key(&first, &reference))?.is_some() {
        return Ok(None);
    }
    attributes.remove(at);
    Ok(Some(format!("manager {reference:?} has no account here yet")))
}

fn list_of(v: &Value) -> Vec<String> {
    match v {
        Value::Many(m) => m.clone(),
        Value::Text(t) => vec![t.clone()],
        _ => Vec::new(),
    }
}

fn update(anchor: &str, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
    let mut record = load(anchor)?;
    let before = matched_values(&record);
    let mut names = Vec::new();
    for change in changes {
        match change.name.as_str() {
            reserved::EXPIRES_AT => {
                record.expires_at = match change.value {
                    Value::Text(t) => Some(t),
                    _ => None,
                };
                names.push(change.name);
                continue;
            }
            reserved::LICENSES => {
                record.licenses = list_of(&change.value);
                names.push(change.name);
                continue;
            }
            reserved::APP_ASSIGNMENTS => {
                record.apps = list_of(&change.value);
                names.push(change.name);
                continue;
            }
            _ => {}
        }
        record.attributes.retain(|(n, _)| *n != change.name);
        if !matches!(change.value, Value::Absent) {
            record
                .attributes
                .push((change.name.clone(), to_stored(&change.value)));
        }
        names.push(change.name);
    }
    let after = matched_values(&record);
    for (name, value) in after.iter().filter(|kv| !before.contains(kv)) {
        if let Some(owner) = get(&index_key(name, value))?
            && owner != anchor.as_bytes()
        {
            return Err(PluginError::Conflict(format!(
                "{name} {value:?} is already taken"
            )));
        }
    }
    let note = resolve_manager(&mut record.attributes)?;
    for (name, value) in before.iter().filter(|kv| !after.contains(kv)) {
        kv::remove(&index_key(name, value)).map_err(storage)?;
    }
    for (name, value) in &after {
        set(&index_key(name, value), anchor.as_bytes())?;
    }
    save(&record)?;
    let mut summary = format!("updated {anchor}: {}", names.join(", "));
    if let Some(note) = note {
        summary = format!("{summary}; {note}");
    }
    Ok(Outcome {
        anchor: None,
        summary,
    })
}

fn modify(anchor: &str, summary: String, f: impl FnOnce(&mut Record)) -> Result<Outcome, PluginError> {
    let mut record = load(anchor)?;
    f(&mut record);
    save(&record)?;
    Ok(Outcome {
        anchor: None,
        summary,
    })
}

struct Sandbox;

impl Guest for Sandbox {
    fn configure(settings: Vec<(String, String)>) -> Result<(), PluginError> {
        tenure_sdk::init();
        for (k, v) in settings {
            if k == "match_attributes" {
                let names: Vec<String> = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if names.is_empty() {
                    return Err(tenure_sdk::errors::invalid_input(
                        "match_attributes",
                        "names no attribute",
                    ));
                }
                MATCH.with(|m| *m.borrow_mut() = names);
            }
        }
        Ok(())
    }

    fn describe() -> Capabilities {
        use OperationKind::*;
        let keys = MATCH.with(|m| m.borrow().clone());
        Capabilities {
            operations: vec![
                Create,
                Update,
                Enable,
                Disable,
                Move,
                AddMember,
                RemoveMember,
                Delete,
                OpenTicket,
            ],
            matching_keys: keys.clone(),
            unique_attributes: keys,
        }
    }

    fn lookup_accounts(keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
        for key in keys {
            let anchor = if key.attribute == "anchor" {
                if get(&format!("account/{}", key.value))?.is_some() {
                    Some(key.value)
                } else {
                    None
                }
            } else {
                get(&index_key(&key.attribute, &key.value))?.and_then(|b| String::from_utf8(b).ok())
            };
            if let Some(anchor) = anchor {
                return Ok(vec![to_account(load(&anchor)?)]);
            }
        }
        Ok(vec![])
    }

    fn apply(op: Operation) -> Result<Outcome, PluginError> {
        match op {
            Operation::Create(d) => create(d),
            Operation::Update(c) => update(&c.anchor, c.changes),
            Operation::Enable(a) => modify(&a, format!("enabled {a}"), |r| r.enabled = true),
            Operation::Disable(a) => modify(&a, format!("disabled {a}"), |r| r.enabled = false),
            Operation::Move(m) => {
                let summary = format!("moved {} to {}", m.anchor, m.container);
                modify(&m.anchor, summary, |r| r.container = Some(m.container))
            }
            Operation::AddMember(m) => {
                let summary = format!("added {} to {}", m.anchor, m.group);
                modify(&m.anchor, summary, |r| {
                    if !r.groups.contains(&m.group) {
                        r.groups.push(m.group)
                    }
                })
            }
            Operation::RemoveMember(m) => {
                let summary = format!("removed {} from {}", m.anchor, m.group);
                modify(&m.anchor, summary, |r| r.groups.retain(|g| *g != m.group))
            }
            Operation::Delete(a) => {
                let record = load(&a)?;
                for (name, value) in matched_values(&record) {
                    kv::remove(&index_key(&name, &value)).map_err(storage)?;
                }
                kv::remove(&format!("account/{a}")).map_err(storage)?;
                Ok(Outcome {
                    anchor: None,
                    summary: format!("deleted {a}"),
                })
            }
            Operation::OpenTicket(t) => {
                let n = next_seq("ticket-seq")?;
                let body = serde_json::to_vec(&(&t.template, &t.fields))
                    .map_err(|e| PluginError::Permanent(e.to_string()))?;
                set(&format!("ticket/{n}"), &body)?;
                Ok(Outcome {
                    anchor: Some(format!("ticket-{n}")),
                    summary: format!("opened ticket-{n} ({})", t.template),
                })
            }
        }
    }
}

tenure_sdk::export_connector!(Sandbox);
