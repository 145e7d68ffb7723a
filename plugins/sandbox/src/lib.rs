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
//! `ticket/<n>`, `ticket-key/<host ticket key>` -> n, `seq`. Anchors are
//! `sbx-<first matching value>` (stable and unique without an atomic counter). Lookup also
//! accepts the attribute `anchor`.
//! Settings: `match_attributes` (comma-separated, default `employeeId,mail`).

use serde::{Deserialize, Serialize};
use tenure_sdk::kv_json::{get_raw as get, put_raw as set, remove};
use tenure_sdk::prelude::*;
use tenure_sdk::reserved;

/// `[...plugins.sandbox.settings]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Attributes accounts are matched by and held unique on, in order.
    #[serde(default = "default_match_attributes")]
    match_attributes: Vec<String>,
}

fn default_match_attributes() -> Vec<String> {
    vec!["employeeId".into(), "mail".into()]
}

/// An account as kept in the key-value store (empty fields left out).
#[derive(Serialize, Deserialize)]
struct Record {
    anchor: String,
    attributes: Vec<(String, Value)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    apps: Vec<String>,
    enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
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

fn matched_values(matching: &[String], record: &Record) -> Vec<(String, String)> {
    matching
        .iter()
        .filter_map(|name| {
            record
                .attributes
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.to_text())
                // An empty value identifies nobody: it is never held unique.
                .filter(|v| !v.is_empty())
                .map(|v| (name.clone(), v))
        })
        .collect()
}

fn to_account(r: Record) -> Account {
    Account {
        anchor: r.anchor,
        attributes: r
            .attributes
            .iter()
            .map(|(n, v)| Attribute::new(n.clone(), v.clone()))
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

fn create(matching: &[String], d: DesiredAccount) -> Result<Outcome, PluginError> {
    let mut record = Record {
        anchor: String::new(),
        attributes: d
            .attributes
            .iter()
            .filter(|a| !matches!(a.value, Value::Absent))
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
        container: d.container,
        groups: d.groups,
        licenses: d.licenses,
        apps: d.app_assignments,
        enabled: d.enabled,
        expires_at: d.expires_at,
    };
    let manager_note = resolve_manager(matching, &mut record.attributes)?;
    let keys = matched_values(matching, &record);
    for (name, value) in &keys {
        if get(&index_key(name, value))?.is_some() {
            return Err(PluginError::Conflict(format!(
                "{name} {value:?} is already taken"
            )));
        }
    }
    // The key-value store has no atomic counter, and creates for different people run
    // in parallel, so the anchor comes from the (unique) first matching value.
    let numbered = !matches!(keys.first(), Some((name, _)) if matching.first() == Some(name));
    record.anchor = match keys.first() {
        Some((_, value)) if !numbered => derived_anchor(value),
        _ => format!("sbx-n{}", next_seq("seq")?),
    };
    if get(&format!("account/{}", record.anchor))?.is_some() {
        // A number another create took after this one read the counter: the host refuses
        // this call's writes anyway (the counter changed), so it is retried, not a conflict.
        if numbered {
            return Err(PluginError::Transient(format!(
                "account {} was created by another call meanwhile",
                record.anchor
            )));
        }
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
fn resolve_manager(
    matching: &[String],
    attributes: &mut Vec<(String, Value)>,
) -> Result<Option<String>, PluginError> {
    let Some(at) = attributes.iter().position(|(n, _)| n == "manager") else {
        return Ok(None);
    };
    let reference = attributes[at].1.to_text().unwrap_or_default();
    if reference.is_empty() {
        attributes.remove(at);
        return Ok(None);
    }
    let first = matching.first().cloned().unwrap_or_default();
    if get(&index_key(&first, &reference))?.is_some() {
        return Ok(None);
    }
    attributes.remove(at);
    Ok(Some(format!("manager {reference:?} has no account here yet")))
}

fn update(matching: &[String], anchor: &str, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
    let mut record = load(anchor)?;
    let before = matched_values(matching, &record);
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
                record.licenses = change.value.to_list();
                names.push(change.name);
                continue;
            }
            reserved::APP_ASSIGNMENTS => {
                record.apps = change.value.to_list();
                names.push(change.name);
                continue;
            }
            _ => {}
        }
        record.attributes.retain(|(n, _)| *n != change.name);
        if !matches!(change.value, Value::Absent) {
            record
                .attributes
                .push((change.name.clone(), change.value.clone()));
        }
        names.push(change.name);
    }
    let after = matched_values(matching, &record);
    for (name, value) in after.iter().filter(|kv| !before.contains(kv)) {
        if let Some(owner) = get(&index_key(name, value))?
            && owner != anchor.as_bytes()
        {
            return Err(PluginError::Conflict(format!(
                "{name} {value:?} is already taken"
            )));
        }
    }
    let note = resolve_manager(matching, &mut record.attributes)?;
    for (name, value) in before.iter().filter(|kv| !after.contains(kv)) {
        remove(&index_key(name, value))?;
    }
    for (name, value) in &after {
        set(&index_key(name, value), anchor.as_bytes())?;
    }
    save(&record)?;
    let mut summary = format!("updated {anchor}: {}", names.join(", "));
    if let Some(note) = note {
        summary = format!("{summary}; {note}");
    }
    Ok(Outcome::done(summary))
}

fn modify(anchor: &str, summary: String, f: impl FnOnce(&mut Record)) -> Result<Outcome, PluginError> {
    let mut record = load(anchor)?;
    f(&mut record);
    save(&record)?;
    Ok(Outcome::done(summary))
}

struct Sandbox {
    matching: Vec<String>,
}

impl Connector for Sandbox {
    type Settings = Settings;
    const OPERATIONS: &'static [OperationKind] = &[
        OperationKind::Create,
        OperationKind::Update,
        OperationKind::Enable,
        OperationKind::Disable,
        OperationKind::Move,
        OperationKind::AddMember,
        OperationKind::RemoveMember,
        OperationKind::Delete,
        OperationKind::OpenTicket,
    ];

    fn new(settings: Settings) -> Result<Self, PluginError> {
        if settings.match_attributes.is_empty() {
            return Err(tenure_sdk::errors::invalid_input(
                "settings.match_attributes",
                "names no attribute",
            ));
        }
        Ok(Sandbox {
            matching: settings.match_attributes,
        })
    }

    fn matching_keys(&self) -> Vec<String> {
        self.matching.clone()
    }

    fn lookup(&mut self, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
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

    fn create(&mut self, account: DesiredAccount) -> Result<Outcome, PluginError> {
        create(&self.matching, account)
    }

    fn update(&mut self, anchor: String, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
        update(&self.matching, &anchor, changes)
    }

    fn enable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        modify(&anchor, format!("enabled {anchor}"), |r| r.enabled = true)
    }

    fn disable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        modify(&anchor, format!("disabled {anchor}"), |r| r.enabled = false)
    }

    fn move_to(&mut self, anchor: String, container: String) -> Result<Outcome, PluginError> {
        let summary = format!("moved {anchor} to {container}");
        modify(&anchor, summary, |r| r.container = Some(container))
    }

    fn add_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        let summary = format!("added {anchor} to {group}");
        modify(&anchor, summary, |r| {
            if !r.groups.contains(&group) {
                r.groups.push(group)
            }
        })
    }

    fn remove_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        let summary = format!("removed {anchor} from {group}");
        modify(&anchor, summary, |r| r.groups.retain(|g| *g != group))
    }

    fn delete(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        let record = load(&anchor)?;
        for (name, value) in matched_values(&self.matching, &record) {
            remove(&index_key(&name, &value))?;
        }
        remove(&format!("account/{anchor}"))?;
        Ok(Outcome::done(format!("deleted {anchor}")))
    }

    fn open_ticket(&mut self, ticket: Ticket) -> Result<Outcome, PluginError> {
        let (key, fields) = tenure_sdk::reserved::ticket_key(&ticket.fields);
        // A ticket opened by an earlier attempt whose answer was lost is not opened again.
        let by_key = key.map(|k| format!("ticket-key/{k}"));
        if let Some(by_key) = &by_key
            && let Some(n) = get(by_key)?.and_then(|b| String::from_utf8(b).ok())
        {
            return Ok(Outcome::created(
                format!("ticket-{n}"),
                format!(
                    "found ticket-{n} ({}), opened by an earlier attempt",
                    ticket.template
                ),
            ));
        }
        let n = next_seq("ticket-seq")?;
        let body = serde_json::to_vec(&(&ticket.template, &fields))
            .map_err(|e| PluginError::Permanent(e.to_string()))?;
        set(&format!("ticket/{n}"), &body)?;
        if let Some(by_key) = &by_key {
            set(by_key, n.to_string().as_bytes())?;
        }
        Ok(Outcome::created(
            format!("ticket-{n}"),
            format!("opened ticket-{n} ({})", ticket.template),
        ))
    }
}

tenure_sdk::connector_plugin!(Sandbox);
