//! people-api: a connector for a small SCIM-like users API on the `people-api`
//! connection (the host adds the credentials and the base URL).

use serde::{Deserialize, Serialize};
use tenure_sdk::connector::OperationKind::{AddMember, Create, Disable, Enable, RemoveMember, Update};
use tenure_sdk::errors::invalid_input;
use tenure_sdk::http::encode;
use tenure_sdk::prelude::*;

/// A user as the API sends and takes it.
#[derive(Serialize, Deserialize)]
struct User {
    #[serde(default, skip_serializing)]
    id: String,
    #[serde(rename = "employeeId")]
    employee_id: String,
    #[serde(rename = "displayName", default)]
    display_name: String,
    active: bool,
    #[serde(default, skip_serializing)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct UserList {
    users: Vec<User>,
}

fn account(user: User) -> Account {
    let mut account = Account::with_attributes(
        user.id,
        vec![
            Attribute::new("employeeId", user.employee_id),
            Attribute::new("displayName", user.display_name),
        ],
    );
    account.groups = user.groups;
    account.enabled = user.active;
    account
}

fn text(attributes: &[Attribute], name: &str) -> Option<String> {
    attributes
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.to_text())
}

struct PeopleApi {
    api: Client,
}

impl PeopleApi {
    fn patch(&self, id: &str, body: serde_json::Value, summary: &str) -> Result<Outcome, PluginError> {
        self.api.patch(&format!("/users/{}", encode(id)), &body)?;
        Ok(Outcome::done(summary))
    }
}

impl Connector for PeopleApi {
    type Settings = ();
    const OPERATIONS: &'static [OperationKind] = &[Create, Update, Enable, Disable, AddMember, RemoveMember];
    const MATCHING_KEYS: &'static [&'static str] = &["employeeId"];

    fn new(_: ()) -> Result<Self, PluginError> {
        Ok(PeopleApi {
            api: Client::new("people-api"),
        })
    }

    fn lookup(&mut self, keys: Vec<MatchKey>) -> Result<Vec<Account>, PluginError> {
        for key in keys {
            let users = if key.attribute == "anchor" {
                let path = format!("/users/{}", encode(&key.value));
                let found = self.api.send::<()>("GET", &path, None, &[404])?;
                if found.status == 404 {
                    vec![]
                } else {
                    vec![found.json::<User>()?]
                }
            } else {
                let path = format!("/users?{}={}", encode(&key.attribute), encode(&key.value));
                self.api.get(&path)?.json::<UserList>()?.users
            };
            if !users.is_empty() {
                return Ok(users.into_iter().map(account).collect());
            }
        }
        Ok(vec![])
    }

    fn create(&mut self, desired: DesiredAccount) -> Result<Outcome, PluginError> {
        let user = User {
            id: String::new(),
            employee_id: text(&desired.attributes, "employeeId")
                .ok_or(invalid_input("employeeId", "required"))?,
            display_name: text(&desired.attributes, "displayName").unwrap_or_default(),
            active: desired.enabled,
            groups: vec![],
        };
        let created: User = self.api.post("/users", &user)?.json()?;
        Ok(Outcome::created(created.id, "created"))
    }

    fn update(&mut self, id: String, changes: Vec<Attribute>) -> Result<Outcome, PluginError> {
        let body: serde_json::Map<String, serde_json::Value> = changes
            .into_iter()
            .map(|c| (c.name, c.value.to_text().into()))
            .collect();
        self.patch(&id, body.into(), "updated")
    }

    fn enable(&mut self, id: String) -> Result<Outcome, PluginError> {
        self.patch(&id, serde_json::json!({ "active": true }), "enabled")
    }

    fn disable(&mut self, id: String) -> Result<Outcome, PluginError> {
        self.patch(&id, serde_json::json!({ "active": false }), "disabled")
    }

    fn add_member(&mut self, id: String, group: String) -> Result<Outcome, PluginError> {
        let path = format!("/groups/{}/members", encode(&group));
        self.api.post(&path, &serde_json::json!({ "id": id }))?;
        Ok(Outcome::done(format!("added to {group}")))
    }

    fn remove_member(&mut self, id: String, group: String) -> Result<Outcome, PluginError> {
        self.api
            .delete(&format!("/groups/{}/members/{}", encode(&group), encode(&id)))?;
        Ok(Outcome::done(format!("removed from {group}")))
    }
}

tenure_sdk::connector_plugin!(PeopleApi);
