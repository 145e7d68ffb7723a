//! `lever`: Lever hires as person events.
//!
//! The host verifies a webhook delivery (signature, freshness, replay) before
//! `parse` sees it. Deliveries carry ids only, so the plugin fetches what a hire
//! needs through the `lever` connection (the host attaches the API key as the
//! basic-auth user and rate-limits the connection): the opportunity (expanded
//! contact, applications, stage, owner), its offers, the posting, the requisition,
//! the hiring manager, and the archive reasons of type `hired`.
//!
//! - `candidateHired`, or an archive whose reason has type `hired`: a **joiner**.
//! - Later changes to a hired person (`candidateStageChange`, `applicationCreated`,
//!   `contactUpdated`): an **update**.
//! - `candidateDeleted`: the `deleted` setting: `ignore` (default) or `withdraw`.
//! - Interview events and anything about people never hired: nothing.
//!
//! The person's id is Lever's **contact** id (a contact is the person; an
//! opportunity is one candidacy). Lever has one `name` field, split by the
//! `name_split` setting: `last-space` (default: the last word is the family
//! name, "Ana Maria Silva" -> "Ana Maria" + "Silva") or `first-space` ("Ana" +
//! "Maria Silva"). The manager is the offer's direct (else hiring) manager, a
//! Lever user; their linked contact id is the manager's person id, and their
//! email is kept as `custom.manager_email`.
//!
//! Settings: `source` (the source name on person ids, default `lever`),
//! `name_split`, `deleted`.

use serde_json::Value as Json;
use std::cell::RefCell;
use tenure_sdk::errors::{from_http_error, from_response, invalid_input};
use tenure_sdk::host::{clock, http, kv};
use tenure_sdk::source::{Guest, Payload, PollResult};
use tenure_sdk::types::{
    EmploymentType, EventKind, LabeledValue, Person, PersonEvent, PersonStatus, PluginError, SourceId, Value,
};

const CONNECTION: &str = "lever";
/// Archive reasons are fetched at most this often.
const REASONS_TTL_MS: i64 = 10 * 60 * 1000;
/// Pages followed at most per list.
const MAX_PAGES: usize = 200;

#[derive(Clone)]
struct Settings {
    source: String,
    split_last: bool,
    withdraw_deleted: bool,
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings {
        source: "lever".into(),
        split_last: true,
        withdraw_deleted: false,
    });
}

fn settings() -> Settings {
    SETTINGS.with(|s| s.borrow().clone())
}

struct Lever;

impl Guest for Lever {
    fn configure(settings: Vec<(String, String)>) -> Result<(), PluginError> {
        tenure_sdk::init();
        SETTINGS.with(|s| {
            let mut s = s.borrow_mut();
            for (k, v) in settings {
                match (k.as_str(), v.as_str()) {
                    ("source", v) if !v.is_empty() => s.source = v.to_string(),
                    ("name_split", "last-space") => s.split_last = true,
                    ("name_split", "first-space") => s.split_last = false,
                    ("name_split", other) => {
                        return Err(invalid_input(
                            "settings.name_split",
                            format!("{other:?}: use last-space or first-space"),
                        ));
                    }
                    ("deleted", "ignore") => s.withdraw_deleted = false,
                    ("deleted", "withdraw") => s.withdraw_deleted = true,
                    ("deleted", other) => {
                        return Err(invalid_input(
                            "settings.deleted",
                            format!("{other:?}: use ignore or withdraw"),
                        ));
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    fn parse(payload: Payload) -> Result<Vec<PersonEvent>, PluginError> {
        let body: Json = serde_json::from_slice(&payload.body)
            .map_err(|e| invalid_input("body", format!("not JSON: {e}")))?;
        let event = body
            .get("event")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid_input("event", "missing"))?;
        let token = body.get("token").and_then(Json::as_str).unwrap_or_default();
        let triggered_at = body.get("triggeredAt").and_then(Json::as_i64).unwrap_or_default();
        let data = body.get("data").cloned().unwrap_or(Json::Null);
        let record = |id: &str| format!("{event}:{id}:{token}");
        let text = |k: &str| data.get(k).and_then(Json::as_str).map(str::to_string);
        match event {
            "candidateHired" | "candidateArchiveChange" | "candidateStageChange" | "applicationCreated" => {
                let opportunity = text("opportunityId")
                    .or_else(|| text("candidateId"))
                    .ok_or_else(|| invalid_input("data.opportunityId", "missing"))?;
                let kind = if event == "candidateHired" || event == "candidateArchiveChange" {
                    EventKind::Joiner
                } else {
                    EventKind::Update
                };
                Ok(
                    hire_event(&opportunity, kind, &record(&opportunity), triggered_at)?
                        .into_iter()
                        .collect(),
                )
            }
            "contactCreated" | "contactUpdated" => {
                let contact = text("contactId").ok_or_else(|| invalid_input("data.contactId", "missing"))?;
                let mut events = Vec::new();
                let path = format!(
                    "/opportunities?contact_id={contact}&archived=true&expand=contact&expand=applications"
                );
                for opp in list(&path)? {
                    if let Some(id) = opp.get("id").and_then(Json::as_str)
                        && let Some(e) = hire_from(id, &opp, EventKind::Update, &record(id), triggered_at)?
                    {
                        events.push(e);
                    }
                }
                Ok(events)
            }
            "candidateDeleted" => {
                let s = settings();
                let opportunity = text("opportunityId").unwrap_or_default();
                let contact = text("contactId").or_else(|| known_contact(&opportunity));
                match (s.withdraw_deleted, contact) {
                    (true, Some(contact)) => Ok(vec![PersonEvent {
                        kind: EventKind::Withdrawn,
                        person: bare_person(&s.source, &contact),
                        effective_date: None,
                        source_record_id: record(&opportunity),
                        occurred_at: rfc3339(triggered_at),
                    }]),
                    _ => Ok(Vec::new()),
                }
            }
            _ => Ok(Vec::new()),
        }
    }

    fn poll(cursor: Option<String>) -> Result<PollResult, PluginError> {
        // A sweep reads every page of opportunities updated since `since`, following
        // Lever's `next` offsets; only when it ends does the cursor move past the newest
        // `updatedAt` it saw. Cursor: `since` between sweeps, `since|offset|newest` within one.
        let sweep = Sweep::parse(cursor.as_deref());
        let mut path = format!(
            "/opportunities?archived=true&updated_at_start={}&limit=50&expand=contact&expand=applications",
            sweep.since
        );
        if let Some(offset) = &sweep.offset {
            path.push_str(&format!("&offset={}", encode(offset)));
        }
        let page = get(&path)?;
        let mut newest = sweep.newest;
        let mut events = Vec::new();
        for opp in page.get("data").and_then(Json::as_array).into_iter().flatten() {
            let updated = opp.get("updatedAt").and_then(Json::as_i64).unwrap_or(sweep.since);
            newest = newest.max(updated);
            if let Some(id) = opp.get("id").and_then(Json::as_str)
                && let Some(e) = hire_from(
                    id,
                    opp,
                    EventKind::Joiner,
                    &format!("poll:{id}:{updated}"),
                    updated,
                )?
            {
                events.push(e);
            }
        }
        let next = page
            .get("next")
            .and_then(Json::as_str)
            .filter(|_| page.get("hasNext").and_then(Json::as_bool).unwrap_or(false));
        Ok(match next {
            Some(offset) => PollResult {
                events,
                next_cursor: Some(format!("{}|{offset}|{newest}", sweep.since)),
                has_more: true,
            },
            None => PollResult {
                events,
                // Past the newest update seen; where it started when nothing was new.
                next_cursor: Some(sweep.since.max(newest.saturating_add(1)).to_string()),
                has_more: false,
            },
        })
    }
}

/// Where a poll stands (see `poll`).
struct Sweep {
    since: i64,
    offset: Option<String>,
    newest: i64,
}

impl Sweep {
    fn parse(cursor: Option<&str>) -> Sweep {
        let mut parts = cursor.unwrap_or("0").splitn(3, '|');
        let since = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let offset = parts.next().filter(|o| !o.is_empty()).map(str::to_string);
        // Nothing seen yet is one before the start.
        let newest = parts.next().and_then(|p| p.parse().ok()).unwrap_or(since - 1);
        Sweep {
            since,
            offset,
            newest,
        }
    }
}

/// GET a path on the `lever` connection; Lever's status codes become the error
/// variants that drive the host's retries (429 -> rate-limited with Retry-After).
fn get(path: &str) -> Result<Json, PluginError> {
    let req = http::Request {
        connection: CONNECTION.into(),
        method: "GET".into(),
        path: path.into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: None,
        timeout_ms: Some(15_000),
    };
    let resp = http::send(&req).map_err(|e| from_http_error(CONNECTION, e))?;
    if resp.status != 200 {
        return Err(from_response(&resp));
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| PluginError::Transient(format!("Lever answered invalid JSON: {e}")))
}

/// A single object: Lever's examples nest it under `data`, some answers under `data.data`.
fn object(path: &str) -> Result<Json, PluginError> {
    let doc = get(path)?;
    let data = doc.get("data").cloned().unwrap_or(Json::Null);
    Ok(match data.get("data") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => data,
    })
}

/// Every item of a list, following `next` while `hasNext`.
fn list(path: &str) -> Result<Vec<Json>, PluginError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &next {
            Some(offset) => format!("{path}{sep}offset={}", encode(offset)),
            None => path.to_string(),
        };
        let doc = get(&url)?;
        out.extend(
            doc.get("data")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        next = doc.get("next").and_then(Json::as_str).map(str::to_string);
        if !doc.get("hasNext").and_then(Json::as_bool).unwrap_or(false) || next.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ids of archive reasons of type `hired`, cached in the plugin's key-value store.
fn hired_reasons() -> Result<Vec<String>, PluginError> {
    let now = clock::now_ms();
    if let Ok(Some(bytes)) = kv::get("archive-reasons/hired")
        && let Ok(cached) = serde_json::from_slice::<(i64, Vec<String>)>(&bytes)
        && now - cached.0 < REASONS_TTL_MS
    {
        return Ok(cached.1);
    }
    let ids: Vec<String> = list("/archive_reasons?type=hired")?
        .iter()
        .filter(|r| r.get("type").and_then(Json::as_str) == Some("hired"))
        .filter_map(|r| r.get("id").and_then(Json::as_str).map(str::to_string))
        .collect();
    if let Ok(bytes) = serde_json::to_vec(&(now, &ids)) {
        let _ = kv::set("archive-reasons/hired", &bytes);
    }
    Ok(ids)
}

/// The contact id remembered for an opportunity (for deletions, whose data may lack it).
fn known_contact(opportunity: &str) -> Option<String> {
    kv::get(&format!("contact-of/{opportunity}"))
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}

/// The archive reason of an opportunity: `archived.reason`, or the flat
/// `archiveReason` of Lever's older examples.
fn archive_reason(opp: &Json) -> Option<&str> {
    opp.get("archived")
        .and_then(|a| a.get("reason"))
        .and_then(Json::as_str)
        .or_else(|| opp.get("archiveReason").and_then(Json::as_str))
}

fn rfc3339(ms: i64) -> Option<String> {
    if ms <= 0 {
        return None;
    }
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    Some(format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z"))
}

fn date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Splits Lever's single name by the configured rule.
fn split_name(name: &str, split_last: bool) -> (Option<String>, Option<String>) {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let at = if split_last {
        name.rfind(' ')
    } else {
        name.find(' ')
    };
    match at {
        Some(i) => (Some(name[..i].to_string()), Some(name[i + 1..].to_string())),
        None if name.is_empty() => (None, None),
        None => (Some(name), None),
    }
}

fn bare_person(source: &str, contact: &str) -> Person {
    Person {
        ids: vec![SourceId {
            source: source.into(),
            id: contact.into(),
        }],
        given_name: None,
        family_name: None,
        preferred_name: None,
        emails: vec![],
        phones: vec![],
        title: None,
        department: None,
        team: None,
        location: None,
        country: None,
        time_zone: None,
        manager: None,
        employment_type: None,
        start_date: None,
        end_date: None,
        status: PersonStatus::PreHire,
        custom: vec![],
    }
}

/// The offer that speaks for the hire: the newest signed, else approved or sent, else any.
fn pick_offer(offers: &[Json]) -> Option<&Json> {
    let created = |o: &&Json| o.get("createdAt").and_then(Json::as_i64).unwrap_or(0);
    for wanted in [
        &["signed"][..],
        &["approved", "sent", "sent-manually", "opened"][..],
    ] {
        if let Some(o) = offers
            .iter()
            .filter(|o| {
                o.get("status")
                    .and_then(Json::as_str)
                    .is_some_and(|s| wanted.contains(&s))
            })
            .max_by_key(created)
        {
            return Some(o);
        }
    }
    offers.iter().max_by_key(created)
}

/// An offer's fields by identifier.
fn offer_field<'a>(offer: Option<&'a Json>, id: &str) -> Option<&'a Json> {
    offer?
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("identifier").and_then(Json::as_str) == Some(id))?
        .get("value")
}

fn employment_type(requisition: Option<&str>, commitment: Option<&str>) -> Option<EmploymentType> {
    match requisition {
        Some("full-time" | "part-time") => return Some(EmploymentType::Employee),
        Some("intern") => return Some(EmploymentType::Intern),
        Some("contractor") => return Some(EmploymentType::Contractor),
        Some("temp-worker") => return Some(EmploymentType::Temporary),
        _ => {}
    }
    let c = commitment?.to_lowercase();
    Some(if c.contains("contract") {
        EmploymentType::Contractor
    } else if c.contains("intern") {
        EmploymentType::Intern
    } else if c.contains("temp") {
        EmploymentType::Temporary
    } else {
        EmploymentType::Employee
    })
}

/// Fetches a hire and builds its event; `None` when the opportunity is not a hire.
fn hire_event(
    opportunity: &str,
    kind: EventKind,
    record: &str,
    at_ms: i64,
) -> Result<Option<PersonEvent>, PluginError> {
    let opp = object(&format!(
        "/opportunities/{opportunity}?expand=contact&expand=applications&expand=stage&expand=owner"
    ))?;
    hire_from(opportunity, &opp, kind, record, at_ms)
}

/// The event for an opportunity already fetched (with `contact` and
/// `applications` expanded); `None` when it is not a hire.
fn hire_from(
    opportunity: &str,
    opp: &Json,
    kind: EventKind,
    record: &str,
    at_ms: i64,
) -> Result<Option<PersonEvent>, PluginError> {
    let s = settings();
    let hired = match archive_reason(opp) {
        Some(reason) => hired_reasons()?.iter().any(|r| r == reason),
        None => false,
    };
    if !hired {
        log::info!("opportunity {opportunity} is not hired; nothing to do");
        return Ok(None);
    }
    // The contact is the person: an expanded object, or its id.
    let contact_obj = opp.get("contact").filter(|c| c.is_object());
    let contact = contact_obj
        .and_then(|c| c.get("id"))
        .or_else(|| opp.get("contact"))
        .and_then(Json::as_str)
        .ok_or_else(|| invalid_input("opportunity.contact", "Lever gave no contact id"))?
        .to_string();
    let _ = kv::set(&format!("contact-of/{opportunity}"), contact.as_bytes());
    let offers = list(&format!("/opportunities/{opportunity}/offers"))?;
    let offer = pick_offer(&offers);
    let application = opp
        .get("applications")
        .and_then(Json::as_array)
        .and_then(|a| a.iter().find(|x| x.is_object()));
    let posting_id = offer_field(offer, "job_posting")
        .and_then(Json::as_str)
        .or_else(|| application.and_then(|a| a.get("posting")).and_then(Json::as_str));
    let posting = match posting_id {
        Some(id) => Some(object(&format!("/postings/{id}"))?),
        None => None,
    };
    let categories = posting.as_ref().and_then(|p| p.get("categories"));
    let category = |k: &str| {
        categories
            .and_then(|c| c.get(k))
            .and_then(Json::as_str)
            .map(str::to_string)
    };
    let requisition_id = offer_field(offer, "requisition")
        .and_then(Json::as_str)
        .or_else(|| {
            application
                .and_then(|a| a.get("requisitionForHire"))
                .and_then(|r| r.get("id"))
                .and_then(Json::as_str)
        });
    let requisition = match requisition_id {
        Some(id) => Some(object(&format!("/requisitions/{id}"))?),
        None => None,
    };
    let manager_id = offer_field(offer, "direct_manager")
        .or_else(|| offer_field(offer, "hiring_manager"))
        .and_then(Json::as_str)
        .or_else(|| {
            application
                .and_then(|a| a.get("postingHiringManager"))
                .and_then(Json::as_str)
        });
    let manager = match manager_id {
        Some(id) => Some(object(&format!("/users/{id}"))?),
        None => None,
    };
    let name = opp
        .get("name")
        .and_then(Json::as_str)
        .or_else(|| contact_obj.and_then(|c| c.get("name")).and_then(Json::as_str))
        .unwrap_or_default();
    let (given, family) = split_name(name, s.split_last);
    let emails: Vec<LabeledValue> = opp
        .get("emails")
        .or_else(|| contact_obj.and_then(|c| c.get("emails")))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .enumerate()
        .map(|(i, e)| LabeledValue {
            kind: "personal".into(),
            value: e.to_string(),
            primary: i == 0,
        })
        .collect();
    let phones: Vec<LabeledValue> = opp
        .get("phones")
        .or_else(|| contact_obj.and_then(|c| c.get("phones")))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(LabeledValue {
                kind: p.get("type").and_then(Json::as_str).unwrap_or("phone").into(),
                value: p.get("value")?.as_str()?.into(),
                primary: false,
            })
        })
        .collect();
    let start_ms = offer_field(offer, "anticipated_start_date").and_then(Json::as_i64);
    let start_date = start_ms.map(date);
    let now = clock::now_ms();
    let mut custom = vec![(
        "lever_opportunity_id".to_string(),
        Value::Text(opportunity.into()),
    )];
    if let Some(email) = manager
        .as_ref()
        .and_then(|m| m.get("email"))
        .and_then(Json::as_str)
    {
        custom.push(("manager_email".into(), Value::Text(email.into())));
    }
    if let Some(code) = requisition
        .as_ref()
        .and_then(|r| r.get("requisitionCode"))
        .and_then(Json::as_str)
    {
        custom.push(("requisition_code".into(), Value::Text(code.into())));
    }
    if let Some(status) = offer.and_then(|o| o.get("status")).and_then(Json::as_str) {
        custom.push(("offer_status".into(), Value::Text(status.into())));
    }
    // The offer's other fields (custom ones included) as `offer_<identifier>`; pay is
    // left in Lever: nothing downstream provisions from it, and audits would keep it.
    for field in offer
        .and_then(|o| o.get("fields"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = field.get("identifier").and_then(Json::as_str) else {
            continue;
        };
        if ["salary", "compensation", "equity", "bonus", "currency"]
            .iter()
            .any(|w| id.contains(w))
        {
            continue;
        }
        let value = match field.get("value") {
            Some(Json::String(v)) => v.clone(),
            Some(Json::Number(n)) => n.to_string(),
            Some(Json::Bool(b)) => b.to_string(),
            _ => continue,
        };
        custom.push((format!("offer_{id}"), Value::Text(value)));
    }
    if let Some(commitment) = category("commitment") {
        custom.push(("commitment".into(), Value::Text(commitment)));
    }
    let person = Person {
        ids: vec![SourceId {
            source: s.source.clone(),
            id: contact,
        }],
        given_name: given,
        family_name: family,
        preferred_name: None,
        emails,
        phones,
        title: offer_field(offer, "job_title")
            .and_then(Json::as_str)
            .or_else(|| {
                posting
                    .as_ref()
                    .and_then(|p| p.get("text"))
                    .and_then(Json::as_str)
            })
            .map(str::to_string),
        department: category("department"),
        team: category("team"),
        location: category("location")
            .or_else(|| opp.get("location").and_then(Json::as_str).map(str::to_string)),
        country: posting
            .as_ref()
            .and_then(|p| p.get("country"))
            .and_then(Json::as_str)
            .map(str::to_string),
        time_zone: None,
        manager: manager
            .as_ref()
            .and_then(|m| m.get("linkedContactIds"))
            .and_then(Json::as_array)
            .and_then(|ids| ids.first())
            .and_then(Json::as_str)
            .map(|id| SourceId {
                source: s.source.clone(),
                id: id.into(),
            }),
        employment_type: employment_type(
            requisition
                .as_ref()
                .and_then(|r| r.get("employmentStatus"))
                .and_then(Json::as_str),
            category("commitment").as_deref(),
        ),
        status: match start_ms {
            Some(ms) if ms > now => PersonStatus::PreHire,
            _ => PersonStatus::Active,
        },
        start_date,
        end_date: None,
        custom,
    };
    Ok(Some(PersonEvent {
        kind,
        person,
        effective_date: None,
        source_record_id: record.to_string(),
        occurred_at: rfc3339(at_ms),
    }))
}

tenure_sdk::export_source!(Lever);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_by_the_configured_rule() {
        assert_eq!(
            split_name("Ana Maria  Silva", true),
            (Some("Ana Maria".into()), Some("Silva".into()))
        );
        assert_eq!(
            split_name("Ana Maria Silva", false),
            (Some("Ana".into()), Some("Maria Silva".into()))
        );
        assert_eq!(split_name("Cher", true), (Some("Cher".into()), None));
        assert_eq!(split_name("  ", true), (None, None));
    }

    #[test]
    fn dates_from_lever_milliseconds() {
        assert_eq!(date(1_475_540_150_185), "2016-10-04");
        assert_eq!(
            rfc3339(1_431_458_021_951).as_deref(),
            Some("2015-05-12T19:13:41.951Z")
        );
        assert_eq!(rfc3339(0), None);
    }
}
