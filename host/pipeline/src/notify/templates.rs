//! The messages' templates (minijinja): each event's own, or the tenant's. Templates see only
//! the facts the event hands them (the person's names and emails, the manager, the accounts'
//! destinations and anchors, links): never an attribute value, a secret or a password.

use super::config::NotifyOn;
use minijinja::{Environment, UndefinedBehavior};

/// The subject and body an event's message has unless the tenant gives its own.
pub fn default_for(on: NotifyOn) -> (&'static str, &'static str) {
    match on {
        NotifyOn::AccountReady => (
            "Accounts ready for {{ person.name }}",
            "{{ person.name }}'s accounts are ready{% if person.start_date %} for their first day, \
             {{ person.start_date }}{% endif %}:\n\
             {% for a in accounts %}- {{ a.destination }}: {{ a.anchor }}\n{% endfor %}\n\
             Day-1 checklist:\n\
             - Welcome {{ person.given_name }} and walk them through their first week.\n\
             - IT hands over the initial password in person or through the service desk; it is never \
             sent by email.\n\
             - Ask IT for any access the accounts above do not cover.\n\
             {% if links.person %}\nDetails: {{ links.person }}\n{% endif %}",
        ),
        NotifyOn::ContractEnding => (
            "{{ person.name }}'s contract ends on {{ end_date }}",
            "{{ person.name }}'s contract ends on {{ end_date }}, in {{ days_before }} days. Their access \
             ends with it unless HR records an extension.\n\
             {% if links.person %}\nDetails: {{ links.person }}\n{% endif %}",
        ),
        NotifyOn::JobDead => (
            "Tenure gave up on a change for {{ person_key }}",
            "Job {{ job }} for {{ person_key }} failed for good after {{ attempt }} attempt(s): {{ error }}\n\
             Fix the cause and replay it (POST /api/v1/jobs/{{ job }}/replay).",
        ),
        NotifyOn::JobHeld => (
            "A change for {{ person_key }} waits for a decision",
            "Job {{ job }} for {{ person_key }} is held: {{ reason }}.",
        ),
        NotifyOn::ConflictOpened => (
            "Conflict in {{ destination }} for {{ person_key }}",
            "Tenure found {{ candidates | length }} existing account(s) in {{ destination }} that may be \
             {{ person_key }}'s ({{ kind }}): {{ candidates | join(', ') }}. Decide through the conflicts \
             API before anything is changed there.",
        ),
        NotifyOn::GuardTripped => (
            "Mass-change guard tripped in {{ destination }}",
            "Changes to {{ destination }} are held: {{ why }}. Approve them \
             (POST /api/v1/guards/{{ destination }}/approve) if they are expected.",
        ),
        NotifyOn::TicketOverdue => (
            "Ticket {{ ticket.number }} for {{ person_key }} is still open",
            "Ticket {{ ticket.number }} ({{ ticket.template }}, {{ ticket.desk }}) for {{ person_key }} has \
             been open since {{ ticket.opened }}; {{ destination }}'s leaver steps wait until it is \
             closed ({{ ticket.state }} now).\n\
             {% if links.person %}\nDetails: {{ links.person }}\n{% endif %}",
        ),
        NotifyOn::DriftFound => (
            "Reconciliation found drift in {{ destination }}",
            "Reconciliation of {{ destination }} found {{ drifted }} account(s) that differ from what the \
             rules want.",
        ),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // A name the event does not have is an error, not an empty string (`if` may test for it).
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Plain text: no HTML escaping.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

/// Whether `template` compiles.
pub fn check(template: &str) -> Result<(), String> {
    environment()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `template` rendered with `vars`.
pub fn render(template: &str, vars: &serde_json::Value) -> Result<String, String> {
    let env = environment();
    let t = env.template_from_str(template).map_err(|e| e.to_string())?;
    t.render(minijinja::Value::from(minijinja::value::Serde(vars)))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_default_renders_its_events_facts() {
        let person = json!({"name": "Ada Lovelace", "given_name": "Ada", "start_date": "2027-01-04"});
        let cases = [
            (
                NotifyOn::AccountReady,
                json!({"person": person, "accounts": [{"destination": "entra", "anchor": "u-1"}],
                    "links": {"person": "https://tenure.example.com/people/hr:1"}}),
            ),
            (
                NotifyOn::ContractEnding,
                json!({"person": person, "end_date": "2027-06-30", "days_before": 14, "links": {}}),
            ),
            (
                NotifyOn::JobDead,
                json!({"person_key": "hr:1", "job": 7, "attempt": 5, "error": "x"}),
            ),
            (
                NotifyOn::JobHeld,
                json!({"person_key": "hr:1", "job": 7, "reason": "guard:ad"}),
            ),
            (
                NotifyOn::ConflictOpened,
                json!({"person_key": "hr:1", "destination": "ad", "kind": "ambiguous",
                    "candidates": ["a", "b"]}),
            ),
            (
                NotifyOn::GuardTripped,
                json!({"destination": "ad", "why": "12 changes in 10 minutes"}),
            ),
            (NotifyOn::DriftFound, json!({"destination": "ad", "drifted": 3})),
            (
                NotifyOn::TicketOverdue,
                json!({"person_key": "hr:1", "destination": "ad", "links": {}, "ticket": {
                    "number": "INC0010001", "template": "laptop-return", "desk": "servicedesk",
                    "state": "In Progress", "opened": "2026-12-01T09:00:00Z"}}),
            ),
        ];
        for (on, vars) in cases {
            let (subject, body) = default_for(on);
            let s = render(subject, &vars).unwrap_or_else(|e| panic!("{on:?} subject: {e}"));
            let b = render(body, &vars).unwrap_or_else(|e| panic!("{on:?} body: {e}"));
            assert!(!s.is_empty() && !b.is_empty(), "{on:?}");
        }
        let (_, body) = default_for(NotifyOn::AccountReady);
        let text = render(body, &cases_account()).unwrap();
        assert!(
            text.contains("- entra: u-1") && text.contains("2027-01-04"),
            "{text}"
        );
    }

    fn cases_account() -> serde_json::Value {
        json!({"person": {"name": "Ada Lovelace", "given_name": "Ada", "start_date": "2027-01-04"},
            "accounts": [{"destination": "entra", "anchor": "u-1"}], "links": {}})
    }

    #[test]
    fn a_name_the_event_lacks_is_an_error_not_a_blank() {
        assert!(render("Hello {{ person.nickname }}", &json!({"person": {}})).is_err());
        assert!(check("{{ unclosed").is_err());
        assert_eq!(
            render("<{{ a }}>", &json!({"a": "&"})).unwrap(),
            "<&>",
            "plain text"
        );
    }
}
