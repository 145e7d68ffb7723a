//! One person across sources. A Lever hire and the HR system's record of the
//! same employee are linked by configured keys (`email`, `custom.employee_number`):
//! an event whose key already belongs to a person joins that person (same queue
//! order, same accounts). The person the rules see is then merged from each
//! linked source's newest record, attribute by attribute: the configured
//! authority for the attribute wins when it has a value; otherwise the event
//! being applied, then the other sources, newest first.

use serde::Deserialize;
use std::collections::BTreeMap;
use tenure_runtime::wit;

/// `[tenants.T.identity]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// Person attributes that identify one person across sources: `email` (the person's
    /// addresses of a kind in `link_email_kinds`, case-insensitive) or `custom.<name>`. Empty:
    /// no linking.
    #[serde(default)]
    pub link_by: Vec<String>,
    /// The email kinds a source vouches for, which may link records (default `work` and
    /// `verified`). A candidate's `personal` address is whatever they typed: linking by it would
    /// let anyone who applies with an employee's address act on that employee. Add `personal` only
    /// where every linked source checks the addresses it sends.
    #[serde(default = "default_link_email_kinds")]
    pub link_email_kinds: Vec<String>,
    /// Attribute -> the source whose value wins (`title = "hr"`, `start_date = "lever"`,
    /// `custom.cost_center = "hr"`).
    #[serde(default)]
    pub authority: BTreeMap<String, String>,
}

fn default_link_email_kinds() -> Vec<String> {
    vec!["work".into(), "verified".into()]
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            link_by: Vec::new(),
            link_email_kinds: default_link_email_kinds(),
            authority: BTreeMap::new(),
        }
    }
}

impl IdentityConfig {
    /// The keys an event's person is known by: its own source id first, then the
    /// configured attributes. Empty when linking is off.
    pub fn keys(&self, person_key: &str, person: &wit::Person) -> Vec<String> {
        if self.link_by.is_empty() {
            return Vec::new();
        }
        let mut keys = vec![format!("id:{person_key}")];
        for attr in &self.link_by {
            if attr == "email" {
                let vouched = person.emails.iter().filter(|e| {
                    self.link_email_kinds
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(e.kind.trim()))
                });
                for e in vouched {
                    let v = e.value.trim().to_lowercase();
                    if !v.is_empty() {
                        keys.push(format!("email:{v}"));
                    }
                }
            } else if let Some(name) = attr.strip_prefix("custom.") {
                for (k, v) in &person.custom {
                    if k == name
                        && let wit::Value::Text(t) = v
                        && !t.trim().is_empty()
                    {
                        keys.push(format!("custom.{name}:{}", t.trim()));
                    }
                }
            }
        }
        keys.dedup();
        keys
    }
}

/// Picks a field: the authority's value, else the current record's, else the others' (newest first).
fn pick<T: Clone>(
    field: &str,
    authority: &BTreeMap<String, String>,
    current: (&str, &wit::Person),
    others: &[(String, wit::Person)],
    get: impl Fn(&wit::Person) -> Option<T>,
) -> Option<T> {
    if let Some(source) = authority.get(field) {
        let from_authority = if source == current.0 {
            get(current.1)
        } else {
            others.iter().find(|(s, _)| s == source).and_then(|(_, p)| get(p))
        };
        if from_authority.is_some() {
            return from_authority;
        }
    }
    get(current.1).or_else(|| others.iter().find_map(|(_, p)| get(p)))
}

/// The person the rules see: the current record merged with the other linked
/// sources' newest records. `first_source` is the source whose id leads `ids`
/// (the person's first source, so `person.id` stays stable).
pub fn merge(
    config: &IdentityConfig,
    current_source: &str,
    current: &wit::Person,
    others: &[(String, wit::Person)],
    first_source: &str,
) -> wit::Person {
    let a = &config.authority;
    let cur = (current_source, current);
    let text =
        |f: &str, get: fn(&wit::Person) -> &Option<String>| pick(f, a, cur, others, |p| get(p).clone());
    let list = |f: &str, get: fn(&wit::Person) -> &Vec<wit::LabeledValue>| {
        pick(f, a, cur, others, |p| {
            Some(get(p).clone()).filter(|l| !l.is_empty())
        })
        .unwrap_or_default()
    };
    let mut ids: Vec<wit::SourceId> = Vec::new();
    for id in current
        .ids
        .iter()
        .chain(others.iter().flat_map(|(_, p)| p.ids.iter()))
    {
        if !ids.iter().any(|x| x.source == id.source && x.id == id.id) {
            ids.push(id.clone());
        }
    }
    ids.sort_by_key(|id| id.source != first_source);
    let mut custom: Vec<(String, wit::Value)> = Vec::new();
    for (k, _) in current
        .custom
        .iter()
        .chain(others.iter().flat_map(|(_, p)| p.custom.iter()))
    {
        if custom.iter().any(|(x, _)| x == k) {
            continue;
        }
        let field = format!("custom.{k}");
        if let Some(v) = pick(&field, a, cur, others, |p| {
            p.custom.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone())
        }) {
            custom.push((k.clone(), v));
        }
    }
    wit::Person {
        ids,
        given_name: text("given_name", |p| &p.given_name),
        family_name: text("family_name", |p| &p.family_name),
        preferred_name: text("preferred_name", |p| &p.preferred_name),
        emails: list("emails", |p| &p.emails),
        phones: list("phones", |p| &p.phones),
        title: text("title", |p| &p.title),
        department: text("department", |p| &p.department),
        team: text("team", |p| &p.team),
        location: text("location", |p| &p.location),
        country: text("country", |p| &p.country),
        time_zone: text("time_zone", |p| &p.time_zone),
        manager: pick("manager", a, cur, others, |p| p.manager.clone()),
        employment_type: pick("employment_type", a, cur, others, |p| p.employment_type),
        start_date: text("start_date", |p| &p.start_date),
        end_date: text("end_date", |p| &p.end_date),
        // The record being applied says where the person stands, unless an authority is set.
        status: a
            .get("status")
            .and_then(|s| others.iter().find(|(x, _)| x == s))
            .map(|(_, p)| p.status)
            .unwrap_or(current.status),
        custom,
    }
}

impl crate::Pipeline {
    /// The person a withdrawal or deletion (which carries ids only) is about, as last
    /// known: the event's own values first, the rest from the person's record before it.
    pub(crate) async fn with_known_record(
        &self,
        tenant: &str,
        person_key: &str,
        event_id: i64,
        source: &str,
        person: &wit::Person,
    ) -> Result<wit::Person, tenure_store::StoreError> {
        let Some(before) = self.store.record_before(tenant, person_key, event_id).await? else {
            return Ok(person.clone());
        };
        let Ok(known) = crate::stored::decode(&before.body) else {
            return Ok(person.clone());
        };
        let first = person_key.split(':').next().unwrap_or_default();
        Ok(merge(
            &IdentityConfig::default(),
            source,
            person,
            &[(before.source, known.person)],
            first,
        ))
    }

    /// The person key and the merged record the pipeline uses for `person` from
    /// `source` (its own key when linking is off or nothing links it yet).
    pub async fn linked_person(
        &self,
        tenant: &str,
        source: &str,
        own_key: &str,
        person: &wit::Person,
    ) -> Result<(String, wit::Person), tenure_store::StoreError> {
        let Some(config) = self.config.tenants.get(tenant).map(|t| &t.identity) else {
            return Ok((own_key.to_string(), person.clone()));
        };
        if config.link_by.is_empty() {
            return Ok((own_key.to_string(), person.clone()));
        }
        let key = self
            .store
            .identity_owner(tenant, &config.keys(own_key, person))
            .await?
            .unwrap_or_else(|| own_key.to_string());
        let merged = self.merged_person(tenant, &key, source, person).await?;
        Ok((key, merged))
    }

    /// `person` (from `source`) merged with the newest records of the other sources linked to `person_key`.
    pub async fn merged_person(
        &self,
        tenant: &str,
        person_key: &str,
        source: &str,
        person: &wit::Person,
    ) -> Result<wit::Person, tenure_store::StoreError> {
        let Some(config) = self.config.tenants.get(tenant).map(|t| &t.identity) else {
            return Ok(person.clone());
        };
        if config.link_by.is_empty() {
            return Ok(person.clone());
        }
        let others: Vec<(String, wit::Person)> = self
            .store
            .latest_events_of(tenant, person_key)
            .await?
            .iter()
            .filter(|r| r.source != source)
            .filter_map(|r| {
                let e = crate::stored::decode(&r.body).ok()?;
                Some((r.source.clone(), e.person))
            })
            .collect();
        if others.is_empty() {
            return Ok(person.clone());
        }
        let first = person_key.split(':').next().unwrap_or_default();
        Ok(merge(config, source, person, &others, first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(source: &str, id: &str) -> wit::Person {
        wit::Person::with_id(source, id)
    }

    #[test]
    fn authority_wins_then_the_current_record_then_the_others() {
        let config = IdentityConfig {
            link_by: vec!["email".into()],
            link_email_kinds: default_link_email_kinds(),
            authority: [
                ("title".to_string(), "hr".to_string()),
                ("start_date".to_string(), "lever".to_string()),
            ]
            .into(),
        };
        let mut lever = person("lever", "c1");
        lever.title = Some("Engineer (offer)".into());
        lever.start_date = Some("2026-03-02".into());
        lever.given_name = Some("Shane".into());
        let mut hr = person("hr", "E1");
        hr.title = Some("Senior Engineer".into());
        hr.start_date = Some("2026-03-09".into());
        hr.status = wit::PersonStatus::Terminated;
        let merged = merge(&config, "hr", &hr, &[("lever".into(), lever)], "lever");
        assert_eq!(
            merged.title.as_deref(),
            Some("Senior Engineer"),
            "hr is the title's authority"
        );
        assert_eq!(
            merged.start_date.as_deref(),
            Some("2026-03-02"),
            "lever is the start date's authority"
        );
        assert_eq!(
            merged.given_name.as_deref(),
            Some("Shane"),
            "missing here: taken from the other source"
        );
        assert_eq!(
            merged.status,
            wit::PersonStatus::Terminated,
            "the record being applied decides"
        );
        assert_eq!(merged.ids[0].source, "lever", "the first source's id leads");
        assert_eq!(merged.ids.len(), 2);
    }

    #[test]
    fn keys_come_from_the_configured_attributes() {
        let config = IdentityConfig {
            link_by: vec!["email".into(), "custom.employee_number".into()],
            link_email_kinds: default_link_email_kinds(),
            authority: BTreeMap::new(),
        };
        let mut p = person("hr", "E1");
        p.emails.push(wit::LabeledValue {
            kind: "work".into(),
            value: " Shane@Example.test ".into(),
            primary: true,
        });
        p.custom
            .push(("employee_number".into(), wit::Value::Text("1001".into())));
        assert_eq!(
            config.keys("hr:E1", &p),
            [
                "id:hr:E1",
                "email:shane@example.test",
                "custom.employee_number:1001"
            ]
        );
        assert!(
            IdentityConfig::default().keys("hr:E1", &p).is_empty(),
            "linking off"
        );
    }

    #[test]
    fn an_address_no_source_vouches_for_links_nobody() {
        let config = IdentityConfig {
            link_by: vec!["email".into()],
            ..IdentityConfig::default()
        };
        // A candidate who applied with an employee's work address.
        let mut candidate = person("lever", "c9");
        candidate.emails.push(wit::LabeledValue {
            kind: "personal".into(),
            value: "shane@example.test".into(),
            primary: true,
        });
        assert_eq!(config.keys("lever:c9", &candidate), ["id:lever:c9"]);
        let trusting = IdentityConfig {
            link_email_kinds: vec!["work".into(), "personal".into()],
            ..config
        };
        assert_eq!(
            trusting.keys("lever:c9", &candidate),
            ["id:lever:c9", "email:shane@example.test"],
            "a tenant that vouches for its sources' personal addresses links by them"
        );
    }
}
