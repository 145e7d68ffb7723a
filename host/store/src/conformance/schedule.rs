//! Dated actions and lifecycle records.

use super::{claim, event, intake, now};
use crate::*;
use std::sync::Arc;

fn action(kind: ActionKind, destination: &str, due_ms: i64) -> NewScheduledAction {
    NewScheduledAction {
        tenant: "t".into(),
        person_key: "p1".into(),
        destination: destination.into(),
        action: kind,
        due_ms,
        reason: "test".into(),
        now_ms: now(),
    }
}

pub async fn actions_keep_their_first_date_fire_once_and_cancel(store: Arc<dyn Store>) {
    let t = now();
    assert!(
        store
            .schedule_action(action(ActionKind::Delete, "ad", t + 100))
            .await
            .unwrap()
    );
    // A second leaver event does not push the date back.
    assert!(
        !store
            .schedule_action(action(ActionKind::Delete, "ad", t + 500))
            .await
            .unwrap()
    );
    assert!(store.take_due_actions(t + 99, 10).await.unwrap().is_empty());
    let due = store.take_due_actions(t + 100, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].due_ms, due[0].state, due[0].action),
        (t + 100, ActionState::Queued, ActionKind::Delete)
    );
    // Taken once: a second scan (another host) gets nothing.
    assert!(store.take_due_actions(t + 1_000, 10).await.unwrap().is_empty());
    store
        .finish_action(due[0].id, ActionState::Done, "deleted", t)
        .await
        .unwrap();
    let finished = store.scheduled_action(due[0].id).await.unwrap().unwrap();
    assert_eq!(
        (finished.state, finished.note.as_deref()),
        (ActionState::Done, Some("deleted"))
    );
    // An ended action stays ended.
    store
        .finish_action(due[0].id, ActionState::Cancelled, "late", t)
        .await
        .unwrap();
    assert_eq!(
        store.scheduled_action(due[0].id).await.unwrap().unwrap().state,
        ActionState::Done
    );
    // A rehire cancels what is still open; nothing then fires.
    assert!(
        store
            .schedule_action(action(ActionKind::Delete, "ad", t + 200))
            .await
            .unwrap()
    );
    let cancelled = store
        .cancel_actions(
            "t",
            "p1",
            Some("ad"),
            ActionMatch::Is(ActionKind::Delete),
            "rehired",
            t,
        )
        .await
        .unwrap();
    assert_eq!(cancelled, 1);
    assert!(store.take_due_actions(t + 1_000, 10).await.unwrap().is_empty());
    assert!(store.scheduled_actions("t", true).await.unwrap().is_empty());
    assert_eq!(store.scheduled_actions("t", false).await.unwrap().len(), 2);
}

/// A queued action whose job cannot carry it out yet waits again (a leaver step held for a
/// ticket): pending at the new date, fired again then; a finished one stays finished.
pub async fn a_deferred_action_waits_again_and_fires_at_its_new_date(store: Arc<dyn Store>) {
    let t = now();
    let step = ActionKind::LeaverStep(0);
    assert!(store.schedule_action(action(step, "ad", t)).await.unwrap());
    let due = store.take_due_actions(t + 1, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let id = due[0].id;
    assert!(
        store
            .defer_action(id, t + 1_000, "waits for ticket INC1")
            .await
            .unwrap()
    );
    let open = store.open_actions("t", "p1").await.unwrap();
    assert_eq!(
        (open[0].id, open[0].state, open[0].due_ms),
        (id, ActionState::Pending, t + 1_000)
    );
    assert!(
        store.take_due_actions(t + 999, 10).await.unwrap().is_empty(),
        "not before its date"
    );
    assert_eq!(store.take_due_actions(t + 1_000, 10).await.unwrap()[0].id, id);
    store
        .finish_action(id, ActionState::Done, "done", t + 1_000)
        .await
        .unwrap();
    assert!(
        !store.defer_action(id, t + 5_000, "late").await.unwrap(),
        "a finished action stays finished"
    );
    assert!(store.open_actions("t", "p1").await.unwrap().is_empty());
}

pub async fn reschedule_moves_a_pending_action_and_leaves_a_queued_one(store: Arc<dyn Store>) {
    let t = now();
    assert!(
        store
            .reschedule_action(action(ActionKind::Wake, "", t + 500))
            .await
            .unwrap(),
        "added"
    );
    assert!(
        !store
            .reschedule_action(action(ActionKind::Wake, "", t + 500))
            .await
            .unwrap(),
        "same date"
    );
    assert!(
        store
            .reschedule_action(action(ActionKind::Wake, "", t + 50))
            .await
            .unwrap(),
        "moved"
    );
    let open = store.open_actions("t", "p1").await.unwrap();
    assert_eq!((open.len(), open[0].due_ms), (1, t + 50));
    let due = store.take_due_actions(t + 60, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    // Queued: a job runs it; the date is left alone.
    assert!(
        !store
            .reschedule_action(action(ActionKind::Wake, "", t + 900))
            .await
            .unwrap()
    );
    assert_eq!(store.open_actions("t", "p1").await.unwrap()[0].due_ms, t + 50);
    // Kinds with data keep it.
    let notice = ActionKind::Notice { days: 30 };
    assert!(
        store
            .reschedule_action(action(notice, "", t + 5_000))
            .await
            .unwrap()
    );
    let kinds: Vec<ActionKind> = store
        .open_actions("t", "p1")
        .await
        .unwrap()
        .iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(kinds, [ActionKind::Wake, notice]);
}

pub async fn cancelling_leaver_steps_matches_every_step(store: Arc<dyn Store>) {
    let t = now();
    for (kind, dest) in [
        (ActionKind::LeaverStep(0), "ad"),
        (ActionKind::LeaverStep(1), "ad"),
        (ActionKind::LeaverStep(0), "google"),
        (ActionKind::Delete, "ad"),
    ] {
        assert!(
            store
                .schedule_action(action(kind, dest, t + 1_000))
                .await
                .unwrap()
        );
    }
    let steps = store
        .cancel_actions("t", "p1", None, ActionMatch::AnyLeaverStep, "back", t)
        .await
        .unwrap();
    assert_eq!(steps, 3);
    let open = store.open_actions("t", "p1").await.unwrap();
    assert_eq!(
        open.iter().map(|a| a.action).collect::<Vec<_>>(),
        [ActionKind::Delete]
    );
    assert!(ActionMatch::AnyLeaverStep.matches(ActionKind::LeaverStep(7)));
    assert!(!ActionMatch::Is(ActionKind::Delete).matches(ActionKind::Wake));
    // Another person's actions are untouched.
    let mut theirs = action(ActionKind::LeaverStep(0), "ad", t + 1_000);
    theirs.person_key = "p2".into();
    store.schedule_action(theirs).await.unwrap();
    assert_eq!(
        store
            .cancel_actions("t", "p1", None, ActionMatch::AnyLeaverStep, "x", t)
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.open_actions("t", "p2").await.unwrap().len(), 1);
}

pub async fn lifecycle_records_are_fenced_listed_and_find_reports(store: Arc<dyn Store>) {
    intake(&store, vec![event("a", "p1"), event("b", "p2"), event("c", "m")]).await;
    let claimed = claim(&store, "w").await;
    for job in &claimed {
        let manager = (job.person_key != "m").then(|| "m".to_string());
        let row = LifecycleRow {
            person_key: job.person_key.clone(),
            state: (job.person_key != "p2").then_some(LifecycleState::PreHire),
            manager_key: manager,
            doc: format!("{{\"p\":\"{}\"}}", job.person_key),
            updated_ms: now(),
            name: None,
            email: None,
        };
        store.put_lifecycle(&job.lease("w"), "t", row).await.unwrap();
    }
    let p2 = store.lifecycle("t", "p2").await.unwrap().unwrap();
    assert_eq!((p2.state, p2.manager_key.as_deref()), (None, Some("m")));
    assert!(store.lifecycle("t", "nobody").await.unwrap().is_none());
    let all: Vec<String> = store
        .lifecycles("t", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.person_key)
        .collect();
    assert_eq!(all, ["m", "p1", "p2"]);
    assert_eq!(store.lifecycles("t", 2).await.unwrap().len(), 2);
    // Known people, page by page.
    assert_eq!(store.known_people("t", None, 2).await.unwrap(), ["m", "p1"]);
    assert_eq!(store.known_people("t", Some("p1"), 2).await.unwrap(), ["p2"]);
    assert!(store.known_people("t", Some("p2"), 2).await.unwrap().is_empty());
    assert_eq!(
        store.reports_of("t", vec!["m".into(), "x".into()]).await.unwrap(),
        ["p1", "p2"]
    );
    assert!(store.reports_of("t", vec!["p1".into()]).await.unwrap().is_empty());
}

pub async fn people_are_found_by_name_email_or_key(store: Arc<dyn Store>) {
    intake(
        &store,
        vec![
            event("a", "hr:1"),
            event("b", "hr:2"),
            event("c", "lever:3"),
            event("d", "hr:4"),
        ],
    )
    .await;
    let cards = [
        ("hr:1", Some("José Núñez"), Some("jose.nunez@acme.test")),
        ("hr:2", Some("Ana 50%_Off"), Some("ana@acme.test")),
        ("lever:3", Some("Kim Lee"), None),
        ("hr:4", None, None),
    ];
    for job in claim(&store, "w").await {
        let (_, name, email) = cards.iter().find(|c| c.0 == job.person_key).expect("card");
        let row = LifecycleRow {
            person_key: job.person_key.clone(),
            state: Some(LifecycleState::Active),
            manager_key: None,
            doc: "{}".into(),
            updated_ms: now(),
            name: name.map(String::from),
            email: email.map(String::from),
        };
        store.put_lifecycle(&job.lease("w"), "t", row).await.unwrap();
    }
    let found = |text: &'static str, limit: usize| {
        let store = store.clone();
        async move {
            let rows = store.find_people("t", text, limit).await.unwrap();
            rows.into_iter().map(|r| r.person_key).collect::<Vec<_>>()
        }
    };
    // A part of the name, of the email (ASCII letters in any case), of the key.
    assert_eq!(found("NUNEZ@", 10).await, ["hr:1"]);
    assert_eq!(found("Núñez", 10).await, ["hr:1"]);
    assert_eq!(found("jose.", 10).await, ["hr:1"]);
    assert_eq!(found("kim", 10).await, ["lever:3"]);
    assert_eq!(found("lever:", 10).await, ["lever:3"]);
    // Named people first, by name.
    assert_eq!(found("hr:", 10).await, ["hr:2", "hr:1", "hr:4"]);
    assert_eq!(found("hr:", 2).await.len(), 2);
    // The search's text is text: `%` and `_` are not wildcards.
    assert_eq!(found("50%_", 10).await, ["hr:2"]);
    assert_eq!(found("%", 10).await, ["hr:2"]);
    assert_eq!(found("_", 10).await, ["hr:2"]);
    // The name and email follow the newest record; another tenant's people are not found.
    assert!(store.find_people("other", "hr:", 10).await.unwrap().is_empty());
    let p1 = store.lifecycle("t", "hr:1").await.unwrap().expect("hr:1");
    assert_eq!(p1.email.as_deref(), Some("jose.nunez@acme.test"));
}
