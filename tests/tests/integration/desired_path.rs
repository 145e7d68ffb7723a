//! One desired-state path: generated people, lifecycle facts and destination
//! states, each checked three ways. For a person's stored record, preview's
//! plan, reconciliation's drift and the plan of the job that re-applies the
//! record must name the same changes; for a new event (a move, a leave, a last
//! day, a rehire), preview's plan must be the plan the job then applies.
//! Destinations start in random states (accounts made by hand, groups granted
//! outside Tenure, accounts disabled or moved behind Tenure's back).
//!
//! `DESIRED_PATH_CASES` and `DESIRED_PATH_SEED` widen the search.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tenure_runtime::wit;
use tenure_tests::host::{HostSpec, TENANT, TestHost, pipeline_toml, tenant_toml};

const WAIT: Duration = Duration::from_secs(30);

const RULES: &str = r#"
destinations:
  sandbox:
    attributes:
      employeeId: { from: id, required: true }
      title: { from: title }
      department: { from: department }
    rules:
      - name: leaver
        priority: 0
        when: person.status == "terminated"
        then:
          enabled: false
          groups: []
          tickets: [{ template: offboarding, fields: { person: "${person.id}" } }]
      - name: on-leave
        priority: 1
        when: person.status == "on-leave"
        then: { enabled: false, groups: [All-Staff] }
      - name: engineering
        priority: 10
        when: person.department == "Engineering"
        then: { groups: [Engineering, Prod-Access] }
      - name: sales
        priority: 10
        when: person.department == "Sales"
        then: { groups: [Sales, CRM] }
      - name: berlin
        priority: 20
        when: person.location == "Berlin"
        then: { container: OU=Berlin }
      - name: contractor
        priority: 30
        when: person.employment_type == "contractor"
        then: { groups: [Contractors] }
    defaults:
      container: OU=People
      groups: [All-Staff]
"#;

/// A deterministic generator (xorshift), so a failure reproduces from its seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Today plus `offset` days, as `YYYY-MM-DD` (UTC; Howard Hinnant's civil-from-days).
fn day(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let z = now.div_euclid(86_400) + offset + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn host() -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{RULES}'''\n[plugins.sandbox.grants]\nkv = true\n\
         [plugins.sandbox.settings]\nmatch_attributes = \"employeeId\"\n"
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\"]\nconflict = \"merge\"\n\
         guard = { max_accounts = 1000000, max_percent = 100.0 }\n",
    );
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            ..tenure_pipeline::QueueConfig::default()
        },
        plugins: vec!["rules", "sandbox"],
    })
    .await
}

async fn apply(h: &TestHost, op: wit::Operation) {
    let sandbox = h.pipeline.runtime().plugin(TENANT, "sandbox").expect("sandbox");
    sandbox.apply(&op).await.expect("a direct change");
}

async fn account(h: &TestHost, id: &str) -> Option<wit::Account> {
    let sandbox = h.pipeline.runtime().plugin(TENANT, "sandbox").expect("sandbox");
    let key = wit::MatchKey {
        attribute: "employeeId".into(),
        value: id.into(),
    };
    sandbox.lookup(&[key]).await.expect("lookup").into_iter().next()
}

/// An account made by hand before Tenure knew the person.
async fn seed_account(h: &TestHost, g: &mut Gen, id: &str) {
    let account = wit::DesiredAccount {
        destination: "sandbox".into(),
        attributes: vec![wit::Attribute {
            name: "employeeId".into(),
            value: wit::Value::Text(id.into()),
        }],
        container: Some(g.pick(&["OU=People", "OU=Legacy"]).into()),
        groups: vec![],
        licenses: vec![],
        app_assignments: vec![],
        enabled: !g.chance(3),
        expires_at: None,
        tickets: vec![],
    };
    apply(h, wit::Operation::Create(account)).await;
    let anchor = format!("sbx-{id}");
    for group in ["Legacy-VPN", "Engineering", "All-Staff"] {
        if g.chance(2) {
            let add = wit::MemberChange {
                anchor: anchor.clone(),
                group: group.into(),
            };
            apply(h, wit::Operation::AddMember(add)).await;
        }
    }
}

/// A change made in the destination behind Tenure's back.
async fn drift(h: &TestHost, g: &mut Gen, id: &str) {
    let Some(acc) = account(h, id).await else {
        return;
    };
    let anchor = acc.anchor.clone();
    let op = match g.below(6) {
        0 => wit::Operation::AddMember(wit::MemberChange {
            anchor,
            group: "Hand-Granted".into(),
        }),
        1 => match acc.groups.first() {
            Some(group) => wit::Operation::RemoveMember(wit::MemberChange {
                anchor,
                group: group.clone(),
            }),
            None => return,
        },
        2 if acc.enabled => wit::Operation::Disable(anchor),
        3 if !acc.enabled => wit::Operation::Enable(anchor),
        4 => wit::Operation::Move(wit::MoveRequest {
            anchor,
            container: "OU=Elsewhere".into(),
        }),
        _ => wit::Operation::Update(wit::AttributeChange {
            anchor,
            changes: vec![wit::Attribute {
                name: "title".into(),
                value: wit::Value::Text("Edited by hand".into()),
            }],
        }),
    };
    apply(h, op).await;
}

fn person(g: &mut Gen, id: &str) -> Value {
    json!({
        "ids": [{ "source": "hr", "id": id }],
        "given_name": format!("Given{id}"),
        "family_name": "Test",
        "title": g.pick(&["Engineer", "Account Executive", "Analyst"]),
        "department": g.pick(&["Engineering", "Sales", "Support"]),
        "location": g.pick(&["Berlin", "Paris", "Austin"]),
        "employment_type": g.pick(&["employee", "employee", "contractor"]),
        "start_date": day(g.below(20) as i64 - 10),
    })
}

/// The next fact about a person, as an event.
fn next_event(g: &mut Gen, id: &str, mut p: Value, n: usize) -> Value {
    let kind = match g.below(5) {
        0 => {
            p["department"] = json!(g.pick(&["Engineering", "Sales", "Support"]));
            p["location"] = json!(g.pick(&["Berlin", "Paris"]));
            "mover"
        }
        1 => "leave-start",
        2 => {
            // A last day yesterday (gone now) or tomorrow (still active), after the start.
            p["start_date"] = json!(day(-30));
            p["end_date"] = json!(day(g.below(3) as i64 - 1));
            "leaver"
        }
        3 => {
            p["title"] = json!("Senior Engineer");
            "update"
        }
        _ => "rehire",
    };
    let mut event =
        json!({ "kind": kind, "source": "hr", "source_record_id": format!("{id}-{n}"), "person": p });
    if kind == "leave-start" {
        event["effective_date"] = json!(day(0));
    }
    event
}

/// The keys of the operations a preview plans for the sandbox, and the preview.
async fn preview_keys(h: &TestHost, body: Value) -> (BTreeSet<String>, Value) {
    let (status, preview) = h.post("/api/v1/preview", &body).await;
    assert_eq!(status, 200, "{preview}");
    let dest = &preview["destinations"][0];
    assert_eq!(dest["destination"], "sandbox", "{preview}");
    let keys = dest["operations"]
        .as_array()
        .map(|ops| {
            ops.iter()
                .filter_map(|o| o["key"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (keys, preview)
}

/// The keys of every operation the jobs of an event planned (`plan.created`, both
/// passes of a leaver).
async fn job_keys(h: &TestHost, person: &str, event_id: i64) -> BTreeSet<String> {
    h.audit(Some(person))
        .await
        .iter()
        .filter(|e| e["kind"] == "plan.created" && e["event_id"] == event_id)
        .flat_map(|e| e["data"]["operations"].as_array().cloned().unwrap_or_default())
        .filter_map(|o| o["key"].as_str().map(String::from))
        .collect()
}

async fn post(h: &TestHost, event: &Value) -> i64 {
    let key = event["source_record_id"].as_str().unwrap_or_default().to_string();
    let (status, body) = h.post_event(event, &key).await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(WAIT).await;
    body["event_id"].as_i64().unwrap_or_default()
}

/// The operation kind a drift kind would be put right by.
fn repaired_by(drift: &str) -> &'static str {
    match drift {
        "missing-account" => "create",
        "missing-group" => "add",
        "extra-group" => "remove",
        "enabled-leaver" | "enabled-too-early" => "disable",
        "disabled" => "enable",
        "container" => "move",
        "attributes" => "update",
        "should-be-deleted" => "delete",
        other => panic!("unexpected drift kind {other}"),
    }
}

/// An operation key's kind (`sandbox/add/Eng` -> `add`).
fn kind_of(key: &str) -> String {
    key.split('/').nth(1).unwrap_or_default().to_string()
}

#[tokio::test]
async fn preview_reconciliation_and_the_job_agree() {
    let cases: usize = std::env::var("DESIRED_PATH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("DESIRED_PATH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1e55_c0de);
    let h = host().await;
    let mut g = Gen(seed);
    let mut planned = 0;
    for case in 0..cases {
        let id = format!("{case:03}");
        let person_key = format!("hr:{id}");
        let context = format!("case {case} (seed {seed})");
        if g.chance(3) {
            seed_account(&h, &mut g, &id).await;
        }
        let p = person(&mut g, &id);
        let hire =
            json!({ "kind": "joiner", "source": "hr", "source_record_id": format!("{id}-0"), "person": p });
        post(&h, &hire).await;
        if g.chance(2) {
            drift(&h, &mut g, &id).await;
        }

        // The stored record three ways: preview, reconciliation, the job that re-applies it.
        let (previewed, shown) = preview_keys(
            &h,
            json!({ "source": "hr", "source_record_id": format!("{id}-0"), "kind": "update" }),
        )
        .await;
        let (status, report) = h.post("/api/v1/reconcile", &json!({ "dry_run": true })).await;
        assert_eq!(status, 200, "{report}");
        let mine: Vec<Value> = report["drift"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| d["person_key"] == person_key.as_str() && d["repairable"] == true)
            .collect();
        let drifted: Vec<String> = mine
            .iter()
            .map(|d| repaired_by(d["kind"].as_str().unwrap_or_default()).to_string())
            .collect();
        let mut want: Vec<String> = previewed
            .iter()
            .map(|k| kind_of(k))
            .filter(|k| k != "ticket")
            .collect();
        let mut found = drifted.clone();
        want.sort();
        found.sort();
        assert_eq!(
            found, want,
            "{context}: reconciliation's drift {mine:?} against preview {shown}"
        );
        let again =
            json!({ "kind": "update", "source": "hr", "source_record_id": format!("{id}-r"), "person": p });
        let event = post(&h, &again).await;
        let applied = job_keys(&h, &person_key, event).await;
        assert_eq!(
            applied, previewed,
            "{context}: the job's plan against preview's (stored record)"
        );
        planned += applied.len();

        // A new fact: preview's plan is the plan the job applies.
        let next = next_event(&mut g, &id, p, 1);
        let (previewed, _) = preview_keys(
            &h,
            json!({ "source": "hr", "person": next["person"], "kind": next["kind"] }),
        )
        .await;
        let event = post(&h, &next).await;
        let applied = job_keys(&h, &person_key, event).await;
        assert_eq!(
            applied, previewed,
            "{context}: the job's plan against preview's ({})",
            next["kind"]
        );
        planned += applied.len();
    }
    // The cases made changes to compare, not only empty plans.
    assert!(planned > cases, "{planned} operations over {cases} cases");
    h.stop().await;
}
