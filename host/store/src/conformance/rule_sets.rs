//! Rule-set versions.

use super::{claim, event, intake, jobs};
use crate::*;
use std::sync::Arc;

fn draft(tenant: &str, document: &str) -> NewRuleSet {
    NewRuleSet {
        tenant: tenant.into(),
        document: document.into(),
        author: "hr".into(),
        message: format!("draft {document}"),
        tests_passed: true,
        tests: serde_json::json!({ "cases": [] }),
    }
}

pub async fn rule_set_versions_number_up_and_publish_a_head(store: Arc<dyn Store>) {
    assert!(store.current_rule_set("t").await.unwrap().is_none());
    let audit = || vec![AuditRecord::new("t", AuditKind::RulesDrafted, "hr").data(serde_json::json!({}))];
    let v1 = store.put_rule_set(draft("t", "one"), audit()).await.unwrap();
    let v2 = store.put_rule_set(draft("t", "two"), audit()).await.unwrap();
    let other = store.put_rule_set(draft("other", "x"), vec![]).await.unwrap();
    assert_eq!((v1.version, v2.version, other.version), (1, 2, 1));
    // The audit record learns the version number.
    let drafted: Vec<i64> = store
        .audit(AuditFilter::default())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.record.kind == AuditKind::RulesDrafted)
        .filter_map(|e| e.record.data["version"].as_i64())
        .collect();
    assert_eq!(drafted, [1, 2]);
    let versions: Vec<String> = store
        .rule_sets("t")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.document)
        .collect();
    assert_eq!(versions, ["one", "two"]);
    assert_eq!(
        store.rule_set("t", 2).await.unwrap().unwrap().message,
        "draft two"
    );
    assert!(store.rule_set("t", 3).await.unwrap().is_none());
    let publish = |version: i64, actor: &str, release: Option<&str>| Publish {
        tenant: "t".into(),
        version,
        actor: actor.into(),
        audit: vec![],
        release_held: release.map(String::from),
    };
    // Jobs held on a rules error go back in the queue with the publish, in the same write.
    intake(&store, vec![event("a", "p1"), event("b", "p2")]).await;
    for (job, reason) in claim(&store, "w")
        .await
        .iter()
        .zip(["rules: p1: no name", "guard:ad"])
    {
        let held = Finish::Held {
            reason: reason.into(),
        };
        assert!(
            store
                .finish(&job.lease("w"), held, vec![], vec![], None, vec![])
                .await
                .unwrap()
        );
    }
    let published = store
        .publish_rule_set(publish(2, "it", Some("rules:")))
        .await
        .unwrap();
    assert_eq!(
        (published.head.version, published.head.published_by.as_str()),
        (2, "it")
    );
    assert_eq!(published.released, 1);
    assert_eq!(
        jobs(&store, Some(JobState::Held)).await.len(),
        1,
        "another hold stays"
    );
    // Rollback is publishing an earlier version.
    store.publish_rule_set(publish(1, "it2", None)).await.unwrap();
    assert_eq!(
        store.current_rule_set("t").await.unwrap().map(|h| h.version),
        Some(1)
    );
    assert!(matches!(
        store.publish_rule_set(publish(9, "it", None)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.current_rule_set("t").await.unwrap().map(|h| h.version),
        Some(1)
    );
}
