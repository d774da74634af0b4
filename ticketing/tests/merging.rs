//! Duplicate merging through the service on a real database: automatic merges, suggestions the
//! agent decides on, the priority raise, and unmerge, each audited. SQLite always, PostgreSQL
//! when `TEST_DATABASE_URL` is set.

use jiff::{SignedDuration, Timestamp};
use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::db_test;
use ticketing::department::Directory;
use ticketing::merge::MergePolicy;
use ticketing::model::{Location, PhoneNumber, Reporter};
use ticketing::sla::{Sla, SlaConfig};
use ticketing::store::Origin;
use ticketing::{ActionKind, Actor, Channel, Hotline, NewTicket, Priority, Role, Status, Tickets};

fn service(store: ticketing::Store) -> Tickets {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
    let read = |f: &str| std::fs::read_to_string(format!("{root}/{f}")).unwrap();
    let catalogue = Catalogue::from_toml(&read("categories.toml")).unwrap();
    let directory = Directory::from_toml(&read("departments.toml")).unwrap();
    let calendar = WorkCalendar::from_config(&CalendarConfig::default()).unwrap();
    let sla = Sla::new(calendar, SlaConfig::default(), &catalogue);
    let hotlines = vec![Hotline {
        number: "12319".into(),
        name: "城市管理服务热线".into(),
        aliases: vec![],
        hours: None,
    }];
    Tickets::new(store, sla, catalogue, directory, hotlines).with_merge_policy(MergePolicy {
        raise_priority_at: 3,
        ..MergePolicy::default()
    })
}

fn agent() -> Actor {
    Actor {
        id: 3,
        name: "话务员小李".into(),
        role: Role::Agent,
        department: None,
    }
}

/// A report at `metres` north of the 人民路/光明路 crossing in Bozhou.
fn report(content: &str, phone: &str, metres: f64) -> NewTicket {
    NewTicket {
        channel: Some(Channel::App),
        reporter: Reporter {
            phone: Some(PhoneNumber::parse(phone).unwrap()),
            ..Default::default()
        },
        content: content.into(),
        location: Location {
            address: None,
            lat: Some(33.8446 + metres / 111_000.0),
            lon: Some(115.7790),
            grid_code: None,
        },
        ..Default::default()
    }
}

fn t0() -> Timestamp {
    "2026-12-01T01:00:00Z".parse().unwrap()
}

db_test!(
    the_same_manhole_reported_twice_is_merged_and_can_be_unmerged,
    |db| {
        let t = service(db.store.clone());
        let a = agent();
        let first = t
            .intake(
                report("人民路光明路路口污水井盖丢了，很危险", "13800000001", 0.0),
                &a,
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(
            first.work.category.as_deref(),
            Some("C0102"),
            "污水井盖, suggested from the words"
        );
        let second = t
            .intake_once(
                report("光明路口的污水井盖不见了，有个大洞", "13800000002", 25.0),
                &Origin::default(),
                &a,
                t0() + SignedDuration::from_mins(40),
            )
            .await
            .unwrap();
        assert_eq!(
            second.ticket.merged_into.as_ref(),
            Some(&first.number),
            "{second:?}"
        );
        assert_eq!(second.ticket.work.status, Status::Closed);
        let target = t.get(first.number.as_str(), &a).await.unwrap();
        let phones: Vec<&str> = target
            .reporters
            .iter()
            .map(|r| r.phone.as_ref().unwrap().full())
            .collect();
        assert_eq!(phones, ["13800000001", "13800000002"]);
        assert_eq!(target.work.priority, Priority::Normal);
        let trail = t.history(first.number.as_str(), &a).await.unwrap();
        assert_eq!(trail.last().unwrap().action, ActionKind::Merge);
        assert!(
            trail
                .last()
                .unwrap()
                .note
                .as_deref()
                .unwrap()
                .contains(second.ticket.number.as_str())
        );

        // A third report reaches raise_priority_at = 3: the ticket becomes 紧急.
        let third = t
            .intake(
                report("人民路光明路交叉口井盖丢失，污水井", "13800000003", 10.0),
                &a,
                t0() + SignedDuration::from_hours(2),
            )
            .await
            .unwrap();
        assert_eq!(third.merged_into.as_ref(), Some(&first.number));
        let target = t.get(first.number.as_str(), &a).await.unwrap();
        assert_eq!(target.reporters.len(), 3);
        assert_eq!(target.work.priority, Priority::Urgent);

        // Unmerge the second: restored as it was, its reporter leaves the target.
        let (restored, from) = t
            .unmerge(
                second.ticket.number.as_str(),
                &a,
                t0() + SignedDuration::from_hours(3),
            )
            .await
            .unwrap();
        assert_eq!(from, first.number);
        assert_eq!(restored.work.status, Status::Received);
        assert_eq!(restored.merged_into, None);
        let target = t.get(first.number.as_str(), &a).await.unwrap();
        assert_eq!(target.reporters.len(), 2);
        assert!(
            !target
                .reporters
                .iter()
                .any(|r| r.phone.as_ref().unwrap().full() == "13800000002")
        );
        let kinds: Vec<_> = t
            .history(second.ticket.number.as_str(), &a)
            .await
            .unwrap()
            .iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            kinds,
            [ActionKind::Create, ActionKind::Merge, ActionKind::Unmerge]
        );
        assert_eq!(
            t.history(first.number.as_str(), &a)
                .await
                .unwrap()
                .last()
                .unwrap()
                .action,
            ActionKind::Unmerge
        );
        // Unmerging again, or merging into itself or into a merged ticket, is refused.
        assert!(
            t.unmerge(second.ticket.number.as_str(), &a, t0())
                .await
                .is_err()
        );
        let n = second.ticket.number.as_str();
        assert_eq!(
            t.merge_into(n, n, &a, t0()).await.unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(
            t.merge_into(
                n,
                third.number.as_str(),
                &a,
                t0() + SignedDuration::from_hours(4)
            )
            .await
            .unwrap_err()
            .code(),
            "invalid_request"
        );
    }
);

db_test!(
    a_different_problem_at_the_same_place_is_a_new_ticket,
    |db| {
        let t = service(db.store.clone());
        let a = agent();
        let lamp = t
            .intake(
                report("人民路光明路路口的路灯晚上不亮", "13800000011", 0.0),
                &a,
                t0(),
            )
            .await
            .unwrap();
        let other = t
            .intake_once(
                report("人民路光明路路口有人占道经营卖水果", "13800000012", 5.0),
                &Origin::default(),
                &a,
                t0() + SignedDuration::from_mins(5),
            )
            .await
            .unwrap();
        // Never merged without a person: the categories differ (the agent may still be shown it,
        // as a category suggested from the words can be wrong).
        assert_eq!(other.ticket.merged_into, None);
        assert_ne!(other.ticket.work.category, lamp.work.category);
        assert!(
            other.suggestions.iter().all(|m| m.score < 0.65),
            "{:?}",
            other.suggestions
        );
        assert_eq!(
            t.get(lamp.number.as_str(), &a)
                .await
                .unwrap()
                .reporters
                .len(),
            1
        );
    }
);

db_test!(suggestions_wait_for_the_agent, |db| {
    let t = service(db.store.clone());
    let a = agent();
    let mut first = report("北京路菜市场门口垃圾很多没人清理", "13800000021", 0.0);
    first.location = Location {
        address: Some("谯城区北京路菜市场".into()),
        ..Location::default()
    };
    let first = t.intake(first, &a, t0()).await.unwrap();
    let mut second = report("北京路菜市场门口垃圾堆积好几天了", "13800000022", 0.0);
    second.location = first.location.clone();
    let second = t
        .intake_once(
            second,
            &Origin::default(),
            &a,
            t0() + SignedDuration::from_mins(30),
        )
        .await
        .unwrap();
    // Without coordinates the decision stops at a suggestion.
    assert_eq!(second.ticket.merged_into, None);
    assert_eq!(
        second.suggestions[0].number, first.number,
        "{:?}",
        second.suggestions
    );
    let n = second.ticket.number.as_str();
    let listed = t.duplicates(n, &a, t0()).await.unwrap();
    assert_eq!(listed[0].number, first.number);
    assert!(listed[0].excerpt.starts_with("北京路菜市场"));
    // The agent rejects it: gone from the list; a second rejection finds nothing.
    t.reject_duplicate(n, first.number.as_str(), &a, t0())
        .await
        .unwrap();
    assert!(t.duplicates(n, &a, t0()).await.unwrap().is_empty());
    assert!(
        t.reject_duplicate(n, first.number.as_str(), &a, t0())
            .await
            .is_err()
    );
    // The agent merges after all, by hand.
    let (merged, target) = t
        .merge_into(
            n,
            first.number.as_str(),
            &a,
            t0() + SignedDuration::from_hours(1),
        )
        .await
        .unwrap();
    assert_eq!(merged.merged_into.as_ref(), Some(&first.number));
    assert_eq!(target.reporters.len(), 2);
    let trail = t.history(n, &a).await.unwrap();
    assert_eq!(trail.last().unwrap().actor_name, "话务员小李");
});

db_test!(a_place_sent_after_the_words_merges_the_report, |db| {
    let t = service(db.store.clone());
    let a = agent();
    let first = t
        .intake(
            report("人民路光明路路口污水井盖丢了，很危险", "13800000031", 0.0),
            &a,
            t0(),
        )
        .await
        .unwrap();
    // WeChat: the words first, with no place: nothing to merge with yet, and no search.
    let mut words = report("光明路口的污水井盖不见了，有个大洞", "13800000032", 0.0);
    words.location = Location::default();
    let later = t0() + SignedDuration::from_mins(20);
    let second = t
        .intake_once(words, &Origin::keyed("wechat:msg:1"), &a, later)
        .await
        .unwrap();
    assert_eq!(second.ticket.merged_into, None);
    assert!(second.suggestions.is_empty());
    // Then the location message: now it is the same manhole, 20 m away, and it is merged.
    let place = ticketing::store::Supplement {
        location: report("-", "13800000032", 20.0).location,
        ..Default::default()
    };
    let placed = t
        .supplement(
            second.ticket.number.as_str(),
            place,
            &Origin::keyed("wechat:msg:2"),
            &a,
            later + SignedDuration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(placed.ticket.merged_into.as_ref(), Some(&first.number));
    assert_eq!(placed.ticket.work.status, Status::Closed);
    let target = t.get(first.number.as_str(), &a).await.unwrap();
    assert_eq!(target.reporters.len(), 2);
    let trail = t.history(second.ticket.number.as_str(), &a).await.unwrap();
    let kinds: Vec<_> = trail.iter().map(|e| e.action).collect();
    assert_eq!(
        kinds,
        [
            ActionKind::Create,
            ActionKind::Supplement,
            ActionKind::Merge
        ]
    );
});

db_test!(a_report_without_a_place_gets_suggestions_on_demand, |db| {
    let t = service(db.store.clone());
    let a = agent();
    let mut first = report("北京路菜市场门口垃圾很多没人清理", "13800000041", 0.0);
    first.location = Location::default();
    let first = t.intake(first, &a, t0()).await.unwrap();
    let mut other = report("文化路路灯不亮", "13800000043", 0.0);
    other.location = Location::default();
    t.intake(other, &a, t0()).await.unwrap();
    let mut second = report("北京路菜市场门口垃圾堆积好几天了", "13800000042", 0.0);
    second.location = Location::default();
    let second = t
        .intake_once(
            second,
            &Origin::default(),
            &a,
            t0() + SignedDuration::from_mins(30),
        )
        .await
        .unwrap();
    assert!(second.suggestions.is_empty(), "not searched at intake");
    let n = second.ticket.number.as_str();
    let listed = t
        .duplicates(n, &a, t0() + SignedDuration::from_hours(1))
        .await
        .unwrap();
    let numbers: Vec<_> = listed.iter().map(|s| s.number.as_str()).collect();
    assert_eq!(
        numbers,
        [first.number.as_str()],
        "the same words, not the street light"
    );
    // A rejection sticks: looking again does not bring it back.
    t.reject_duplicate(
        n,
        first.number.as_str(),
        &a,
        t0() + SignedDuration::from_hours(1),
    )
    .await
    .unwrap();
    assert!(
        t.duplicates(n, &a, t0() + SignedDuration::from_hours(2))
            .await
            .unwrap()
            .is_empty()
    );
});

db_test!(every_reporter_of_a_merged_ticket_is_called_back, |db| {
    use ticketing::workflow::Satisfaction;
    use ticketing::{Action, Error, workflow::WorkflowError};
    let t = service(db.store.clone());
    let a = agent();
    let role = |id, role, department: Option<&str>| Actor {
        id,
        name: format!("user{id}"),
        role,
        department: department.map(Into::into),
    };
    let dispatcher = role(5, Role::Dispatcher, None);
    let dept = role(6, Role::Department, Some("DRAIN"));
    let supervisor = role(7, Role::Supervisor, None);
    let first = t
        .intake(
            report("人民路光明路路口污水井盖丢了，很危险", "13800000051", 0.0),
            &a,
            t0(),
        )
        .await
        .unwrap();
    let second = t
        .intake(
            report("光明路口的污水井盖不见了，有个大洞", "13800000052", 20.0),
            &a,
            t0() + SignedDuration::from_mins(10),
        )
        .await
        .unwrap();
    assert_eq!(second.merged_into.as_ref(), Some(&first.number));
    let n = first.number.as_str();
    let mut now = t0() + SignedDuration::from_mins(20);
    let steps: [(&Actor, Action); 5] = [
        (
            &a,
            Action::File {
                category: None,
                priority: None,
                note: None,
            },
        ),
        (
            &dispatcher,
            Action::Dispatch {
                department: "DRAIN".into(),
                note: None,
            },
        ),
        (&dept, Action::Accept { note: None }),
        (
            &dept,
            Action::Complete {
                note: "已补装井盖".into(),
                photos: vec![],
            },
        ),
        (
            &supervisor,
            Action::Verify {
                passed: true,
                note: None,
            },
        ),
    ];
    for (who, action) in &steps {
        now += SignedDuration::from_mins(5);
        t.act(n, who, action, now).await.unwrap();
    }
    let callback = |result, reporter| Action::Callback {
        result,
        note: None,
        reporter,
    };
    // The first reporter is satisfied: the second is still to be asked.
    now += SignedDuration::from_mins(5);
    let (ticket, event) = t
        .act(n, &a, &callback(Satisfaction::Satisfied, None), now)
        .await
        .unwrap();
    assert_eq!(ticket.work.status, Status::AwaitingCallback);
    assert_eq!(event.to, Status::AwaitingCallback);
    assert_eq!(ticket.work.callbacks.len(), 1);
    assert_eq!(ticket.work.callbacks[0].reporter, 0);
    // Asking the same reporter twice, or one the ticket does not have, is refused.
    let twice = t
        .act(n, &a, &callback(Satisfaction::Satisfied, Some(0)), now)
        .await;
    assert!(
        matches!(
            twice,
            Err(Error::Workflow(WorkflowError::AlreadyCalledBack {
                reporter: 0
            }))
        ),
        "{twice:?}"
    );
    let nobody = t
        .act(n, &a, &callback(Satisfaction::Satisfied, Some(2)), now)
        .await;
    assert!(
        matches!(
            nobody,
            Err(Error::Workflow(WorkflowError::NoSuchReporter {
                reporter: 2,
                reporters: 2
            }))
        ),
        "{nobody:?}"
    );
    // The second (the merged report's citizen) is basically satisfied: the ticket moves on, and
    // its result is the less satisfied of the two.
    let (ticket, _) = t
        .act(
            n,
            &a,
            &callback(Satisfaction::BasicallySatisfied, None),
            now,
        )
        .await
        .unwrap();
    assert_eq!(ticket.work.status, Status::AwaitingClose);
    assert_eq!(
        ticket.work.satisfaction,
        Some(Satisfaction::BasicallySatisfied)
    );
    let kinds: Vec<_> = t
        .history(n, &a)
        .await
        .unwrap()
        .iter()
        .map(|e| e.action)
        .filter(|k| *k == ActionKind::Callback)
        .collect();
    assert_eq!(kinds.len(), 2, "each 回访 is in the trail");
});
