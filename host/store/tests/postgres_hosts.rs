//! Several hosts on one PostgreSQL database, each with its own pool, as separate
//! `tenure serve` processes would have them: claims never overlap and keep each person's
//! order, a dead host's lease passes on and fences it, the audit chain stays one verifiable
//! order, a unique name has one winner, and each host hears of the others' changes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenure_store::conformance::{event, now};
use tenure_store::crypto::MasterKey;
use tenure_store::*;

mod postgres_bed {
    include!("support/postgres_bed.rs");
}

/// `n` hosts on one fresh schema (same master key, as a deployment's hosts have).
async fn hosts(n: usize) -> Vec<Arc<dyn Store>> {
    let schema = postgres_bed::fresh_schema("hosts");
    let mut out: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..n {
        let options = PgOptions {
            max_connections: 6,
            schema: Some(schema.clone()),
            ..PgOptions::new(postgres_bed::url())
        };
        out.push(
            PgStore::open(&options, MasterKey::from_bytes([7; 32]))
                .await
                .expect("open"),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_claim_each_job_once_in_each_persons_order() {
    let hosts = hosts(3).await;
    const PEOPLE: usize = 20;
    const PER_PERSON: usize = 8;
    // Every host takes a share of the events, interleaved, as a load balancer would send them.
    let mut intakes = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = host.clone();
        intakes.push(tokio::spawn(async move {
            for round in 0..PER_PERSON {
                for p in (0..PEOPLE).filter(|p| p % 3 == i) {
                    let key = format!("p{p}-{round}");
                    host.intake(vec![event(&key, &format!("p{p}"))], None)
                        .await
                        .expect("intake");
                }
            }
        }));
    }
    for t in intakes {
        t.await.expect("intake task");
    }
    // Each person's running job, and every job started, in the order the hosts started them.
    let running: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let started: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut workers = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        for w in 0..2 {
            let (host, running, started) = (host.clone(), running.clone(), started.clone());
            let owner = format!("host{i}-worker{w}");
            workers.push(tokio::spawn(async move {
                let mut idle = 0;
                while idle < 20 {
                    let jobs = host.claim(&owner, now(), 60_000, 4, vec![]).await.expect("claim");
                    if jobs.is_empty() {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    idle = 0;
                    for job in jobs {
                        {
                            let mut running = running.lock().unwrap();
                            let other = running.insert(job.person_key.clone(), job.id);
                            assert!(other.is_none(), "two jobs of {} ran at once", job.person_key);
                            started
                                .lock()
                                .unwrap()
                                .push((job.person_key.clone(), job.event.idempotency_key.clone()));
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        running.lock().unwrap().remove(&job.person_key);
                        let done = host
                            .finish(
                                &job.lease(&owner),
                                Finish::Completed,
                                vec![],
                                vec![],
                                None,
                                vec![],
                            )
                            .await
                            .expect("finish");
                        assert!(done, "job {} lost its lease", job.id);
                    }
                }
            }));
        }
    }
    for w in workers {
        w.await.expect("worker");
    }
    let started = started.lock().unwrap().clone();
    assert_eq!(started.len(), PEOPLE * PER_PERSON, "every job ran exactly once");
    let distinct: HashSet<&(String, String)> = started.iter().collect();
    assert_eq!(distinct.len(), started.len(), "no job ran twice");
    for p in 0..PEOPLE {
        let order: Vec<&str> = started
            .iter()
            .filter(|(person, _)| *person == format!("p{p}"))
            .map(|(_, key)| key.as_str())
            .collect();
        let expected: Vec<String> = (0..PER_PERSON).map(|r| format!("p{p}-{r}")).collect();
        assert_eq!(order, expected, "person p{p} ran out of order");
    }
    // One chain, verifiable, although three hosts appended to it at once.
    let report = hosts[1].verify_audit().await.expect("verify");
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.entries as usize, PEOPLE * PER_PERSON);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_hosts_lease_passes_to_another_and_fences_it() {
    let hosts = hosts(2).await;
    hosts[0]
        .intake(vec![event("a", "p1")], None)
        .await
        .expect("intake");
    let t0 = now();
    let first = hosts[0]
        .claim("host0", t0, 1_000, 10, vec![])
        .await
        .expect("claim")
        .remove(0);
    // Host 0 stops answering; once its lease ran out, host 1 takes the job over.
    assert!(
        hosts[1]
            .claim("host1", t0 + 500, 1_000, 10, vec![])
            .await
            .expect("claim")
            .is_empty()
    );
    let second = hosts[1]
        .claim("host1", t0 + 2_000, 60_000, 10, vec![])
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempt, 2);
    // Host 0 comes back: nothing it writes for its old attempt lands.
    assert!(
        !hosts[0]
            .finish(
                &first.lease("host0"),
                Finish::Completed,
                vec![],
                vec![],
                None,
                vec![]
            )
            .await
            .expect("finish")
    );
    let fenced = hosts[0]
        .put_link(
            &first.lease("host0"),
            LinkUpdate {
                tenant: "t".into(),
                destination: "d".into(),
                person_key: "p1".into(),
                link: Some(Link {
                    anchor: "a".into(),
                    managed_groups: vec![],
                }),
            },
            vec![],
        )
        .await;
    assert!(matches!(fenced, Err(StoreError::Fenced(_))), "{fenced:?}");
    assert!(
        hosts[1]
            .finish(
                &second[0].lease("host1"),
                Finish::Completed,
                vec![],
                vec![],
                None,
                vec![]
            )
            .await
            .expect("finish")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_unique_name_has_one_winner_across_hosts() {
    let hosts = hosts(4).await;
    for round in 0..10 {
        let value = format!("ada.lovelace{round}");
        let tries = hosts.iter().enumerate().map(|(i, h)| {
            let (h, value) = (h.clone(), value.clone());
            tokio::spawn(async move { h.claim_name("t", "mail", &value, &format!("p{i}")).await })
        });
        let mut winners = 0;
        for t in tries {
            winners += usize::from(t.await.expect("task").expect("claim"));
        }
        assert_eq!(winners, 1, "{value}: one person holds it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_host_hears_of_the_others_changes() {
    let hosts = hosts(2).await;
    let mut feed = hosts[1].changes();
    // Host 1 may not listen yet: hires go in until it hears of one (its connecting is heard
    // as a resync, which is passed over).
    let mut heard = false;
    for i in 0..50 {
        hosts[0]
            .intake(vec![event(&format!("a{i}"), "p1")], None)
            .await
            .expect("intake");
        let until = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Ok(Ok(change)) = tokio::time::timeout_at(until, feed.recv()).await {
            if change == Change::Jobs {
                heard = true;
            }
        }
        if heard {
            break;
        }
    }
    assert!(heard, "host 1 never heard of host 0's jobs");
    let version = hosts[0]
        .put_rule_set(
            NewRuleSet {
                tenant: "t".into(),
                document: "destinations: {}".into(),
                author: "a".into(),
                message: "m".into(),
                tests_passed: true,
                tests: serde_json::Value::Null,
            },
            vec![],
        )
        .await
        .expect("draft");
    hosts[0]
        .publish_rule_set(Publish {
            tenant: "t".into(),
            version: version.version,
            actor: "b".into(),
            audit: vec![],
            release_held: None,
        })
        .await
        .expect("publish");
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let published = loop {
        match tokio::time::timeout_at(until, feed.recv()).await {
            Ok(Ok(Change::RuleSet { tenant })) => break Some(tenant),
            Ok(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert_eq!(published.as_deref(), Some("t"), "host 1 heard of the publish");
    // A claim on any host says which version the tenant runs now.
    hosts[0]
        .intake(vec![event("b", "p2")], None)
        .await
        .expect("intake");
    let claimed = hosts[1]
        .claim("host1", now(), 60_000, 10, vec![])
        .await
        .expect("claim");
    assert!(
        claimed.iter().all(|j| j.rule_set == Some(version.version)),
        "{claimed:?}"
    );
}
