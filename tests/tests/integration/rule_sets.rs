//! The rule-set lifecycle through the API with the first-party `rules` plugin:
//! drafts that are checked and tested, four-eyes publishing as an atomic switch
//! in the running host, impact previews that write nothing, rollback, diffs;
//! events held on a rules error until a fix; unique names settled once.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tenure_pipeline::QueueConfig;
use tenure_tests::host::{
    AUDITOR_TOKEN, HR_TOKEN, HostSpec, IT_SAME_PERSON_TOKEN, IT_TOKEN, IT2_TOKEN, TestHost, pipeline_toml,
    tenant_toml,
};

const WAIT: Duration = Duration::from_secs(30);

/// Version 1: engineers get Engineering, everyone All-Staff; names are unique.
const V1: &str = r#"
destinations:
  sandbox:
    scope: person.status != "terminated"
    attributes:
      employeeId: { from: id, required: true }
      mail: { from: email }
      sn: { from: family_name, required: true }
    unique:
      sAMAccountName:
        candidates:
          - "${ToLower(person.given_name + '.' + person.family_name)}"
          - "${ToLower(Left(person.given_name, 1) + '.' + person.family_name)}"
          - "${ToLower(person.family_name)}${n}"
        max_n: 4
    rules:
      - name: eng
        when: person.department == "Engineering"
        then: { groups: [Engineering] }
    defaults: { groups: [All-Staff], container: OU=People }
tests:
  - name: engineer
    person: { ids: [{ source: hr, id: "t1" }], given_name: A, family_name: B, department: Engineering }
    expect: { sandbox: { groups: [Engineering], container: OU=People } }
"#;

fn v2() -> String {
    V1.replace(
        "then: { groups: [Engineering] }",
        "then: { groups: [Engineering, Eng-All] }",
    )
    .replace(
        "    defaults:",
        "      - name: sales\n        when: person.department == \"Sales\"\n        then: { container: \
                OU=Sales }\n    defaults:",
    )
    .replace(
        "groups: [Engineering], container",
        "groups: [Engineering, Eng-All], container",
    )
}

async fn host(four_eyes: bool) -> TestHost {
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{V1}'''\n[plugins.sandbox.grants]\nkv = true\n\
         [plugins.sandbox.settings]\nmatch_attributes = \"employeeId,mail,sAMAccountName\"\n"
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules\"\n[rule_sets]\nfour_eyes = {four_eyes}\n\
         [[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = [\"employeeId\"]\n"
    ));
    TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            backoff_base_ms: 50,
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "sandbox"],
    })
    .await
}

fn person(id: &str, given: &str, family: Option<&str>, department: &str) -> Value {
    let mut p = json!({ "ids": [{"source": "hr", "id": id}], "given_name": given, "department": department,
                         "emails": [{"value": format!("{id}@acme.test"), "primary": true}] });
    if let Some(f) = family {
        p["family_name"] = json!(f);
    }
    p
}

async fn post(h: &TestHost, kind: &str, person: Value, record: &str) {
    let event = json!({ "kind": kind, "source": "hr", "source_record_id": record, "person": person });
    let (status, body) = h.post_event(&event, record).await;
    assert_eq!(status, 202, "{body}");
}

async fn call(h: &TestHost, method: Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    h.request(method, path, token, body.as_ref(), None).await
}

async fn draft(h: &TestHost, token: &str, document: &str, message: &str) -> (u16, Value) {
    call(
        h,
        Method::POST,
        "/api/v1/rule-sets",
        token,
        Some(json!({ "document": document, "message": message })),
    )
    .await
}

/// The account the sandbox holds now for a person (through preview, which writes nothing).
async fn account(h: &TestHost, record: &str) -> Value {
    let (status, body) = h
        .post(
            "/api/v1/preview",
            &json!({ "source": "hr", "source_record_id": record }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["destinations"][0]["current"].clone()
}

fn groups(account: &Value) -> Vec<String> {
    let mut g: Vec<String> = serde_json::from_value(account["groups"].clone()).unwrap_or_default();
    g.sort();
    g
}

fn attribute(account: &Value, name: &str) -> Value {
    account["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .map(|x| x["value"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn drafts_publish_impact_rollback_and_four_eyes() {
    let h = host(true).await;

    // A document the plugin refuses: 422 naming the field and the position.
    let (status, body) = draft(
        &h,
        HR_TOKEN,
        &V1.replace("person.department == \"Engineering\"", "person.department =="),
        "broken",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("destinations.sandbox.rules[eng].when") && reason.contains("line 1"),
        "{body}"
    );
    // A change log entry is required.
    let (status, body) = draft(&h, HR_TOKEN, V1, " ").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("message")),
        "{body}"
    );

    // Version 1 by HR; under four eyes its author cannot publish... (HR may not publish at all)
    let (status, v1) = draft(&h, HR_TOKEN, V1, "engineering groups").await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["version"]["version"], 1);
    assert_eq!(v1["tests"]["cases"][0]["passed"], true, "{v1}");
    let (status, _) = call(&h, Method::POST, "/api/v1/rule-sets/1/publish", HR_TOKEN, None).await;
    assert_eq!(status, 403);
    let (status, body) = call(&h, Method::POST, "/api/v1/rule-sets/1/publish", IT_TOKEN, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["head"]["published_by"], "it-admin");

    for (id, dept) in [("1", "Engineering"), ("2", "Engineering"), ("3", "Sales")] {
        post(
            &h,
            "joiner",
            person(id, &format!("P{id}"), Some("Test"), dept),
            &format!("hire-{id}"),
        )
        .await;
    }
    h.wait_idle(WAIT).await;
    assert_eq!(groups(&account(&h, "hire-1").await), ["Engineering"]);

    // Version 2 by an IT admin: its own author may not publish it.
    let (status, second) = draft(&h, IT_TOKEN, &v2(), "Eng-All for engineers; Sales OU").await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["version"]["tests_passed"], true, "{second}");

    // Impact preview: counts and per-person changes, and nothing written.
    // Reading the audit is itself audited; everything else counts.
    let writes = |a: Vec<Value>| {
        a.into_iter()
            .filter(|e| e["kind"] != "admin.audit_exported")
            .count()
    };
    let audit_before = writes(h.audit(None).await);
    let (status, impact) = call(&h, Method::GET, "/api/v1/rule-sets/2/impact", AUDITOR_TOKEN, None).await;
    assert_eq!(status, 200, "{impact}");
    assert_eq!(impact["people"], 3, "{impact}");
    assert_eq!(impact["truncated"], false, "everyone is evaluated: {impact}");
    assert_eq!(impact["against"], 1);
    let sandbox = &impact["destinations"]["sandbox"];
    assert_eq!(sandbox["counts"]["group-added"], 2, "{impact}");
    assert_eq!(sandbox["counts"]["moved"], 1, "{impact}");
    let changes: Vec<String> = sandbox["people"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| format!("{} {}", p["person_key"].as_str().unwrap(), c.as_str().unwrap()))
        })
        .collect();
    assert!(
        changes.contains(&"hr:1 +group Eng-All".to_string()),
        "{changes:?}"
    );
    assert!(
        changes.contains(&"hr:3 moves OU=People -> OU=Sales".to_string()),
        "{changes:?}"
    );
    assert_eq!(
        writes(h.audit(None).await),
        audit_before,
        "the impact preview writes nothing"
    );
    assert_eq!(
        groups(&account(&h, "hire-1").await),
        ["Engineering"],
        "nor changes any account"
    );
    // A limit on people is reported, never silent; the list per destination is capped
    // while the counts still cover everyone evaluated.
    let (status, cut) = call(
        &h,
        Method::GET,
        "/api/v1/rule-sets/2/impact?limit=2&detail=1",
        AUDITOR_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{cut}");
    assert_eq!(
        (&cut["people"], &cut["people_limit"], &cut["truncated"]),
        (&json!(2), &json!(2), &json!(true)),
        "{cut}"
    );
    let sandbox = &cut["destinations"]["sandbox"];
    assert_eq!(sandbox["counts"]["group-added"], 2, "{cut}");
    assert_eq!(sandbox["people"].as_array().unwrap().len(), 1, "{cut}");
    assert_eq!(sandbox["people_not_listed"], 1, "{cut}");
    let (status, refused) = call(
        &h,
        Method::GET,
        "/api/v1/rule-sets/2/impact?detail=10001",
        AUDITOR_TOKEN,
        None,
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["field"]),
        (422, &json!("detail")),
        "{refused}"
    );
    // Previews are budgeted per tenant: a burst of three, then one every 20 s.
    let (status, _) = call(&h, Method::GET, "/api/v1/rule-sets/2/impact", AUDITOR_TOKEN, None).await;
    assert_eq!(status, 200);
    let resp = h
        .client
        .get(format!("{}/api/v1/rule-sets/2/impact", h.base))
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&wait), "Retry-After {wait}");

    // Diff between versions.
    let (_, diff) = call(&h, Method::GET, "/api/v1/rule-sets/2/diff", AUDITOR_TOKEN, None).await;
    assert_eq!(diff["from"], 1);
    assert!(
        diff["diff"]
            .as_str()
            .unwrap()
            .contains("+        then: { groups: [Engineering, Eng-All] }"),
        "{diff}"
    );

    // Four eyes: the author is refused, another admin publishes.
    let (status, body) = call(&h, Method::POST, "/api/v1/rule-sets/2/publish", IT_TOKEN, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["reason"].as_str().unwrap().contains("four eyes"),
        "{body}"
    );
    // ...and so is the author's other token: four eyes compares people, not tokens.
    let (status, body) = call(
        &h,
        Method::POST,
        "/api/v1/rule-sets/2/publish",
        IT_SAME_PERSON_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = call(&h, Method::POST, "/api/v1/rule-sets/2/publish", IT2_TOKEN, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rollback"], false);

    // The running host switched: the next event for person 1 applies version 2.
    post(
        &h,
        "update",
        person("1", "P1", Some("Test"), "Engineering"),
        "upd-1",
    )
    .await;
    h.wait_idle(WAIT).await;
    assert_eq!(groups(&account(&h, "upd-1").await), ["Eng-All", "Engineering"]);

    // A draft whose tests fail is kept but cannot be published.
    let failing = v2().replace(
        "groups: [Engineering, Eng-All], container",
        "groups: [Nope], container",
    );
    let (status, v3) = draft(&h, HR_TOKEN, &failing, "expects the wrong group").await;
    assert_eq!(status, 201, "{v3}");
    assert_eq!(v3["version"]["tests_passed"], false);
    assert!(
        v3["tests"]["cases"][0]["failures"][0]
            .as_str()
            .unwrap()
            .contains("sandbox.groups"),
        "{v3}"
    );
    let (status, body) = call(&h, Method::POST, "/api/v1/rule-sets/3/publish", IT_TOKEN, None).await;
    assert_eq!(status, 409, "{body}");

    // Rollback to version 1, audited as such.
    let (status, body) = call(&h, Method::POST, "/api/v1/rule-sets/1/publish", IT2_TOKEN, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rollback"], true);
    let (_, list) = call(&h, Method::GET, "/api/v1/rule-sets", AUDITOR_TOKEN, None).await;
    assert_eq!(list["current"]["version"], 1);
    assert_eq!(list["versions"].as_array().unwrap().len(), 3);
    let kinds: Vec<String> = h
        .audit(None)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    for k in ["rules.drafted", "rules.published", "rules.rolled-back"] {
        assert!(kinds.contains(&k.to_string()), "{k} missing from {kinds:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn a_rules_error_holds_the_event_until_a_fix() {
    let h = host(false).await;
    let (status, body) = draft(&h, IT_TOKEN, V1, "sn required").await;
    assert_eq!(status, 201, "{body}");
    call(&h, Method::POST, "/api/v1/rule-sets/1/publish", IT_TOKEN, None).await;

    // No family name: held (not dropped), naming the person, the attribute and the rule's field.
    post(&h, "joiner", person("9", "Cher", None, "Sales"), "hire-9").await;
    post(&h, "joiner", person("8", "Sting", None, "Sales"), "hire-8").await;
    h.wait_idle(WAIT).await;
    let (_, held) = call(&h, Method::GET, "/api/v1/jobs?state=held", IT_TOKEN, None).await;
    let held = held.as_array().unwrap().clone();
    assert_eq!(held.len(), 2, "{held:?}");
    let reason = held.iter().find(|j| j["person_key"] == "hr:9").unwrap()["hold_reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.starts_with("rules: hr:9:"), "{reason}");
    assert!(
        reason.contains("destinations.sandbox.attributes.sn") && reason.contains("required attribute sn"),
        "{reason}"
    );

    // Fixed data for person 8 supersedes the held event and applies.
    post(
        &h,
        "update",
        person("8", "Sting", Some("Sumner"), "Sales"),
        "fix-8",
    )
    .await;
    h.wait_idle(WAIT).await;
    assert_eq!(
        attribute(&account(&h, "fix-8").await, "sn"),
        json!({"Text": "Sumner"})
    );
    let (_, jobs) = call(&h, Method::GET, "/api/v1/jobs?person=hr:8", IT_TOKEN, None).await;
    let states: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"cancelled") && states.contains(&"completed"),
        "{states:?}"
    );

    // A fixed rule set for person 9: publishing releases the held job, which completes.
    let fixed = V1.replace(
        "sn: { from: family_name, required: true }",
        "sn: { from: family_name, default: \"(none)\" }",
    );
    let (status, body) = draft(&h, IT_TOKEN, &fixed, "sn may be missing").await;
    assert_eq!(status, 201, "{body}");
    let (_, published) = call(&h, Method::POST, "/api/v1/rule-sets/2/publish", IT_TOKEN, None).await;
    assert_eq!(published["released"], 1, "{published}");
    h.wait_idle(WAIT).await;
    let (_, held) = call(&h, Method::GET, "/api/v1/jobs?state=held", IT_TOKEN, None).await;
    assert_eq!(held.as_array().unwrap().len(), 0, "{held}");
    assert_eq!(
        attribute(&account(&h, "hire-9").await, "sn"),
        json!({"Text": "(none)"})
    );
    h.stop().await;
}

#[tokio::test]
async fn unique_names_are_settled_once_and_stay() {
    let h = host(false).await;
    let (status, body) = draft(&h, IT_TOKEN, V1, "names").await;
    assert_eq!(status, 201, "{body}");
    call(&h, Method::POST, "/api/v1/rule-sets/1/publish", IT_TOKEN, None).await;

    // Three people called Ann Lee, one after the other.
    for id in ["1", "2", "3"] {
        post(
            &h,
            "joiner",
            person(id, "Ann", Some("Lee"), "Sales"),
            &format!("hire-{id}"),
        )
        .await;
        h.wait_idle(WAIT).await;
    }
    let mut names = Vec::new();
    for id in ["1", "2", "3"] {
        names.push(attribute(
            &account(&h, &format!("hire-{id}")).await,
            "sAMAccountName",
        ));
    }
    assert_eq!(
        names,
        [
            json!({"Text": "ann.lee"}),
            json!({"Text": "a.lee"}),
            json!({"Text": "lee2"})
        ]
    );

    // A name change in HR does not rename the account (the rule set does not allow it).
    post(
        &h,
        "update",
        person("1", "Ann", Some("Lee-Park"), "Sales"),
        "rename-1",
    )
    .await;
    h.wait_idle(WAIT).await;
    let acc = account(&h, "rename-1").await;
    assert_eq!(attribute(&acc, "sAMAccountName"), json!({"Text": "ann.lee"}));
    assert_eq!(attribute(&acc, "sn"), json!({"Text": "Lee-Park"}));

    // Preview of a fourth Ann Lee shows the next free value without claiming it.
    let (status, preview) = h
        .post(
            "/api/v1/preview",
            &json!({ "kind": "joiner", "source": "hr", "person": person("4", "Ann", Some("Lee"), "Sales") }),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let assigned = &preview["destinations"][0]["names"][0];
    assert_eq!(
        (assigned["value"].as_str(), assigned["how"].as_str()),
        (Some("lee3"), Some("available")),
        "{preview}"
    );
    post(&h, "joiner", person("4", "Ann", Some("Lee"), "Sales"), "hire-4").await;
    h.wait_idle(WAIT).await;
    assert_eq!(
        attribute(&account(&h, "hire-4").await, "sAMAccountName"),
        json!({"Text": "lee3"})
    );
    let assigned: Vec<Value> = h
        .audit(Some("hr:4"))
        .await
        .into_iter()
        .filter(|e| e["kind"] == "name.assigned")
        .collect();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0]["data"]["taken"], json!(["ann.lee", "a.lee", "lee2"]));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_files_rule_set_is_published_only_as_any_version_is() {
    let tenant = tenure_tests::host::TENANT;
    let current = |h: &TestHost| {
        let store = h.store.clone();
        async move {
            tenure_store::RuleSetStore::current_rule_set(store.as_ref(), tenant)
                .await
                .unwrap()
        }
    };
    // Under four eyes the import waits for an administrator, and nothing runs meanwhile.
    let h = host(true).await;
    let rule_sets = tenure_rulesets::RuleSets::new(h.pipeline.clone());
    assert!(rule_sets.bootstrap(tenant, Some(V1)).await.unwrap().is_none());
    assert!(current(&h).await.is_none(), "not published by itself");
    post(
        &h,
        "joiner",
        person("1", "Ada", Some("Lovelace"), "Engineering"),
        "held-1",
    )
    .await;
    h.wait_idle(WAIT).await;
    let (_, jobs) = call(&h, Method::GET, "/api/v1/jobs?state=held", IT_TOKEN, None).await;
    assert!(
        jobs.to_string().contains("no rule set is published"),
        "held until a version is published: {jobs}"
    );
    let (status, body) = call(&h, Method::POST, "/api/v1/rule-sets/1/publish", IT_TOKEN, None).await;
    assert_eq!(status, 200, "an administrator publishes it: {body}");
    h.wait_idle(WAIT).await;
    let (_, jobs) = call(&h, Method::GET, "/api/v1/jobs?state=completed", IT_TOKEN, None).await;
    assert_eq!(
        jobs.as_array().map(Vec::len),
        Some(1),
        "released and applied: {jobs}"
    );
    drop(h);

    // A rule set whose own tests fail is never published, four eyes or not.
    let h = host(false).await;
    let rule_sets = tenure_rulesets::RuleSets::new(h.pipeline.clone());
    let failing = V1.replace(
        "expect: { sandbox: { groups: [Engineering]",
        "expect: { sandbox: { groups: [Sales]",
    );
    assert!(
        rule_sets
            .bootstrap(tenant, Some(&failing))
            .await
            .unwrap()
            .is_none()
    );
    assert!(current(&h).await.is_none());
    drop(h);

    // Tests passing and no four eyes: published as version 1.
    let h = host(false).await;
    let rule_sets = tenure_rulesets::RuleSets::new(h.pipeline.clone());
    let head = rule_sets
        .bootstrap(tenant, Some(V1))
        .await
        .unwrap()
        .expect("published");
    assert_eq!(head.version, 1);
}

/// Issue 19: an output a destination's connector cannot apply (an org unit where it cannot move
/// accounts, licences it does not keep) refuses the publish, naming the destination, the output
/// and the rule; the same rule set without them publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_a_destination_cannot_apply_refuse_the_publish() {
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{V1}'''\n[plugins.sandbox.grants]\nkv = true\n\
         [plugins.sandbox.settings]\nmatch_attributes = \"employeeId,mail,sAMAccountName\"\n\
         [connections.scim]\nkind = \"http\"\nallow_private_network = true\n\
         url = \"http://127.0.0.1:9/scim\"\n\
         auth = {{ type = \"bearer\", token = \"unused\" }}\n[plugins.scim.grants]\nhttp = [\"scim\"]\n"
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\"]\n[[destinations]]\nname = \"app\"\nconnector = \"scim\"\n\
         matching = [\"externalId\"]\n",
    );
    let h = TestHost::start(HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            ..QueueConfig::default()
        },
        plugins: vec!["rules", "sandbox", "scim"],
    })
    .await;
    let app = "  app:\n    attributes:\n      externalId: { from: id, required: true }\n      \
               userName: { from: email }\n    rules:\n      - name: eng\n        \
               when: person.department == \"Engineering\"\n        then: { groups: [Engineering], \
               container: OU=Eng }\n    defaults: { licenses: [E3] }\ntests:";
    let refused = V1.replacen("tests:", app, 1);
    let (status, body) = draft(&h, IT_TOKEN, &refused, "licences and an OU for the SCIM app").await;
    assert_eq!(status, 201, "{body}");
    let version = body["version"]["version"].as_i64().unwrap();
    let (status, body) = call(
        &h,
        Method::POST,
        &format!("/api/v1/rule-sets/{version}/publish"),
        IT_TOKEN,
        None,
    )
    .await;
    assert!((400..500).contains(&status), "{status}: {body}");
    let message = body.to_string();
    for part in [
        "destination \\\"app\\\" cannot take `container` (rule \\\"eng\\\")",
        "cannot move accounts",
        "`licenses` (defaults)",
        "does not keep licenses",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert!(
        !message.contains("sandbox"),
        "the sandbox keeps everything: {message}"
    );

    let fine = refused
        .replace(", \\\n               container: OU=Eng }", " }")
        .replace(", container: OU=Eng }", " }")
        .replace("    defaults: { licenses: [E3] }\n", "");
    let (status, body) = draft(&h, IT_TOKEN, &fine, "groups only for the SCIM app").await;
    assert_eq!(status, 201, "{body}");
    let version = body["version"]["version"].as_i64().unwrap();
    let (status, body) = call(
        &h,
        Method::POST,
        &format!("/api/v1/rule-sets/{version}/publish"),
        IT_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// A rule being edited runs on a live person before it is saved (the console's preview): the
/// draft's rules and trace, the plan against what the destination holds, nothing written and
/// the published version untouched; a draft the plugin refuses is named, field and position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_document_is_previewed_on_a_live_person_writing_nothing() {
    let h = host(false).await;
    let (status, body) = draft(&h, IT_TOKEN, V1, "v1").await;
    assert_eq!(status, 201, "{body}");
    call(&h, Method::POST, "/api/v1/rule-sets/1/publish", IT_TOKEN, None).await;
    post(
        &h,
        "joiner",
        person("5", "Ada", Some("Byron"), "Engineering"),
        "hire-5",
    )
    .await;
    h.wait_idle(WAIT).await;
    // What the audit held before, reading it aside (each read is audited as an export).
    let changes = |audit: Vec<Value>| -> Vec<Value> {
        audit
            .into_iter()
            .filter(|e| e["kind"] != "admin.audit_exported")
            .collect()
    };
    let audit_before = changes(h.audit(None).await);

    let preview = |document: Option<String>| {
        let mut body = json!({ "source": "hr", "source_record_id": "hire-5" });
        if let Some(d) = document {
            body["document"] = json!(d);
        }
        call(&h, Method::POST, "/api/v1/preview", HR_TOKEN, Some(body))
    };
    let (status, draft_view) = preview(Some(v2())).await;
    assert_eq!(status, 200, "{draft_view}");
    let trace = draft_view["trace"].as_array().expect("trace");
    let eng = trace.iter().find(|t| t["rule"] == "eng").expect("eng traced");
    assert_eq!(eng["matched"], true, "{eng}");
    assert!(
        eng["contributed"]
            .as_array()
            .unwrap()
            .contains(&json!("group:Eng-All")),
        "{eng}"
    );
    let ops = draft_view["destinations"][0]["operations"].to_string();
    assert!(
        ops.contains("Eng-All"),
        "the draft adds a group to the existing account: {ops}"
    );
    // The published rules still say what they said; nothing was applied or audited.
    let (_, live) = preview(None).await;
    assert_eq!(live["destinations"][0]["operations"], json!([]), "{live}");
    assert_eq!(groups(&account(&h, "hire-5").await), ["Engineering"]);
    assert_eq!(changes(h.audit(None).await), audit_before);

    let broken = V1.replace(
        r#"when: person.department == "Engineering""#,
        "when: person.department ==",
    );
    let (status, body) = preview(Some(broken)).await;
    assert_eq!(status, 422, "{body}");
    let reason = body["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("destinations.sandbox.rules[eng].when") && reason.contains("line 1"),
        "{body}"
    );
    h.stop().await;
}
