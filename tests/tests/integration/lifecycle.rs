//! Lifecycle scenarios on a test clock: pre-hire accounts and start dates across
//! time zones, moved start dates and withdrawn hires, leave and return, staged
//! leaver steps cancelled by a rehire, contract notices, extensions, expiry and
//! conversion, a late manager, a restart in the middle of scheduled work, and
//! reconciliation. Real host, real store, real plugins (the `rules` engine and
//! the sandbox destination); months pass in milliseconds.

use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tenure_capabilities::ShiftedClock;
use tenure_pipeline::event::rfc3339_ms;
use tenure_runtime::wit;
use tenure_store::prelude::*;
use tenure_store::{ActionKind, ActionState, ScheduledAction};
use tenure_tests::host::{AUDITOR_TOKEN, HR_TOKEN, HostSpec, TENANT, TestHost, pipeline_toml, tenant_toml};

const RULES: &str = r#"
description: Lifecycle tests
destinations:
  sandbox:
    attributes:
      employeeId: { from: id, required: true }
      mail: { from: email, required: true }
      manager: { from: manager }
    unique:
      sAMAccountName:
        candidates:
          - '${ToLower(person.given_name + "." + person.family_name)}'
          - '${ToLower(Left(person.given_name, 1) + "." + person.family_name)}'
    rules:
      - name: leaver
        priority: 0
        when: person.status == "terminated"
        then:
          enabled: false
          groups: []
          apps: []
          tickets: [{ template: offboarding, fields: { person: "${person.id}" } }]
      - name: on-leave
        priority: 1
        when: person.status == "on-leave"
        then: { enabled: false, groups: [All-Staff] }
      - name: engineering
        priority: 20
        when: person.department == "Engineering" && person.status in ["active", "pre-hire"]
        then: { groups: [Engineering, Prod-Access], apps: [GitHub] }
      - name: mailbox
        priority: 25
        when: person.department == "Engineering"
        then: { licenses: [E3] }
      - name: contractor
        priority: 30
        when: person.employment_type == "contractor" && person.status in ["active", "pre-hire"]
        then:
          groups: [Contractors]
          expires: 'IsPresent(person.end_date) ? person.end_date : null'
    defaults:
      container: OU=People
      groups: [All-Staff]
"#;

fn ms(t: &str) -> i64 {
    rfc3339_ms(t).unwrap_or_else(|| panic!("bad test time {t}"))
}

struct Life {
    host: TestHost,
    clock: Arc<ShiftedClock>,
    spec: (String, String),
}

fn spec(destination_extra: &str, pipeline_extra: &str) -> HostSpec {
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{RULES}'''\n[plugins.sandbox.grants]\nkv = true\n\
         [plugins.sandbox.settings]\nmatch_attributes = \"employeeId,mail,sAMAccountName\"\n"
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules\"\n{pipeline_extra}\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\", \"mail\"]\n{destination_extra}"
    ));
    HostSpec {
        tenant,
        pipeline,
        queue: tenure_pipeline::QueueConfig {
            backoff_base_ms: 50,
            backoff_max_ms: 1_000,
            poll_ms: 20,
            ..Default::default()
        },
        plugins: vec!["rules", "sandbox"],
    }
}

impl Life {
    async fn start(destination_extra: &str, pipeline_extra: &str, at: &str) -> Life {
        let clock = Arc::new(ShiftedClock::at(ms(at)));
        let host = TestHost::start_with_clock(
            spec(destination_extra, pipeline_extra),
            tempfile::tempdir().expect("temp dir"),
            clock.clone(),
        )
        .await;
        Life {
            host,
            clock,
            spec: (destination_extra.into(), pipeline_extra.into()),
        }
    }

    /// Stops the host and starts a new one on the same store, its clock at `at`.
    async fn restart(self, at: &str) -> Life {
        let dir = self.host.stop().await;
        let clock = Arc::new(ShiftedClock::at(ms(at)));
        let host = TestHost::start_with_clock(spec(&self.spec.0, &self.spec.1), dir, clock.clone()).await;
        Life {
            host,
            clock,
            spec: self.spec,
        }
    }

    /// Moves the clock to `t` and lets everything that became due run.
    async fn at(&self, t: &str) {
        self.clock.set(ms(t));
        self.settle().await;
    }

    /// Runs due actions and waits until no job or due action is left.
    async fn settle(&self) {
        self.host.settle_scheduled().await;
    }

    async fn post(&self, event: Value) {
        let key = event["source_record_id"].as_str().expect("record id").to_string();
        let (status, body) = self.host.post_event(&event, &key).await;
        assert_eq!(status, 202, "{body}");
        self.settle().await;
    }

    /// A `joiner` from the HR feed (record `hire-<id>`).
    async fn hire(&self, id: &str, person: Value) {
        self.post(event("joiner", id, &format!("hire-{id}"), person, None))
            .await;
    }

    async fn account(&self, id: &str) -> Option<wit::Account> {
        self.host.sandbox_account(id).await
    }

    async fn must(&self, id: &str) -> wit::Account {
        self.account(id)
            .await
            .unwrap_or_else(|| panic!("no account for {id}"))
    }

    async fn apply(&self, op: wit::Operation) {
        let sandbox = self
            .host
            .pipeline
            .runtime()
            .plugin(TENANT, "sandbox")
            .expect("sandbox");
        sandbox.apply(&op).await.expect("direct change");
    }

    async fn open(&self, person: &str) -> Vec<ScheduledAction> {
        let mut v: Vec<_> = self
            .host
            .store
            .scheduled_actions(TENANT, true)
            .await
            .expect("actions")
            .into_iter()
            .filter(|a| a.person_key == format!("hr:{person}"))
            .collect();
        v.sort_by_key(|a| a.action.to_column());
        v
    }

    /// The contract notices scheduled for a person: 14 and 3 days ahead, at midnight UTC.
    async fn expect_notices(&self, person: &str, day_14: &str, day_3: &str) {
        let due: Vec<(String, i64)> = self
            .open(person)
            .await
            .iter()
            .map(|a| (a.action.to_column(), a.due_ms))
            .collect();
        for (action, day) in [("notice-14d", day_14), ("notice-3d", day_3)] {
            let at = ms(&format!("{day}T00:00:00Z"));
            assert!(due.contains(&(action.into(), at)), "{action} on {day}: {due:?}");
        }
    }

    async fn audit(&self, person: &str) -> Vec<Value> {
        let v = self
            .host
            .get(&format!("/api/v1/audit?person=hr:{person}&limit=10000"))
            .await;
        v.as_array().cloned().unwrap_or_default()
    }
}

fn attr(acc: &wit::Account, name: &str) -> Option<String> {
    acc.attributes
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| match &a.value {
            wit::Value::Text(t) => Some(t.clone()),
            _ => None,
        })
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// A person event from the HR feed.
fn event(kind: &str, id: &str, record: &str, person: Value, effective: Option<&str>) -> Value {
    let mut p = json!({
        "ids": [{"source": "hr", "id": id}], "given_name": format!("Given{id}"), "family_name": "Person",
        "department": "Engineering", "emails": [{"value": format!("{}@example.test", id.to_lowercase()),
            "primary": true}],
        "start_date": "2026-01-05", "time_zone": "UTC"
    });
    if let (Some(base), Some(extra)) = (p.as_object_mut(), person.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    let mut e = json!({ "kind": kind, "source": "hr", "source_record_id": record, "person": p });
    if let Some(d) = effective {
        e["effective_date"] = json!(d);
    }
    e
}

fn kinds(audit: &[Value]) -> Vec<String> {
    audit
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prehire_accounts_are_made_ahead_and_enabled_at_the_persons_midnight() {
    let life = Life::start("prehire_days = 3", "", "2026-03-01T00:00:00Z").await;
    for (id, zone) in [("SYD", "Australia/Sydney"), ("LAX", "America/Los_Angeles")] {
        life.hire(
            id,
            json!({"start_date": "2026-03-10", "time_zone": zone, "status": "pre-hire"}),
        )
        .await;
    }
    assert!(life.account("SYD").await.is_none(), "too early for the account");
    assert!(kinds(&life.audit("SYD").await).contains(&"lifecycle.shaped".to_string()));
    let view = life.host.get("/api/v1/people/hr:SYD/lifecycle").await;
    assert_eq!(view["state"], "pre-hire", "{view}");
    let wake = &life.open("SYD").await[0];
    assert_eq!(
        (wake.action, wake.due_ms),
        (ActionKind::Wake, ms("2026-03-06T13:00:00Z"))
    );

    // Sydney's 7 March (three days ahead) begins at 13:00 UTC on the 6th.
    life.at("2026-03-06T12:59:00Z").await;
    assert!(life.account("SYD").await.is_none());
    life.at("2026-03-06T13:00:00Z").await;
    assert!(!life.must("SYD").await.enabled, "a pre-hire account is disabled");
    assert!(
        life.account("LAX").await.is_none(),
        "Los Angeles is still on the 6th"
    );
    life.at("2026-03-07T08:00:00Z").await;
    assert!(!life.must("LAX").await.enabled);

    // The start date begins at each person's own midnight.
    life.at("2026-03-09T12:59:00Z").await;
    assert!(!life.must("SYD").await.enabled);
    life.at("2026-03-09T13:00:00Z").await;
    let syd = life.must("SYD").await;
    assert!(syd.enabled, "Sydney's 10 March has begun");
    assert_eq!(sorted(&syd.groups), ["Engineering", "Prod-Access"]);
    assert!(!life.must("LAX").await.enabled, "Los Angeles is still on the 9th");
    life.at("2026-03-10T06:59:00Z").await;
    assert!(!life.must("LAX").await.enabled);
    life.at("2026-03-10T07:00:00Z").await;
    assert!(
        life.must("LAX").await.enabled,
        "midnight in Los Angeles (PDT) is 07:00 UTC"
    );
    let changes: Vec<Value> = life
        .audit("SYD")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "lifecycle.changed")
        .map(|e| e["data"]["to"].clone())
        .collect();
    assert_eq!(changes, [json!("pre-hire"), json!("active")]);

    // Retention: the done wake actions are forgotten `retention_days` (90) after they ran; the
    // audit of what they did is not.
    let done = |all: Vec<ScheduledAction>| all.iter().filter(|a| a.state == ActionState::Done).count();
    let store = &life.host.store;
    let ran = done(store.scheduled_actions(TENANT, false).await.unwrap());
    assert_eq!(ran, 4, "two wakes each: the account ahead, then the start date");
    let audited = life.audit("SYD").await.len();
    life.clock.set(ms("2026-06-01T00:00:00Z"));
    let pruned = life.host.pipeline.prune_finished().await.unwrap().unwrap();
    assert_eq!(pruned.actions, 0, "within the retention period");
    life.clock.set(ms("2026-06-09T00:00:00Z"));
    let pruned = life.host.pipeline.prune_finished().await.unwrap().unwrap();
    assert_eq!(pruned.actions, ran as u64, "{pruned:?}");
    assert_eq!(done(store.scheduled_actions(TENANT, false).await.unwrap()), 0);
    assert_eq!(life.audit("SYD").await.len(), audited);
    let view = life.host.get("/api/v1/people/hr:SYD/lifecycle").await;
    assert_eq!(view["state"], "active");
    // The person as HR finds them: by a part of the name in any case, with their source record
    // and their account.
    assert_eq!(view["sources"][0]["source_record_id"], "hire-SYD", "{view}");
    assert_eq!(view["accounts"][0]["destination"], "sandbox", "{view}");
    let found = life.host.get("/api/v1/people?q=givensyd").await;
    assert_eq!(found[0]["person_key"], "hr:SYD", "{found}");
    assert_eq!(found[0]["name"], "GivenSYD Person");
    assert_eq!(found[0]["email"], "syd@example.test");
    assert_eq!(found[0]["state"], "active");
    let (status, body) = life
        .host
        .request(reqwest::Method::GET, "/api/v1/people?q=%20", HR_TOKEN, None, None)
        .await;
    assert_eq!((status, &body["error"]["field"]), (422, &json!("q")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_start_date_reschedules_and_a_withdrawn_hire_is_removed() {
    let life = Life::start("prehire_days = 5", "", "2026-03-30T00:00:00Z").await;
    life.hire("A", json!({"start_date": "2026-04-01"})).await;
    life.hire("B", json!({"start_date": "2026-04-03"})).await;
    assert!(!life.must("A").await.enabled);
    assert!(!life.must("B").await.enabled);

    // A's start date moves out: the account waits for the new date.
    life.post(event(
        "update",
        "A",
        "move-A",
        json!({"start_date": "2026-04-20"}),
        None,
    ))
    .await;
    let wake = life.open("A").await;
    assert_eq!(wake[0].due_ms, ms("2026-04-15T00:00:00Z"), "{wake:?}");
    life.at("2026-04-01T00:00:00Z").await;
    assert!(!life.must("A").await.enabled, "not enabled on the old date");
    life.at("2026-04-19T23:59:00Z").await;
    assert!(!life.must("A").await.enabled);
    life.at("2026-04-20T00:00:00Z").await;
    assert!(life.must("A").await.enabled, "enabled on the new date");

    // B's hire is withdrawn before the start: what was made for it goes.
    life.clock.set(ms("2026-04-02T00:00:00Z"));
    life.post(event(
        "withdrawn",
        "B",
        "withdraw-B",
        json!({"start_date": "2026-04-03"}),
        None,
    ))
    .await;
    assert!(
        life.account("B").await.is_none(),
        "the pre-hire account was removed"
    );
    assert!(
        life.host
            .store
            .link(TENANT, "sandbox", "hr:B")
            .await
            .unwrap()
            .is_none()
    );
    life.at("2026-04-03T00:00:00Z").await;
    assert!(
        life.account("B").await.is_none(),
        "and not made again on the start date"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_and_return_restore_exactly_what_was_there() {
    let life = Life::start("", "", "2026-05-01T00:00:00Z").await;
    life.hire("A", json!({})).await;
    let joined = life.must("A").await;
    // A group granted by hand, outside the rules.
    life.apply(wit::Operation::AddMember(wit::MemberChange {
        anchor: joined.anchor.clone(),
        group: "Hand-Made".into(),
    }))
    .await;
    let before = life.must("A").await;
    assert!(before.enabled && before.groups.contains(&"Hand-Made".to_string()));
    assert_eq!(before.app_assignments, ["GitHub"]);

    // A leave dated ahead waits for its day.
    life.post(event(
        "leave-start",
        "A",
        "leave-A",
        json!({"status": "on-leave"}),
        Some("2026-05-04"),
    ))
    .await;
    assert!(life.must("A").await.enabled, "the leave has not begun");
    life.at("2026-05-04T00:00:00Z").await;
    let away = life.must("A").await;
    assert!(!away.enabled, "disabled on leave");
    assert_eq!(
        away.groups,
        ["All-Staff"],
        "sensitive groups removed, the hand-made one too"
    );
    assert!(away.app_assignments.is_empty());
    assert_eq!(away.licenses, ["E3"], "the mailbox is kept");

    life.clock.set(ms("2026-05-20T00:00:00Z"));
    life.post(event(
        "leave-end",
        "A",
        "return-A",
        json!({"status": "active"}),
        Some("2026-06-01"),
    ))
    .await;
    assert!(!life.must("A").await.enabled, "still away until the day back");
    life.at("2026-06-01T00:00:00Z").await;
    let back = life.must("A").await;
    assert!(back.enabled);
    assert_eq!(
        sorted(&back.groups),
        sorted(&before.groups),
        "exactly the groups from before"
    );
    assert_eq!(back.app_assignments, before.app_assignments);
    assert_eq!(back.licenses, before.licenses);
    assert_eq!(back.anchor, before.anchor);
    let k = kinds(&life.audit("A").await);
    assert!(
        k.contains(&"leave.saved".to_string()) && k.contains(&"leave.restored".to_string()),
        "{k:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaver_steps_run_in_order_and_a_rehire_cancels_the_rest_without_a_duplicate() {
    let steps = "delete_after = \"30d\"\n\
        [[destinations.leaver_steps]]\nafter = \"0d\"\naction = \"move\"\ncontainer = \"OU=Leavers\"\n\
        [[destinations.leaver_steps]]\nafter = \"7d\"\naction = \"remove-licenses\"\n";
    let life = Life::start(steps, "", "2026-06-01T00:00:00Z").await;
    life.hire("A", json!({"time_zone": "Europe/Berlin"})).await;
    life.hire("B", json!({})).await;
    let a_before = life.must("A").await;
    let name_before = attr(&a_before, "sAMAccountName");
    assert_eq!(name_before.as_deref(), Some("givena.person"));
    for (id, zone) in [("A", "Europe/Berlin"), ("B", "UTC")] {
        let person = json!({"status": "terminated", "time_zone": zone});
        life.post(event(
            "leaver",
            id,
            &format!("leave-{id}"),
            person,
            Some("2026-06-30"),
        ))
        .await;
    }
    life.at("2026-06-30T12:00:00Z").await;
    assert!(
        life.must("A").await.enabled && life.must("B").await.enabled,
        "the last day is not over"
    );

    // Berlin's 30 June ends at 22:00 UTC, UTC's at midnight.
    life.at("2026-06-30T22:00:00Z").await;
    let a = life.must("A").await;
    assert!(!a.enabled);
    assert!(a.groups.is_empty() && a.app_assignments.is_empty(), "{a:?}");
    assert_eq!(
        a.container.as_deref(),
        Some("OU=Leavers"),
        "step 0 (after 0d) moved it"
    );
    assert_eq!(a.licenses, ["E3"], "licenses go at step 1");
    assert!(life.must("B").await.enabled, "B's day is not over in UTC");
    // The disable comes before anything else is taken away.
    let audit = life.audit("A").await;
    let ops: Vec<String> = audit
        .iter()
        .filter(|e| e["kind"] == "op.applied")
        .map(|e| e["data"]["op"].as_str().unwrap_or("").to_string())
        .collect();
    let disable = ops.iter().position(|o| o == "disable").expect("disabled");
    let first_removal = ops
        .iter()
        .position(|o| o == "remove-member")
        .expect("groups removed");
    assert!(disable < first_removal, "{ops:?}");

    life.at("2026-07-01T00:00:00Z").await;
    assert!(!life.must("B").await.enabled);

    // A is rehired before the licenses step: the rest of A's steps are cancelled.
    life.clock.set(ms("2026-07-03T08:00:00Z"));
    life.post(event(
        "rehire",
        "A",
        "rehire-A",
        json!({"time_zone": "Europe/Berlin", "start_date": "2026-07-03"}),
        None,
    ))
    .await;
    let back = life.must("A").await;
    assert!(back.enabled);
    assert_eq!(back.anchor, a_before.anchor, "the same account, not a duplicate");
    assert_eq!(attr(&back, "sAMAccountName"), name_before, "the same name");
    assert_eq!(back.container.as_deref(), Some("OU=People"));
    assert_eq!(sorted(&back.groups), sorted(&a_before.groups));
    assert!(
        life.open("A").await.iter().all(|a| a.action == ActionKind::Wake),
        "{:?}",
        life.open("A").await
    );

    life.at("2026-07-08T00:00:00Z").await;
    assert_eq!(life.must("A").await.licenses, ["E3"]);
    assert!(life.must("B").await.licenses.is_empty(), "B's step 1 ran");
    life.at("2026-07-31T00:00:00Z").await;
    assert!(
        life.account("B").await.is_none(),
        "B deleted 30 days after the last day"
    );
    assert!(life.must("A").await.enabled);
    let b = kinds(&life.audit("B").await);
    for k in ["leaver.step_scheduled", "leaver.step_done", "deprovision.deleted"] {
        assert!(b.contains(&k.to_string()), "{k}: {b:?}");
    }
    assert!(kinds(&life.audit("A").await).contains(&"leaver.steps_cancelled".to_string()));
    // The offboarding ticket opened once, though four jobs ran for B after the termination.
    let tickets = life
        .audit("B")
        .await
        .iter()
        .filter(|e| e["kind"] == "op.applied" && e["data"]["op"] == "open-ticket")
        .count();
    assert_eq!(tickets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_runs_on_its_schedule() {
    let life = Life::start(
        "",
        "[lifecycle]\nreconcile_every = \"24h\"\n",
        "2026-04-01T00:00:00Z",
    )
    .await;
    life.hire("A", json!({})).await;
    let next = life
        .host
        .store
        .scheduled_actions(TENANT, true)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.action == ActionKind::Reconcile)
        .expect("the next run is scheduled");
    let day_later = ms("2026-04-02T00:00:00Z");
    assert!((day_later..day_later + 60_000).contains(&next.due_ms), "{next:?}");
    assert!(
        life.host
            .get("/api/v1/reconciliations")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    life.at("2026-04-02T00:01:00Z").await;
    let started = std::time::Instant::now();
    loop {
        let runs = life.host.get("/api/v1/reconciliations").await;
        if runs.as_array().is_some_and(|r| r.len() == 1) {
            assert_eq!(runs[0]["summary"]["people"], 1, "{runs}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the scheduled run never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let audit = life.host.get("/api/v1/audit?kind=reconcile.&limit=10").await;
    assert_eq!(audit[0]["actor"], "scheduler", "{audit}");
}

/// A scheduled reconciliation another host took and still runs (its lease renewed) is left to
/// it, by this host's start-up and by its sweeps; once that host is gone (the lease has run
/// out) the dispatcher's sweep ends it as interrupted and plans the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_is_ended_as_interrupted_only_once_its_host_is_gone() {
    let life = Life::start(
        "",
        "[lifecycle]\nreconcile_every = \"24h\"\n",
        "2026-04-01T00:00:00Z",
    )
    .await;
    let store = &life.host.store;
    let open = || async {
        store
            .scheduled_actions(TENANT, true)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.action == ActionKind::Reconcile)
            .collect::<Vec<_>>()
    };
    // Another host takes the run (this host's clock has not reached its date) and holds it.
    let planned = open().await;
    assert_eq!(planned.len(), 1, "{planned:?}");
    let taken = store.take_due_actions(planned[0].due_ms, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    let lease = format!("reconcile:{}", taken[0].id);
    let now = life.host.pipeline.now();
    assert!(
        store
            .hold_lease(&lease, "other-host", now, now + 60_000)
            .await
            .unwrap()
    );

    // A restart here, and this host's sweeps while the other host renews: left to run.
    life.host.pipeline.requeue_taken_actions().await.unwrap();
    life.clock.set(now + 50_000);
    assert!(
        store
            .hold_lease(&lease, "other-host", now + 50_000, now + 110_000)
            .await
            .unwrap()
    );
    life.clock.set(now + 100_000);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let running = store.scheduled_action(taken[0].id).await.unwrap().unwrap();
    assert_eq!(running.state, ActionState::Queued, "{running:?}");

    // The other host stops renewing: once its lease has run out, the sweep ends the run.
    life.clock.set(now + 200_000);
    let started = std::time::Instant::now();
    let ended = loop {
        let action = store.scheduled_action(taken[0].id).await.unwrap().unwrap();
        if action.state != ActionState::Queued {
            break action;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never ended: {action:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ended.state, ActionState::Cancelled);
    assert!(
        ended
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("interrupted")),
        "{ended:?}"
    );
    // The sweep plans the next run right after it ends this one, in a write of its own.
    let next = loop {
        let next = open().await;
        if !next.is_empty() || started.elapsed() >= Duration::from_secs(20) {
            break next;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(next.len(), 1, "the next run is planned: {next:?}");
    assert_eq!(next[0].state, ActionState::Pending);
    let day_later = now + 200_000 + 24 * 3_600_000;
    assert!(
        (day_later..day_later + 60_000).contains(&next[0].due_ms),
        "{next:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_notices_an_extension_expiry_and_a_conversion() {
    let lifecycle = "[lifecycle]\ncontract_notice_days = [14, 3]\nnotify_destination = \"sandbox\"\n";
    let life = Life::start("", lifecycle, "2026-09-01T00:00:00Z").await;
    life.hire("M", json!({"emails": [{"value": "boss@example.test"}]}))
        .await;
    let contract = json!({"employment_type": "contractor", "end_date": "2026-09-30",
        "manager": {"source": "hr", "id": "M"}});
    life.hire("C", contract.clone()).await;
    life.hire("D", contract.clone()).await;
    let c = life.must("C").await;
    assert!(
        c.expires_at
            .as_deref()
            .is_some_and(|e| e.starts_with("2026-09-30")),
        "{c:?}"
    );
    assert!(c.groups.contains(&"Contractors".to_string()));
    life.expect_notices("C", "2026-09-16", "2026-09-27").await;

    life.at("2026-09-16T00:00:00Z").await;
    let notices: Vec<Value> = life
        .audit("C")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "contract.notice_sent")
        .collect();
    assert_eq!(notices.len(), 1, "one notice, once");
    assert_eq!(notices[0]["data"]["fields"]["manager_email"], "boss@example.test");
    assert_eq!(notices[0]["data"]["fields"]["days_before"], "14");
    assert!(
        notices[0]["data"]["ticket"]
            .as_str()
            .unwrap_or("")
            .contains("ticket"),
        "{}",
        notices[0]
    );

    // An extension through the API (HR) moves the end date and the notices.
    let (status, body) = life
        .host
        .request(
            reqwest::Method::POST,
            "/api/v1/people/hr:C/contract-end",
            HR_TOKEN,
            Some(&json!({"end_date": "31/10/2026"})),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "end_date");
    let (status, body) = life
        .host
        .request(
            reqwest::Method::POST,
            "/api/v1/people/hr:C/contract-end",
            HR_TOKEN,
            Some(&json!({"end_date": "2026-10-31"})),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    life.settle().await;
    let extended = life.must("C").await.expires_at;
    assert!(
        extended.as_deref().is_some_and(|e| e.starts_with("2026-10-31")),
        "{extended:?}"
    );
    life.expect_notices("C", "2026-10-17", "2026-10-28").await;

    // D converts to an employee: one identity, no expiry, no notices.
    life.clock.set(ms("2026-09-20T00:00:00Z"));
    let d_before = life.must("D").await;
    life.post(event(
        "conversion",
        "D",
        "convert-D",
        json!({"employment_type": "employee", "manager": {"source": "hr", "id": "M"}}),
        None,
    ))
    .await;
    let d = life.must("D").await;
    assert_eq!(d.anchor, d_before.anchor);
    assert_eq!(d.expires_at, None);
    assert!(!d.groups.contains(&"Contractors".to_string()));
    assert!(
        life.open("D")
            .await
            .iter()
            .all(|a| !matches!(a.action, ActionKind::Notice { .. }))
    );

    life.at("2026-10-01T00:00:00Z").await;
    assert!(life.must("C").await.enabled, "the extension holds");
    assert!(life.must("D").await.enabled, "the employee stays");
    life.at("2026-10-31T23:59:00Z").await;
    assert!(life.must("C").await.enabled);
    life.at("2026-11-01T00:00:00Z").await;
    assert!(!life.must("C").await.enabled, "access removed after the end date");
    let view = life.host.get("/api/v1/people/hr:C/lifecycle").await;
    assert_eq!(view["state"], "contract-expired", "{view}");
    let sent = life
        .audit("C")
        .await
        .into_iter()
        .filter(|e| e["kind"] == "contract.notice_sent")
        .count();
    assert_eq!(
        sent, 3,
        "14 days before the first date, then 14 and 3 days before the new one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_provisioned_after_their_report_is_resolved_without_a_resync() {
    let life = Life::start("", "", "2026-02-02T09:00:00Z").await;
    life.hire("R", json!({"manager": {"source": "hr", "id": "M"}}))
        .await;
    let r = life.must("R").await;
    assert_eq!(attr(&r, "manager"), None, "the manager has no account yet");
    life.hire("M", json!({})).await;
    life.settle().await;
    let r = life.must("R").await;
    assert_eq!(
        attr(&r, "manager").as_deref(),
        Some("M"),
        "resolved once the manager exists"
    );
    assert!(kinds(&life.audit("M").await).contains(&"manager.reports_refreshed".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_scheduled_work_neither_loses_nor_repeats_an_action() {
    let life = Life::start("", "", "2026-03-01T00:00:00Z").await;
    life.hire("A", json!({"start_date": "2026-03-05"})).await;
    life.hire("B", json!({"start_date": "2026-03-09"})).await;
    assert!(!life.must("A").await.enabled && !life.must("B").await.enabled);

    // A's wake-up is taken as due, and the host stops before its job is stored.
    life.clock.set(ms("2026-03-05T00:00:00Z"));
    let taken = life
        .host
        .store
        .take_due_actions(ms("2026-03-05T00:00:00Z"), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let life = life.restart("2026-03-05T00:00:01Z").await;
    life.settle().await;
    assert!(life.must("A").await.enabled, "the taken action was not lost");
    assert!(!life.must("B").await.enabled);
    life.settle().await;
    let life = life.restart("2026-03-09T00:00:00Z").await;
    life.settle().await;
    assert!(
        life.must("B").await.enabled,
        "the pending action survived the restart"
    );
    for id in ["A", "B"] {
        let enables = life
            .audit(id)
            .await
            .iter()
            .filter(|e| e["kind"] == "op.applied" && e["data"]["op"] == "enable")
            .count();
        assert_eq!(enables, 1, "{id} enabled exactly once");
    }
    let all = life.host.store.scheduled_actions(TENANT, false).await.unwrap();
    assert!(all.iter().all(|a| a.state != ActionState::Queued), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_reports_then_repairs_drift_and_exports_the_access_review() {
    let life = Life::start("reconcile = \"repair\"", "", "2026-04-01T00:00:00Z").await;
    for id in ["A", "B", "L"] {
        life.hire(id, json!({})).await;
    }
    life.post(event(
        "leaver",
        "L",
        "leave-L",
        json!({"status": "terminated"}),
        None,
    ))
    .await;
    let (a, b, l) = (life.must("A").await, life.must("B").await, life.must("L").await);
    assert!(!l.enabled);
    // Drift made by hand in the destination.
    life.apply(wit::Operation::RemoveMember(wit::MemberChange {
        anchor: a.anchor.clone(),
        group: "Prod-Access".into(),
    }))
    .await;
    life.apply(wit::Operation::AddMember(wit::MemberChange {
        anchor: a.anchor.clone(),
        group: "Hand-Made".into(),
    }))
    .await;
    life.apply(wit::Operation::Enable(l.anchor.clone())).await;
    life.apply(wit::Operation::Delete(b.anchor.clone())).await;

    let (status, dry) = life
        .host
        .post("/api/v1/reconcile", &json!({"dry_run": true}))
        .await;
    assert_eq!(status, 200, "{dry}");
    let found: Vec<(String, String)> = dry["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["person_key"].as_str().unwrap().to_string(),
                d["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("hr:A", "missing-group"),
        ("hr:A", "unmanaged-group"),
        ("hr:L", "enabled-leaver"),
        ("hr:B", "missing-account"),
    ] {
        assert!(
            found.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {found:?}"
        );
    }
    assert!(dry["repairs"].as_array().unwrap().is_empty());
    life.settle().await;
    assert!(
        !life.must("A").await.groups.contains(&"Prod-Access".to_string()),
        "a dry run changes nothing"
    );

    let (status, run) = life.host.post("/api/v1/reconcile", &json!({})).await;
    assert_eq!(status, 200, "{run}");
    let mut repairs: Vec<String> = run["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    repairs.sort();
    assert_eq!(repairs, ["hr:A", "hr:B", "hr:L"]);
    life.settle().await;
    let a = life.must("A").await;
    assert!(a.groups.contains(&"Prod-Access".to_string()), "repaired");
    assert!(
        a.groups.contains(&"Hand-Made".to_string()),
        "a hand-made grant is reported, never removed"
    );
    assert!(!life.must("L").await.enabled, "the leaver is disabled again");
    assert!(life.must("B").await.enabled, "the missing account is back");

    let (_, again) = life.host.post("/api/v1/reconcile", &json!({})).await;
    let left: Vec<&str> = again["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["unmanaged-group"], "{again}");
    let id = again["id"].as_i64().unwrap();

    // The stored report is the drift and the repairs, never the access review.
    let stored = life.host.get(&format!("/api/v1/reconciliations/{id}")).await;
    assert!(stored.to_string().contains("unmanaged-group"), "{stored}");
    assert!(stored.get("access").is_none(), "{stored}");
    // The access review, as auditors get it: read from the destinations now.
    let resp = life
        .host
        .client
        .get(format!("{}/api/v1/access-review", life.host.base))
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csv = resp.text().await.unwrap();
    assert!(
        csv.starts_with("person_key,state,destination,anchor,enabled,group,managed,granted_by\n"),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "hr:A,active,sandbox,{},true,Prod-Access,true,engineering",
            a.anchor
        )),
        "{csv}"
    );
    assert!(csv.contains(",Hand-Made,false,"), "{csv}");
    assert!(
        csv.contains(&format!("hr:L,terminated,sandbox,{},false,,true,", l.anchor)),
        "{csv}"
    );
    let listed = life.host.get("/api/v1/reconciliations").await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    // HR may not run reconciliation.
    let (status, _) = life
        .host
        .request(
            reqwest::Method::POST,
            "/api/v1/reconcile",
            HR_TOKEN,
            Some(&json!({})),
            None,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehire_dated_ahead_keeps_the_account_through_the_grace_period() {
    let life = Life::start(
        "delete_after = \"10d\"\nprehire_days = 3",
        "",
        "2026-06-01T00:00:00Z",
    )
    .await;
    life.hire("A", json!({})).await;
    let joined = life.must("A").await;
    life.post(event(
        "leaver",
        "A",
        "leave-A",
        json!({"status": "terminated"}),
        Some("2026-06-30"),
    ))
    .await;
    life.at("2026-07-01T00:00:00Z").await;
    assert!(!life.must("A").await.enabled);
    assert!(
        life.open("A")
            .await
            .iter()
            .any(|a| a.action == ActionKind::Delete)
    );

    // Rehired on 2 July for a start on 1 August: nothing may delete the account meanwhile.
    life.clock.set(ms("2026-07-02T00:00:00Z"));
    life.post(event(
        "rehire",
        "A",
        "rehire-A",
        json!({"start_date": "2026-08-01", "status": "pre-hire"}),
        None,
    ))
    .await;
    assert!(
        life.open("A").await.iter().all(|a| a.action == ActionKind::Wake),
        "{:?}",
        life.open("A").await
    );
    life.at("2026-07-11T00:00:00Z").await;
    let kept = life.must("A").await;
    assert!(!kept.enabled, "kept, still disabled before the start date");
    life.at("2026-07-29T00:00:00Z").await;
    assert!(!life.must("A").await.enabled);
    life.at("2026-08-01T00:00:00Z").await;
    let back = life.must("A").await;
    assert!(back.enabled);
    assert_eq!(back.anchor, joined.anchor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaver_is_disabled_everywhere_before_anything_else_is_taken_away() {
    let mock = tenure_tests::mock_destination::MockDestination::start().await;
    let rules = r#"
destinations:
  sandbox:
    attributes: { employeeId: { from: id, required: true }, mail: { from: email, required: true } }
    rules:
      - { name: leaver, when: 'person.status == "terminated"', then: { enabled: false, groups: [] } }
    defaults: { groups: [All-Staff, Engineering] }
  dest:
    attributes: { employeeId: { from: id, required: true } }
    rules:
      - { name: leaver, when: 'person.status == "terminated"', then: { enabled: false, groups: [] } }
    defaults: { groups: [All-Staff, Engineering] }
"#;
    let tenant = tenant_toml(&format!(
        "[plugins.rules]\nrule_set = '''{rules}'''\n[plugins.sandbox.grants]\nkv = true\n{}",
        mock.tenant_toml()
    ));
    let pipeline = pipeline_toml(
        "rules = \"rules\"\n\
         [[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\nmatching = [\"employeeId\"]\n\
         [[destinations]]\nname = \"dest\"\nconnector = \"http-dest\"\nmatching = [\"employeeId\"]\n",
    );
    let clock = Arc::new(ShiftedClock::at(ms("2026-05-01T00:00:00Z")));
    let host = TestHost::start_with_clock(
        HostSpec {
            tenant,
            pipeline,
            queue: tenure_pipeline::QueueConfig {
                poll_ms: 20,
                ..Default::default()
            },
            plugins: vec!["rules", "sandbox", "http-dest"],
        },
        tempfile::tempdir().expect("temp dir"),
        clock,
    )
    .await;
    for (kind, record, extra) in [
        ("joiner", "hire-A", json!({})),
        ("leaver", "leave-A", json!({"status": "terminated"})),
    ] {
        let (status, body) = host
            .post_event(&event(kind, "A", record, extra, None), record)
            .await;
        assert_eq!(status, 202, "{body}");
        host.wait_idle(Duration::from_secs(30)).await;
    }
    let audit = host.get("/api/v1/audit?person=hr:A&limit=1000").await;
    let ops: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "op.applied")
        .map(|e| {
            (
                e["destination"].as_str().unwrap_or("").to_string(),
                e["data"]["op"].as_str().unwrap_or("").to_string(),
            )
        })
        .skip_while(|(_, op)| op != "disable")
        .collect();
    let pos = |d: &str, op: &str| ops.iter().position(|(x, o)| x == d && o == op);
    let (Some(d1), Some(d2)) = (pos("sandbox", "disable"), pos("dest", "disable")) else {
        panic!("both destinations disabled: {ops:?}");
    };
    let first_removal = ops
        .iter()
        .position(|(_, o)| o == "remove-member")
        .expect("groups removed");
    assert!(
        d1 < first_removal && d2 < first_removal,
        "every disable before any removal: {ops:?}"
    );
    assert_eq!(
        ops.iter().filter(|(_, o)| o == "remove-member").count(),
        4,
        "{ops:?}"
    );
}

/// A mover dated ahead (issue 18) changes nothing on arrival, not even when an update
/// with the person's current record arrives meanwhile; it is applied at the local
/// midnight of its day (Auckland's, here), from the record it carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mover_dated_ahead_is_applied_on_its_day_in_the_persons_zone() {
    let life = Life::start("", "", "2026-05-01T00:00:00Z").await;
    let zone = json!({"time_zone": "Pacific/Auckland"});
    life.hire("A", zone.clone()).await;
    let engineering = ["Engineering", "Prod-Access"];
    assert_eq!(sorted(&life.must("A").await.groups), engineering);

    life.post(event(
        "mover",
        "A",
        "move-A",
        json!({"time_zone": "Pacific/Auckland", "department": "Sales"}),
        Some("2026-06-01"),
    ))
    .await;
    assert_eq!(sorted(&life.must("A").await.groups), engineering, "not moved yet");
    assert!(kinds(&life.audit("A").await).contains(&"event.deferred".to_string()));
    let wake = life.open("A").await;
    assert!(
        wake.iter()
            .any(|a| a.action == ActionKind::Wake && a.due_ms == ms("2026-05-31T12:00:00Z")),
        "woken at Auckland's midnight: {wake:?}"
    );

    // The feed's current record (still Engineering) arrives before the day: applied, the
    // move still waits.
    life.clock.set(ms("2026-05-15T00:00:00Z"));
    life.post(event(
        "update",
        "A",
        "update-A",
        json!({"time_zone": "Pacific/Auckland", "title": "Engineer II"}),
        None,
    ))
    .await;
    life.at("2026-05-31T11:59:00Z").await;
    assert_eq!(sorted(&life.must("A").await.groups), engineering);

    life.at("2026-05-31T12:00:00Z").await;
    let moved = life.must("A").await;
    assert_eq!(moved.groups, ["All-Staff"], "moved to Sales on the day");
    assert!(moved.app_assignments.is_empty());
    assert!(moved.enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_and_the_access_review_walk_everyone_a_page_at_a_time() {
    let life = Life::start(
        "",
        "[lifecycle]\nreconcile_reports_kept = 2\n",
        "2026-04-01T00:00:00Z",
    )
    .await;
    // One page of people and a few more, so both walks cross a page boundary.
    let people = tenure_pipeline::reconcile::PEOPLE_PAGE + 5;
    let id = |i: usize| format!("P{i:04}");
    for i in 0..people {
        let record = format!("hire-{}", id(i));
        let person = json!({ "family_name": format!("Person{i}") });
        let (status, body) = life
            .host
            .post_event(&event("joiner", &id(i), &record, person, None), &record)
            .await;
        assert_eq!(status, 202, "{body}");
    }
    life.settle().await;
    // Drift by hand on the last person, on the second page.
    let last = life.must(&id(people - 1)).await;
    life.apply(wit::Operation::AddMember(wit::MemberChange {
        anchor: last.anchor.clone(),
        group: "Hand-Made".into(),
    }))
    .await;

    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, run) = life
            .host
            .post("/api/v1/reconcile", &json!({"dry_run": true}))
            .await;
        assert_eq!(status, 200, "{run}");
        assert_eq!(
            (run["people"].as_u64(), run["accounts"].as_u64()),
            (Some(people as u64), Some(people as u64))
        );
        let drift: Vec<(&str, &str)> = run["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["person_key"].as_str().unwrap(), d["kind"].as_str().unwrap()))
            .collect();
        assert_eq!(
            drift,
            [(format!("hr:{}", id(people - 1)).as_str(), "unmanaged-group")]
        );
        ids.push(run["id"].as_i64().unwrap());
    }
    // Only the newest reports are kept.
    let kept: Vec<i64> = life
        .host
        .get("/api/v1/reconciliations")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(kept, [ids[2], ids[1]]);

    let resp = life
        .host
        .client
        .get(format!(
            "{}/api/v1/access-review?destination=sandbox",
            life.host.base
        ))
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let csv = resp.text().await.unwrap();
    let account_lines: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",sandbox,") && l.contains(",,true,"))
        .collect();
    assert_eq!(account_lines.len(), people, "one account line per person");
    assert!(
        csv.contains(&format!(
            "hr:{},active,sandbox,{},true,Hand-Made,false,",
            id(people - 1),
            last.anchor
        )),
        "{}",
        &csv[csv.len().saturating_sub(2_000)..]
    );
    let audit = life
        .host
        .get("/api/v1/audit?kind=admin.access_review&limit=10")
        .await;
    assert_eq!(audit[0]["data"]["destination"], "sandbox", "{audit}");

    // A destination the tenant does not have is refused before anything is sent.
    let resp = life
        .host
        .client
        .get(format!(
            "{}/api/v1/access-review?destination=nowhere",
            life.host.base
        ))
        .bearer_auth(AUDITOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hire_record_without_a_start_date_after_the_last_day_hires_them_again() {
    let life = Life::start("", "", "2026-03-01T00:00:00Z").await;
    life.hire("RH", json!({})).await;
    let leave = event(
        "leaver",
        "RH",
        "leave-RH",
        json!({ "status": "terminated" }),
        Some("2026-03-31"),
    );
    life.post(leave).await;
    life.at("2026-04-02T00:00:00Z").await;
    let gone = life.must("RH").await;
    assert!(!gone.enabled && gone.groups.is_empty(), "{gone:?}");
    // The hire is sent again with no start date (some feeds leave it out): a rehire from today.
    let again = event("joiner", "RH", "hire-RH-2", json!({ "start_date": null }), None);
    life.post(again).await;
    let back = life.must("RH").await;
    assert!(back.enabled, "re-enabled: {back:?}");
    assert_eq!(sorted(&back.groups), ["Engineering", "Prod-Access"]);
    assert_eq!(back.anchor, gone.anchor, "the same account, not a second one");
    let audit = life.audit("RH").await;
    assert!(
        audit.iter().any(|e| e["kind"] == "lifecycle.rehire"),
        "{:?}",
        kinds(&audit)
    );
}
