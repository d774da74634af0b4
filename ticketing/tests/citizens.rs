//! City-app citizens on a real database: a code spent once, tokens that expire, points awarded
//! once per citizen, ticket and reason within the daily cap, ratings once and only after closure,
//! and a citizen's view without staff notes. SQLite always, PostgreSQL when `TEST_DATABASE_URL`
//! is set.

use jiff::{SignedDuration, Timestamp};
use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::citizens::{Rating, RatingError, Reason, RewardRule};
use ticketing::db_test;
use ticketing::department::Directory;
use ticketing::model::{PhoneNumber, Reporter};
use ticketing::sla::{Sla, SlaConfig};
use ticketing::store::Citizen;
use ticketing::{Action, Actor, Channel, Hotline, NewTicket, Role, Tickets};

fn service(store: ticketing::Store) -> Tickets {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
    let read = |f: &str| std::fs::read_to_string(format!("{root}/{f}")).unwrap();
    let catalogue = Catalogue::from_toml(&read("categories.toml")).unwrap();
    let directory = Directory::from_toml(&read("departments.toml")).unwrap();
    let sla = Sla::new(calendar(), SlaConfig::default(), &catalogue);
    let hotlines = vec![Hotline {
        number: "12319".into(),
        name: "城市管理服务热线".into(),
        aliases: vec![],
        hours: None,
    }];
    Tickets::new(store, sla, catalogue, directory, hotlines)
}

fn calendar() -> WorkCalendar {
    WorkCalendar::from_config(&CalendarConfig::default()).unwrap()
}

fn staff(role: Role) -> Actor {
    Actor {
        id: 7,
        name: "值班长老周".into(),
        role,
        department: None,
    }
}

fn t0() -> Timestamp {
    "2026-12-02T02:00:00Z".parse().unwrap()
}

/// Logs `phone` in with a fresh code; the citizen and their token hash.
async fn citizen(t: &Tickets, phone: &str, token: &str) -> Citizen {
    let store = t.store();
    let id = store
        .add_code(phone, "hash", t0(), t0() + SignedDuration::from_mins(5))
        .await
        .unwrap();
    store
        .redeem_code(
            id,
            phone,
            token,
            t0(),
            t0() + SignedDuration::from_hours(24),
        )
        .await
        .unwrap()
        .unwrap()
}

fn report(c: &Citizen, content: &str) -> NewTicket {
    NewTicket {
        channel: Some(Channel::App),
        reporter: Reporter {
            phone: Some(PhoneNumber::parse(&c.phone).unwrap()),
            app_user: Some(c.app_user()),
            ..Default::default()
        },
        content: content.into(),
        category: Some("C0102".into()),
        ..Default::default()
    }
}

db_test!(a_code_is_spent_once_and_a_token_expires, |db| {
    let t = service(db.store.clone());
    let store = t.store();
    let id = store
        .add_code(
            "13900000001",
            "h1",
            t0(),
            t0() + SignedDuration::from_mins(5),
        )
        .await
        .unwrap();
    let sent = store
        .code_sends_since("13900000001", t0() - SignedDuration::from_hours(1))
        .await
        .unwrap();
    assert_eq!(sent, [t0()]);
    store.code_failed(id).await.unwrap();
    let pending = store.latest_code("13900000001").await.unwrap().unwrap();
    assert_eq!((pending.attempts, pending.used), (1, false));
    let later = t0() + SignedDuration::from_secs(30);
    let expires = later + SignedDuration::from_hours(24);
    let c = store
        .redeem_code(id, "13900000001", "tok1", later, expires)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.phone.as_str(), c.points), ("13900000001", 0));
    // The code is spent: a second login with it makes nothing.
    assert!(
        store
            .redeem_code(id, "13900000001", "tok2", later, expires)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .latest_code("13900000001")
            .await
            .unwrap()
            .unwrap()
            .used
    );
    // The token works until it expires, then not; a second login is the same account.
    assert_eq!(
        store.citizen_by_token("tok1", later).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(store.citizen_by_token("tok1", expires).await.unwrap(), None);
    assert_eq!(store.citizen_by_token("tok2", later).await.unwrap(), None);
    let again = citizen(&t, "13900000001", "tok3").await;
    assert_eq!(again.id, c.id);
    store.end_citizen_token("tok3").await.unwrap();
    assert_eq!(store.citizen_by_token("tok3", later).await.unwrap(), None);
});

db_test!(points_are_awarded_once_and_capped_per_day, |db| {
    let t = service(db.store.clone());
    let store = t.store();
    let alice = citizen(&t, "13900000001", "a").await;
    let bob = citizen(&t, "13900000002", "b").await;
    let agent = staff(Role::Agent);
    let rule = RewardRule {
        on_file: 10,
        on_verify: 0,
        on_close: 5,
        daily_cap: 25,
    };
    let cursor = store.event_cursor("test_points").await.unwrap();
    let texts = ["幸福路污水井盖丢失", "长江路路灯不亮", "人民路垃圾桶满了"];
    let mut numbers = Vec::new();
    for text in texts {
        let ticket = t.intake(report(&alice, text), &agent, t0()).await.unwrap();
        numbers.push(ticket.number.to_string());
    }
    t.intake(report(&bob, "光明路护栏倒了"), &agent, t0())
        .await
        .unwrap();
    // Alice's three reports are filed: 10 + 10 + 5 (the cap), Bob's is not.
    for n in &numbers {
        t.act(
            n,
            &agent,
            &Action::File {
                category: None,
                priority: None,
                note: None,
            },
            t0(),
        )
        .await
        .unwrap();
    }
    let (awarded, last) = store
        .award_points_after(cursor, 100, &rule, &calendar())
        .await
        .unwrap();
    assert_eq!(awarded, 3);
    let (balance, ledger) = store.points_ledger(alice.id).await.unwrap();
    assert_eq!(balance, 25);
    let points: Vec<i64> = ledger.iter().map(|e| e.points).collect();
    assert_eq!(points, [5, 10, 10], "newest first, the last one capped");
    assert!(
        ledger
            .iter()
            .all(|e| e.reason == Reason::Filed && e.day == "2026-12-02")
    );
    assert_eq!(store.points_ledger(bob.id).await.unwrap().0, 0);
    // Replaying the whole stream awards nothing more.
    let (again, _) = store
        .award_points_after(cursor, 100, &rule, &calendar())
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(store.points_ledger(alice.id).await.unwrap().0, 25);
    // Nothing new after the cursor.
    assert_eq!(
        store
            .award_points_after(last, 100, &rule, &calendar())
            .await
            .unwrap(),
        (0, last)
    );
});

db_test!(ratings_wait_for_closure_and_views_hide_staff_notes, |db| {
    let t = service(db.store.clone());
    let alice = citizen(&t, "13900000001", "a").await;
    let bob = citizen(&t, "13900000002", "b").await;
    let agent = staff(Role::Agent);
    let ticket = t
        .intake(report(&alice, "幸福路污水井盖丢失"), &agent, t0())
        .await
        .unwrap();
    let n = ticket.number.to_string();
    let five = Rating {
        stars: 5,
        comment: Some("很快".into()),
    };
    let early = t.rate(&alice, &n, &five, t0()).await.unwrap_err();
    assert!(
        matches!(
            early,
            ticketing::app::RateError::Refused(RatingError::NotClosed(_))
        ),
        "{early}"
    );
    t.act(
        &n,
        &agent,
        &Action::Reject {
            reason: "内部：重复来电，已电话答复".into(),
        },
        t0(),
    )
    .await
    .unwrap_or_else(|e| panic!("reject: {e}"));
    let view = t.citizen_ticket(&alice, &n).await.unwrap();
    let steps: Vec<&str> = view.history.iter().map(|s| s.step).collect();
    assert_eq!(steps, ["已受理您的反映", "经审核不予立案"]);
    let json = serde_json::to_string(&view).unwrap();
    assert!(!json.contains("内部") && !json.contains("老周"), "{json}");
    // Rejected is final but not 结案: still no rating.
    assert!(t.rate(&alice, &n, &five, t0()).await.is_err());
    // Bob cannot see or rate Alice's report.
    assert!(matches!(
        t.citizen_ticket(&bob, &n).await,
        Err(ticketing::Error::NotFound(_))
    ));
    let list = t.citizen_tickets(&bob, 1, 20, t0()).await.unwrap();
    assert_eq!(list.total, 0);
    let list = t.citizen_tickets(&alice, 1, 20, t0()).await.unwrap();
    assert_eq!(list.total, 1);
    assert_eq!(list.items[0].status_text, "不予立案");
});
