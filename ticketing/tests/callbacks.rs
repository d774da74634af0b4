//! Callback tasks on a real database: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set.

use ivr::acd::{CallId, CallbackOutcome, CallbackTask};
use jiff::{SignedDuration, Timestamp};
use ticketing::callbacks::CallbackState;
use ticketing::db_test;
use ticketing::store::AttemptError;
use ticketing::{Actor, Role};

/// Monday 2026-11-23 09:00 in Shanghai.
fn monday_morning() -> Timestamp {
    "2026-11-23T01:00:00Z".parse().unwrap()
}

fn task(call: &str, number: &str, at: Timestamp) -> CallbackTask {
    CallbackTask {
        call: CallId(call.into()),
        caller_number: number.into(),
        queue: "12319-intake".into(),
        language: Some("zh".into()),
        requested_at: at,
    }
}

fn agent() -> Actor {
    Actor {
        id: 7,
        name: "王芳".into(),
        role: Role::Agent,
        department: None,
    }
}

db_test!(
    a_task_is_stored_once_per_call_and_listed_oldest_first,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        let later = store
            .create_callback(
                "12319",
                &task("call-b", "13900000002", t0 + SignedDuration::from_mins(5)),
            )
            .await
            .unwrap();
        let first = store
            .create_callback("12319", &task("call-a", "13900000001", t0))
            .await
            .unwrap();
        // The ACD asking twice for the same call (a retried event) makes no second task.
        let again = store
            .create_callback("12319", &task("call-a", "13999999999", t0))
            .await
            .unwrap();
        assert_eq!(first, again);
        store
            .create_callback("12345", &task("call-c", "13900000003", t0))
            .await
            .unwrap();
        let open = store
            .callbacks(CallbackState::Open, Some("12319"), 100)
            .await
            .unwrap();
        let ids: Vec<i64> = open.iter().map(|t| t.id).collect();
        assert_eq!(ids, [first, later]);
        assert_eq!(open[0].caller_number, "13900000001");
        assert_eq!(open[0].requested_at, t0);
        assert_eq!(open[0].language.as_deref(), Some("zh"));
        assert!(open[0].is_open() && open[0].attempts == 0);
        assert_eq!(
            store
                .callbacks(CallbackState::All, None, 100)
                .await
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            store
                .callbacks(CallbackState::All, None, 1)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .callbacks(CallbackState::Closed, None, 100)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

db_test!(
    attempts_keep_a_task_open_until_one_closes_it_and_are_audited,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        let id = store
            .create_callback("12319", &task("call-a", "13900000001", t0))
            .await
            .unwrap();
        let t1 = t0 + SignedDuration::from_mins(10);
        let busy = store
            .callback_attempt(id, &agent(), CallbackOutcome::Busy, None, t1)
            .await
            .unwrap();
        assert!(busy.is_open());
        assert_eq!(busy.attempts, 1);
        assert_eq!(busy.last_outcome, Some(CallbackOutcome::Busy));
        assert_eq!(busy.last_attempt_at, Some(t1));
        let t2 = t1 + SignedDuration::from_mins(30);
        let reached = store
            .callback_attempt(id, &agent(), CallbackOutcome::Reached, Some("已登记"), t2)
            .await
            .unwrap();
        assert_eq!(reached.closed_at, Some(t2));
        assert_eq!(reached.attempts, 2);
        assert_eq!(reached.last_agent.as_deref(), Some("王芳"));
        // Closed: a further attempt is refused and changes nothing.
        let err = store
            .callback_attempt(id, &agent(), CallbackOutcome::NoAnswer, None, t2)
            .await
            .unwrap_err();
        assert!(matches!(err, AttemptError::Closed(i) if i == id), "{err}");
        assert_eq!(store.callback(id).await.unwrap().unwrap().attempts, 2);
        let err = store
            .callback_attempt(id + 100, &agent(), CallbackOutcome::Reached, None, t2)
            .await
            .unwrap_err();
        assert!(matches!(err, AttemptError::NotFound(_)), "{err}");
        // Each attempt is in the audit log with its outcome.
        let trail = store.list_audit(&format!("callback:{id}")).await.unwrap();
        let outcomes: Vec<&str> = trail
            .iter()
            .map(|e| e.detail["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["busy", "reached"]);
        assert_eq!(trail[1].detail["note"], "已登记");
        assert_eq!(trail[1].action, "callback.attempt");
        assert_eq!(trail[1].actor_name, "王芳");
    }
);
