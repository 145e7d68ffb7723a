//! The `source-plugin` world: the source-json example parses pushed HR records
//! and polls an HR API with a cursor through a named HTTP connection.

use serde_json::json;
use tenure_plugin_test::Harness;
use tenure_runtime::CallError;
use tenure_runtime::wit::source::Payload;
use tenure_runtime::wit::{EmploymentType, EventKind, PersonStatus, PluginError, Value};
use tenure_tests::{Reply, start_http};

fn payload(body: serde_json::Value) -> Payload {
    Payload {
        content_type: "application/json".into(),
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn setup(url: &str) -> Harness {
    let h = Harness::new().unwrap();
    h.load("source-json").unwrap();
    h.tenant(
        "acme",
        &format!(
            r#"
            [connections.hr-api]
            kind = "http"
            allow_private_network = true
            url = "{url}"
            auth = {{ type = "bearer", token = "hr-token" }}
            [plugins.source-json]
            settings = {{ source = "workday" }}
            [plugins.source-json.grants]
            http = ["hr-api"]
            "#
        ),
    )
    .unwrap();
    h
}

fn invalid_field(err: CallError) -> String {
    match err {
        CallError::Plugin {
            error: PluginError::InvalidInput(i),
            ..
        } => format!("{}: {}", i.field, i.reason),
        other => panic!("expected invalid-input, got {other}"),
    }
}

#[tokio::test]
async fn parse_turns_records_into_person_events() {
    let h = setup("http://127.0.0.1:1/hr");
    let source = h.runtime().plugin("acme", "source-json").unwrap();
    let events = source
        .parse(&payload(json!([
            {"employee_id": "1001", "event": "joiner", "effective_date": "2026-03-01", "given_name": "Ada",
             "family_name": "Lovelace", "email": "ada@example.test", "department": "Engineering",
             "manager_id": 900, "employment_type": "contractor", "end_date": "2026-12-31",
                 "cost_center": "CC-7",
             "badges": ["a", "b"]},
            {"employee_id": "1002", "event": "termination", "effective_date": "2026-04-30"}
        ])))
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    let ada = &events[0];
    assert_eq!(ada.kind, EventKind::Joiner);
    assert_eq!(ada.effective_date.as_deref(), Some("2026-03-01"));
    assert_eq!(ada.person.ids[0].source, "workday");
    assert_eq!(ada.person.ids[0].id, "1001");
    assert_eq!(ada.person.status, PersonStatus::PreHire);
    assert_eq!(ada.person.employment_type, Some(EmploymentType::Contractor));
    assert_eq!(ada.person.manager.as_ref().map(|m| m.id.as_str()), Some("900"));
    assert_eq!(ada.person.emails[0].value, "ada@example.test");
    assert!(
        ada.person
            .custom
            .contains(&("cost_center".into(), Value::Text("CC-7".into())))
    );
    assert!(
        ada.person
            .custom
            .contains(&("badges".into(), Value::Many(vec!["a".into(), "b".into()])))
    );
    assert_eq!(events[1].kind, EventKind::Leaver);
    assert_eq!(events[1].person.status, PersonStatus::Terminated);
    assert_eq!(events[1].source_record_id, "1002:termination:2026-04-30");
}

#[tokio::test]
async fn bad_records_name_the_record_and_field() {
    let h = setup("http://127.0.0.1:1/hr");
    let source = h.runtime().plugin("acme", "source-json").unwrap();
    let err = source
        .parse(&payload(json!([{"employee_id": "1"}, {"given_name": "x"}])))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(err), "[1].employee_id: is required");
    let err = source
        .parse(&payload(
            json!([{"employee_id": "1", "start_date": "2026-13-01"}]),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        invalid_field(err),
        "[0].start_date: \"2026-13-01\" is not a date (YYYY-MM-DD)"
    );
    let err = source
        .parse(&payload(json!([{"employee_id": "1", "event": "fired"}])))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(err), "[0].event: unknown event \"fired\"");
    let mut bad = payload(json!([]));
    bad.body = b"{not json".to_vec();
    assert!(invalid_field(source.parse(&bad).await.unwrap_err()).starts_with("body: not valid JSON"));
    let mut csv = payload(json!([]));
    csv.content_type = "text/csv".into();
    assert!(invalid_field(source.parse(&csv).await.unwrap_err()).starts_with("content-type"));
}

#[tokio::test]
async fn poll_follows_the_cursor_and_maps_http_errors() {
    let addr = start_http(|r| {
        if r.header("authorization") != Some("Bearer hr-token") {
            return Reply {
                status: 401,
                headers: vec![],
                body: "no token".into(),
            };
        }
        let (status, body, headers) = match r.target.as_str() {
            "/hr/changes" => (
                200,
                json!({"records": [{"employee_id": "1", "event": "joiner"}, {"employee_id": "2",
                    "event": "mover"}],
                       "next_cursor": "2026-01-01T00:00:00Z#2", "has_more": true}),
                vec![],
            ),
            "/hr/changes?since=2026-01-01T00%3A00%3A00Z%232" => (
                200,
                json!({"records": [{"employee_id": "3", "event": "leaver"}], "next_cursor": "c3",
                    "has_more": false}),
                vec![],
            ),
            "/hr/changes?since=c3" => (
                429,
                json!({"error": "slow \
                down"}),
                vec![("retry-after", "7".to_string())],
            ),
            _ => (503, json!({"error": "maintenance"}), vec![]),
        };
        Reply {
            status,
            headers,
            body: body.to_string(),
        }
    })
    .await;
    let h = setup(&format!("http://{addr}/hr"));
    let source = h.runtime().plugin("acme", "source-json").unwrap();

    let first = source.poll(None).await.unwrap();
    assert_eq!(first.events.len(), 2);
    assert!(first.has_more);
    let cursor = first.next_cursor.expect("a cursor");
    let second = source.poll(Some(&cursor)).await.unwrap();
    assert_eq!(second.events[0].kind, EventKind::Leaver);
    assert_eq!(
        (second.next_cursor.as_deref(), second.has_more),
        (Some("c3"), false)
    );

    match source.poll(Some("c3")).await.unwrap_err() {
        CallError::Plugin {
            error: PluginError::RateLimited(ms),
            ..
        } => assert_eq!(ms, 7000),
        other => panic!("expected rate-limited, got {other}"),
    }
    match source.poll(Some("other")).await.unwrap_err() {
        CallError::Plugin {
            error: PluginError::Transient(m),
            ..
        } => assert!(m.starts_with("503"), "{m}"),
        other => panic!("expected transient, got {other}"),
    }
}
