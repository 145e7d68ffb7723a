//! From a Lever opportunity to a person event: a hire (joiner, or rehire when the
//! contact was hired before), a hire reversed later (withdrawn), or nothing.

use crate::api;
use crate::memory;
use crate::names;
use crate::settings::{Settings, StartWithoutOffer};
use serde_json::Value as Json;
use tenure_sdk::host::clock;
use tenure_sdk::types::{
    EmploymentType, EventKind, LabeledValue, Person, PersonEvent, PersonStatus, PluginError, SourceId, Value,
};

/// Offer fields left in Lever: nothing downstream provisions from pay, and audits would keep it.
const PAY_WORDS: &[&str] = &["salary", "compensation", "equity", "bonus", "currency"];

/// The archive reason of an opportunity: `archived.reason`, or the flat
/// `archiveReason` of Lever's older examples.
fn archive_reason(opp: &Json) -> Option<&str> {
    opp.get("archived")
        .and_then(|a| a.get("reason"))
        .and_then(Json::as_str)
        .or_else(|| opp.get("archiveReason").and_then(Json::as_str))
}

/// When the opportunity was archived (hired), in ms.
fn archived_at(opp: &Json) -> Option<i64> {
    opp.get("archived")
        .and_then(|a| a.get("archivedAt"))
        .and_then(Json::as_i64)
}

/// The person's contact id: an expanded object, or its id.
fn contact_of(opp: &Json) -> Option<String> {
    opp.get("contact")
        .filter(|c| c.is_object())
        .and_then(|c| c.get("id"))
        .or_else(|| opp.get("contact"))
        .and_then(Json::as_str)
        .map(str::to_string)
}

/// Fetches an opportunity (404: Lever does not have it) and reads it.
pub fn from_lever(
    s: &Settings,
    opportunity: &str,
    kind: EventKind,
    record: &str,
    at_ms: i64,
) -> Result<Option<PersonEvent>, PluginError> {
    let opp = api::object(&format!(
        "/opportunities/{opportunity}?expand=contact&expand=applications&expand=stage&expand=owner"
    ))?;
    read(s, opportunity, &opp, kind, record, at_ms)
}

/// The event for an opportunity already fetched (with `contact` and `applications`
/// expanded): a hire, a reversed hire, or `None`.
pub fn read(
    s: &Settings,
    opportunity: &str,
    opp: &Json,
    kind: EventKind,
    record: &str,
    at_ms: i64,
) -> Result<Option<PersonEvent>, PluginError> {
    let reason = archive_reason(opp);
    let hired = match reason {
        Some(reason) => memory::hired_reasons()?.iter().any(|r| r == reason),
        None => false,
    };
    if !hired {
        // Archived again with another reason after it was reported hired: the offer was
        // rescinded (or the candidate withdrew), so the hire is withdrawn.
        if reason.is_some()
            && let Some(contact) = memory::hired_contact(opportunity)
            && memory::newest_hire(&contact).is_none_or(|(newest, _)| newest == opportunity)
        {
            memory::forget_hire(opportunity);
            log::warn!("opportunity {opportunity} was hired, now archived as {reason:?}: withdrawn");
            return Ok(Some(withdrawn(s, &contact, record, at_ms)));
        }
        log::info!("opportunity {opportunity} is not hired; nothing to do");
        return Ok(None);
    }
    let contact = contact_of(opp).ok_or_else(|| {
        tenure_sdk::errors::invalid_input("opportunity.contact", "Lever gave no contact id")
    })?;
    let hired_at = archived_at(opp).unwrap_or(at_ms);
    let kind = match memory::newest_hire(&contact) {
        // Another opportunity of the same person hired earlier: this one hires them again.
        Some((earlier, at)) if earlier != opportunity && at < hired_at && kind == EventKind::Joiner => {
            EventKind::Rehire
        }
        _ => kind,
    };
    let Some(person) = person(s, opportunity, opp, &contact, hired_at)? else {
        return Ok(None);
    };
    memory::remember_hire(opportunity, &contact, hired_at);
    Ok(Some(PersonEvent {
        kind,
        person,
        effective_date: None,
        source_record_id: record.to_string(),
        occurred_at: crate::dates::rfc3339(at_ms),
    }))
}

/// A withdrawal: ids only (the host fills in what it knows of the person).
pub fn withdrawn(s: &Settings, contact: &str, record: &str, at_ms: i64) -> PersonEvent {
    PersonEvent {
        kind: EventKind::Withdrawn,
        person: bare_person(&s.source, contact),
        effective_date: None,
        source_record_id: record.to_string(),
        occurred_at: crate::dates::rfc3339(at_ms),
    }
}

pub fn bare_person(source: &str, contact: &str) -> Person {
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

/// An offer's field by identifier.
fn offer_field<'a>(offer: Option<&'a Json>, id: &str) -> Option<&'a Json> {
    offer?
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("identifier").and_then(Json::as_str) == Some(id))?
        .get("value")
}

/// A date an offer field holds: Lever's milliseconds, or `YYYY-MM-DD` text.
fn offer_date(value: Option<&Json>) -> Option<String> {
    match value? {
        Json::Number(n) => n.as_i64().map(crate::dates::date),
        Json::String(s) => crate::dates::iso_date(s),
        _ => None,
    }
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

fn text_of(v: Option<&Json>) -> Option<String> {
    v.and_then(Json::as_str).map(str::to_string)
}

/// The hired person, enriched through Lever's API; `None` when the hire waits for a
/// start date (`start_without_offer = "wait"`).
fn person(
    s: &Settings,
    opportunity: &str,
    opp: &Json,
    contact: &str,
    hired_at: i64,
) -> Result<Option<Person>, PluginError> {
    let contact_obj = opp.get("contact").filter(|c| c.is_object());
    let offers = api::list(&format!("/opportunities/{opportunity}/offers"))?;
    let offer = pick_offer(&offers);
    let mut start_date = offer_date(offer_field(offer, "anticipated_start_date"));
    if start_date.is_none() {
        match s.start_without_offer {
            StartWithoutOffer::Wait => {
                log::warn!(
                    "opportunity {opportunity} is hired without a start date (no offer): waiting for one \
                     (settings.start_without_offer = \"wait\")"
                );
                return Ok(None);
            }
            StartWithoutOffer::HireDate => start_date = Some(crate::dates::date(hired_at)),
        }
    }
    let application = opp
        .get("applications")
        .and_then(Json::as_array)
        .and_then(|a| a.iter().find(|x| x.is_object()));
    let posting_id = offer_field(offer, "job_posting")
        .and_then(Json::as_str)
        .or_else(|| application.and_then(|a| a.get("posting")).and_then(Json::as_str));
    let posting = match posting_id {
        Some(id) => api::cached(&format!("/postings/{}", api::encode(id)))?,
        None => None,
    };
    let category = |k: &str| {
        text_of(
            posting
                .as_ref()
                .and_then(|p| p.get("categories"))
                .and_then(|c| c.get(k)),
        )
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
        Some(id) => api::cached(&format!("/requisitions/{}", api::encode(id)))?,
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
        Some(id) => api::cached(&format!("/users/{}", api::encode(id)))?,
        None => None,
    };
    let name = opp
        .get("name")
        .and_then(Json::as_str)
        .or_else(|| contact_obj.and_then(|c| c.get("name")).and_then(Json::as_str))
        .unwrap_or_default();
    let (given, family) = names::split(name, s.name_split);
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
    let end_date = s
        .end_date_field
        .as_deref()
        .and_then(|field| offer_date(offer_field(offer, field)));
    let mut custom = vec![(
        "lever_opportunity_id".to_string(),
        Value::Text(opportunity.into()),
    )];
    let mut add = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            custom.push((name.to_string(), Value::Text(v)));
        }
    };
    add(
        "manager_email",
        text_of(manager.as_ref().and_then(|m| m.get("email"))),
    );
    add(
        "requisition_code",
        text_of(requisition.as_ref().and_then(|r| r.get("requisitionCode"))),
    );
    add("offer_status", text_of(offer.and_then(|o| o.get("status"))));
    add("commitment", category("commitment"));
    // The offer's other fields (custom ones included) as `offer_<identifier>`; pay stays in Lever.
    for field in offer
        .and_then(|o| o.get("fields"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(id) = field.get("identifier").and_then(Json::as_str) else {
            continue;
        };
        if PAY_WORDS.iter().any(|w| id.contains(w)) {
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
    let now = clock::now_ms();
    let starts_later = start_date
        .as_deref()
        .and_then(crate::dates::day_start_ms)
        .is_some_and(|ms| ms > now);
    Ok(Some(Person {
        ids: vec![SourceId {
            source: s.source.clone(),
            id: contact.to_string(),
        }],
        given_name: given,
        family_name: family,
        preferred_name: None,
        emails,
        phones,
        title: text_of(offer_field(offer, "job_title"))
            .or_else(|| text_of(posting.as_ref().and_then(|p| p.get("text")))),
        department: category("department"),
        team: category("team"),
        location: category("location").or_else(|| text_of(opp.get("location"))),
        country: text_of(posting.as_ref().and_then(|p| p.get("country"))),
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
        status: if starts_later {
            PersonStatus::PreHire
        } else {
            PersonStatus::Active
        },
        start_date,
        end_date,
        custom,
    }))
}
