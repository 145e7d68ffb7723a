//! The ticket desks (issue 20): the `servicenow` and `freshservice` connectors against
//! stateful fakes of their APIs (documented request shapes, error bodies and rate-limit
//! headers), alone and behind the running host.
//!
//! Alone: incidents with reference fields by display value, catalog requests for a user
//! found by email, tickets with codes by name, onboarding requests checked against the
//! account's form before anything is sent; a lost answer never opens a second ticket;
//! 429s are waited out; errors carry the desk's message and name the field.
//!
//! In the host, with `examples/itsm`: a hire opens a ServiceNow catalog request and, being a
//! contractor, a Freshservice ticket, each once although an answer is lost and the rate limit
//! is met; the numbers are in the person's lifecycle and audit; a move opens nothing more; the
//! termination opens an incident; a signed Lever hire orders a laptop and emails the hiring
//! manager once the account exists. A leaver's steps wait for the equipment ticket to close.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tenure_capabilities::ShiftedClock;
use tenure_plugin_test::Harness;
use tenure_runtime::wit::{self, PluginError};
use tenure_tests::example;
use tenure_tests::fake_chat::FakeChat;
use tenure_tests::fake_freshservice::{self, FakeFreshservice};
use tenure_tests::fake_lever::{self, HIRED_CONTACT, HIRED_OPPORTUNITY};
use tenure_tests::fake_servicenow::{self, FakeServiceNow};
use tenure_tests::host::{HostSpec, TestHost, pipeline_toml, tenant_toml};
use tenure_tests::mailbox;
use tenure_tests::testbeds;

const TICKET_KEY: &str = "tenure-ticket-key";

fn servicenow_connection(fake: &FakeServiceNow, oauth: bool) -> String {
    let auth = if oauth {
        format!(
            concat!(
                "{{ type = \"oauth2\", token_url = \"{}/oauth_token.do\", ",
                "client_id = \"{}\", client_secret = \"{}\" }}"
            ),
            fake.url,
            fake_servicenow::CLIENT_ID,
            fake_servicenow::CLIENT_SECRET
        )
    } else {
        format!(
            "{{ type = \"basic\", username = \"{}\", password = \"{}\" }}",
            fake_servicenow::USER,
            fake_servicenow::PASSWORD
        )
    };
    format!(
        "[connections.servicenow]\nkind = \"http\"\nallow_private_network = true\nretry_429 = 2\n\
         url = \"{}\"\n\
         auth = {auth}\n\
         [plugins.servicenow.grants]\nhttp = [\"servicenow\"]\n",
        fake.url
    )
}

fn freshservice_connection(fake: &FakeFreshservice) -> String {
    format!(
        "[connections.freshservice]\nkind = \"http\"\nallow_private_network = true\nretry_429 = 2\n\
         url = \"{}\"\n\
         auth = {{ type = \"basic\", username = \"{}\", password = \"X\" }}\n\
         [plugins.freshservice.grants]\nhttp = [\"freshservice\"]\n",
        fake.url,
        fake_freshservice::API_KEY
    )
}

fn ticket(template: &str, fields: &[(&str, &str)]) -> wit::Operation {
    wit::Operation::OpenTicket(wit::Ticket {
        template: template.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

async fn harness(plugin: &str, config: &str) -> Harness {
    let h = Harness::new().expect("harness");
    h.load(plugin).expect("the plugin (plugins/build.sh)");
    h.tenant("acme", config).expect("tenant config");
    h
}

fn invalid_field(r: Result<wit::Outcome, PluginError>) -> (String, String) {
    match r {
        Err(PluginError::InvalidInput(i)) => (i.field, i.reason),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

/// Incidents and catalog requests, once each, with the desk's errors and rate limit.
#[tokio::test]
async fn servicenow_opens_incidents_and_catalog_requests_once() {
    let fake = FakeServiceNow::start().await;
    let ada = fake.user("ada.lovelace", "ada@example.test");
    let desk = fake.group("Service Desk");
    let laptop = fake.item("Standard laptop");
    let h = harness(
        "servicenow",
        &format!(
            "{}[plugins.servicenow.settings]\nconsole_url = \"https://acme.service-now.com\"\n",
            servicenow_connection(&fake, false)
        ),
    )
    .await;
    let apply = |op| testbeds::apply(&h, "acme", "servicenow", op);

    // An incident, its group given by name; its answer lost: the retry finds it.
    let incident = ticket(
        "badge",
        &[
            ("short_description", "Badge for Ada Lovelace"),
            ("assignment_group", "Service Desk"),
            ("urgency", "3"),
            (TICKET_KEY, "acme:7:servicedesk/ticket/badge/0"),
        ],
    );
    fake.lose_answer("POST /api/now/table/incident");
    let lost = apply(incident.clone()).await;
    assert!(
        matches!(&lost, Err(PluginError::Transient(m)) if m.contains("502")),
        "{lost:?}"
    );
    let found = apply(incident).await.expect("the retry");
    assert_eq!(found.anchor.as_deref(), Some("INC0010001"));
    assert!(
        found.summary.contains("earlier attempt")
            && found
                .summary
                .contains("https://acme.service-now.com/nav_to.do?uri=incident.do"),
        "{}",
        found.summary
    );
    let incidents = fake.records("incident");
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0]["assignment_group"], json!(desk), "by display value");
    assert_eq!(
        incidents[0]["correlation_id"],
        "acme:7:servicedesk/ticket/badge/0"
    );
    assert_eq!(incidents[0]["correlation_display"], "Tenure");

    // A catalog request for a user found by email, its variables on the item.
    let order = ticket(
        "laptop",
        &[
            ("catalog_item", &laptop),
            ("requested_for", "ada@example.test"),
            ("variables.laptop_model", "14-inch"),
            (TICKET_KEY, "acme:7:servicedesk/ticket/laptop/1"),
        ],
    );
    // The mark's answer is lost: the order stands (failing would order twice), and a later
    // attempt finds the request by its mark.
    fake.lose_answer("PATCH /api/now/table/sc_request/");
    let ordered = apply(order.clone()).await.expect("the order");
    assert_eq!(ordered.anchor.as_deref(), Some("REQ0010001"));
    assert!(ordered.summary.contains("not marked"), "{}", ordered.summary);
    let again = apply(order).await.expect("again");
    assert_eq!(again.anchor.as_deref(), Some("REQ0010001"));
    assert!(again.summary.contains("earlier attempt"), "{}", again.summary);
    let requests = fake.records("sc_request");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["requested_for"], json!(ada));
    let items = fake.records("sc_req_item");
    assert_eq!(items[0]["variables"]["laptop_model"], "14-inch");

    // The order's own answer is lost (the request exists, unmarked): the next attempt adopts it
    // and marks it, and never orders twice. The marked request above is not taken.
    let monitor = ticket(
        "monitor",
        &[
            ("catalog_item", &laptop),
            ("requested_for", "ada@example.test"),
            (TICKET_KEY, "acme:7:servicedesk/ticket/monitor/2"),
        ],
    );
    fake.lose_answer("POST /api/sn_sc/servicecatalog/items/");
    apply(monitor.clone()).await.expect_err("the answer was lost");
    let adopted = apply(monitor.clone()).await.expect("adopted");
    assert_eq!(adopted.anchor.as_deref(), Some("REQ0010002"));
    assert!(adopted.summary.contains("adopted"), "{}", adopted.summary);
    let requests = fake.records("sc_request");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[1]["correlation_id"],
        "acme:7:servicedesk/ticket/monitor/2"
    );
    let again = apply(monitor).await.expect("found by its mark");
    assert_eq!(again.anchor.as_deref(), Some("REQ0010002"));
    assert_eq!(fake.records("sc_request").len(), 2);

    // The desk's own errors, naming the field.
    let (field, reason) = invalid_field(
        apply(ticket(
            "laptop",
            &[
                ("catalog_item", &laptop),
                ("requested_for", "nobody@example.test"),
            ],
        ))
        .await,
    );
    assert_eq!(field, "requested_for");
    assert!(reason.contains("nobody@example.test"), "{reason}");
    let (field, reason) =
        invalid_field(apply(ticket("x", &[("table", "incidnet"), ("short_description", "x")])).await);
    assert_eq!(field, "ticket");
    assert!(reason.contains("Invalid table incidnet"), "{reason}");

    // Past the rate limit the host waits the Retry-After out; every ticket opens once.
    fake.set_rate_limit(2, Duration::from_secs(1));
    for n in 0..3 {
        let key = format!("acme:8:servicedesk/ticket/desk/{n}");
        apply(ticket(
            "desk",
            &[("short_description", "Desk"), (TICKET_KEY, key.as_str())],
        ))
        .await
        .unwrap_or_else(|e| panic!("ticket {n}: {e:?}"));
    }
    assert!(fake.state().budget.throttled > 0, "the limit was met");
    assert_eq!(fake.records("incident").len(), 4);
}

/// Tickets and onboarding requests, once each; the form checked before anything is sent.
#[tokio::test]
async fn freshservice_opens_tickets_and_onboarding_requests_once() {
    let fake = FakeFreshservice::start().await;
    let h = harness(
        "freshservice",
        &format!(
            "{}[plugins.freshservice.settings]\nconsole_url = \"https://acme.freshservice.com\"\n\
             onboarding_key_field = \"cf_tenure_key\"\n",
            freshservice_connection(&fake)
        ),
    )
    .await;
    let apply = |op| testbeds::apply(&h, "acme", "freshservice", op);

    let nda = ticket(
        "contractor-nda",
        &[
            ("subject", "NDA for Grace Hopper"),
            ("description", "Contract ends 2027-06-30"),
            ("email", "manager@example.test"),
            ("priority", "medium"),
            ("cf_end_date", "2027-06-30"),
            (TICKET_KEY, "acme:9:helpdesk/ticket/contractor-nda/0"),
        ],
    );
    fake.lose_answer("POST /api/v2/tickets");
    assert!(apply(nda.clone()).await.is_err());
    let found = apply(nda).await.expect("the retry");
    assert_eq!(found.anchor.as_deref(), Some("1"));
    assert!(
        found.summary.contains("earlier attempt")
            && found
                .summary
                .contains("https://acme.freshservice.com/a/tickets/1"),
        "{}",
        found.summary
    );
    {
        let s = fake.state();
        assert_eq!(s.tickets.len(), 1);
        let t = &s.tickets[0];
        assert_eq!(
            (&t["priority"], &t["status"], &t["source"]),
            (&json!(2), &json!(2), &json!(2))
        );
        assert_eq!(t["custom_fields"]["cf_end_date"], "2027-06-30");
        assert!(
            t["tags"].as_array().is_some_and(|tags| tags
                .iter()
                .any(|x| x.as_str().is_some_and(|x| x.starts_with("tenure-")))),
            "{t:?}"
        );
    }

    // An onboarding request: a field the form does not have is refused before anything is sent.
    let before = fake.state().requests.len();
    let (field, _) = invalid_field(
        apply(ticket(
            "onboarding",
            &[
                ("kind", "onboarding"),
                ("cf_employee_name", "Ada"),
                ("cf_laptop", "14"),
            ],
        ))
        .await,
    );
    assert_eq!(field, "cf_laptop");
    let (field, _) = invalid_field(
        apply(ticket(
            "onboarding",
            &[("kind", "onboarding"), ("cf_employee_name", "Ada")],
        ))
        .await,
    );
    assert_eq!(field, "cf_date_of_joining", "a required field");
    let sent: Vec<String> = fake.state().requests[before..].to_vec();
    assert!(sent.iter().all(|r| r.starts_with("GET")), "{sent:?}");

    let onboarding = ticket(
        "onboarding",
        &[
            ("kind", "onboarding"),
            ("cf_employee_name", "Ada Lovelace"),
            ("cf_date_of_joining", "2027-01-04"),
            (TICKET_KEY, "acme:10:helpdesk/ticket/onboarding/0"),
        ],
    );
    fake.lose_answer("POST /api/v2/onboarding_requests");
    assert!(apply(onboarding.clone()).await.is_err());
    let found = apply(onboarding).await.expect("the retry");
    assert_eq!(found.anchor.as_deref(), Some("onboarding-1"));
    assert_eq!(fake.state().onboarding_requests.len(), 1);

    // Validation errors name the field; 429s are waited out.
    let (field, reason) = invalid_field(
        apply(ticket(
            "x",
            &[("subject", "x"), ("description", "y"), ("email", "not-an-email")],
        ))
        .await,
    );
    assert_eq!(field, "email");
    assert!(reason.contains("valid email"), "{reason}");
    fake.set_rate_limit(2, Duration::from_secs(1));
    for n in 0..3 {
        let key = format!("acme:11:helpdesk/ticket/t/{n}");
        apply(ticket(
            "t",
            &[
                ("subject", "s"),
                ("description", "d"),
                ("requester_id", "1"),
                (TICKET_KEY, key.as_str()),
            ],
        ))
        .await
        .unwrap_or_else(|e| panic!("ticket {n}: {e:?}"));
    }
    assert!(fake.state().budget.throttled > 0, "the limit was met");
}

/// The signature token of the example's Lever `candidateHired` webhook.
const LEVER_HIRED_TOKEN: &str = "itsm-hired-signature-token";

/// The catalog item `examples/itsm/rules.yaml` orders.
const LAPTOP_ITEM: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// With `examples/itsm` as the docs give it: a contractor's hire opens a catalog request in
/// ServiceNow and a ticket in Freshservice, once each through a lost answer and ServiceNow's
/// rate limit; the numbers are in the lifecycle and the audit; a move opens nothing more; the
/// termination opens the equipment return for the Service Desk group; a signed Lever hire
/// orders a laptop and emails the hiring manager once the account exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_opens_each_desks_ticket_once() {
    let sn = FakeServiceNow::start().await;
    sn.user("grace.hopper", "grace@example.test");
    let desk = sn.group("Service Desk");
    sn.item_with_id(LAPTOP_ITEM, "Standard laptop");
    let fs = FakeFreshservice::start().await;
    let chat = FakeChat::start().await;
    let lever = fake_lever::start().await;
    sn.user("shane.smith", "shane@example.test");
    let smtp = testbeds::start("smtp.sh");
    let vars: HashMap<String, String> = [
        ("TENURE_IT_TOKEN", "unused-in-this-test-0123456789".to_string()),
        ("TENURE_HR_TOKEN", "unused-in-this-test-9876543210".to_string()),
        ("SERVICENOW_URL", sn.url.clone()),
        ("SERVICENOW_CLIENT_ID", fake_servicenow::CLIENT_ID.to_string()),
        (
            "secret:servicenow-secret",
            fake_servicenow::CLIENT_SECRET.to_string(),
        ),
        ("FRESHSERVICE_URL", fs.url.clone()),
        ("secret:freshservice-key", fake_freshservice::API_KEY.to_string()),
        ("secret:slack-webhook", chat.slack_url("it")),
        ("LEVER_API_URL", format!("http://{}/v1", lever.addr)),
        ("LEVER_API_KEY", fake_lever::API_KEY.to_string()),
        ("LEVER_HIRED_TOKEN", LEVER_HIRED_TOKEN.to_string()),
        ("LEVER_WEBHOOK_TOKEN", "itsm-other-signature-token".to_string()),
        ("SMTP_HOST", smtp["TENURE_TEST_SMTP_HOST"].clone()),
        ("SMTP_PORT", smtp["TENURE_TEST_SMTP_STARTTLS_PORT"].clone()),
        ("SMTP_USER", smtp["TENURE_TEST_SMTP_USER"].clone()),
        ("secret:smtp-password", smtp["TENURE_TEST_SMTP_PASSWORD"].clone()),
        ("SMTP_CA_FILE", smtp["TENURE_TEST_SMTP_CA"].clone()),
        ("secret:teams-webhook", chat.teams_url("it")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (tenant, pipeline) = example::load("itsm", "acme", &vars);
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            backoff_base_ms: 50,
            backoff_max_ms: 500,
            poll_ms: 20,
            ..Default::default()
        },
        plugins: vec!["rules", "lever", "sandbox", "servicenow", "freshservice"],
    })
    .await;
    fs.lose_answer("POST /api/v2/tickets");
    sn.set_rate_limit(3, Duration::from_secs(1));

    // A termination takes effect after the last day: the leaver event's is past.
    let hire = |kind: &str, department: &str, status: &str| {
        let end_date = if status == "terminated" {
            "2026-01-02"
        } else {
            "2027-06-30"
        };
        json!({
            "kind": kind, "source": "hr", "source_record_id": format!("{kind}-grace-{department}"),
            "person": { "ids": [{"source": "hr", "id": "42"}], "given_name": "Grace", "family_name": "Hopper",
                "department": department, "employment_type": "contractor", "end_date": end_date,
                "status": status, "emails": [{"value": "grace@example.test", "primary": true}] }
        })
    };
    let (status, body) = host
        .post_event(&hire("joiner", "Engineering", "active"), "hire-grace")
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;

    assert_eq!(sn.records("sc_request").len(), 1, "one catalog request");
    assert_eq!(
        sn.records("sc_req_item")[0]["variables"]["department"],
        "Engineering"
    );
    assert_eq!(fs.state().tickets.len(), 1, "one Freshservice ticket");
    assert_eq!(fs.state().tickets[0]["subject"], "NDA for Grace Hopper");
    assert_eq!(fs.state().losses.lost, 1);
    assert!(sn.state().budget.throttled > 0, "ServiceNow's limit was met");

    // The numbers, in the lifecycle and in the audit.
    let life = host.get("/api/v1/people/hr:42/lifecycle").await;
    let opened = life["facts"]["opened_tickets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let numbers: Vec<(&str, &str)> = opened
        .iter()
        .map(|t| {
            (
                t["destination"].as_str().unwrap_or(""),
                t["number"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(numbers.contains(&("servicedesk", "REQ0010001")), "{life}");
    assert!(numbers.contains(&("helpdesk", "1")), "{life}");
    let audit = host.audit(Some("hr:42")).await;
    let applied: Vec<&Value> = audit
        .iter()
        .filter(|e| e["kind"] == "op.applied" && e["data"]["op"] == "open-ticket")
        .collect();
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert!(
        applied.iter().any(|e| e["data"]["anchor"] == "REQ0010001"),
        "{applied:?}"
    );
    assert!(applied.iter().any(|e| e["data"]["anchor"] == "1"), "{applied:?}");

    // A move in the same state opens nothing more.
    let (status, body) = host
        .post_event(&hire("mover", "Research", "active"), "move-grace")
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    assert_eq!(sn.records("sc_request").len(), 1);
    assert_eq!(fs.state().tickets.len(), 1);
    // Nothing went wrong that IT should hear of.
    assert!(chat.state().slack.is_empty() && chat.state().teams.is_empty());

    // The termination opens the equipment return: an incident for the Service Desk group.
    let (status, body) = host
        .post_event(&hire("leaver", "Research", "terminated"), "leave-grace")
        .await;
    assert_eq!(status, 202, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let incidents = sn.records("incident");
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(
        incidents[0]["short_description"],
        "Collect the equipment of Grace Hopper"
    );
    assert_eq!(incidents[0]["assignment_group"], json!(desk));
    assert!(
        incidents[0]["correlation_id"]
            .as_str()
            .is_some_and(|k| k.ends_with(":servicedesk/ticket/return-equipment/0")),
        "{incidents:?}"
    );

    // A signed Lever hire: a laptop from the catalog and, once the account exists, an email
    // to the hiring manager (a Lever user: the address Lever gives).
    let since = mailbox::now_s();
    let data = json!({ "opportunityId": HIRED_OPPORTUNITY, "candidateId": HIRED_OPPORTUNITY,
        "contactId": "ignored" });
    let delivery = fake_lever::delivery(
        "candidateHired",
        LEVER_HIRED_TOKEN,
        "itsm-1",
        fake_lever::now_ms(),
        data,
    );
    let (status, body) = host.post_lever_delivery(&delivery).await;
    assert_eq!(status, 200, "{body}");
    host.wait_idle(Duration::from_secs(60)).await;
    let requests = sn.records("sc_request");
    assert_eq!(requests.len(), 2, "{requests:?}");
    let shane = sn
        .records("sys_user")
        .iter()
        .find(|u| u["email"] == "shane@example.test")
        .cloned();
    assert_eq!(requests[1]["requested_for"], shane.unwrap_or_default()["sys_id"]);
    let mail = mailbox::wait_for_after(&smtp, "dana@example.test", since).await;
    let text = mail["data"].as_str().unwrap_or_default().replace("=\r\n", "");
    assert!(
        text.contains("Subject: Accounts ready for Shane Q Smith"),
        "{text}"
    );
    assert!(
        text.contains(&format!("- sandbox: sbx-{}", HIRED_CONTACT)),
        "{text}"
    );
    assert_eq!(mail["tls"], true);
}

const FOLLOW_RULES: &str = r#"
description: The account waits for the equipment
destinations:
  sandbox:
    attributes:
      employeeId: { from: id, required: true }
      mail: { from: email, required: true }
    rules:
      - name: leaver
        priority: 0
        when: person.status == "terminated"
        then: { enabled: false }
    defaults:
      groups: [All-Staff]
  servicedesk:
    rules:
      - name: offboarding
        priority: 0
        when: person.status == "terminated"
        then:
          tickets:
            - template: return-equipment
              fields: { short_description: "Collect the laptop of ${person.given_name}" }
"#;

/// A leaver is disabled at once, but the account keeps its groups (the leaver step waits)
/// until the equipment ticket is closed at the desk: the desk is asked again every hour, IT
/// hears once when the ticket is two days old, and the step runs once it is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leavers_steps_wait_until_the_equipment_ticket_is_closed() {
    let sn = FakeServiceNow::start().await;
    let chat = FakeChat::start().await;
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{FOLLOW_RULES}'''\n[plugins.sandbox.grants]\nkv = true\n{}",
        servicenow_connection(&sn, false)
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules\"\n\
         [[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = [\"employeeId\"]\n\
         [[destinations.leaver_steps]]\nafter = \"0d\"\naction = \"remove-groups\"\n\
         [destinations.wait_for_tickets]\ndesk = \"servicedesk\"\ntemplates = [\"return-equipment\"]\n\
         poll_every = \"1h\"\nalert_after = \"2d\"\n\
         [[destinations]]\nname = \"servicedesk\"\nconnector = \"servicenow\"\n{}",
        chat.slack_rule_toml("ticket-overdue")
    ));
    let start = tenure_pipeline::event::rfc3339_ms("2026-03-02T09:00:00Z").expect("time");
    let clock = Arc::new(ShiftedClock::at(start));
    let spec = HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            ..Default::default()
        },
        plugins: vec!["rules", "sandbox", "servicenow"],
    };
    let host = TestHost::start_with_clock(spec, tempfile::tempdir().expect("dir"), clock.clone()).await;
    let person = |status: &str| {
        json!({ "ids": [{"source": "hr", "id": "7"}], "given_name": "Alan", "family_name": "Turing",
            "status": status, "end_date": if status == "terminated" { "2026-03-01" } else { "2027-01-01" },
            "emails": [{"value": "alan@example.test", "primary": true}] })
    };
    for (kind, status) in [("joiner", "active"), ("leaver", "terminated")] {
        let event = json!({ "kind": kind, "source": "hr", "source_record_id": format!("{kind}-7"),
            "person": person(status) });
        let (code, body) = host.post_event(&event, &format!("{kind}-7")).await;
        assert_eq!(code, 202, "{body}");
        host.settle_scheduled().await;
    }
    let account = || async { host.sandbox_account("7").await.expect("the account") };
    let kinds = |audit: Vec<Value>| -> Vec<String> {
        audit
            .iter()
            .filter_map(|e| e["kind"].as_str().map(str::to_string))
            .collect()
    };
    let incidents = sn.records("incident");
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let number = incidents[0]["number"].as_str().expect("number").to_string();
    let now = account().await;
    assert!(!now.enabled, "disabled at once");
    assert_eq!(now.groups, ["All-Staff"], "the groups wait for the ticket");
    let audit = kinds(host.audit(Some("hr:7")).await);
    assert!(audit.contains(&"leaver.ticket_awaited".to_string()), "{audit:?}");
    assert!(!audit.contains(&"leaver.step_done".to_string()));

    // Every hour the desk is asked again (each look a minute later than the last, as the clock
    // runs on meanwhile); two days on, IT hears of it once.
    let hour = 3_600_000;
    for hours in [1, 2, 49, 50] {
        clock.set(start + hours * hour + hours * 60_000);
        host.settle_scheduled().await;
    }
    let audit = kinds(host.audit(Some("hr:7")).await);
    let awaited = audit.iter().filter(|k| *k == "leaver.ticket_awaited").count();
    assert_eq!(awaited, 5, "{audit:?}");
    assert_eq!(audit.iter().filter(|k| *k == "ticket.overdue").count(), 1);
    tenure_tests::eventually("the overdue post", || !chat.state().slack.is_empty()).await;
    let post = chat.state().slack[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(post.contains(&number) && post.contains("still open"), "{post}");
    assert_eq!(account().await.groups, ["All-Staff"]);

    // Closed at the desk: at the next look the step runs.
    sn.close("incident", &number);
    clock.set(start + 51 * hour + 51 * 60_000);
    host.settle_scheduled().await;
    assert!(
        account().await.groups.is_empty(),
        "the groups go once the laptop is back"
    );
    let audit = kinds(host.audit(Some("hr:7")).await);
    assert!(audit.contains(&"leaver.step_done".to_string()), "{audit:?}");
    assert_eq!(chat.state().slack.len(), 1, "one overdue post");
}

const ONBOARDING_RULES: &str = r#"
description: Onboarding requests at the desk
destinations:
  sandbox:
    attributes:
      employeeId: { from: id, required: true }
  helpdesk:
    rules:
      - name: onboarding
        priority: 0
        when: person.status == "active"
        then:
          tickets:
            - template: onboarding
              fields:
                kind: onboarding
                cf_employee_name: "${person.given_name} ${person.family_name}"
                cf_date_of_joining: "${person.start_date}"
"#;

/// A rule set whose onboarding request does not fit the account's Freshservice form is refused
/// when it is published, naming the field, not when the first hire meets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_checks_the_rule_sets_onboarding_requests_at_publish() {
    let fs = FakeFreshservice::start().await;
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{ONBOARDING_RULES}'''\n[plugins.sandbox.grants]\nkv = true\n{}",
        freshservice_connection(&fs)
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules\"\n\
         [[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = [\"employeeId\"]\n\
         [[destinations]]\nname = \"helpdesk\"\nconnector = \"freshservice\"\n",
    );
    let host = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            poll_ms: 20,
            ..Default::default()
        },
        plugins: vec!["rules", "sandbox", "freshservice"],
    })
    .await;
    let publish = |document: String| {
        let host = &host;
        async move {
            let (status, body) = host
                .post(
                    "/api/v1/rule-sets",
                    &json!({ "document": document, "message": "onboarding" }),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            let version = body["version"]["version"].as_i64().expect("version");
            host.post(&format!("/api/v1/rule-sets/{version}/publish"), &json!({}))
                .await
        }
    };
    let laptop = ONBOARDING_RULES.replace(
        "                kind: onboarding\n",
        "                kind: onboarding\n                cf_laptop: 14-inch\n",
    );
    let (status, body) = publish(laptop).await;
    assert!((400..500).contains(&status), "{status}: {body}");
    let message = body.to_string();
    assert!(
        message.contains("destination \\\"helpdesk\\\" cannot open ticket \\\"onboarding\\\"")
            && message.contains("cf_laptop: not a field of this account's onboarding form"),
        "{message}"
    );
    let no_start = ONBOARDING_RULES.replace(
        "                cf_date_of_joining: \"${person.start_date}\"\n",
        "",
    );
    let (status, body) = publish(no_start).await;
    assert!((400..500).contains(&status), "{status}: {body}");
    assert!(
        body.to_string()
            .contains("cf_date_of_joining: the onboarding form requires it"),
        "{body}"
    );
    let (status, body) = publish(ONBOARDING_RULES.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        fs.state().onboarding_requests.is_empty(),
        "checking opens nothing"
    );
}
