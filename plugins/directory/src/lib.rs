//! `directory`: Active Directory and LDAP directories as a Tenure destination.
//!
//! Every call goes through the host's LDAP capability on the connection
//! `directory`: the host binds with the stored credentials (LDAPS or StartTLS)
//! and generates initial passwords itself, so this plugin never sees a secret.
//!
//! - **Accounts** are anchored by objectGUID (AD) or entryUUID (LDAP), which
//!   survive renames and moves. Rules name attributes in the directory's own
//!   spelling (`sAMAccountName`, `employeeID`, ...); `manager` may be a DN or the
//!   manager's `manager_key` value, resolved to their DN at write time and read
//!   back the same way.
//! - **Create (AD)**: add without userAccountControl (AD makes it 546, disabled),
//!   set the generated password through `unicodePwd`, then clear the disable bit
//!   if the account should be enabled. Enable and disable flip only bit 2 with an
//!   atomic delete-old/add-new modify, so other bits survive and a concurrent
//!   change is retried, never overwritten.
//! - **Expiry**: `accountExpires` as FILETIME (see [`filetime`]).
//! - **Containers**: a DN under `base_dn`, or relative to `users_container`
//!   (`OU=Sales`); `containers = "relative"` reads them back that way too.
//! - **Groups**: by CN under `groups_base` (or a full DN); "already a member" and
//!   "not a member" are success.
//! - **Errors**: result codes and AD's extended codes as retry classes ([`errors`]).

pub mod errors;
pub mod escape;
pub mod filetime;
pub mod settings;

use escape::{dn_value, filter_bytes, filter_value, is_under, rdn_value, split_dn};
use settings::{PasswordPolicy, Profile, Settings, valid_attribute};
use tenure_sdk::connector::OperationKind;
use tenure_sdk::errors::invalid_input;
use tenure_sdk::host::ldap::{
    self, Entry, LdapError, ModOp, Modification, PasswordEncoding, Scope, SearchRequest,
};
use tenure_sdk::plugin::Connector;
use tenure_sdk::reserved;
use tenure_sdk::types::{
    Account, Attribute, AttributeChange, DesiredAccount, MatchKey, MemberChange, MoveRequest, Outcome,
    PluginError, Value,
};

const CONNECTION: &str = "directory";
const ACCOUNTDISABLE: i64 = 2;
const PASSWD_NOTREQD: i64 = 32;
/// ppolicy's "locked until an administrator unlocks it".
const PERMANENT_LOCK: &str = "000001010000Z";
/// The reserved attribute the host uses for expiry changes.
const EXPIRES_AT: &str = reserved::EXPIRES_AT;
/// sAMAccountName's limit and forbidden characters.
const SAM_MAX: usize = 20;
const SAM_FORBIDDEN: &[char] = &[
    '"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>',
];
/// cn's rangeUpper in AD.
const CN_MAX: usize = 64;

fn text_values(v: &Value) -> Vec<String> {
    match v {
        Value::Absent => vec![],
        Value::Text(t) if t.is_empty() => vec![],
        Value::Text(t) => vec![t.clone()],
        Value::Many(m) => m.iter().filter(|s| !s.is_empty()).cloned().collect(),
        Value::Number(n) => vec![n.to_string()],
        Value::Flag(f) => vec![if *f { "TRUE" } else { "FALSE" }.into()],
    }
}

fn first_text(v: &Value) -> Option<String> {
    text_values(v).into_iter().next()
}

/// The text values of `name` in an entry (case-insensitive).
fn entry_texts<'a>(entry: &'a Entry, name: &str) -> Option<&'a Vec<String>> {
    entry
        .text
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn entry_text(entry: &Entry, name: &str) -> Option<String> {
    entry_texts(entry, name).and_then(|v| v.first().cloned())
}

fn entry_bytes(entry: &Entry, name: &str) -> Option<Vec<u8>> {
    entry
        .binary
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
        .or_else(|| entry_text(entry, name).map(String::into_bytes))
}

fn search(
    base: &str,
    scope: Scope,
    filter: &str,
    attributes: Vec<String>,
    s: &Settings,
) -> Result<Vec<Entry>, PluginError> {
    ldap::search(&SearchRequest {
        connection: CONNECTION.into(),
        base: base.into(),
        scope,
        filter: filter.into(),
        attributes,
        page_size: s.page_size,
        limit: 0,
    })
    .map_err(|e| errors::map(e, &format!("search {base} {filter}"), "filter"))
}

fn modify(dn: &str, changes: Vec<Modification>, what: &str, field: &str) -> Result<(), PluginError> {
    ldap::modify(CONNECTION, dn, &changes).map_err(|e| errors::map(e, &format!("{what} {dn}"), field))
}

fn text(v: &str) -> ldap::Value {
    ldap::Value::Text(v.to_string())
}

fn replace(attribute: &str, values: Vec<ldap::Value>) -> Modification {
    Modification {
        op: ModOp::Replace,
        attribute: attribute.into(),
        values,
    }
}

/// Attributes to read for accounts.
fn read_attributes(s: &Settings) -> Vec<String> {
    let mut attrs = s.attributes.clone();
    attrs.push(s.anchor_attribute().into());
    match s.profile {
        Profile::Ad => attrs.extend(["userAccountControl", "accountExpires", "memberOf"].map(String::from)),
        Profile::Ldap => attrs.push("pwdAccountLockedTime".into()),
    }
    attrs
}

fn anchor_of(entry: &Entry, s: &Settings) -> Option<String> {
    match s.profile {
        Profile::Ad => entry_bytes(entry, "objectGUID").and_then(|b| escape::guid_string(&b)),
        Profile::Ldap => entry_text(entry, "entryUUID"),
    }
}

fn anchor_filter(anchor: &str, s: &Settings) -> Result<String, PluginError> {
    match s.profile {
        Profile::Ad => {
            let bytes = escape::guid_bytes(anchor)
                .ok_or_else(|| invalid_input("anchor", format!("{anchor:?} is not an objectGUID")))?;
            Ok(format!("(objectGUID={})", filter_bytes(&bytes)))
        }
        Profile::Ldap => Ok(format!("(entryUUID={})", filter_value(anchor))),
    }
}

/// The entry an anchor names.
fn find_by_anchor(anchor: &str, s: &Settings) -> Result<Entry, PluginError> {
    let filter = anchor_filter(anchor, s)?;
    search(&s.base_dn, Scope::Subtree, &filter, read_attributes(s), s)?
        .into_iter()
        .next()
        .ok_or_else(|| PluginError::NotFound(format!("no account with {} {anchor}", s.anchor_attribute())))
}

fn uac(entry: &Entry) -> Result<i64, PluginError> {
    entry_text(entry, "userAccountControl")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| PluginError::Permanent(format!("{} has no readable userAccountControl", entry.dn)))
}

/// Rewrites userAccountControl from `old` to `new` atomically: the modify fails
/// (and is retried) if someone changed it since it was read.
fn swap_uac(dn: &str, old: i64, new: i64) -> Result<(), PluginError> {
    if old == new {
        return Ok(());
    }
    let changes = vec![
        Modification {
            op: ModOp::Delete,
            attribute: "userAccountControl".into(),
            values: vec![text(&old.to_string())],
        },
        Modification {
            op: ModOp::Add,
            attribute: "userAccountControl".into(),
            values: vec![text(&new.to_string())],
        },
    ];
    ldap::modify(CONNECTION, dn, &changes).map_err(|e| match errors::code(&e) {
        Some(errors::NO_SUCH_ATTRIBUTE) => PluginError::Transient(format!(
            "userAccountControl of {dn} changed while it was being updated; will retry"
        )),
        _ => errors::map(
            e,
            &format!("set userAccountControl of {dn}"),
            "userAccountControl",
        ),
    })
}

/// Sets a host-generated initial password (never seen here).
fn set_password(dn: &str, s: &Settings) -> Result<(), PluginError> {
    let (attribute, encoding) = match s.profile {
        Profile::Ad => ("unicodePwd", PasswordEncoding::AdUnicodePwd),
        Profile::Ldap => ("userPassword", PasswordEncoding::Utf8),
    };
    let mut changes = vec![replace(attribute, vec![ldap::Value::GeneratedPassword(encoding)])];
    if s.must_change_password && s.profile == Profile::Ad {
        changes.push(replace("pwdLastSet", vec![text("0")]));
    }
    modify(dn, changes, "set the initial password of", attribute)
}

fn set_enabled(entry: &Entry, enabled: bool, s: &Settings) -> Result<String, PluginError> {
    match s.profile {
        Profile::Ad => {
            let old = uac(entry)?;
            let mut new = if enabled {
                old & !ACCOUNTDISABLE
            } else {
                old | ACCOUNTDISABLE
            };
            // An account that never got a password cannot be enabled: give it one first.
            if enabled && old & PASSWD_NOTREQD != 0 {
                if s.password == PasswordPolicy::None {
                    return Err(invalid_input(
                        "unicodePwd",
                        format!(
                            "{} has no password and settings.password is none, so it cannot be enabled",
                            entry.dn
                        ),
                    ));
                }
                set_password(&entry.dn, s)?;
                new &= !PASSWD_NOTREQD;
            }
            swap_uac(&entry.dn, old, new)?;
            Ok(format!("userAccountControl {old} -> {new}"))
        }
        Profile::Ldap => {
            let locked = entry_text(entry, "pwdAccountLockedTime").is_some();
            if enabled && locked {
                modify(
                    &entry.dn,
                    vec![replace("pwdAccountLockedTime", vec![])],
                    "unlock",
                    "pwdAccountLockedTime",
                )?;
            } else if !enabled && !locked {
                modify(
                    &entry.dn,
                    vec![replace("pwdAccountLockedTime", vec![text(PERMANENT_LOCK)])],
                    "lock",
                    "pwdAccountLockedTime",
                )?;
            }
            Ok(if enabled { "unlocked" } else { "locked" }.into())
        }
    }
}

/// The DN of a manager reference: a DN as is, otherwise the account whose `manager_key` holds it.
fn manager_dn(reference: &str, s: &Settings) -> Result<Option<String>, PluginError> {
    if reference.contains('=') {
        // A DN from a person's record is taken only inside the directory's base.
        if !is_under(reference, &s.base_dn) {
            return Err(invalid_input(
                "manager",
                format!("{reference:?} is not a DN under base_dn {}", s.base_dn),
            ));
        }
        return Ok(Some(reference.to_string()));
    }
    let filter = format!(
        "(&{}({}={}))",
        s.user_filter(),
        s.manager_key,
        filter_value(reference)
    );
    Ok(
        search(&s.base_dn, Scope::Subtree, &filter, vec!["1.1".into()], s)?
            .into_iter()
            .next()
            .map(|e| e.dn),
    )
}

/// The manager reference as rules give it: the manager's `manager_key` value.
fn manager_reference(dn: &str, s: &Settings) -> Option<String> {
    let entries = search(dn, Scope::Base, "(objectClass=*)", vec![s.manager_key.clone()], s).ok()?;
    entries
        .first()
        .and_then(|e| entry_text(e, &s.manager_key))
        .or(Some(dn.to_string()))
}

/// The groups an account is in, as rules name them (CN under `groups_base`, else the DN).
fn groups_of(entry: &Entry, s: &Settings) -> Result<Vec<String>, PluginError> {
    let dns: Vec<String> = match s.profile {
        Profile::Ad => entry_texts(entry, "memberOf").cloned().unwrap_or_default(),
        Profile::Ldap => {
            let filter = format!(
                "(&(objectClass={})(member={}))",
                s.group_class(),
                filter_value(&entry.dn)
            );
            search(&s.groups_base, Scope::Subtree, &filter, vec!["1.1".into()], s)?
                .into_iter()
                .map(|e| e.dn)
                .collect()
        }
    };
    let mut groups: Vec<String> = dns
        .into_iter()
        .map(|dn| {
            if is_under(&dn, &s.groups_base) {
                rdn_value(split_dn(&dn).0)
            } else {
                dn
            }
        })
        .collect();
    groups.sort();
    Ok(groups)
}

fn group_dn(group: &str, s: &Settings) -> Result<String, PluginError> {
    if group.contains('=') {
        // A group named by DN must sit under groups_base: a value from a person's record
        // can never name a group elsewhere (Domain Admins, say).
        if !is_under(group, &s.groups_base) {
            return Err(invalid_input(
                "groups",
                format!("{group:?} is not a DN under groups_base {}", s.groups_base),
            ));
        }
        return Ok(group.to_string());
    }
    let name = filter_value(group);
    let filter = match s.profile {
        Profile::Ad => format!("(&(objectClass=group)(|(cn={name})(sAMAccountName={name})))"),
        Profile::Ldap => format!("(&(objectClass=groupOfNames)(cn={name}))"),
    };
    let hits = search(&s.groups_base, Scope::Subtree, &filter, vec!["1.1".into()], s)?;
    match hits.len() {
        1 => Ok(hits[0].dn.clone()),
        0 => Err(PluginError::NotFound(format!(
            "group {group:?} not found under {}",
            s.groups_base
        ))),
        n => Err(PluginError::Conflict(format!(
            "{n} groups are named {group:?} under {}; name it by DN",
            s.groups_base
        ))),
    }
}

fn to_account(entry: &Entry, s: &Settings) -> Result<Option<Account>, PluginError> {
    let Some(anchor) = anchor_of(entry, s) else {
        return Ok(None);
    };
    let mut attributes = Vec::new();
    for name in &s.attributes {
        let Some(values) = entry_texts(entry, name) else {
            continue;
        };
        let value = if name.eq_ignore_ascii_case("manager") {
            match values.first().and_then(|dn| manager_reference(dn, s)) {
                Some(v) => Value::Text(v),
                None => continue,
            }
        } else if values.len() == 1 {
            Value::Text(values[0].clone())
        } else {
            Value::Many(values.clone())
        };
        attributes.push(Attribute {
            name: name.clone(),
            value,
        });
    }
    let (enabled, expires_at) = match s.profile {
        Profile::Ad => (
            uac(entry)? & ACCOUNTDISABLE == 0,
            entry_text(entry, "accountExpires")
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(filetime::from_filetime),
        ),
        Profile::Ldap => (entry_text(entry, "pwdAccountLockedTime").is_none(), None),
    };
    Ok(Some(Account {
        anchor,
        attributes,
        container: Some(s.container_name(split_dn(&entry.dn).1)),
        groups: groups_of(entry, s)?,
        licenses: vec![],
        app_assignments: vec![],
        enabled,
        expires_at,
    }))
}

fn lookup(s: &Settings, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
    for key in keys {
        let filter = if key.attribute == "anchor" {
            anchor_filter(&key.value, s)?
        } else {
            if !valid_attribute(&key.attribute) {
                return Err(invalid_input(
                    format!("match-key.{}", key.attribute),
                    "not an LDAP attribute name",
                ));
            }
            format!(
                "(&{}({}={}))",
                s.user_filter(),
                key.attribute,
                filter_value(&key.value)
            )
        };
        let mut found = Vec::new();
        for entry in search(&s.base_dn, Scope::Subtree, &filter, read_attributes(s), s)? {
            if let Some(account) = to_account(&entry, s)? {
                found.push(account);
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Ok(vec![])
}

/// The CN of a new account: `cn`, else displayName, else given name + surname; at most 64 characters.
fn common_name(d: &DesiredAccount) -> Result<String, PluginError> {
    let get = |n: &str| {
        d.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(n))
            .and_then(|a| first_text(&a.value))
    };
    let cn = get("cn")
        .or_else(|| get("displayName"))
        .or_else(|| match (get("givenName"), get("sn")) {
            (Some(g), Some(s)) => Some(format!("{g} {s}")),
            (None, Some(s)) => Some(s),
            _ => None,
        })
        .ok_or_else(|| invalid_input("cn", "no cn, displayName or givenName+sn to name the account by"))?;
    Ok(cn.chars().take(CN_MAX).collect::<String>().trim_end().to_string())
}

fn check_sam(value: &str) -> Result<(), PluginError> {
    if value.chars().count() > SAM_MAX {
        return Err(invalid_input(
            "sAMAccountName",
            format!("{value:?} is longer than {SAM_MAX} characters"),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| SAM_FORBIDDEN.contains(c) || c.is_control())
    {
        return Err(invalid_input(
            "sAMAccountName",
            format!("{value:?} contains {c:?}, which AD forbids"),
        ));
    }
    Ok(())
}

/// The attributes of an add or update as LDAP values; `manager` resolved, the rest passed on.
/// Returns notes for the outcome (a manager not found yet).
fn ldap_values(
    attr: &Attribute,
    s: &Settings,
    notes: &mut Vec<String>,
) -> Result<Option<Vec<ldap::Value>>, PluginError> {
    if !valid_attribute(&attr.name) {
        return Err(invalid_input(attr.name.clone(), "not an LDAP attribute name"));
    }
    let values = text_values(&attr.value);
    if attr.name.eq_ignore_ascii_case("sAMAccountName") {
        for v in &values {
            check_sam(v)?;
        }
    }
    if attr.name.eq_ignore_ascii_case("manager") {
        return Ok(match values.first() {
            None => Some(vec![]),
            Some(reference) => match manager_dn(reference, s)? {
                Some(dn) => Some(vec![text(&dn)]),
                None => {
                    notes.push(format!("manager {reference:?} is not in the directory yet"));
                    None
                }
            },
        });
    }
    Ok(Some(values.iter().map(|v| text(v)).collect()))
}

fn create(s: &Settings, d: DesiredAccount) -> Result<Outcome, PluginError> {
    let cn = common_name(&d)?;
    let container = s.absolute_container(d.container.as_deref().unwrap_or(""));
    let dn = format!("CN={},{container}", dn_value(&cn));
    let mut notes = Vec::new();
    let mut attrs = vec![ldap::Attribute {
        name: "objectClass".into(),
        values: s.user_classes().iter().map(|c| text(c)).collect(),
    }];
    let mut has_cn = false;
    for a in &d.attributes {
        if a.name == EXPIRES_AT || a.name.eq_ignore_ascii_case("userAccountControl") {
            continue;
        }
        if a.name.eq_ignore_ascii_case("cn") {
            has_cn = true;
        }
        if let Some(values) = ldap_values(a, s, &mut notes)?
            && !values.is_empty()
        {
            attrs.push(ldap::Attribute {
                name: a.name.clone(),
                values,
            });
        }
    }
    if !has_cn {
        attrs.push(ldap::Attribute {
            name: "cn".into(),
            values: vec![text(&cn)],
        });
    }
    match s.profile {
        Profile::Ad => {
            if !d
                .attributes
                .iter()
                .any(|a| a.name.eq_ignore_ascii_case("sAMAccountName"))
            {
                return Err(invalid_input(
                    "sAMAccountName",
                    "required by AD: give it in the rule set (a unique naming convention)",
                ));
            }
            if let Some(expiry) = &d.expires_at {
                let ft = filetime::to_filetime(expiry).map_err(|r| invalid_input("expires", r))?;
                attrs.push(ldap::Attribute {
                    name: "accountExpires".into(),
                    values: vec![text(&ft.to_string())],
                });
            }
        }
        Profile::Ldap => {
            if !d.attributes.iter().any(|a| a.name.eq_ignore_ascii_case("sn")) {
                return Err(invalid_input("sn", "required by the person object class"));
            }
            if s.password == PasswordPolicy::Generate {
                attrs.push(ldap::Attribute {
                    name: "userPassword".into(),
                    values: vec![ldap::Value::GeneratedPassword(PasswordEncoding::Utf8)],
                });
            }
            if !d.enabled {
                attrs.push(ldap::Attribute {
                    name: "pwdAccountLockedTime".into(),
                    values: vec![text(PERMANENT_LOCK)],
                });
            }
        }
    }
    ldap::add(CONNECTION, &dn, &attrs).map_err(|e| match errors::code(&e) {
        Some(errors::ENTRY_ALREADY_EXISTS) => PluginError::Conflict(format!(
            "cannot create {dn}: {} (an account with this name or identifier already exists)",
            errors::message(&e).trim()
        )),
        _ => errors::map(e, &format!("create {dn}"), "cn"),
    })?;
    let entry = search(&dn, Scope::Base, "(objectClass=*)", read_attributes(s), s)?
        .into_iter()
        .next()
        .ok_or_else(|| PluginError::Transient(format!("{dn} was created but cannot be read back")))?;
    let anchor = anchor_of(&entry, s)
        .ok_or_else(|| PluginError::Permanent(format!("{dn} has no {}", s.anchor_attribute())))?;
    let mut steps = vec![format!("created {dn}")];
    if s.profile == Profile::Ad {
        let mut current = uac(&entry)?;
        if s.password == PasswordPolicy::Generate {
            set_password(&dn, s)?;
            steps.push("initial password set".into());
            let cleared = current & !PASSWD_NOTREQD;
            swap_uac(&dn, current, cleared)?;
            current = cleared;
        }
        if d.enabled {
            if s.password == PasswordPolicy::None {
                notes.push("left disabled: no password (settings.password = none)".into());
            } else {
                swap_uac(&dn, current, current & !ACCOUNTDISABLE)?;
                steps.push("enabled".into());
            }
        } else {
            steps.push("disabled until enabled".into());
        }
    }
    steps.extend(notes);
    Ok(Outcome {
        anchor: Some(anchor),
        summary: steps.join("; "),
    })
}

fn update(s: &Settings, change: AttributeChange) -> Result<Outcome, PluginError> {
    let entry = find_by_anchor(&change.anchor, s)?;
    let mut dn = entry.dn.clone();
    let mut mods = Vec::new();
    let mut notes = Vec::new();
    let mut names = Vec::new();
    for a in &change.changes {
        names.push(a.name.clone());
        if a.name == reserved::LICENSES || a.name == reserved::APP_ASSIGNMENTS {
            notes.push(format!("{} ignored: a directory keeps none", a.name));
            continue;
        }
        if a.name == EXPIRES_AT || a.name.eq_ignore_ascii_case("accountExpires") {
            let value = match first_text(&a.value) {
                None => filetime::NEVER,
                Some(t) if a.name == EXPIRES_AT => {
                    filetime::to_filetime(&t).map_err(|r| invalid_input("expires", r))?
                }
                Some(t) => t
                    .parse::<i64>()
                    .map_err(|_| invalid_input("accountExpires", format!("{t:?} is not a FILETIME")))?,
            };
            if s.profile == Profile::Ad {
                mods.push(replace("accountExpires", vec![text(&value.to_string())]));
            }
            continue;
        }
        if a.name.eq_ignore_ascii_case("cn") {
            // The RDN: a rename.
            let cn = first_text(&a.value).ok_or_else(|| invalid_input("cn", "cannot be removed"))?;
            let cn: String = cn.chars().take(CN_MAX).collect();
            let new_rdn = format!("CN={}", dn_value(&cn));
            ldap::modify_dn(CONNECTION, &dn, &new_rdn, true, None)
                .map_err(|e| errors::map(e, &format!("rename {dn}"), "cn"))?;
            dn = format!("{new_rdn},{}", split_dn(&dn).1);
            continue;
        }
        if let Some(values) = ldap_values(a, s, &mut notes)? {
            mods.push(replace(&a.name, values));
        }
    }
    if !mods.is_empty() {
        let field = names.first().cloned().unwrap_or_default();
        modify(&dn, mods, "update", &field)?;
    }
    notes.insert(0, format!("updated {dn}: {}", names.join(", ")));
    Ok(Outcome {
        anchor: None,
        summary: notes.join("; "),
    })
}

fn move_to(s: &Settings, m: MoveRequest) -> Result<Outcome, PluginError> {
    let entry = find_by_anchor(&m.anchor, s)?;
    let (rdn, parent) = split_dn(&entry.dn);
    let target = s.absolute_container(&m.container);
    if parent.eq_ignore_ascii_case(&target) {
        return Ok(Outcome {
            anchor: None,
            summary: format!("{} is already in {}", entry.dn, m.container),
        });
    }
    // AD refuses a move that keeps the old RDN value: deleteoldrdn must be set.
    ldap::modify_dn(CONNECTION, &entry.dn, rdn, true, Some(&target))
        .map_err(|e| errors::map(e, &format!("move {} to {target}", entry.dn), "container"))?;
    Ok(Outcome {
        anchor: None,
        summary: format!("moved {rdn} from {parent} to {target}"),
    })
}

fn membership(s: &Settings, m: MemberChange, add: bool) -> Result<Outcome, PluginError> {
    let entry = find_by_anchor(&m.anchor, s)?;
    let group = group_dn(&m.group, s)?;
    let change = Modification {
        op: if add { ModOp::Add } else { ModOp::Delete },
        attribute: "member".into(),
        values: vec![text(&entry.dn)],
    };
    let result = ldap::modify(CONNECTION, &group, &[change]);
    let verb = if add { "added to" } else { "removed from" };
    match result {
        Ok(()) => Ok(Outcome {
            anchor: None,
            summary: format!("{} {verb} {group}", entry.dn),
        }),
        Err(e) if already(&e, add) => Ok(Outcome {
            anchor: None,
            summary: format!(
                "{} {} {group}",
                entry.dn,
                if add {
                    "was already a member of"
                } else {
                    "was not a member of"
                }
            ),
        }),
        Err(e) => Err(errors::map(e, &format!("{} {verb} {group}", entry.dn), "member")),
    }
}

/// "Already a member" (AD: 68 ENTRY_EXISTS; others: 20) and "not a member" (16, or 53
/// with AD's 00000561 or Samba's "already deleted") are the state asked for, so success.
fn already(e: &LdapError, add: bool) -> bool {
    match (errors::code(e), add) {
        (Some(errors::ENTRY_ALREADY_EXISTS | errors::ATTRIBUTE_OR_VALUE_EXISTS), true) => true,
        (Some(errors::NO_SUCH_ATTRIBUTE), false) => true,
        (Some(errors::UNWILLING_TO_PERFORM), false) => {
            let m = errors::message(e);
            m.contains("00000561") || m.contains("already deleted")
        }
        _ => false,
    }
}

fn delete(s: &Settings, anchor: &str) -> Result<Outcome, PluginError> {
    let entry = match find_by_anchor(anchor, s) {
        Ok(e) => e,
        Err(PluginError::NotFound(_)) => {
            return Ok(Outcome {
                anchor: None,
                summary: format!("{anchor} was already gone"),
            });
        }
        Err(e) => return Err(e),
    };
    match ldap::delete_entry(CONNECTION, &entry.dn) {
        Ok(()) => {}
        Err(e) if errors::code(&e) == Some(errors::NO_SUCH_OBJECT) => {}
        Err(e) => return Err(errors::map(e, &format!("delete {}", entry.dn), "dn")),
    }
    Ok(Outcome {
        anchor: None,
        summary: format!("deleted {}", entry.dn),
    })
}

fn toggle(s: &Settings, anchor: &str, enabled: bool) -> Result<Outcome, PluginError> {
    let entry = find_by_anchor(anchor, s)?;
    let detail = set_enabled(&entry, enabled, s)?;
    Ok(Outcome {
        anchor: None,
        summary: format!(
            "{} {} ({detail})",
            if enabled { "enabled" } else { "disabled" },
            entry.dn
        ),
    })
}

struct Directory {
    settings: Settings,
}

impl Connector for Directory {
    type Settings = settings::Written;
    const OPERATIONS: &'static [OperationKind] = &[
        OperationKind::Create,
        OperationKind::Update,
        OperationKind::Enable,
        OperationKind::Disable,
        OperationKind::Move,
        OperationKind::AddMember,
        OperationKind::RemoveMember,
        OperationKind::Delete,
    ];
    const MATCHING_KEYS: &'static [&'static str] = &["anchor", "employeeID", "sAMAccountName", "mail"];

    fn new(written: settings::Written) -> Result<Self, PluginError> {
        Ok(Directory {
            settings: Settings::from_written(written)?,
        })
    }

    fn unique_attributes(&self) -> Vec<String> {
        match self.settings.profile {
            Profile::Ldap => ["uid", "mail"].map(String::from).to_vec(),
            Profile::Ad => ["sAMAccountName", "userPrincipalName", "mail"]
                .map(String::from)
                .to_vec(),
        }
    }

    fn lookup(&mut self, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
        lookup(&self.settings, keys)
    }

    fn create(&mut self, account: DesiredAccount) -> Result<Outcome, PluginError> {
        create(&self.settings, account)
    }

    fn update(&mut self, anchor: String, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
        update(&self.settings, AttributeChange { anchor, changes })
    }

    fn enable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        toggle(&self.settings, &anchor, true)
    }

    fn disable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        toggle(&self.settings, &anchor, false)
    }

    fn move_to(&mut self, anchor: String, container: String) -> Result<Outcome, PluginError> {
        move_to(&self.settings, MoveRequest { anchor, container })
    }

    fn add_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        membership(&self.settings, MemberChange { anchor, group }, true)
    }

    fn remove_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        membership(&self.settings, MemberChange { anchor, group }, false)
    }

    fn delete(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        delete(&self.settings, &anchor)
    }
}

tenure_sdk::connector_plugin!(Directory);
