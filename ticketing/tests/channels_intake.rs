//! What the channels rely on: idempotent intake (a retried submission makes nothing new),
//! supplements to an open report, and conversation threads. SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set.

use jiff::{SignedDuration, Timestamp};
use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::db_test;
use ticketing::department::Directory;
use ticketing::model::{Attachment, AttachmentKind, Location, Reporter};
use ticketing::sla::{Sla, SlaConfig};
use ticketing::store::{Origin, Supplement};
use ticketing::{Action, ActionKind, Actor, Channel, Hotline, NewTicket, Role, Status, Tickets};

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
    Tickets::new(store, sla, catalogue, directory, hotlines)
}

fn wechat_actor() -> Actor {
    Actor {
        id: 0,
        name: "WeChat".into(),
        role: Role::Agent,
        department: None,
    }
}

fn wechat_report(content: &str) -> NewTicket {
    NewTicket {
        channel: Some(Channel::Wechat),
        reporter: Reporter {
            wechat_openid: Some("oFollower1".into()),
            ..Default::default()
        },
        content: content.into(),
        ..Default::default()
    }
}

fn now() -> Timestamp {
    "2026-12-01T02:00:00Z".parse().unwrap()
}

db_test!(a_retried_submission_makes_no_second_ticket, |db| {
    let t = service(db.store.clone());
    let a = wechat_actor();
    let key = &Origin::keyed("wechat:msg:6054768590064713728");
    let first = t
        .intake_once(wechat_report("人民路井盖丢了"), key, &a, now())
        .await
        .unwrap();
    assert!(!first.replayed);
    // WeChat's retry 5 s later, and a third one with different text (a forged replay): same ticket.
    for text in ["人民路井盖丢了", "别的内容"] {
        let again = t
            .intake_once(
                wechat_report(text),
                key,
                &a,
                now() + SignedDuration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.ticket.number, first.ticket.number);
        assert_eq!(again.ticket.content, "人民路井盖丢了");
    }
    let other = t
        .intake_once(
            wechat_report("路灯不亮"),
            &Origin::keyed("wechat:msg:2"),
            &a,
            now(),
        )
        .await
        .unwrap();
    assert!(!other.replayed);
    assert_ne!(other.ticket.number, first.ticket.number);
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tickets")
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(
        db.store.ticket_for_key("wechat:msg:2").await.unwrap(),
        Some(other.ticket.number)
    );
});

db_test!(concurrent_retries_with_one_key_make_one_ticket, |db| {
    let t = service(db.store.clone());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let t = t.clone();
        set.spawn(async move {
            t.intake_once(
                wechat_report("占道经营"),
                &Origin::keyed("app:u1:k-1"),
                &wechat_actor(),
                now(),
            )
            .await
            .unwrap()
        });
    }
    let mut numbers = Vec::new();
    let mut fresh = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        fresh += usize::from(!r.replayed);
        numbers.push(r.ticket.number);
    }
    assert_eq!(fresh, 1);
    numbers.dedup();
    assert_eq!(numbers.len(), 1, "{numbers:?}");
});

db_test!(supplements_add_to_an_open_report_once, |db| {
    let t = service(db.store.clone());
    let a = wechat_actor();
    let ticket = t
        .intake_once(
            wechat_report("井盖丢了"),
            &Origin::keyed("wechat:msg:1"),
            &a,
            now(),
        )
        .await
        .unwrap()
        .ticket;
    let n = ticket.number.to_string();
    let photo = Supplement {
        attachments: vec![Attachment {
            kind: AttachmentKind::Photo,
            uri: "media/2026/12/01/a.jpg".into(),
            content_type: Some("image/jpeg".into()),
            note: None,
        }],
        ..Default::default()
    };
    let later = now() + SignedDuration::from_secs(30);
    let s = t
        .supplement(&n, photo.clone(), &Origin::keyed("wechat:msg:2"), &a, later)
        .await
        .unwrap();
    assert!(!s.replayed);
    assert_eq!(s.ticket.attachments.len(), 1);
    // The retry adds nothing.
    let s = t
        .supplement(&n, photo, &Origin::keyed("wechat:msg:2"), &a, later)
        .await
        .unwrap();
    assert!(s.replayed);
    assert_eq!(s.ticket.attachments.len(), 1);
    let place = Supplement {
        content: Some("位置：亳州市谯城区人民路 88 号".into()),
        location: Location {
            address: Some("亳州市谯城区人民路 88 号".into()),
            lat: Some(33.844),
            lon: Some(115.779),
            grid_code: None,
        },
        ..Default::default()
    };
    let s = t
        .supplement(&n, place, &Origin::keyed("wechat:msg:3"), &a, later)
        .await
        .unwrap();
    assert_eq!(s.ticket.content, "井盖丢了\n位置：亳州市谯城区人民路 88 号");
    let stored = t.get(&n, &a).await.unwrap();
    assert_eq!(stored.location.lat, Some(33.844));
    assert_eq!(stored.attachments.len(), 1);
    assert_eq!(stored.work.status, Status::Received);
    let trail = t.history(&n, &a).await.unwrap();
    let kinds: Vec<_> = trail.iter().map(|e| e.action).collect();
    assert_eq!(
        kinds,
        [
            ActionKind::Create,
            ActionKind::Supplement,
            ActionKind::Supplement
        ]
    );
    assert_eq!(trail[1].from, Some(Status::Received));
    assert_eq!(trail[1].to, Status::Received);

    // A rejected ticket takes no more.
    let supervisor = Actor {
        id: 7,
        name: "值班长".into(),
        role: Role::Supervisor,
        department: None,
    };
    t.act(
        &n,
        &supervisor,
        &Action::Reject {
            reason: "重复".into(),
        },
        later,
    )
    .await
    .unwrap();
    let err = t
        .supplement(
            &n,
            Supplement {
                content: Some("还没修".into()),
                ..Default::default()
            },
            &Origin::keyed("wechat:msg:4"),
            &a,
            later,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "illegal_transition", "{err}");
    assert!(
        t.supplement(
            "12319-20261201-999999",
            Supplement::default(),
            &Origin::default(),
            &a,
            later
        )
        .await
        .is_err()
    );
});

db_test!(threads_point_at_the_latest_ticket, |db| {
    let t = service(db.store.clone());
    let a = wechat_actor();
    let first = t
        .intake(wechat_report("井盖丢了"), &a, now())
        .await
        .unwrap()
        .number;
    assert_eq!(
        db.store
            .thread(Channel::Wechat, "oFollower1")
            .await
            .unwrap(),
        None
    );
    db.store
        .touch_thread(Channel::Wechat, "oFollower1", &first, now())
        .await
        .unwrap();
    let later = now() + SignedDuration::from_mins(3);
    db.store
        .touch_thread(Channel::Wechat, "oFollower1", &first, later)
        .await
        .unwrap();
    // An older touch does not move the clock back.
    db.store
        .touch_thread(Channel::Wechat, "oFollower1", &first, now())
        .await
        .unwrap();
    let th = db
        .store
        .thread(Channel::Wechat, "oFollower1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(th.ticket, first);
    assert_eq!(th.last_at, later);
    assert_eq!(
        db.store.thread(Channel::App, "oFollower1").await.unwrap(),
        None
    );
    db.store
        .end_thread(Channel::Wechat, "oFollower1")
        .await
        .unwrap();
    assert_eq!(
        db.store
            .thread(Channel::Wechat, "oFollower1")
            .await
            .unwrap(),
        None
    );
});

// sqlx's `Any` driver sends a missing `f64` as a PostgreSQL `real`, and a cached prepared
// statement keeps the parameter types of its first use: a located report after an unlocated one
// on the same connection failed with "incorrect binary data format". Ten unlocated reports and
// then ten located ones give every pooled connection (at most four) both, in that order.
db_test!(located_reports_after_unlocated_ones, |db| {
    let t = service(db.store.clone());
    let a = wechat_actor();
    let located = |yes: bool| {
        if yes {
            Location {
                address: Some("亳州市谯城区人民路 88 号".into()),
                lat: Some(33.844),
                lon: Some(115.779),
                grid_code: None,
            }
        } else {
            Location::default()
        }
    };
    let mut numbers = Vec::new();
    for i in 0..20 {
        let mut new = wechat_report(&format!("第 {i} 号路灯不亮"));
        new.location = located(i >= 10);
        let key = format!("app:{i}");
        let made = t
            .intake_once(new, &Origin::keyed(&key), &a, now())
            .await
            .unwrap();
        assert_eq!(made.ticket.location.lat, (i >= 10).then_some(33.844));
        numbers.push(made.ticket.number.to_string());
    }
    // The same for supplements: the first ten add no place, the next ten add one to tickets
    // that had none.
    for (i, number) in numbers
        .iter()
        .take(10)
        .chain(numbers.iter().take(10))
        .enumerate()
    {
        let add = Supplement {
            content: Some(format!("补充 {i}")),
            location: located(i >= 10),
            ..Default::default()
        };
        let key = format!("app:more:{i}");
        let s = t
            .supplement(number, add, &Origin::keyed(&key), &a, now())
            .await
            .unwrap();
        assert_eq!(s.ticket.location.lat, (i >= 10).then_some(33.844));
    }
    for (i, number) in numbers.iter().enumerate() {
        let stored = t.get(number, &a).await.unwrap();
        assert_eq!(stored.location.lat, Some(33.844), "report {i}");
    }
});
