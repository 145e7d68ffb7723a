//! `scim`: any SCIM 2.0 app (RFC 7643/7644) as a Tenure destination.
//!
//! Requests go through the host's HTTP capability on the connection `scim`
//! (its URL is the app's SCIM base, such as `https://app.example/scim/v2`; the
//! host attaches the token). The plugin reads the app's ServiceProviderConfig
//! once and adapts:
//!
//! - **Updates** are PATCH (`settings.patch_style`: `rfc`, or `entra` for apps
//!   built around Entra's shapes: capitalised ops, path-less replace, member
//!   removal by value list). Where PATCH is not supported (or answers 405/501)
//!   it reads the user and PUTs it back whole, with `If-Match` when the server
//!   supports ETags, so a concurrent change is never overwritten (412 is retried).
//! - **Deprovisioning**: disable is `active = false`; delete is `DELETE`, used
//!   when the destination's policy deletes.
//! - **Groups** by `displayName`; membership through PATCH on the group.
//! - **Lookups** by `userName`, `externalId`, `email` (`emails.value`),
//!   `employeeNumber` or the anchor (the SCIM `id`), paged by startIndex/count.
//! - **Errors**: 409 `uniqueness` -> conflict, 429 -> rate-limited (Retry-After),
//!   5xx -> transient, 400 -> invalid-input named by its `scimType`; the SCIM
//!   `detail` is carried into the audit.
//!
//! Rule-set attribute names are listed in [`schema::ATTRIBUTES`].

pub mod client;
pub mod schema;

use client::{features, list, patch_body, send, send_raw};
use schema::{CORE, ENTERPRISE, GROUP, Slot, quote, url_encode};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::prelude::*;
use tenure_sdk::reserved;

/// How PATCH requests are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PatchStyle {
    /// RFC 7644 §3.5.2.
    Rfc,
    /// The shapes Entra's provisioning client sends (and many apps accept only).
    Entra,
}

/// How updates are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum UpdateMethod {
    /// PATCH where ServiceProviderConfig says it works, else PUT.
    Auto,
    /// Always read, modify and PUT back.
    Put,
}

/// `[...plugins.scim.settings]`, as the tenant writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    patch_style: Option<PatchStyle>,
    #[serde(default)]
    update_method: Option<UpdateMethod>,
    /// Attributes read back into accounts.
    #[serde(default)]
    attributes: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct Settings {
    style: PatchStyle,
    /// Attributes read back into accounts.
    attributes: Vec<String>,
    /// `put` (default: what ServiceProviderConfig says).
    force_put: bool,
}

impl Settings {
    fn from_written(w: Written) -> Result<Settings, PluginError> {
        let attributes = match w.attributes {
            None => schema::ATTRIBUTES.iter().map(|(n, _)| n.to_string()).collect(),
            Some(names) => {
                for n in &names {
                    schema::slot(n).map_err(|_| {
                        invalid_input(
                            "settings.attributes",
                            format!("{n:?} is not a mapped SCIM attribute"),
                        )
                    })?;
                }
                names
            }
        };
        Ok(Settings {
            style: w.patch_style.unwrap_or(PatchStyle::Rfc),
            attributes,
            force_put: w.update_method == Some(UpdateMethod::Put),
        })
    }
}

fn user_path(id: &str) -> String {
    format!("/Users/{}", url_encode(id))
}

fn id_of(resource: &Json) -> Option<String> {
    resource.get("id").and_then(Json::as_str).map(str::to_string)
}

/// The groups a user is in, by displayName (servers rarely fill `User.groups`, so ask the groups).
fn groups_of(id: &str) -> Result<Vec<String>, PluginError> {
    let filter = url_encode(&format!("members.value eq {}", quote(id)));
    let page = features()?.max_results;
    let mut names: Vec<String> = list(
        "/Groups",
        &format!("filter={filter}&attributes=displayName"),
        page,
    )?
    .iter()
    .filter_map(|g| g.get("displayName").and_then(Json::as_str).map(str::to_string))
    .collect();
    names.sort();
    Ok(names)
}

fn to_account(user: &Json, s: &Settings) -> Result<Option<Account>, PluginError> {
    let Some(id) = id_of(user) else {
        return Ok(None);
    };
    let attributes = s
        .attributes
        .iter()
        .filter_map(|name| {
            let slot = schema::slot(name).ok()?;
            schema::get(user, slot).map(|v| Attribute {
                name: name.clone(),
                value: Value::Text(v),
            })
        })
        .collect();
    let enabled = match user.get("active") {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(t)) => t.eq_ignore_ascii_case("true"),
        _ => true,
    };
    Ok(Some(Account {
        groups: groups_of(&id)?,
        anchor: id,
        attributes,
        container: None,
        licenses: vec![],
        app_assignments: vec![],
        enabled,
        expires_at: None,
    }))
}

fn filter_for(key: &MatchKey) -> Result<String, PluginError> {
    let path = match key.attribute.as_str() {
        "mail" | "emails" => "emails.value".to_string(),
        name => schema::path(schema::slot(name).map_err(|_| {
            invalid_input(
                format!("match-key.{name}"),
                "not a SCIM attribute this connector can look users up by",
            )
        })?),
    };
    Ok(format!("{path} eq {}", quote(&key.value)))
}

fn lookup(s: &Settings, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
    for key in keys {
        let users = if key.attribute == "anchor" {
            match send("GET", &user_path(&key.value), None, None) {
                Ok(a) => vec![a.body],
                Err(PluginError::NotFound(_)) => vec![],
                Err(e) => return Err(e),
            }
        } else {
            let filter = url_encode(&filter_for(&key)?);
            list("/Users", &format!("filter={filter}"), features()?.max_results)?
        };
        let mut found = Vec::new();
        for u in &users {
            if let Some(a) = to_account(u, s)? {
                found.push(a);
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Ok(vec![])
}

fn create(d: DesiredAccount) -> Result<Outcome, PluginError> {
    let mut user = Map::new();
    for a in &d.attributes {
        let slot = schema::slot(&a.name)?;
        if let Some(v) = schema::json_of(&a.value) {
            schema::set(&mut user, slot, Some(v));
        }
    }
    if !user.contains_key("userName") {
        return Err(invalid_input(
            "userName",
            "required by SCIM: give it in the rule set",
        ));
    }
    let mut schemas = vec![json!(CORE)];
    if schema::uses_enterprise(&user) {
        schemas.push(json!(ENTERPRISE));
    }
    user.insert("schemas".into(), Json::Array(schemas));
    user.insert("active".into(), json!(d.enabled));
    let created = send("POST", "/Users", Some(&Json::Object(user)), None)?;
    let id = id_of(&created.body)
        .ok_or_else(|| PluginError::Permanent("the SCIM server created a user but returned no id".into()))?;
    Ok(Outcome {
        anchor: Some(id.clone()),
        summary: format!(
            "created user {id} ({})",
            if d.enabled { "active" } else { "inactive" }
        ),
    })
}

/// One PATCH operation in the configured style.
fn patch_op(style: PatchStyle, slot: Slot, value: Option<Json>) -> Json {
    let path = match slot {
        // Multi-valued: replace the whole list (a value-filter path finds no target when it is empty).
        Slot::Work(a) => a.to_string(),
        Slot::Enterprise("manager") => format!("{ENTERPRISE}:manager"),
        other => schema::path(other),
    };
    match (style, value) {
        (PatchStyle::Rfc, Some(v)) => {
            json!({ "op": "replace", "path": path, "value": schema::slot_value(slot, v) })
        }
        (PatchStyle::Rfc, None) => json!({ "op": "remove", "path": path }),
        (PatchStyle::Entra, Some(v)) => {
            json!({ "op": "Replace", "value": { path: schema::slot_value(slot, v) } })
        }
        (PatchStyle::Entra, None) => json!({ "op": "Remove", "path": path }),
    }
}

/// Applies changes to a user: PATCH where served, else read-modify-PUT with If-Match.
fn change_user(
    s: &Settings,
    id: &str,
    changes: &[(Slot, Option<Json>)],
    active: Option<bool>,
) -> Result<(), PluginError> {
    if !s.force_put && features()?.patch {
        let mut ops: Vec<Json> = changes
            .iter()
            .map(|(slot, v)| patch_op(s.style, *slot, v.clone()))
            .collect();
        if let Some(a) = active {
            ops.push(match s.style {
                PatchStyle::Rfc => json!({ "op": "replace", "path": "active", "value": a }),
                PatchStyle::Entra => json!({ "op": "Replace", "value": { "active": a } }),
            });
        }
        let path = user_path(id);
        let resp = send_raw("PATCH", &path, Some(&patch_body(ops)), None)?;
        if resp.status == 405 || resp.status == 501 {
            client::patch_unsupported();
        } else if (200..300).contains(&resp.status) {
            return Ok(());
        } else {
            return Err(client::error_of("PATCH", &path, &resp));
        }
    }
    put_user(id, changes, active)
}

/// Reads a resource, lets `edit` change it, and PUTs it back whole (with `If-Match` when
/// the server supports ETags, so a change made meanwhile is retried, never overwritten).
fn put_back(path: &str, what: &str, edit: impl FnOnce(&mut Map<String, Json>)) -> Result<(), PluginError> {
    let current = send("GET", path, None, None)?;
    let Json::Object(mut resource) = current.body else {
        return Err(PluginError::Permanent(format!(
            "GET {path} returned no {what} object"
        )));
    };
    resource.remove("meta");
    edit(&mut resource);
    let if_match = if features()?.etag { current.etag } else { None };
    send("PUT", path, Some(&Json::Object(resource)), if_match.as_deref())?;
    Ok(())
}

fn put_user(id: &str, changes: &[(Slot, Option<Json>)], active: Option<bool>) -> Result<(), PluginError> {
    put_back(&user_path(id), "user", |user| {
        for (slot, v) in changes {
            schema::set(user, *slot, v.clone());
        }
        if let Some(a) = active {
            user.insert("active".into(), json!(a));
        }
        let mut schemas = vec![json!(CORE)];
        if schema::uses_enterprise(user) {
            schemas.push(json!(ENTERPRISE));
        } else {
            user.remove(ENTERPRISE);
        }
        user.insert("schemas".into(), Json::Array(schemas));
    })
}

fn update(s: &Settings, c: AttributeChange) -> Result<Outcome, PluginError> {
    let mut changes = Vec::new();
    let mut names = Vec::new();
    for a in &c.changes {
        if [
            reserved::EXPIRES_AT,
            reserved::LICENSES,
            reserved::APP_ASSIGNMENTS,
        ]
        .contains(&a.name.as_str())
        {
            // SCIM has no standard account expiry, licenses or app assignments; the
            // host removes access at the end date itself.
            continue;
        }
        changes.push((schema::slot(&a.name)?, schema::json_of(&a.value)));
        names.push(a.name.as_str());
    }
    if !changes.is_empty() {
        change_user(s, &c.anchor, &changes, None)?;
    }
    Ok(Outcome {
        anchor: None,
        summary: format!("updated user {}: {}", c.anchor, names.join(", ")),
    })
}

fn set_active(s: &Settings, id: &str, active: bool) -> Result<Outcome, PluginError> {
    change_user(s, id, &[], Some(active))?;
    Ok(Outcome {
        anchor: None,
        summary: format!("user {id} active = {active}"),
    })
}

fn group_id(name: &str) -> Result<String, PluginError> {
    let filter = url_encode(&format!("displayName eq {}", quote(name)));
    let groups = list(
        "/Groups",
        &format!("filter={filter}&excludedAttributes=members"),
        features()?.max_results,
    )?;
    match groups.as_slice() {
        [g] => id_of(g).ok_or_else(|| PluginError::Permanent(format!("group {name:?} has no id"))),
        [] => Err(PluginError::NotFound(format!("no SCIM group named {name:?}"))),
        many => Err(PluginError::Conflict(format!(
            "{} SCIM groups are named {name:?}; group names must be unique to be assigned",
            many.len()
        ))),
    }
}

fn membership(s: &Settings, m: MemberChange, add: bool) -> Result<Outcome, PluginError> {
    let gid = group_id(&m.group)?;
    let path = format!("/Groups/{}", url_encode(&gid));
    let member = json!([{ "value": m.anchor }]);
    if !s.force_put && features()?.patch {
        let op = match (s.style, add) {
            (PatchStyle::Rfc, true) => json!({ "op": "add", "path": "members", "value": member }),
            (PatchStyle::Entra, true) => json!({ "op": "Add", "path": "members", "value": member }),
            (PatchStyle::Rfc, false) => {
                json!({ "op": "remove", "path": format!("members[value eq {}]", quote(&m.anchor)) })
            }
            (PatchStyle::Entra, false) => json!({ "op": "Remove", "path": "members", "value": member }),
        };
        let mut resp = send_raw("PATCH", &path, Some(&patch_body(vec![op])), None)?;
        if resp.status == 400 && !add && s.style == PatchStyle::Entra {
            // An RFC-strict server refuses a remove that carries a value: use the filter path.
            log::info!("{path}: the server refused an Entra-style member removal; using the RFC form");
            let op = json!({ "op": "remove", "path": format!("members[value eq {}]", quote(&m.anchor)) });
            resp = send_raw("PATCH", &path, Some(&patch_body(vec![op])), None)?;
        }
        if (200..300).contains(&resp.status) {
            return Ok(member_outcome(&m, add));
        }
        if resp.status == 405 || resp.status == 501 {
            client::patch_unsupported();
        } else {
            let e = client::error_of("PATCH", &path, &resp);
            // Removing someone who is not a member: the state asked for.
            if !add && String::from_utf8_lossy(&resp.body).contains("noTarget") {
                return Ok(member_outcome(&m, add));
            }
            return Err(e);
        }
    }
    put_back(&path, "group", |group| {
        let mut members: Vec<Json> = group
            .get("members")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let has = |v: &Json| v.get("value").and_then(Json::as_str) == Some(m.anchor.as_str());
        if add && !members.iter().any(has) {
            members.push(json!({ "value": m.anchor }));
        } else if !add {
            members.retain(|v| !has(v));
        }
        group.insert("members".into(), Json::Array(members));
        group.insert("schemas".into(), json!([GROUP]));
    })?;
    Ok(member_outcome(&m, add))
}

fn member_outcome(m: &MemberChange, add: bool) -> Outcome {
    Outcome {
        anchor: None,
        summary: format!(
            "user {} {} group {}",
            m.anchor,
            if add { "added to" } else { "removed from" },
            m.group
        ),
    }
}

fn delete(id: &str) -> Result<Outcome, PluginError> {
    match send("DELETE", &user_path(id), None, None) {
        Ok(_) | Err(PluginError::NotFound(_)) => Ok(Outcome {
            anchor: None,
            summary: format!("deleted user {id}"),
        }),
        Err(e) => Err(e),
    }
}

struct Scim {
    settings: Settings,
}

impl Connector for Scim {
    type Settings = Written;
    const OPERATIONS: &'static [OperationKind] = &[
        OperationKind::Create,
        OperationKind::Update,
        OperationKind::Enable,
        OperationKind::Disable,
        OperationKind::AddMember,
        OperationKind::RemoveMember,
        OperationKind::Delete,
    ];
    const MATCHING_KEYS: &'static [&'static str] =
        &["anchor", "externalId", "userName", "email", "employeeNumber"];

    fn new(written: Written) -> Result<Self, PluginError> {
        Ok(Scim {
            settings: Settings::from_written(written)?,
        })
    }

    fn unique_attributes(&self) -> Vec<String> {
        vec!["userName".into()]
    }

    fn lookup(&mut self, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
        lookup(&self.settings, keys)
    }

    fn create(&mut self, account: DesiredAccount) -> Result<Outcome, PluginError> {
        create(account)
    }

    fn update(&mut self, anchor: String, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
        update(&self.settings, AttributeChange { anchor, changes })
    }

    fn enable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        set_active(&self.settings, &anchor, true)
    }

    fn disable(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        set_active(&self.settings, &anchor, false)
    }

    fn add_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        membership(&self.settings, MemberChange { anchor, group }, true)
    }

    fn remove_member(&mut self, anchor: String, group: String) -> Result<Outcome, PluginError> {
        membership(&self.settings, MemberChange { anchor, group }, false)
    }

    fn delete(&mut self, anchor: String) -> Result<Outcome, PluginError> {
        delete(&anchor)
    }
}

tenure_sdk::connector_plugin!(Scim);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_styles() {
        let slot = schema::slot("department").unwrap();
        let rfc = patch_op(PatchStyle::Rfc, slot, Some(json!("Eng")));
        assert_eq!(rfc["op"], "replace");
        assert_eq!(rfc["path"], format!("{ENTERPRISE}:department"));
        let entra = patch_op(PatchStyle::Entra, slot, Some(json!("Eng")));
        assert_eq!(entra["op"], "Replace");
        assert_eq!(entra["value"][format!("{ENTERPRISE}:department")], "Eng");
        let email = patch_op(
            PatchStyle::Rfc,
            schema::slot("email").unwrap(),
            Some(json!("a@x")),
        );
        assert_eq!(email["path"], "emails");
        assert_eq!(email["value"][0]["type"], "work");
        assert_eq!(patch_op(PatchStyle::Rfc, slot, None)["op"], "remove");
    }

    fn parse_settings(pairs: &[(String, String)]) -> Result<Settings, PluginError> {
        Settings::from_written(tenure_sdk::settings::from_pairs(pairs.to_vec())?)
    }

    #[test]
    fn settings_are_checked() {
        let p = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            parse_settings(&p("patch_style", "entra")).unwrap().style,
            PatchStyle::Entra
        );
        assert!(parse_settings(&p("update_method", "put")).unwrap().force_put);
        assert!(format!("{:?}", parse_settings(&p("patch_style", "odd"))).contains("settings.patch_style"));
        assert!(
            format!("{:?}", parse_settings(&p("attributes", "userName,shoe")))
                .contains("settings.attributes")
        );
        assert!(format!("{:?}", parse_settings(&p("colour", "x"))).contains("settings.colour"));
    }

    #[test]
    fn lookup_filters() {
        let key = |a: &str, v: &str| MatchKey {
            attribute: a.into(),
            value: v.into(),
        };
        assert_eq!(
            filter_for(&key("userName", "ann")).unwrap(),
            "userName eq \"ann\""
        );
        assert_eq!(
            filter_for(&key("mail", "a@x")).unwrap(),
            "emails.value eq \"a@x\""
        );
        assert_eq!(
            filter_for(&key("employeeNumber", "7")).unwrap(),
            format!("{ENTERPRISE}:employeeNumber eq \"7\"")
        );
        assert!(filter_for(&key("shoe", "9")).is_err());
    }
}
