//! Call detail records and the audit log on a real database: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use ticketing::db_test;
use ticketing::{Actor, AuditEntry, CallEnd, CallFilter, EndedBy, NewCall, Role};

/// Monday 2026-11-23 09:00 in Shanghai.
fn monday_morning() -> Timestamp {
    "2026-11-23T01:00:00Z".parse().unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

fn invite(call_id: &str, from: &str, hotline: &str, at: Timestamp) -> NewCall {
    NewCall {
        call_id: call_id.into(),
        hotline: Some(hotline.into()),
        from_number: Some(from.into()),
        from_uri: Some(format!("sip:{from}@10.0.0.5")),
        to_number: Some(hotline.into()),
        source: Some("10.0.0.5:5060/udp".into()),
        trunk: Some("telecom".into()),
        started_at: at,
        node: Some("node-a".into()),
    }
}

fn hang_up(at: Timestamp) -> CallEnd {
    CallEnd {
        at,
        ended_by: EndedBy::Caller,
        code: 200,
        reason: "caller hung up".into(),
        language: Some("en".into()),
    }
}

db_test!(a_retransmitted_invite_makes_no_second_row, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    let first = store
        .call_started(&invite("a84b4c76e66710", "13812345678", "12319", t0))
        .await
        .unwrap();
    let mut again = invite("a84b4c76e66710", "13999999999", "12345", t0 + secs(1));
    again.trunk = None;
    let second = store.call_started(&again).await.unwrap();
    assert_eq!(first, second);
    let page = store
        .list_calls(&CallFilter::default(), 1, 50)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let call = store.get_call(first).await.unwrap().unwrap();
    assert_eq!(
        call.from_number.as_deref(),
        Some("13812345678"),
        "first INVITE wins"
    );
    assert_eq!(call.hotline.as_deref(), Some("12319"));
    assert_eq!(call.started_at, t0);
    assert_eq!(call.answered_at, None);
    assert_eq!(call.ended_at, None);
    assert_eq!(
        store
            .get_call_by_call_id("a84b4c76e66710")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(first)
    );
    assert!(store.get_call(first + 1000).await.unwrap().is_none());
});

db_test!(
    answer_and_end_give_the_talk_time_and_a_second_end_is_ignored,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        let id = store
            .call_started(&invite("call-1", "13812345678", "12319", t0))
            .await
            .unwrap();
        let path = "recordings/2026/11/23/call-1.wav";
        assert!(
            store
                .call_answered("call-1", t0 + secs(3), Some(path))
                .await
                .unwrap()
        );
        assert!(
            !store
                .call_answered("call-1", t0 + secs(9), None)
                .await
                .unwrap(),
            "a second 200 OK does not move the answer"
        );
        let bye = hang_up(t0 + SignedDuration::from_millis(95_250));
        assert!(
            store
                .call_ended("call-1", &bye, Some(1_474_604))
                .await
                .unwrap()
        );
        let late = CallEnd {
            at: t0 + secs(200),
            ended_by: EndedBy::System,
            code: 408,
            reason: "no ACK".into(),
            language: None,
        };
        assert!(!store.call_ended("call-1", &late, Some(1)).await.unwrap());
        assert!(!store.call_ended("no-such-call", &late, None).await.unwrap());

        let call = store.get_call(id).await.unwrap().unwrap();
        assert_eq!(call.answered_at, Some(t0 + secs(3)));
        assert_eq!(call.ended_at, Some(bye.at));
        assert_eq!(call.ended_by, Some(EndedBy::Caller));
        assert_eq!(call.end_code, Some(200));
        assert_eq!(call.end_reason.as_deref(), Some("caller hung up"));
        assert_eq!(call.duration_ms, Some(92_250));
        assert_eq!(call.recording_path.as_deref(), Some(path));
        assert_eq!(call.recording_bytes, Some(1_474_604));
        assert_eq!(
            call.language.as_deref(),
            Some("en"),
            "the IVR spoke English"
        );
        assert!(
            !store
                .call_answered("call-1", t0 + secs(300), None)
                .await
                .unwrap(),
            "an ended call is not answered"
        );

        // Refused before routing, never answered: no hotline, no talk time.
        let mut refused = invite("call-2", "13812345678", "12319", t0);
        refused.hotline = None;
        let id = store.call_started(&refused).await.unwrap();
        let busy = CallEnd {
            at: t0 + secs(1),
            ended_by: EndedBy::Hotline,
            code: 486,
            reason: "all agents busy".into(),
            language: None,
        };
        assert!(store.call_ended("call-2", &busy, None).await.unwrap());
        let call = store.get_call(id).await.unwrap().unwrap();
        assert_eq!(
            (call.hotline, call.duration_ms, call.end_code, call.ended_by),
            (None, None, Some(486), Some(EndedBy::Hotline))
        );
    }
);

db_test!(
    calls_are_searched_newest_first_with_filters_and_pages,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        // 12 calls a minute apart; every third on 12345; even ones answered; caller numbers differ.
        for i in 0..12i64 {
            let hotline = if i % 3 == 0 { "12345" } else { "12319" };
            let at = t0 + SignedDuration::from_mins(i);
            let call_id = format!("c{i}");
            store
                .call_started(&invite(&call_id, &format!("1380000{i:04}"), hotline, at))
                .await
                .unwrap();
            if i % 2 == 0 {
                store
                    .call_answered(&call_id, at + secs(2), None)
                    .await
                    .unwrap();
            }
            let mut end = hang_up(at + secs(30));
            if i == 5 {
                end.ended_by = EndedBy::System;
                end.code = 408;
            }
            store.call_ended(&call_id, &end, None).await.unwrap();
        }
        let ids = |page: &ticketing::store::Page<ticketing::Call>| -> Vec<String> {
            page.items.iter().map(|c| c.call_id.clone()).collect()
        };
        let all = store
            .list_calls(&CallFilter::default(), 1, 5)
            .await
            .unwrap();
        assert_eq!((all.total, all.page, all.per_page), (12, 1, 5));
        assert_eq!(ids(&all), ["c11", "c10", "c9", "c8", "c7"]);
        let third = store
            .list_calls(&CallFilter::default(), 3, 5)
            .await
            .unwrap();
        assert_eq!(ids(&third), ["c1", "c0"]);

        let filter = |f: CallFilter| async move { store.list_calls(&f, 1, 50).await.unwrap() };
        let page = filter(CallFilter {
            hotline: Some("12345".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&page), ["c9", "c6", "c3", "c0"]);
        let page = filter(CallFilter {
            answered: Some(true),
            hotline: Some("12319".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&page), ["c10", "c8", "c4", "c2"]);
        let page = filter(CallFilter {
            answered: Some(false),
            ..Default::default()
        })
        .await;
        assert_eq!(page.total, 6);
        // A number matches the caller or the dialed number, in part, as people type it.
        let page = filter(CallFilter {
            number: Some("138-0000 0007".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&page), ["c7"]);
        let page = filter(CallFilter {
            number: Some("0001".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&page), ["c11", "c10", "c1"]);
        let page = filter(CallFilter {
            number: Some("2345".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(page.total, 4, "the dialed number matches too");
        let page = filter(CallFilter {
            number: Some("%".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(page.total, 0, "LIKE wildcards are literal");
        let page = filter(CallFilter {
            since: Some(t0 + SignedDuration::from_mins(3)),
            until: Some(t0 + SignedDuration::from_mins(6)),
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&page), ["c5", "c4", "c3"]);
        let page = filter(CallFilter {
            ended_by: Some(EndedBy::System),
            ..Default::default()
        })
        .await;
        assert_eq!(ids(&page), ["c5"]);
        assert_eq!(page.items[0].end_code, Some(408));
    }
);

db_test!(a_restart_closes_the_calls_its_node_left_running, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    store
        .call_started(&invite("mine-talking", "13800000001", "12319", t0))
        .await
        .unwrap();
    store
        .call_answered("mine-talking", t0 + secs(2), Some("recordings/x.wav"))
        .await
        .unwrap();
    store
        .call_started(&invite("mine-ringing", "13800000002", "12319", t0))
        .await
        .unwrap();
    store
        .call_started(&invite("mine-done", "13800000003", "12319", t0))
        .await
        .unwrap();
    store
        .call_ended("mine-done", &hang_up(t0 + secs(5)), None)
        .await
        .unwrap();
    let mut other = invite("other-node", "13800000004", "12319", t0);
    other.node = Some("node-b".into());
    store.call_started(&other).await.unwrap();
    let mut anonymous = invite("no-node", "13800000005", "12319", t0);
    anonymous.node = None;
    store.call_started(&anonymous).await.unwrap();

    let restart = t0 + SignedDuration::from_mins(10);
    assert_eq!(
        store
            .close_interrupted_calls(restart, Some("node-a"))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .close_interrupted_calls(restart, Some("node-a"))
            .await
            .unwrap(),
        0
    );
    for id in ["mine-talking", "mine-ringing"] {
        let call = store.get_call_by_call_id(id).await.unwrap().unwrap();
        assert_eq!(call.ended_at, Some(restart), "{id}");
        assert_eq!(call.ended_by, Some(EndedBy::System));
        assert_eq!(call.end_reason.as_deref(), Some("node restarted"));
        assert_eq!((call.end_code, call.duration_ms), (None, None));
    }
    let talking = store
        .get_call_by_call_id("mine-talking")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(talking.recording_path.as_deref(), Some("recordings/x.wav"));
    let done = store
        .get_call_by_call_id("mine-done")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done.ended_by,
        Some(EndedBy::Caller),
        "an ended call is left alone"
    );
    let other = store
        .get_call_by_call_id("other-node")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.ended_at, None, "another node's calls are left alone");
    assert_eq!(
        store.close_interrupted_calls(restart, None).await.unwrap(),
        1
    );
    let anonymous = store.get_call_by_call_id("no-node").await.unwrap().unwrap();
    assert_eq!(anonymous.ended_by, Some(EndedBy::System));
});

db_test!(audit_entries_round_trip_by_target, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    let supervisor = Actor {
        id: 7,
        name: "张班长".into(),
        role: Role::Supervisor,
        department: None,
    };
    let mut play = AuditEntry::by(&supervisor, t0, "recording.play", "call:1");
    play.detail = json!({"range": "bytes=44-1043", "status": 206});
    play.address = Some("192.0.2.10".into());
    let system = AuditEntry {
        at: t0 + secs(1),
        actor_id: None,
        actor_name: "system".into(),
        role: None,
        action: "recording.purge".into(),
        target: "call:1".into(),
        detail: json!({}),
        address: None,
    };
    let other = AuditEntry::by(&supervisor, t0, "recording.play", "call:2");
    let a = store.write_audit(&play).await.unwrap();
    store.write_audit(&other).await.unwrap();
    let b = store.write_audit(&system).await.unwrap();
    assert!(b > a);
    assert_eq!(store.list_audit("call:1").await.unwrap(), [play, system]);
    assert_eq!(store.list_audit("call:2").await.unwrap(), [other]);
    assert!(store.list_audit("call:3").await.unwrap().is_empty());
});
