//! Lever as a customer meets it, against a stateful Lever (`lever_sim`) with
//! Lever's rate limit (10 requests/s, bursts of 20), injected 503s and Lever's
//! webhook retries: a burst of hires, a backfill of an account with history, hires
//! reversed after the fact, and refusals under a flood.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tenure_pipeline::{QueueConfig, SourceConfig};
use tenure_store::prelude::*;
use tenure_tests::fake_lever::{delivery, now_ms};
use tenure_tests::host::{HostSpec, TENANT, TestHost, pipeline_toml, rules, tenant_toml};
use tenure_tests::lever_sim::{self, LeverSim, OTHER_REASON, Opportunity, SimOptions, send_like_lever};

const HIRED_TOKEN: &str = "sim-hired-signature-token";
const OTHER_TOKEN: &str = "sim-other-signature-token";
/// 2026-01-05 (a start date in the past) and 2099-03-01 (far ahead), in ms.
const PAST_START: i64 = 1_767_571_200_000;
const FUTURE_START: i64 = 4_075_488_000_000;

/// A host whose `lever` source reads the simulation, configured as the README says.
fn spec(sim: &LeverSim, settings: &str) -> HostSpec {
    let tenant = tenant_toml(&format!(
        "[connections.lever]\nkind = \"http\"\nallow_private_network = true\nurl = \"{}\"\n\
         auth = {{ type = \"basic\", username = \"{}\" }}\n\
         rate_limit = {{ per_second = 10.0, burst = 20 }}\nretry_429 = 3\n\
         [plugins.lever.grants]\nhttp = [\"lever\"]\nkv = true\n\
         [plugins.lever]\ndeadline_ms = 20000\nsettings = {{ {settings} }}\n\
         [plugins.rules-basic]\nrule_set = '''\n{}'''\n[plugins.sandbox.grants]\nkv = true\n",
        sim.url(),
        lever_sim::API_KEY,
        rules("sandbox")
    ));
    let pipeline = pipeline_toml(&format!(
        "rules = \"rules-basic\"\n[[destinations]]\nname = \"sandbox\"\nconnector = \"sandbox\"\n\
         matching = [\"employeeId\"]\nguard = {{ max_accounts = 100000, max_percent = 100.0 }}\n\
         [[sources]]\nname = \"lever\"\nplugin = \"lever\"\n\
         [sources.webhook]\nmax_age_secs = 600\n\
         [sources.webhook.signature_tokens]\ncandidateHired = \"{HIRED_TOKEN}\"\n\"*\" = \"{OTHER_TOKEN}\"\n"
    ));
    HostSpec {
        tenant,
        pipeline,
        queue: QueueConfig {
            poll_ms: 20,
            backoff_base_ms: 200,
            backoff_max_ms: 2_000,
            ..QueueConfig::default()
        },
        plugins: vec!["rules-basic", "sandbox", "lever"],
    }
}

fn hook_url(h: &TestHost) -> String {
    format!("{}/hooks/lever/lever", h.base)
}

/// A signed delivery about an opportunity.
fn about(event: &str, token: &str, opportunity: &str, contact: &str) -> Vec<u8> {
    let key = if event == "candidateHired" {
        HIRED_TOKEN
    } else {
        OTHER_TOKEN
    };
    delivery(
        event,
        key,
        token,
        now_ms(),
        json!({ "opportunityId": opportunity, "candidateId": opportunity, "contactId": contact }),
    )
    .to_string()
    .into_bytes()
}

async fn deliveries(h: &TestHost, state: &str) -> Vec<Value> {
    h.get(&format!("/api/v1/deliveries?state={state}&limit=10000"))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The person keys of every stored event of the `lever` source, with how many each has.
async fn lever_events(h: &TestHost) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(h.dir.path().join("tenure.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT person_key, kind FROM events WHERE source = 'lever' ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn assert_audit_intact(h: &TestHost) {
    let report = h.store.verify_audit().await.unwrap();
    assert!(report.ok(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_200_hires_through_429s_and_503s_provisions_each_exactly_once() {
    let sim = LeverSim::start(SimOptions {
        fail_every: Some(23),
        ..SimOptions::default()
    })
    .await;
    let hires = 200;
    for i in 0..hires {
        sim.add(Opportunity::hire(
            i,
            &format!("contact-{i:05}"),
            &format!("Person{i} Burst"),
            PAST_START,
            1_700_000_000_000 + i as i64,
        ));
    }
    let h = TestHost::start(spec(&sim, "")).await;
    let url = hook_url(&h);

    // Lever sends the whole burst at once; every delivery is answered from the store,
    // never waiting on Lever's API, so none needs Lever's retries.
    let mut sends = tokio::task::JoinSet::new();
    let bodies: Vec<Vec<u8>> = (0..hires)
        .map(|i| {
            about(
                "candidateHired",
                &format!("burst-{i}"),
                &format!("opp-{i:05}"),
                "x",
            )
        })
        .collect();
    for body in bodies.clone() {
        let (client, url) = (h.client.clone(), url.clone());
        sends.spawn(async move { send_like_lever(&client, &url, &body, Duration::from_millis(200)).await });
    }
    while let Some(sent) = sends.join_next().await {
        let sent = sent.unwrap();
        assert_eq!((sent.status, sent.tries), (200, 1), "{:?}", sent.body);
        assert_eq!(sent.body["status"], "stored", "{:?}", sent.body);
    }
    // Lever retries some anyway (a lost answer): the same delivery is a duplicate, and the
    // same content under a new token (a manual rerun) is one too.
    for (i, body) in bodies.iter().enumerate().take(20) {
        let sent = send_like_lever(&h.client, &url, body, Duration::from_millis(200)).await;
        assert_eq!(
            (sent.status, sent.body["status"].as_str()),
            (200, Some("duplicate")),
            "{i}"
        );
    }
    let mut rerun: Value = serde_json::from_slice(&bodies[0]).unwrap();
    rerun["token"] = json!("burst-rerun-0");
    rerun["signature"] = json!(tenure_tests::fake_lever::sign(
        HIRED_TOKEN,
        "burst-rerun-0",
        rerun["triggeredAt"].as_u64().unwrap()
    ));
    let sent = send_like_lever(
        &h.client,
        &url,
        rerun.to_string().as_bytes(),
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(
        (sent.status, sent.body["status"].as_str()),
        (200, Some("duplicate"))
    );

    h.wait_idle(Duration::from_secs(240)).await;

    // Every hire enriched once, none dead or rejected, each provisioned exactly once.
    assert_eq!(deliveries(&h, "done").await.len(), hires);
    assert!(deliveries(&h, "dead").await.is_empty());
    assert!(deliveries(&h, "rejected").await.is_empty());
    let events = lever_events(&h).await;
    let people: BTreeSet<&str> = events.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!((events.len(), people.len()), (hires, hires), "one event per hire");
    let accounts = h.sandbox_accounts().await;
    let anchors: BTreeSet<&str> = accounts.iter().filter_map(|a| a["anchor"].as_str()).collect();
    assert_eq!((accounts.len(), anchors.len()), (hires, hires));
    for i in 0..hires {
        assert!(
            anchors.contains(format!("sbx-contact-{i:05}").as_str()),
            "hire {i} has no account"
        );
    }
    let jobs = h.get("/api/v1/jobs?state=completed&limit=1000").await;
    assert_eq!(jobs.as_array().map(Vec::len), Some(hires));
    // The burst met Lever's limits and faults, and the host waited them out.
    let counts = sim.counts();
    assert!(counts.faults > 0, "{counts:?}");
    assert_audit_intact(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_500_opportunities_finds_every_hire_once_including_confidential_ones() {
    let sim = LeverSim::start(SimOptions::default()).await;
    let mut expected = BTreeSet::new();
    let mut vanishing = None;
    for i in 0..500usize {
        let contact = format!("hist-{i:04}");
        let mut o = Opportunity::hire(
            i,
            &contact,
            &format!("History{i} Person"),
            PAST_START,
            1_600_000_000_000 + i as i64,
        );
        o.confidential = i % 8 == 4;
        // A quarter are hires, on every page; the rest are in process or archived otherwise.
        if i % 4 != 0 {
            o.archive_reason = (i % 4 == 1).then(|| OTHER_REASON.to_string());
            o.start_ms = None;
        } else if i == 212 {
            vanishing = Some(o.id.clone());
        } else {
            expected.insert(format!("lever:{contact}"));
        }
        sim.add(o);
    }
    // Deleted in Lever between its page's listing and its enrichment.
    sim.vanish_when_listed(&vanishing.expect("opportunity 212 is a hire"));
    let h = TestHost::start(spec(&sim, "poll_budget_ms = \"500\"")).await;
    let source = SourceConfig {
        name: "lever".into(),
        plugin: "lever".into(),
        poll_secs: None,
        poll_cron: None,
        webhook: None,
    };
    let report = h.pipeline.backfill(TENANT, &source, |_, _| {}).await.unwrap();
    // Ten pages of 50, and more calls than pages: a page's hires take longer than one
    // call's budget, so the cursor carried the place within the page.
    assert!(report.pages > 10, "{report:?}");
    assert_eq!(report.stored, expected.len(), "{report:?}");
    assert_eq!(
        report.duplicates, 0,
        "a page resumed mid-way repeats no hire: {report:?}"
    );
    let events = lever_events(&h).await;
    let found: BTreeSet<String> = events.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        found, expected,
        "every hire once, confidential ones included, the deleted one absent"
    );
    assert!(found.contains("lever:hist-0020"), "confidential hire");
    let cursor = h.store.cursor(TENANT, "lever").await.unwrap();
    assert_eq!(
        cursor.as_deref(),
        Some("1600000000500"),
        "past the newest update seen"
    );
    // A second backfill finds nothing new and moves nothing.
    let again = h.pipeline.backfill(TENANT, &source, |_, _| {}).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 0), "{again:?}");
    h.wait_idle(Duration::from_secs(120)).await;
    assert_eq!(h.sandbox_accounts().await.len(), expected.len());
    h.stop().await;
}

/// One hire through a delivery, waited out; returns the person key.
async fn hire_by_webhook(h: &TestHost, sim: &LeverSim, n: usize, start_ms: i64) -> String {
    let contact = format!("rev-{n}");
    sim.add(Opportunity::hire(
        n,
        &contact,
        &format!("Reversal{n} Person"),
        start_ms,
        now_ms() as i64,
    ));
    let sent = send_like_lever(
        &h.client,
        &hook_url(h),
        &about(
            "candidateHired",
            &format!("rev-hire-{n}"),
            &format!("opp-{n:05}"),
            &contact,
        ),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    h.wait_idle(Duration::from_secs(60)).await;
    format!("lever:{contact}")
}

async fn account_of(h: &TestHost, person: &str) -> Option<Value> {
    let contact = person.trim_start_matches("lever:");
    h.sandbox_accounts()
        .await
        .into_iter()
        .find(|a| a["anchor"] == format!("sbx-{contact}"))
}

async fn open_actions(h: &TestHost, person: &str) -> Vec<Value> {
    let view = h.get(&format!("/api/v1/people/{person}/lifecycle")).await;
    view["scheduled"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reversed_hires_take_the_account_down_and_leave_nothing_pending() {
    let sim = LeverSim::start(SimOptions::default()).await;
    let h = TestHost::start(spec(&sim, "")).await;

    // 1. An offer rescinded after the hire: the opportunity is archived again with a
    //    non-hired reason. The pre-hire account goes, and so does its start-date wake-up.
    let rescinded = hire_by_webhook(&h, &sim, 1, FUTURE_START).await;
    let acc = account_of(&h, &rescinded).await.expect("a pre-hire account");
    assert_eq!(acc["enabled"], false, "disabled until the start date: {acc}");
    assert!(
        open_actions(&h, &rescinded)
            .await
            .iter()
            .any(|a| a["action"] == "lifecycle"),
        "the start date is scheduled"
    );
    sim.change("opp-00001", |o| o.archive_reason = Some(OTHER_REASON.into()));
    let sent = send_like_lever(
        &h.client,
        &hook_url(&h),
        &about("candidateArchiveChange", "rev-rescind-1", "opp-00001", "rev-1"),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(sent.status, 200);
    h.wait_idle(Duration::from_secs(60)).await;
    assert!(
        account_of(&h, &rescinded).await.is_none(),
        "the account is taken down"
    );
    assert_eq!(
        open_actions(&h, &rescinded).await,
        Vec::<Value>::new(),
        "no pending enablement"
    );
    let view = h.get(&format!("/api/v1/people/{rescinded}/lifecycle")).await;
    assert_eq!(view["state"], "withdrawn", "{view}");

    // 2. A candidate deleted in Lever before the start (the default: withdraw). The
    //    deletion carries ids only; the rules see the person as last known.
    let deleted = hire_by_webhook(&h, &sim, 2, FUTURE_START).await;
    assert!(account_of(&h, &deleted).await.is_some());
    sim.delete("opp-00002");
    let sent = send_like_lever(
        &h.client,
        &hook_url(&h),
        &about("candidateDeleted", "rev-delete-2", "opp-00002", "rev-2"),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(sent.status, 200);
    h.wait_idle(Duration::from_secs(60)).await;
    assert!(account_of(&h, &deleted).await.is_none());
    assert!(open_actions(&h, &deleted).await.is_empty());
    let held = h.get("/api/v1/jobs?state=held").await;
    assert_eq!(
        held.as_array().map(Vec::len),
        Some(0),
        "nothing held for missing attributes: {held}"
    );

    // 3. A hire withdrawn through the API, with ids only.
    let withdrawn = hire_by_webhook(&h, &sim, 3, FUTURE_START).await;
    let event = json!({ "kind": "withdrawn", "source": "lever", "source_record_id": "withdraw-3",
                        "person": { "ids": [{"source": "lever", "id": "rev-3"}] } });
    let (status, body) = h.post_event(&event, "withdraw-3").await;
    assert_eq!(status, 202, "{body}");
    h.wait_idle(Duration::from_secs(60)).await;
    assert!(account_of(&h, &withdrawn).await.is_none());
    assert!(open_actions(&h, &withdrawn).await.is_empty());

    // 4. A candidate deleted in Lever after the person started: their access is the HR
    //    system's to end, so the account stays, and the audit says why.
    let started = hire_by_webhook(&h, &sim, 4, PAST_START).await;
    sim.delete("opp-00004");
    let sent = send_like_lever(
        &h.client,
        &hook_url(&h),
        &about("candidateDeleted", "rev-delete-4", "opp-00004", "rev-4"),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(sent.status, 200);
    h.wait_idle(Duration::from_secs(60)).await;
    assert_eq!(
        account_of(&h, &started).await.expect("still there")["enabled"],
        true
    );
    let audit = h.audit(Some(&started)).await;
    assert!(
        audit.iter().any(|e| e["kind"] == "lifecycle.withdrawal_ignored"),
        "{audit:?}"
    );
    assert_audit_intact(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_opportunity_is_recorded_and_a_forged_flood_is_counted_not_written_out() {
    let sim = LeverSim::start(SimOptions::default()).await;
    let h = TestHost::start(spec(&sim, "")).await;
    // Lever says the opportunity does not exist: acknowledged (a retry would not help),
    // then rejected by enrichment and audited; never a 503.
    let sent = send_like_lever(
        &h.client,
        &hook_url(&h),
        &about("candidateHired", "ghost-1", "opp-99999", "ghost"),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!((sent.status, sent.tries), (200, 1));
    h.wait_idle(Duration::from_secs(30)).await;
    let rejected = deliveries(&h, "rejected").await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("does not have"),
        "{rejected:?}"
    );
    let audit = h.audit(None).await;
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "webhook.rejected" && e["data"]["delivery"].is_number()),
        "the rejection is audited"
    );

    // A flood of forged deliveries: every one refused and counted; the audit keeps a
    // sample, each entry saying how many it left out.
    let forged = 120;
    for i in 0..forged {
        let mut d: Value =
            serde_json::from_slice(&about("candidateHired", &format!("f-{i}"), "opp-1", "x")).unwrap();
        d["signature"] = json!("00".repeat(32));
        let resp = h
            .client
            .post(hook_url(&h))
            .body(d.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "tenure_webhook_refusals_total{{source=\"lever\",status=\"401\"}} {forged}"
        )),
        "{metrics}"
    );
    let written: Vec<Value> = h
        .audit(None)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "webhook.rejected" && e["data"]["status"] == 401)
        .collect();
    let left_out: u64 = written
        .iter()
        .filter_map(|e| e["data"]["left_out_before"].as_u64())
        .sum();
    assert!(written.len() >= 20 && written.len() < forged, "{}", written.len());
    assert!(written.len() as u64 + left_out <= forged as u64);
    assert_audit_intact(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_give_the_contract_end_names_split_well_and_a_hire_without_a_start_date_waits() {
    let sim = LeverSim::start(SimOptions::default()).await;
    let h = TestHost::start(spec(&sim, "end_date_field = \"contract_end_date\"")).await;
    let mut contractor = Opportunity::hire(1, "c-1", "Siobhán Ní Bhriain", PAST_START, now_ms() as i64);
    contractor.offer_fields = vec![("contract_end_date".into(), json!("2099-10-31"))];
    sim.add(contractor);
    sim.add(Opportunity::hire(
        2,
        "c-2",
        "Nguyễn Thị Lan",
        PAST_START,
        now_ms() as i64,
    ));
    let mut no_offer = Opportunity::hire(3, "c-3", "Noor Offer", PAST_START, now_ms() as i64);
    no_offer.start_ms = None;
    sim.add(no_offer);
    for n in 1..=3 {
        let body = about("candidateHired", &format!("o-{n}"), &format!("opp-{n:05}"), "x");
        assert_eq!(
            send_like_lever(&h.client, &hook_url(&h), &body, Duration::from_millis(100))
                .await
                .status,
            200
        );
    }
    h.wait_idle(Duration::from_secs(60)).await;
    let person = |record: &str| {
        let store = h.store.clone();
        let record = record.to_string();
        async move {
            let e = store.event_by_record(TENANT, "lever", &record).await.unwrap();
            e.map(|e| serde_json::from_str::<Value>(&e.body).unwrap()["person"].clone())
        }
    };
    let siobhan = person("candidateHired:opp-00001:o-1").await.expect("hired");
    assert_eq!(
        (siobhan["given_name"].as_str(), siobhan["family_name"].as_str()),
        (Some("Siobhán"), Some("Ní Bhriain"))
    );
    assert_eq!(
        siobhan["end_date"], "2099-10-31",
        "the offer's contract end is the person's end date"
    );
    let lan = person("candidateHired:opp-00002:o-2").await.expect("hired");
    assert_eq!(
        (lan["given_name"].as_str(), lan["family_name"].as_str()),
        (Some("Thị Lan"), Some("Nguyễn"))
    );
    assert!(
        person("candidateHired:opp-00003:o-3").await.is_none(),
        "no start date: no event, no access (start_without_offer = wait)"
    );
    assert!(account_of(&h, "lever:c-3").await.is_none());
    h.stop().await;

    // With `start_without_offer = "hire-date"`, the day Lever marked the hire is the start.
    let h = TestHost::start(spec(&sim, "start_without_offer = \"hire-date\"")).await;
    let body = about("candidateHired", "o-3b", "opp-00003", "x");
    assert_eq!(
        send_like_lever(&h.client, &hook_url(&h), &body, Duration::from_millis(100))
            .await
            .status,
        200
    );
    h.wait_idle(Duration::from_secs(60)).await;
    let e = h
        .store
        .event_by_record(TENANT, "lever", "candidateHired:opp-00003:o-3b")
        .await
        .unwrap()
        .expect("hired");
    let p: Value = serde_json::from_str(&e.body).unwrap();
    assert!(
        p["person"]["start_date"].as_str().is_some_and(|d| d.len() == 10),
        "{p}"
    );
    h.stop().await;
}

/// Someone in HR watches a Lever hire become an account in the console (issue 22): signed in
/// before the hire arrives, they find the new person on the people page with their account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lever_hire_is_watched_becoming_an_account_in_the_console() {
    let sim = LeverSim::start(SimOptions::default()).await;
    let h = TestHost::start(spec(&sim, "")).await;
    let password = "hr's long enough passphrase";
    let hana = tenure_store::NewUser {
        tenant: TENANT.into(),
        login: "hana".into(),
        display_name: "Hana HR".into(),
        roles: vec![tenure_store::Role::HrAdmin, tenure_store::Role::Auditor],
        password_hash: Some(tenure_server::passwords::hash_password(password).expect("hash")),
    };
    h.store.create_user(hana, vec![]).await.expect("hana");
    let watching = tenure_tests::browser::start(
        "watch.mjs",
        &[
            h.base.as_str(),
            TENANT,
            "hana",
            password,
            "Reversal7 Person",
            "sandbox",
        ],
    );
    // The hire arrives while the page is open.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let person = hire_by_webhook(&h, &sim, 7, PAST_START).await;
    let seen = tenure_tests::browser::seen(watching).await;
    assert!(
        seen["found"].as_str().unwrap_or_default().contains(&person),
        "{seen:#}"
    );
    let anchor = account_of(&h, &person).await.expect("the account")["anchor"].clone();
    assert!(
        seen["accounts"]
            .as_str()
            .unwrap_or_default()
            .contains(anchor.as_str().unwrap_or("?")),
        "the page shows the account the sandbox holds: {seen:#}"
    );
    h.stop().await;
}
