//! The ticket service and store on a real database: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set.

use jiff::{SignedDuration, Timestamp};
use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::db_test;
use ticketing::department::Directory;
use ticketing::model::{Location, PhoneNumber, Reporter};
use ticketing::sla::{Sla, SlaConfig, Stage};
use ticketing::store::TicketFilter;
use ticketing::workflow::Satisfaction;
use ticketing::{
    Action, ActionKind, Actor, Channel, Error, Hotline, NewTicket, Priority, Role, Status, Tickets,
};

fn service(store: ticketing::Store) -> Tickets {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
    let catalogue =
        Catalogue::from_toml(&std::fs::read_to_string(format!("{root}/categories.toml")).unwrap())
            .unwrap();
    let directory =
        Directory::from_toml(&std::fs::read_to_string(format!("{root}/departments.toml")).unwrap())
            .unwrap();
    let calendar = WorkCalendar::from_config(&CalendarConfig::default()).unwrap();
    let sla = Sla::new(calendar, SlaConfig::default(), &catalogue);
    let hotlines = vec![
        Hotline {
            number: "12319".into(),
            name: "城市管理服务热线".into(),
            aliases: vec!["+8655112319".into()],
            hours: None,
        },
        Hotline {
            number: "12345".into(),
            name: "政务服务便民热线".into(),
            aliases: vec![],
            hours: None,
        },
    ];
    Tickets::new(store, sla, catalogue, directory, hotlines)
}

fn actor(id: i64, role: Role, department: Option<&str>) -> Actor {
    Actor {
        id,
        name: format!("{role}-{id}"),
        role,
        department: department.map(Into::into),
    }
}

fn report(content: &str) -> NewTicket {
    NewTicket {
        channel: Some(Channel::Phone),
        reporter: Reporter {
            name: Some("王先生".into()),
            phone: Some(PhoneNumber::parse("13812345678").unwrap()),
            ..Default::default()
        },
        content: content.into(),
        category: Some("C0102".into()),
        location: Location {
            address: Some("人民路与解放路交叉口".into()),
            lat: Some(31.82),
            lon: Some(117.22),
            grid_code: None,
        },
        ..Default::default()
    }
}

/// Monday 2026-11-23 09:00 in Shanghai.
fn monday_morning() -> Timestamp {
    "2026-11-23T01:00:00Z".parse().unwrap()
}

db_test!(numbers_run_per_day_per_hotline, |db| {
    let t = service(db.store.clone());
    let agent = actor(1, Role::Agent, None);
    let day1 = monday_morning();
    let a = t.intake(report("井盖丢了"), &agent, day1).await.unwrap();
    let b = t.intake(report("井盖又丢了"), &agent, day1).await.unwrap();
    let mut other = report("咨询");
    other.hotline = Some("12345".into());
    let c = t.intake(other, &agent, day1).await.unwrap();
    // 23:30 UTC is already the next day in Shanghai.
    let d = t
        .intake(
            report("路灯不亮"),
            &agent,
            "2026-11-23T16:30:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(a.number.as_str(), "12319-20261123-000001");
    assert_eq!(b.number.as_str(), "12319-20261123-000002");
    assert_eq!(c.number.as_str(), "12345-20261123-000001");
    assert_eq!(d.number.as_str(), "12319-20261124-000001");
    let mut alias = report("别名");
    alias.hotline = Some("+8655112319".into());
    assert_eq!(
        t.intake(alias, &agent, day1).await.unwrap().hotline,
        "12319"
    );
});

db_test!(concurrent_intake_gives_unique_numbers, |db| {
    let t = service(db.store.clone());
    let agent = actor(1, Role::Agent, None);
    let now = monday_morning();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (t, agent) = (t.clone(), agent.clone());
        tasks.push(tokio::spawn(async move {
            t.intake(report(&format!("第{i}个井盖")), &agent, now)
                .await
                .unwrap()
                .number
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap().to_string());
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 40);
    assert_eq!(numbers.last().unwrap(), "12319-20261123-000040");
});

db_test!(a_ticket_walks_the_closed_loop_with_its_audit_trail, |db| {
    let t = service(db.store.clone());
    let agent = actor(1, Role::Agent, None);
    let dispatcher = actor(2, Role::Dispatcher, None);
    let dept = actor(3, Role::Department, Some("DRAIN"));
    let supervisor = actor(4, Role::Supervisor, None);
    let mut now = monday_morning();
    let ticket = t
        .intake(report("污水井盖丢失，有人差点掉下去"), &agent, now)
        .await
        .unwrap();
    let n = ticket.number.to_string();
    let mut step = |minutes: i64| {
        now += SignedDuration::from_mins(minutes);
        now
    };
    let steps: Vec<(Actor, Action, Status)> = vec![
        (
            agent.clone(),
            Action::File {
                category: None,
                priority: Some(Priority::Urgent),
                note: None,
            },
            Status::Filed,
        ),
        (
            dispatcher.clone(),
            Action::Dispatch {
                department: "DRAIN".into(),
                note: Some("请尽快处置".into()),
            },
            Status::Dispatched,
        ),
        (
            dept.clone(),
            Action::Accept { note: None },
            Status::InProgress,
        ),
        (
            dept.clone(),
            Action::Complete {
                note: "已补装井盖".into(),
                photos: vec!["photos/after.jpg".into()],
            },
            Status::Completed,
        ),
        (
            supervisor.clone(),
            Action::Verify {
                passed: true,
                note: Some("现场核实".into()),
            },
            Status::AwaitingCallback,
        ),
        (
            agent.clone(),
            Action::Callback {
                result: Satisfaction::Satisfied,
                note: None,
                reporter: None,
            },
            Status::AwaitingClose,
        ),
        (
            supervisor.clone(),
            Action::Close { note: None },
            Status::Closed,
        ),
    ];
    for (who, action, expected) in steps {
        let at = step(3);
        let (after, event) = t.act(&n, &who, &action, at).await.unwrap();
        assert_eq!(after.work.status, expected, "{action:?}");
        assert_eq!(event.to, expected);
        assert_eq!(event.at, at);
    }
    let stored = t.get(&n, &supervisor).await.unwrap();
    assert_eq!(stored.work.status, Status::Closed);
    let stages: Vec<Stage> = stored.work.clocks.iter().map(|c| c.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::File,
            Stage::Dispatch,
            Stage::Accept,
            Stage::Dispose,
            Stage::Verify,
            Stage::Callback
        ]
    );
    assert!(
        stored.work.clocks.iter().all(|c| c.on_time() == Some(true)),
        "{:?}",
        stored.work.clocks
    );
    // Urgent 污水井盖: 处置 limit is the category's urgent one (1 hour).
    let dispose = &stored.work.clocks[3];
    assert_eq!(
        dispose.due.duration_since(dispose.started_at),
        SignedDuration::from_hours(1)
    );
    let history = t.history(&n, &supervisor).await.unwrap();
    let actions: Vec<ActionKind> = history.iter().map(|e| e.action).collect();
    use ActionKind as A;
    assert_eq!(
        actions,
        [
            A::Create,
            A::File,
            A::Dispatch,
            A::Accept,
            A::Complete,
            A::Verify,
            A::Callback,
            A::Close
        ]
    );
    for pair in history.windows(2) {
        assert_eq!(pair[1].from, Some(pair[0].to));
        assert!(pair[1].at >= pair[0].at);
    }
    assert_eq!(history[2].data["department"], "DRAIN");
    assert_eq!(history[4].note.as_deref(), Some("已补装井盖"));
    assert_eq!(history[4].actor_name, "department-3");
});

db_test!(refused_steps_change_nothing, |db| {
    let t = service(db.store.clone());
    let agent = actor(1, Role::Agent, None);
    let now = monday_morning();
    let n = t
        .intake(report("占道经营"), &agent, now)
        .await
        .unwrap()
        .number
        .to_string();
    let later = now + SignedDuration::from_mins(1);
    let err = t
        .act(&n, &agent, &Action::Close { note: None }, later)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden_action");
    let err = t
        .act(
            &n,
            &agent,
            &Action::Reject {
                reason: "  ".into(),
            },
            later,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "missing_field");
    let dept = actor(3, Role::Department, Some("CG-HW"));
    let err = t
        .act(&n, &dept, &Action::Accept { note: None }, later)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound(_)),
        "a department cannot see another's ticket: {err}"
    );
    let err = t
        .act(
            &n,
            &agent,
            &Action::Dispatch {
                department: "NOPE".into(),
                note: None,
            },
            later,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NOPE"), "{err}");
    let err = t
        .act(
            &n,
            &agent,
            &Action::File {
                category: Some("C9999".into()),
                priority: None,
                note: None,
            },
            later,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("C9999"), "{err}");
    let err = t
        .act(
            "12319-20261123-999999",
            &agent,
            &Action::Accept { note: None },
            later,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    let ticket = t.get(&n, &agent).await.unwrap();
    assert_eq!(ticket.work.status, Status::Received);
    assert_eq!(t.history(&n, &agent).await.unwrap().len(), 1);
    let err = t
        .intake(
            NewTicket {
                content: "   ".into(),
                ..report("")
            },
            &agent,
            now,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("content"), "{err}");
    let err = t
        .intake(report("x"), &actor(9, Role::Department, Some("DRAIN")), now)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
});

db_test!(search_filters_and_department_scope, |db| {
    let t = service(db.store.clone());
    let agent = actor(1, Role::Agent, None);
    let now = monday_morning();
    let a = t
        .intake(report("人民路井盖丢失"), &agent, now)
        .await
        .unwrap()
        .number
        .to_string();
    let mut wechat = report("小区门口占道经营 100%");
    wechat.channel = Some(Channel::Wechat);
    wechat.category = Some("E0514".into());
    let b = t
        .intake(wechat, &agent, now + SignedDuration::from_mins(1))
        .await
        .unwrap()
        .number
        .to_string();
    t.act(
        &a,
        &agent,
        &Action::File {
            category: None,
            priority: None,
            note: None,
        },
        now + SignedDuration::from_mins(2),
    )
    .await
    .unwrap();
    t.act(
        &a,
        &agent,
        &Action::Dispatch {
            department: "DRAIN".into(),
            note: None,
        },
        now + SignedDuration::from_mins(3),
    )
    .await
    .unwrap();
    let list = |f: TicketFilter, who: Actor, at: Timestamp| {
        let t = t.clone();
        async move {
            t.list(TicketFilter { per_page: 50, ..f }, &who, at)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|s| s.number.to_string())
                .collect::<Vec<_>>()
        }
    };
    let later = now + SignedDuration::from_mins(5);
    assert_eq!(
        list(TicketFilter::default(), agent.clone(), later).await,
        [b.clone(), a.clone()]
    );
    assert_eq!(
        list(
            TicketFilter {
                status: vec![Status::Dispatched],
                ..Default::default()
            },
            agent.clone(),
            later
        )
        .await,
        std::slice::from_ref(&a)
    );
    assert_eq!(
        list(
            TicketFilter {
                channel: Some(Channel::Wechat),
                ..Default::default()
            },
            agent.clone(),
            later
        )
        .await,
        std::slice::from_ref(&b)
    );
    assert_eq!(
        list(
            TicketFilter {
                category: Some("C01".into()),
                ..Default::default()
            },
            agent.clone(),
            later
        )
        .await,
        std::slice::from_ref(&a)
    );
    assert_eq!(
        list(
            TicketFilter {
                text: Some("占道".into()),
                ..Default::default()
            },
            agent.clone(),
            later
        )
        .await,
        std::slice::from_ref(&b)
    );
    assert_eq!(
        list(
            TicketFilter {
                text: Some("100%".into()),
                ..Default::default()
            },
            agent.clone(),
            later
        )
        .await,
        std::slice::from_ref(&b)
    );
    assert_eq!(
        list(
            TicketFilter {
                text: Some("_".into()),
                ..Default::default()
            },
            agent.clone(),
            later
        )
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(
            TicketFilter {
                from: Some(now + SignedDuration::from_secs(30)),
                ..Default::default()
            },
            agent.clone(),
            later
        )
        .await,
        std::slice::from_ref(&b)
    );
    // Department users see their own department's tickets only, whatever they ask for.
    let drain = actor(5, Role::Department, Some("DRAIN"));
    assert_eq!(
        list(
            TicketFilter {
                department: Some("CG-HW".into()),
                ..Default::default()
            },
            drain.clone(),
            later
        )
        .await,
        std::slice::from_ref(&a)
    );
    // b is still waiting to be filed (10 minutes): overdue a day later; a waits for 签收 (1 hour).
    let tomorrow = now + SignedDuration::from_hours(24);
    let mut overdue = list(
        TicketFilter {
            overdue: Some(true),
            ..Default::default()
        },
        agent.clone(),
        tomorrow,
    )
    .await;
    overdue.sort();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(overdue, both);
    assert_eq!(
        list(
            TicketFilter {
                overdue: Some(true),
                ..Default::default()
            },
            agent.clone(),
            now + SignedDuration::from_mins(12)
        )
        .await,
        std::slice::from_ref(&b)
    );
    assert_eq!(db.store.overdue_count(tomorrow).await.unwrap(), 2);
    let page = t
        .list(
            TicketFilter {
                per_page: 1,
                page: 2,
                ..Default::default()
            },
            &agent,
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            page.total,
            page.items.len(),
            page.items[0].number.to_string()
        ),
        (2, 1, a.clone())
    );
    // Phone numbers are masked for department users.
    let seen = t.get(&a, &drain).await.unwrap();
    assert_eq!(
        seen.reporters[0].phone.as_ref().unwrap().full(),
        "138****5678"
    );
    assert_eq!(
        t.get(&a, &agent).await.unwrap().reporters[0]
            .phone
            .as_ref()
            .unwrap()
            .full(),
        "13812345678"
    );
});

db_test!(extension_and_escalation, |db| {
    let t = service(db.store.clone());
    let agent = actor(1, Role::Agent, None);
    let dept = actor(3, Role::Department, Some("CG-SZ"));
    let sup = actor(4, Role::Supervisor, None);
    let now = monday_morning();
    let mut new = report("路灯连续三盏不亮");
    new.category = Some("C0118".into());
    let n = t.intake(new, &agent, now).await.unwrap().number.to_string();
    let at = |m: i64| now + SignedDuration::from_mins(m);
    t.act(
        &n,
        &agent,
        &Action::File {
            category: None,
            priority: None,
            note: None,
        },
        at(1),
    )
    .await
    .unwrap();
    t.act(
        &n,
        &agent,
        &Action::Dispatch {
            department: "CG-SZ".into(),
            note: None,
        },
        at(2),
    )
    .await
    .unwrap();
    let (ticket, _) = t
        .act(&n, &dept, &Action::Accept { note: None }, at(3))
        .await
        .unwrap();
    let due = ticket.work.current_due().unwrap();
    // 1 working day from Monday 09:03 is Tuesday 09:03 local.
    assert_eq!(due, "2026-11-24T01:03:00Z".parse::<Timestamp>().unwrap());
    let err = t
        .act(&n, &sup, &Action::Escalate { note: None }, at(10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_overdue");
    let until = due + SignedDuration::from_hours(48);
    let err = t
        .act(
            &n,
            &dept,
            &Action::RequestExtension {
                until: due,
                reason: "需更换电缆".into(),
            },
            at(20),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "extension_not_later");
    t.act(
        &n,
        &dept,
        &Action::RequestExtension {
            until,
            reason: "需更换电缆".into(),
        },
        at(20),
    )
    .await
    .unwrap();
    let (ticket, _) = t
        .act(
            &n,
            &sup,
            &Action::DecideExtension {
                approve: true,
                note: None,
            },
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(ticket.work.current_due(), Some(until));
    assert_eq!(ticket.work.counters.extensions, 1);
    let late = until + SignedDuration::from_mins(1);
    let (ticket, event) = t
        .act(
            &n,
            &sup,
            &Action::Escalate {
                note: Some("请加快".into()),
            },
            late,
        )
        .await
        .unwrap();
    assert_eq!(
        (ticket.work.counters.escalations, event.action, event.to),
        (1, ActionKind::Escalate, Status::InProgress)
    );
    let (ticket, _) = t
        .act(
            &n,
            &dept,
            &Action::Complete {
                note: "已更换".into(),
                photos: vec![],
            },
            late,
        )
        .await
        .unwrap();
    assert_eq!(ticket.work.clocks[3].on_time(), Some(false));
});
