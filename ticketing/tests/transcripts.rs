//! The transcription queue and transcripts on a real database: SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use ticketing::calendar::{CalendarConfig, WorkCalendar};
use ticketing::category::Catalogue;
use ticketing::db_test;
use ticketing::department::Directory;
use ticketing::model::{Attachment, AttachmentKind, PhoneNumber, Reporter};
use ticketing::sla::{Sla, SlaConfig};
use ticketing::store::StoreError;
use ticketing::transcripts::{
    JobKind, JobState, MAX_ATTEMPTS, NewSegment, NewTranscript, NewTranscriptionJob, Speaker,
    TranscriptionJob, retry_delay, voicemail_placeholder,
};
use ticketing::{ActionKind, Actor, Channel, Hotline, NewCall, NewTicket, Role, Store, Tickets};

/// Monday 2026-11-23 09:00 in Shanghai.
fn monday_morning() -> Timestamp {
    "2026-11-23T01:00:00Z".parse().unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

const LEASE: Duration = Duration::from_secs(600);

fn service(store: Store) -> Tickets {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../config");
    let catalogue =
        Catalogue::from_toml(&std::fs::read_to_string(format!("{root}/categories.toml")).unwrap())
            .unwrap();
    let directory =
        Directory::from_toml(&std::fs::read_to_string(format!("{root}/departments.toml")).unwrap())
            .unwrap();
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

fn ivr() -> Actor {
    Actor {
        id: 0,
        name: "IVR".into(),
        role: Role::Agent,
        department: None,
    }
}

/// A call record, as the gateway writes it; returns its row id.
async fn call(store: &Store, call_id: &str, at: Timestamp) -> i64 {
    store
        .call_started(&NewCall {
            call_id: call_id.into(),
            hotline: Some("12319".into()),
            from_number: Some("13812345678".into()),
            from_uri: None,
            to_number: Some("12319".into()),
            source: None,
            trunk: None,
            started_at: at,
            node: Some("node-a".into()),
        })
        .await
        .unwrap()
}

fn recording(name: &str) -> String {
    format!("recordings/2026/11/23/{name}.wav")
}

fn call_job(call_id: Option<i64>, name: &str) -> NewTranscriptionJob {
    NewTranscriptionJob {
        call_id,
        ticket_id: None,
        kind: JobKind::Call,
        recording_path: recording(name),
        language: None,
    }
}

/// A two-sided transcript: the agent greets, the caller says `caller_says`.
fn said(caller_says: &[&str]) -> NewTranscript {
    let mut segments = vec![NewSegment {
        speaker: Speaker::Hotline,
        start_ms: 0,
        end_ms: 2_500,
        text: "您好，12319城市管理热线。".into(),
    }];
    for (i, text) in caller_says.iter().enumerate() {
        let start = 3_000 + 4_000 * i64::try_from(i).unwrap();
        segments.push(NewSegment {
            speaker: Speaker::Caller,
            start_ms: start,
            end_ms: start + 3_500,
            text: (*text).into(),
        });
    }
    NewTranscript {
        model: "whisper-base".into(),
        language: "zh".into(),
        duration_ms: 3_000 + 4_000 * i64::try_from(caller_says.len()).unwrap(),
        processing_ms: 1_200,
        segments,
    }
}

/// Claims the next job for `worker`, which must be `expected`.
async fn claim(store: &Store, worker: &str, now: Timestamp, expected: i64) -> TranscriptionJob {
    let job = store
        .claim_transcription(worker, now, LEASE)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{worker} finds job {expected} due at {now}"));
    assert_eq!(job.id, expected);
    job
}

/// Queues, claims and finishes one recording; returns the transcript id.
async fn transcribe(
    store: &Store,
    job: NewTranscriptionJob,
    t: NewTranscript,
    at: Timestamp,
) -> i64 {
    let id = store.enqueue_transcription(&job, at).await.unwrap();
    let claimed = claim(store, "worker-1", at, id).await;
    store
        .finish_transcription(&claimed, &t, at)
        .await
        .unwrap()
        .expect("the claim is still ours")
        .transcript_id
}

db_test!(queueing_a_recording_twice_makes_one_job, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    let c = call(store, "c1", t0).await;
    let first = store
        .enqueue_transcription(&call_job(Some(c), "c1"), t0)
        .await
        .unwrap();
    let again = store
        .enqueue_transcription(&call_job(Some(c), "c1"), t0 + secs(5))
        .await
        .unwrap();
    assert_eq!(first, again);
    let job = store.transcription_job(first).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.attempts, 0);
    assert_eq!(job.next_at, t0, "the second enqueue changed nothing");
    assert_eq!(job.call_id, Some(c));
    assert_eq!(job.kind, JobKind::Call);
    let backlog = store.transcription_backlog().await.unwrap();
    assert_eq!((backlog.queued, backlog.running), (1, 0));
    assert_eq!(backlog.oldest_queued_at, Some(t0));
    // Finished, it is still the one job for that file.
    let claimed = claim(store, "w", t0, first).await;
    store
        .finish_transcription(&claimed, &said(&["井盖坏了"]), t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .enqueue_transcription(&call_job(Some(c), "c1"), t0 + secs(60))
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        store.transcription_job(first).await.unwrap().unwrap().state,
        JobState::Done
    );
    // A batch import without a call record is fine; a path out of the data directory is not.
    store
        .enqueue_transcription(&call_job(None, "imported"), t0)
        .await
        .unwrap();
    for bad in ["/etc/passwd", "../hotline.db", ""] {
        let mut job = call_job(None, "x");
        job.recording_path = bad.into();
        assert!(
            matches!(
                store.enqueue_transcription(&job, t0).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad:?} accepted"
        );
    }
});

db_test!(claims_take_due_jobs_in_order_and_count_the_try, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    let a = store
        .enqueue_transcription(&call_job(None, "a"), t0)
        .await
        .unwrap();
    let b = store
        .enqueue_transcription(&call_job(None, "b"), t0 + secs(1))
        .await
        .unwrap();
    assert!(
        store
            .claim_transcription("w", t0 - secs(1), LEASE)
            .await
            .unwrap()
            .is_none(),
        "nothing is due before it was queued"
    );
    let now = t0 + secs(2);
    let first = claim(store, "w1", now, a).await;
    assert_eq!(first.state, JobState::Running);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.claimed_by.as_deref(), Some("w1"));
    assert_eq!(first.lease_until, Some(now + secs(600)));
    claim(store, "w2", now, b).await;
    assert!(
        store
            .claim_transcription("w3", now, LEASE)
            .await
            .unwrap()
            .is_none()
    );
    let backlog = store.transcription_backlog().await.unwrap();
    assert_eq!((backlog.queued, backlog.running), (0, 2));
    assert_eq!(backlog.oldest_queued_at, None);
});

db_test!(concurrent_workers_never_claim_the_same_job, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            store
                .enqueue_transcription(&call_job(None, &format!("r{i}")), t0)
                .await
                .unwrap(),
        );
    }
    let now = t0 + secs(1);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let store = store.clone();
        workers.spawn(async move {
            let name = format!("worker-{w}");
            let mut got = Vec::new();
            while let Some(job) = store.claim_transcription(&name, now, LEASE).await.unwrap() {
                assert_eq!(job.claimed_by.as_deref(), Some(name.as_str()));
                got.push(job.id);
                tokio::task::yield_now().await;
            }
            got
        });
    }
    let mut claimed: HashMap<i64, u32> = HashMap::new();
    let mut busy = 0;
    while let Some(got) = workers.join_next().await {
        let got = got.unwrap();
        busy += usize::from(!got.is_empty());
        for id in got {
            *claimed.entry(id).or_default() += 1;
        }
    }
    assert_eq!(claimed.len(), 50, "every job claimed");
    assert!(
        claimed.values().all(|&n| n == 1),
        "a job claimed twice: {claimed:?}"
    );
    let mut sorted: Vec<i64> = claimed.into_keys().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, ids);
    eprintln!("{busy} of 8 workers got jobs");
    let backlog = store.transcription_backlog().await.unwrap();
    assert_eq!((backlog.queued, backlog.running), (0, 50));
});

db_test!(
    a_dead_workers_job_is_taken_over_and_the_late_worker_is_refused,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        let c = call(store, "c-lease", t0).await;
        let id = store
            .enqueue_transcription(&call_job(Some(c), "lease"), t0)
            .await
            .unwrap();
        let lost = claim(store, "node-a/1", t0, id).await;
        // Within the lease nobody else gets it; a heartbeat moves the lease on.
        assert!(
            store
                .claim_transcription("node-b/1", t0 + secs(599), LEASE)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .extend_transcription_lease(&lost, t0 + secs(300), LEASE)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_transcription("node-b/1", t0 + secs(899), LEASE)
                .await
                .unwrap()
                .is_none(),
            "the extended lease holds"
        );
        // node-a stops sending heartbeats; after its lease node-b takes the job over.
        let later = t0 + secs(901);
        let taken = claim(store, "node-b/1", later, id).await;
        assert_eq!(taken.attempts, 2);
        assert_eq!(taken.claimed_by.as_deref(), Some("node-b/1"));
        // node-a comes back: it can neither finish, fail nor extend the job.
        assert_eq!(
            store
                .finish_transcription(&lost, &said(&["旧的结果"]), later)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .fail_transcription(&lost, "late", later)
                .await
                .unwrap(),
            None
        );
        assert!(
            !store
                .extend_transcription_lease(&lost, later, LEASE)
                .await
                .unwrap()
        );
        assert!(store.transcript_for_call(c).await.unwrap().is_none());
        // Even a worker of the same name is fenced by the claim's number.
        let mut same_name = lost.clone();
        same_name.claimed_by = taken.claimed_by.clone();
        assert_eq!(
            store
                .finish_transcription(&same_name, &said(&["旧的结果"]), later)
                .await
                .unwrap(),
            None
        );
        let done = store
            .finish_transcription(&taken, &said(&["人民路井盖坏了"]), later + secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.filled_ticket, None);
        let job = store.transcription_job(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Done);
        assert_eq!(job.finished_at, Some(later + secs(30)));
        assert_eq!(job.lease_until, None);
        let stored = store.transcript_for_call(c).await.unwrap().unwrap();
        assert_eq!(stored.id, done.transcript_id);
        assert_eq!(stored.job_id, Some(id));
        assert_eq!(stored.text, "您好，12319城市管理热线。\n人民路井盖坏了");
        assert_eq!(stored.segments.len(), 2);
        assert_eq!(stored.segments[1].speaker, Speaker::Caller);
        assert_eq!(
            (stored.segments[1].start_ms, stored.segments[1].end_ms),
            (3_000, 6_500)
        );
        assert_eq!(stored.model, "whisper-base");
        assert_eq!(stored.duration_ms, 7_000);
        assert_eq!(
            store
                .transcript_for_recording(&recording("lease"))
                .await
                .unwrap()
                .map(|t| t.id),
            Some(stored.id)
        );
        // A finished job is not claimed again.
        assert!(
            store
                .claim_transcription("node-c/1", later + secs(10_000), LEASE)
                .await
                .unwrap()
                .is_none()
        );
    }
);

db_test!(
    failures_back_off_then_give_up_until_an_operator_retries,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        let id = store
            .enqueue_transcription(&call_job(None, "broken"), t0)
            .await
            .unwrap();
        let mut now = t0;
        for attempt in 1..=MAX_ATTEMPTS {
            let job = claim(store, "w", now, id).await;
            assert_eq!(job.attempts, attempt);
            let state = store
                .fail_transcription(&job, &format!("model missing ({attempt})"), now)
                .await
                .unwrap();
            match retry_delay(attempt) {
                Some(delay) => {
                    assert_eq!(state, Some(JobState::Queued), "try {attempt}");
                    let delay = SignedDuration::try_from(delay).unwrap();
                    let job = store.transcription_job(id).await.unwrap().unwrap();
                    assert_eq!(job.next_at, now + delay);
                    assert_eq!(
                        job.last_error.as_deref(),
                        Some(format!("model missing ({attempt})").as_str())
                    );
                    assert!(
                        store
                            .claim_transcription("w", now + delay - secs(1), LEASE)
                            .await
                            .unwrap()
                            .is_none(),
                        "backing off after try {attempt}"
                    );
                    now += delay;
                }
                None => assert_eq!(state, Some(JobState::Failed), "try {attempt}"),
            }
        }
        assert_eq!(now.duration_since(t0), secs(30 + 120 + 600 + 3600 + 3600));
        let job = store.transcription_job(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.finished_at, Some(now));
        assert!(
            store
                .claim_transcription("w", now + secs(86_400), LEASE)
                .await
                .unwrap()
                .is_none()
        );
        let backlog = store.transcription_backlog().await.unwrap();
        assert_eq!((backlog.queued, backlog.failed), (0, 1));
        let failed = store
            .list_transcription_jobs(JobState::Failed, 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].last_error.as_deref(), Some("model missing (6)"));
        // The operator fixes the model and retries: a fresh set of tries, at once.
        let later = now + secs(86_400);
        assert_eq!(store.retry_failed_transcriptions(later).await.unwrap(), 1);
        let job = claim(store, "w", later, id).await;
        assert_eq!(job.attempts, 1);
        assert_eq!(store.retry_failed_transcriptions(later).await.unwrap(), 0);
        // A job under a live lease is not requeued from under its worker.
        assert_eq!(store.requeue_transcription(id, later).await.unwrap(), None);
    }
);

db_test!(
    a_recording_that_kills_its_worker_every_time_is_given_up,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        let id = store
            .enqueue_transcription(&call_job(None, "poison"), t0)
            .await
            .unwrap();
        let other = store
            .enqueue_transcription(&call_job(None, "fine"), t0 + secs(1))
            .await
            .unwrap();
        let mut now = t0 + secs(2);
        for attempt in 1..=MAX_ATTEMPTS {
            // Each worker dies holding it; the next claim after the lease takes it over.
            let job = claim(store, &format!("w{attempt}"), now, id).await;
            assert_eq!(job.attempts, attempt);
            now += secs(601);
            if attempt == 1 {
                // The other job is taken and finished meanwhile.
                let j = claim(store, "steady", now - secs(600), other).await;
                store
                    .finish_transcription(&j, &said(&["好的"]), now - secs(600))
                    .await
                    .unwrap()
                    .unwrap();
            }
        }
        assert!(
            store
                .claim_transcription("w7", now, LEASE)
                .await
                .unwrap()
                .is_none()
        );
        let job = store.transcription_job(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(job.last_error.unwrap().contains("lease ran out"));
    }
);

db_test!(
    search_finds_chinese_and_english_words_with_a_snippet,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        let manhole = call(store, "c-manhole", t0).await;
        let light = call(store, "c-light", t0 + secs(60)).await;
        let english = call(store, "c-english", t0 + secs(120)).await;
        transcribe(
            store,
            call_job(Some(manhole), "manhole"),
            said(&["我要反映一下", "人民路和解放路路口的井盖坏了，晚上很危险。"]),
            t0 + secs(600),
        )
        .await;
        transcribe(
            store,
            call_job(Some(light), "light"),
            said(&["长江西路上的路灯不亮了，已经三天了。"]),
            t0 + secs(660),
        )
        .await;
        let mut en = said(&[
            "Hello, the Manhole cover on Renmin Road is broken.",
            "100% sure",
        ]);
        en.language = "en".into();
        transcribe(
            store,
            call_job(Some(english), "english"),
            en,
            t0 + secs(720),
        )
        .await;
        let calls_of = |hits: &[ticketing::transcripts::TranscriptHit]| -> Vec<Option<i64>> {
            hits.iter().map(|h| h.call_id).collect()
        };
        // Two characters (no trigram), four, three, one.
        let hits = store.search_transcripts("井盖", 20).await.unwrap();
        assert_eq!(calls_of(&hits), [Some(manhole)]);
        assert!(hits[0].snippet.contains("井盖坏了"), "{}", hits[0].snippet);
        assert_eq!(hits[0].at_ms, Some(7_000), "the second caller segment");
        assert_eq!(hits[0].recording_path, recording("manhole"));
        let hits = store.search_transcripts("井盖坏了", 20).await.unwrap();
        assert_eq!(calls_of(&hits), [Some(manhole)]);
        assert_eq!(
            hits[0].snippet,
            "…线。 我要反映一下 人民路和解放路路口的井盖坏了，晚上很危险。"
        );
        assert_eq!(
            calls_of(&store.search_transcripts("不亮了", 20).await.unwrap()),
            [Some(light)]
        );
        assert_eq!(
            calls_of(&store.search_transcripts("灯", 20).await.unwrap()),
            [Some(light)]
        );
        // Every call has the greeting: newest first.
        assert_eq!(
            calls_of(&store.search_transcripts("热线", 20).await.unwrap()),
            [Some(english), Some(light), Some(manhole)]
        );
        assert_eq!(
            calls_of(&store.search_transcripts("城市管理热线", 2).await.unwrap()),
            [Some(english), Some(light)]
        );
        // English, whatever the case; a segment's start to play from.
        let hits = store.search_transcripts("manhole COVER", 20).await.unwrap();
        assert_eq!(calls_of(&hits), [Some(english)]);
        assert!(
            hits[0].snippet.contains("Manhole cover"),
            "{}",
            hits[0].snippet
        );
        assert_eq!(hits[0].at_ms, Some(3_000));
        assert_eq!(
            calls_of(&store.search_transcripts("RO", 20).await.unwrap()),
            [Some(english)]
        );
        // Unrelated words find nothing; LIKE wildcards are literal.
        for nothing in ["垃圾", "违章停车", "xyz", "_", "%%", "路灯坏", "\""] {
            assert_eq!(
                calls_of(&store.search_transcripts(nothing, 20).await.unwrap()),
                [],
                "{nothing:?}"
            );
        }
        assert_eq!(
            calls_of(&store.search_transcripts("100%", 20).await.unwrap()),
            [Some(english)]
        );
        assert_eq!(
            calls_of(&store.search_transcripts("%", 20).await.unwrap()),
            [Some(english)]
        );
        assert!(store.search_transcripts("  ", 20).await.unwrap().is_empty());
    }
);

db_test!(a_new_transcript_replaces_the_old_in_search, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    let c = call(store, "c-again", t0).await;
    let job = call_job(Some(c), "again");
    let first = transcribe(store, job.clone(), said(&["京盖坏了，在人民路"]), t0).await;
    assert_eq!(store.search_transcripts("京盖", 5).await.unwrap().len(), 1);
    assert_eq!(
        store.search_transcripts("京盖坏了", 5).await.unwrap().len(),
        1
    );
    // Transcribed again with a better model.
    let id = store.enqueue_transcription(&job, t0).await.unwrap();
    assert!(
        store
            .requeue_transcription(id, t0 + secs(60))
            .await
            .unwrap()
            .is_some()
    );
    let claimed = claim(store, "w", t0 + secs(60), id).await;
    assert_eq!(claimed.attempts, 1);
    let mut better = said(&["井盖坏了", "在人民路"]);
    better.model = "whisper-small".into();
    better.segments.push(NewSegment {
        speaker: Speaker::Caller,
        start_ms: 12_000,
        end_ms: 13_000,
        text: "  ".into(),
    });
    let second = store
        .finish_transcription(&claimed, &better, t0 + secs(90))
        .await
        .unwrap()
        .unwrap()
        .transcript_id;
    assert_eq!(second, first, "replaced in place");
    for gone in ["京盖", "京盖坏了"] {
        assert!(
            store.search_transcripts(gone, 5).await.unwrap().is_empty(),
            "{gone} still found"
        );
    }
    for found in ["井盖", "井盖坏了", "人民路"] {
        let hits = store.search_transcripts(found, 5).await.unwrap();
        assert_eq!(hits.len(), 1, "{found}");
        assert_eq!(hits[0].transcript_id, first);
        assert_eq!(hits[0].created_at, t0 + secs(90));
    }
    let stored = store.transcript_for_call(c).await.unwrap().unwrap();
    assert_eq!(stored.model, "whisper-small");
    assert_eq!(stored.segments.len(), 3);
    assert_eq!(stored.text, "您好，12319城市管理热线。\n井盖坏了\n在人民路");
});

async fn voicemail_ticket(t: &Tickets, content: String, at: Timestamp) -> ticketing::Ticket {
    voicemail_ticket_at(t, content, recording("vm"), at).await
}

/// A phone ticket as the IVR opens it for a message recorded at `uri`.
async fn voicemail_ticket_at(
    t: &Tickets,
    content: String,
    uri: String,
    at: Timestamp,
) -> ticketing::Ticket {
    t.intake(
        NewTicket {
            hotline: Some("12319".into()),
            channel: Some(Channel::Phone),
            reporter: Reporter {
                phone: Some(PhoneNumber::parse("13812345678").unwrap()),
                ..Reporter::default()
            },
            content,
            attachments: vec![Attachment {
                kind: AttachmentKind::Recording,
                uri,
                content_type: Some("audio/wav".into()),
                note: None,
            }],
            ..NewTicket::default()
        },
        &ivr(),
        at,
    )
    .await
    .unwrap()
}

db_test!(a_voicemail_transcript_becomes_its_tickets_content, |db| {
    let store = &db.store;
    let t = service(store.clone());
    let t0 = monday_morning();
    let placeholder = voicemail_placeholder(12, false);
    let ticket = voicemail_ticket(&t, placeholder.clone(), t0).await;
    let c = call(store, "c-vm", t0).await;
    assert!(store.link_call_ticket("c-vm", ticket.id).await.unwrap());
    let job = NewTranscriptionJob {
        call_id: Some(c),
        ticket_id: Some(ticket.id),
        kind: JobKind::Message,
        recording_path: recording("vm"),
        language: None,
    };
    let id = store.enqueue_transcription(&job, t0).await.unwrap();
    let claimed = claim(store, "w", t0 + secs(5), id).await;
    let mut vm = said(&[]);
    vm.segments = vec![NewSegment {
        speaker: Speaker::Caller,
        start_ms: 500,
        end_ms: 11_000,
        text: "人民路小学门口的井盖坏了，请尽快处理。".into(),
    }];
    let done = store
        .finish_transcription(&claimed, &vm, t0 + secs(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.filled_ticket.as_ref(), Some(&ticket.number));
    let agent = Actor {
        id: 1,
        name: "agent".into(),
        role: Role::Agent,
        department: None,
    };
    let now = t.get(ticket.number.as_str(), &agent).await.unwrap();
    assert_eq!(now.content, "人民路小学门口的井盖坏了，请尽快处理。");
    assert_eq!(now.updated_at, t0 + secs(20));
    let events = store.events(ticket.id).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.action, ActionKind::Supplement);
    assert_eq!(last.actor_name, "语音转写");
    assert_eq!(last.from, Some(now.work.status));
    assert_eq!(last.data["source"], "transcript");
    assert_eq!(last.data["replaced"], placeholder.as_str());
    assert_eq!(last.data["transcript_id"], done.transcript_id);
    assert!(last.note.as_deref().unwrap().contains(&placeholder));
    let mine = store.transcripts_for_ticket(ticket.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].ticket_id, Some(ticket.id));
    // The call left only the voicemail (its recording has no job): the voicemail answers for it.
    assert_eq!(
        store.transcript_for_call(c).await.unwrap().map(|t| t.id),
        Some(done.transcript_id)
    );
    let hits = store.search_transcripts("井盖", 5).await.unwrap();
    assert_eq!(hits[0].ticket_number.as_ref(), Some(&ticket.number));

    // Transcribed again: the content is the citizen's words now, not the placeholder, and stays.
    assert!(
        store
            .requeue_transcription(id, t0 + secs(60))
            .await
            .unwrap()
            .is_some()
    );
    let claimed = claim(store, "w", t0 + secs(60), id).await;
    let mut other = vm.clone();
    other.segments[0].text = "别的文字".into();
    let again = store
        .finish_transcription(&claimed, &other, t0 + secs(70))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.filled_ticket, None);
    assert_eq!(
        t.get(ticket.number.as_str(), &agent).await.unwrap().content,
        "人民路小学门口的井盖坏了，请尽快处理。"
    );
    assert_eq!(store.events(ticket.id).await.unwrap().len(), events.len());

    // An English message, supplemented by the citizen before the transcript came: the
    // placeholder line is replaced, the added line kept.
    let english = voicemail_ticket(&t, voicemail_placeholder(8, true), t0).await;
    t.supplement(
        english.number.as_str(),
        ticketing::store::Supplement {
            content: Some("在学校门口".into()),
            ..Default::default()
        },
        &Default::default(),
        &agent,
        t0 + secs(1),
    )
    .await
    .unwrap();
    let id = store
        .enqueue_transcription(
            &NewTranscriptionJob {
                call_id: None,
                ticket_id: Some(english.id),
                kind: JobKind::Message,
                recording_path: recording("vm-en"),
                language: None,
            },
            t0,
        )
        .await
        .unwrap();
    let claimed = claim(store, "w", t0 + secs(5), id).await;
    let mut en = vm.clone();
    en.language = "en".into();
    en.segments[0].text = "The manhole cover is broken.".into();
    store
        .finish_transcription(&claimed, &en, t0 + secs(9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.get(english.number.as_str(), &agent)
            .await
            .unwrap()
            .content,
        "The manhole cover is broken.\n在学校门口"
    );

    // A silent message leaves the placeholder.
    let silent = voicemail_ticket(&t, voicemail_placeholder(3, false), t0).await;
    let id = store
        .enqueue_transcription(
            &NewTranscriptionJob {
                call_id: None,
                ticket_id: Some(silent.id),
                kind: JobKind::Message,
                recording_path: recording("vm-silent"),
                language: None,
            },
            t0,
        )
        .await
        .unwrap();
    let claimed = claim(store, "w", t0 + secs(5), id).await;
    let mut nothing = vm.clone();
    nothing.segments.clear();
    let done = store
        .finish_transcription(&claimed, &nothing, t0 + secs(6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.filled_ticket, None);
    assert_eq!(
        t.get(silent.number.as_str(), &agent).await.unwrap().content,
        voicemail_placeholder(3, false)
    );
});

db_test!(
    a_calls_transcript_belongs_to_the_ticket_linked_later,
    |db| {
        let store = &db.store;
        let t = service(store.clone());
        let t0 = monday_morning();
        let c = call(store, "c-link", t0).await;
        transcribe(
            store,
            call_job(Some(c), "link"),
            said(&["井盖坏了"]),
            t0 + secs(60),
        )
        .await;
        let ticket = voicemail_ticket(&t, "人民路井盖坏了".into(), t0 + secs(90)).await;
        assert!(
            store
                .transcripts_for_ticket(ticket.id)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.link_call_ticket("c-link", ticket.id).await.unwrap());
        let mine = store.transcripts_for_ticket(ticket.id).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].call_id, Some(c));
        assert_eq!(mine[0].ticket_id, Some(ticket.id));
        let hits = store.search_transcripts("井盖坏了", 5).await.unwrap();
        assert_eq!(hits[0].ticket_number.as_ref(), Some(&ticket.number));
        // A call transcript never rewrites a ticket's content.
        assert_eq!(
            store.ticket(&ticket.number).await.unwrap().unwrap().content,
            "人民路井盖坏了"
        );
    }
);

db_test!(
    ended_calls_without_a_job_are_queued_once_and_keep_their_language,
    |db| {
        let store = &db.store;
        let t0 = monday_morning();
        // The fresh call's caller chose English in the IVR; the restarted one's end is unknown.
        let end = |at, name: &str| ticketing::calls::CallEnd {
            at,
            ended_by: ticketing::calls::EndedBy::Caller,
            code: 200,
            reason: "caller hung up".into(),
            language: match name {
                "fresh" => Some("en".into()),
                "restarted" => None,
                _ => Some("zh".into()),
            },
        };
        // Old, recorded, empty, running, already queued, and the two to backfill.
        let mut ids = HashMap::new();
        for (name, started, recorded, bytes, ended) in [
            ("old", t0 - secs(8 * 86_400), true, Some(96_044), true),
            ("unrecorded", t0, false, None, true),
            ("empty", t0, true, Some(44), true),
            ("running", t0, true, None, false),
            ("queued", t0, true, Some(96_044), true),
            ("fresh", t0, true, Some(96_044), true),
            ("restarted", t0, true, None, true),
        ] {
            let id = call(store, name, started).await;
            ids.insert(name, id);
            if recorded {
                store
                    .call_answered(name, started + secs(1), Some(&recording(name)))
                    .await
                    .unwrap();
            }
            if ended {
                store
                    .call_ended(name, &end(started + secs(30), name), bytes)
                    .await
                    .unwrap();
            }
        }
        let mut english = call_job(Some(ids["queued"]), "queued");
        english.language = Some("en".into());
        let queued = store.enqueue_transcription(&english, t0).await.unwrap();

        let since = t0 - secs(7 * 86_400);
        let now = t0 + secs(120);
        assert_eq!(
            store.enqueue_untranscribed_calls(since, now).await.unwrap(),
            2
        );
        assert_eq!(
            store.enqueue_untranscribed_calls(since, now).await.unwrap(),
            0,
            "a second sweep queues nothing"
        );
        let jobs = store
            .list_transcription_jobs(JobState::Queued, 50)
            .await
            .unwrap();
        let mut paths: Vec<_> = jobs.iter().map(|j| j.recording_path.as_str()).collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                recording("fresh"),
                recording("queued"),
                recording("restarted")
            ]
        );
        let fresh = jobs
            .iter()
            .find(|j| j.recording_path == recording("fresh"))
            .unwrap();
        assert_eq!(fresh.call_id, Some(ids["fresh"]));
        assert_eq!(
            (fresh.kind, fresh.language.as_deref()),
            (JobKind::Call, Some("en")),
            "queued in the language the IVR spoke"
        );
        let restarted = jobs
            .iter()
            .find(|j| j.recording_path == recording("restarted"))
            .unwrap();
        assert_eq!(
            restarted.language, None,
            "no IVR language: the worker's own"
        );
        assert_eq!(fresh.next_at, now);
        let kept = store.transcription_job(queued).await.unwrap().unwrap();
        assert_eq!(kept.language.as_deref(), Some("en"));
        assert_eq!(kept.next_at, t0, "the queued job is untouched");
        let by_path = store
            .transcription_job_for_recording(&recording("queued"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_path.id, queued);
        assert!(
            store
                .transcription_job_for_recording(&recording("empty"))
                .await
                .unwrap()
                .is_none()
        );
    }
);

db_test!(requeueing_returns_the_job_as_queued_again, |db| {
    let store = &db.store;
    let t0 = monday_morning();
    let c = call(store, "c-requeue", t0).await;
    let mut english = call_job(Some(c), "requeue");
    english.language = Some("en".into());
    let id = store.enqueue_transcription(&english, t0).await.unwrap();
    let claimed = claim(store, "node-a/1", t0 + secs(1), id).await;
    // Under a live lease: left alone, and it still says who holds it.
    assert_eq!(
        store.requeue_transcription(id, t0 + secs(2)).await.unwrap(),
        None
    );
    let running = store.transcription_job(id).await.unwrap().unwrap();
    assert_eq!(running.state, JobState::Running);
    assert_eq!(running.claimed_by.as_deref(), Some("node-a/1"));
    assert_eq!(running.attempts, 1);
    store
        .fail_transcription(&claimed, "decoder crashed", t0 + secs(3))
        .await
        .unwrap()
        .unwrap();
    // Waiting for its next try: requeued to run now, as the row now is.
    let now = t0 + secs(10);
    let job = store
        .requeue_transcription(id, now)
        .await
        .unwrap()
        .expect("a job waiting to be retried is requeued");
    assert_eq!(job.id, id);
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
    assert_eq!(job.next_at, now);
    assert_eq!((job.claimed_by.as_deref(), job.lease_until), (None, None));
    assert_eq!(job.finished_at, None);
    assert_eq!(job.last_error.as_deref(), Some("decoder crashed"));
    assert_eq!((job.call_id, job.kind), (Some(c), JobKind::Call));
    assert_eq!(job.recording_path, recording("requeue"));
    assert_eq!(job.language.as_deref(), Some("en"));
    assert_eq!(job.created_at, t0);
    assert_eq!(
        store.transcription_job(id).await.unwrap().as_ref(),
        Some(&job),
        "what it returns is what is stored"
    );
    // Done: queued again to make a better transcript.
    let claimed = claim(store, "node-b/1", now, id).await;
    store
        .finish_transcription(&claimed, &said(&["井盖坏了"]), now + secs(5))
        .await
        .unwrap()
        .unwrap();
    let again = store
        .requeue_transcription(id, now + secs(60))
        .await
        .unwrap()
        .expect("a done job is requeued");
    assert_eq!((again.state, again.attempts), (JobState::Queued, 0));
    assert_eq!(again.next_at, now + secs(60));
    assert_eq!(again.finished_at, None);
    // The lease of a worker that died ran out: requeued.
    let dead = claim(store, "node-c/1", now + secs(60), id).await;
    let expired = now + secs(60) + secs(601);
    let taken = store
        .requeue_transcription(id, expired)
        .await
        .unwrap()
        .expect("a job whose lease ran out is requeued");
    assert_eq!((taken.state, taken.claimed_by), (JobState::Queued, None));
    assert_eq!(
        store
            .finish_transcription(&dead, &said(&["迟到的结果"]), expired)
            .await
            .unwrap(),
        None,
        "the dead worker's claim is gone"
    );
    // An unknown job.
    assert_eq!(
        store.requeue_transcription(id + 1000, now).await.unwrap(),
        None
    );
});

/// A call as the gateway records it: answered with a stereo recording, ended by the caller.
async fn recorded_call(store: &Store, call_id: &str, at: Timestamp) -> i64 {
    let id = call(store, call_id, at).await;
    store
        .call_answered(call_id, at + secs(1), Some(&recording(call_id)))
        .await
        .unwrap();
    store
        .call_ended(
            call_id,
            &ticketing::calls::CallEnd {
                at: at + secs(40),
                ended_by: ticketing::calls::EndedBy::Caller,
                code: 200,
                reason: "caller hung up".into(),
                language: Some("zh".into()),
            },
            Some(320_044),
        )
        .await
        .unwrap();
    id
}

fn message(call_id: &str) -> String {
    format!("messages/2026/11/23/{call_id}-1.wav")
}

/// The caller's words in a voicemail (mono: the caller only).
fn left_message(text: &str) -> NewTranscript {
    NewTranscript {
        model: "whisper-base".into(),
        language: "zh".into(),
        duration_ms: 9_000,
        processing_ms: 800,
        segments: vec![NewSegment {
            speaker: Speaker::Caller,
            start_ms: 400,
            end_ms: 8_500,
            text: text.into(),
        }],
    }
}

db_test!(
    a_call_that_only_left_a_voicemail_answers_with_the_voicemail,
    |db| {
        let store = &db.store;
        let t = service(store.clone());
        let t0 = monday_morning();
        // The caller left a message and hung up: the message is queued, the call is not.
        let c = recorded_call(store, "c-only-vm", t0).await;
        let ticket = voicemail_ticket_at(
            &t,
            voicemail_placeholder(9, false),
            message("c-only-vm"),
            t0 + secs(35),
        )
        .await;
        assert!(
            store
                .link_call_ticket("c-only-vm", ticket.id)
                .await
                .unwrap()
        );
        let vm = store
            .enqueue_transcription(
                &NewTranscriptionJob {
                    call_id: Some(c),
                    ticket_id: Some(ticket.id),
                    kind: JobKind::Message,
                    recording_path: message("c-only-vm"),
                    language: Some("zh".into()),
                },
                t0 + secs(35),
            )
            .await
            .unwrap();
        // Not transcribed yet: the call's job is the voicemail's.
        assert!(store.transcript_for_call(c).await.unwrap().is_none());
        let job = store.transcription_job_for_call(c).await.unwrap().unwrap();
        assert_eq!(
            (job.id, job.kind, job.state),
            (vm, JobKind::Message, JobState::Queued)
        );
        let claimed = claim(store, "w", t0 + secs(60), vm).await;
        let done = store
            .finish_transcription(
                &claimed,
                &left_message("解放路的路灯不亮了。"),
                t0 + secs(70),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.filled_ticket.as_ref(), Some(&ticket.number));
        let answer = store.transcript_for_call(c).await.unwrap().unwrap();
        assert_eq!(answer.id, done.transcript_id);
        assert_eq!(answer.job_id, Some(vm));
        assert_eq!(answer.recording_path, message("c-only-vm"));
        assert_eq!(answer.text, "解放路的路灯不亮了。");
        assert_eq!(
            (answer.call_id, answer.ticket_id),
            (Some(c), Some(ticket.id))
        );
        assert_eq!(answer.segments.len(), 1);
        assert_eq!(answer.segments[0].speaker, Speaker::Caller);
        // The start-up backfill leaves the call out too.
        let since = t0 - secs(86_400);
        assert_eq!(
            store
                .enqueue_untranscribed_calls(since, t0 + secs(120))
                .await
                .unwrap(),
            0
        );
        assert!(
            store
                .transcription_job_for_recording(&recording("c-only-vm"))
                .await
                .unwrap()
                .is_none()
        );

        // A call that has its recording's job answers with that one, not with its voicemail's —
        // nothing until it is transcribed.
        let both = recorded_call(store, "c-both", t0).await;
        let ticket = voicemail_ticket_at(
            &t,
            voicemail_placeholder(5, false),
            message("c-both"),
            t0 + secs(35),
        )
        .await;
        let vm = transcribe(
            store,
            NewTranscriptionJob {
                call_id: Some(both),
                ticket_id: Some(ticket.id),
                kind: JobKind::Message,
                recording_path: message("c-both"),
                language: None,
            },
            left_message("人民路的井盖坏了。"),
            t0 + secs(60),
        )
        .await;
        let call_job_id = store
            .enqueue_transcription(&call_job(Some(both), "c-both"), t0 + secs(60))
            .await
            .unwrap();
        assert!(store.transcript_for_call(both).await.unwrap().is_none());
        let job = store
            .transcription_job_for_call(both)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((job.id, job.kind), (call_job_id, JobKind::Call));
        let claimed = claim(store, "w", t0 + secs(61), call_job_id).await;
        let whole = store
            .finish_transcription(&claimed, &said(&["人民路的井盖坏了"]), t0 + secs(62))
            .await
            .unwrap()
            .unwrap();
        let answer = store.transcript_for_call(both).await.unwrap().unwrap();
        assert_eq!(answer.id, whole.transcript_id);
        assert_ne!(answer.id, vm);
        assert_eq!(answer.recording_path, recording("c-both"));
        assert_eq!(answer.text, "您好，12319城市管理热线。\n人民路的井盖坏了");

        // A call with neither has no job to tell of.
        let plain = recorded_call(store, "c-plain", t0).await;
        assert!(
            store
                .transcription_job_for_call(plain)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.transcript_for_call(plain).await.unwrap().is_none());
    }
);

db_test!(
    voicemails_without_a_job_are_queued_in_the_callers_language,
    |db| {
        let store = &db.store;
        let t = service(store.clone());
        let t0 = monday_morning();
        let agent = Actor {
            id: 1,
            name: "agent".into(),
            role: Role::Agent,
            department: None,
        };
        // Chinese, linked to its call; the crash came before the job was queued.
        let zh_call = recorded_call(store, "c-zh", t0).await;
        let zh = voicemail_ticket_at(
            &t,
            voicemail_placeholder(9, false),
            message("c-zh"),
            t0 + secs(35),
        )
        .await;
        assert!(store.link_call_ticket("c-zh", zh.id).await.unwrap());
        // English, supplemented by the caller; the crash came before the call was linked.
        let en = voicemail_ticket_at(
            &t,
            voicemail_placeholder(6, true),
            message("c-en"),
            t0 + secs(36),
        )
        .await;
        t.supplement(
            en.number.as_str(),
            ticketing::store::Supplement {
                content: Some("在学校门口".into()),
                ..Default::default()
            },
            &Default::default(),
            &agent,
            t0 + secs(37),
        )
        .await
        .unwrap();
        // Someone wrote what the message says: the language is not known any more.
        let written = voicemail_ticket_at(
            &t,
            "人民路的井盖坏了（话务员听录音后填写）".into(),
            message("c-written"),
            t0 + secs(38),
        )
        .await;
        // Already queued, in English.
        let queued_ticket = voicemail_ticket_at(
            &t,
            voicemail_placeholder(4, false),
            message("c-queued"),
            t0 + secs(39),
        )
        .await;
        let queued = store
            .enqueue_transcription(
                &NewTranscriptionJob {
                    call_id: None,
                    ticket_id: Some(queued_ticket.id),
                    kind: JobKind::Message,
                    recording_path: message("c-queued"),
                    language: Some("en".into()),
                },
                t0 + secs(39),
            )
            .await
            .unwrap();
        // Too old; and recordings that are not voicemails (an agent's ticket with a call
        // recording attached).
        voicemail_ticket_at(
            &t,
            voicemail_placeholder(4, false),
            "messages/2026/11/15/c-old-1.wav".into(),
            t0 - secs(8 * 86_400),
        )
        .await;
        voicemail_ticket_at(&t, "占道经营".into(), recording("c-agent"), t0 + secs(40)).await;
        // An ordinary call, ended while transcription was off.
        let plain = recorded_call(store, "c-plain", t0).await;

        let since = t0 - secs(7 * 86_400);
        let now = t0 + secs(600);
        assert_eq!(
            store
                .enqueue_untranscribed_voicemails(since, now)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store
                .enqueue_untranscribed_voicemails(since, now)
                .await
                .unwrap(),
            0,
            "a second sweep queues nothing"
        );
        // The voicemail's call is not queued for itself; the ordinary one is.
        assert_eq!(
            store.enqueue_untranscribed_calls(since, now).await.unwrap(),
            1
        );
        let jobs = store
            .list_transcription_jobs(JobState::Queued, 50)
            .await
            .unwrap();
        let mut found: Vec<_> = jobs
            .iter()
            .map(|j| {
                (
                    j.recording_path.clone(),
                    j.kind,
                    j.ticket_id,
                    j.call_id,
                    j.language.clone(),
                )
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            found,
            [
                (
                    message("c-en"),
                    JobKind::Message,
                    Some(en.id),
                    None,
                    Some("en".to_owned())
                ),
                (
                    message("c-queued"),
                    JobKind::Message,
                    Some(queued_ticket.id),
                    None,
                    Some("en".to_owned())
                ),
                (
                    message("c-written"),
                    JobKind::Message,
                    Some(written.id),
                    None,
                    None
                ),
                (
                    message("c-zh"),
                    JobKind::Message,
                    Some(zh.id),
                    Some(zh_call),
                    Some("zh".to_owned())
                ),
                (
                    recording("c-plain"),
                    JobKind::Call,
                    None,
                    Some(plain),
                    Some("zh".into()),
                ),
            ]
        );
        let zh_job = jobs
            .iter()
            .find(|j| j.recording_path == message("c-zh"))
            .unwrap();
        assert_eq!((zh_job.next_at, zh_job.attempts), (now, 0));
        let kept = store.transcription_job(queued).await.unwrap().unwrap();
        assert_eq!(kept.next_at, t0 + secs(39), "the queued job is untouched");
        // Transcribed, the backfilled voicemail fills its ticket and answers for its call. (The
        // job queued before waits longest: it goes first.)
        claim(store, "w0", now, queued).await;
        let claimed = claim(store, "w", now, zh_job.id).await;
        store
            .finish_transcription(
                &claimed,
                &left_message("解放路的路灯不亮了。"),
                now + secs(9),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            t.get(zh.number.as_str(), &agent).await.unwrap().content,
            "解放路的路灯不亮了。"
        );
        assert_eq!(
            store
                .transcript_for_call(zh_call)
                .await
                .unwrap()
                .unwrap()
                .text,
            "解放路的路灯不亮了。"
        );
    }
);
