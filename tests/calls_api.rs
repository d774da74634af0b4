//! End to end: call detail records written through the store (as the SIP gateway does), read and
//! played over HTTP from the real `hotline` binary; every play lands in the audit log.
//! Runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.

mod common;

use common::Api;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;
use ticketing::testing::TestDb;
use ticketing::{CallEnd, EndedBy, NewCall, Store};

const BIN: &str = env!("CARGO_BIN_EXE_hotline");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/hotline.toml");
const PASSWORD: &str = "correct horse battery";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hotline(data: &Path, database_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("HOTLINE_CONFIG", CONFIG)
        .env("HOTLINE_DATA_DIR", data)
        .env("HOTLINE_HTTP_LISTEN", "127.0.0.1:0")
        .env("HOTLINE_SIP_LISTEN", "127.0.0.1:0")
        .env("HOTLINE_DATABASE_URL", database_url)
        .env("RUST_LOG", "error");
    cmd
}

/// Adds an agent, a supervisor, an admin and a department user, then starts `hotline serve`.
fn start(data: &Path, database_url: &str) -> Server {
    let users: [(&str, &str, Option<&str>); 4] = [
        ("agent", "agent", None),
        ("supervisor", "supervisor", None),
        ("admin", "admin", None),
        ("drain", "department", Some("DRAIN")),
    ];
    for (name, role, dept) in users {
        let mut cmd = hotline(data, database_url);
        cmd.args(["user", "add", name, "--role", role])
            .env("HOTLINE_USER_PASSWORD", PASSWORD);
        if let Some(d) = dept {
            cmd.args(["--department", d]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut child = hotline(data, database_url)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Keep reading what else it prints, so it never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = line
        .trim()
        .strip_prefix("hotline listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Server { child, base }
}

/// A stereo 8 kHz 16-bit WAV of `seconds`, with a byte pattern that tells every offset apart.
fn wav(seconds: u32) -> Vec<u8> {
    let data_len = seconds * 8000 * 2 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&2u16.to_le_bytes()); // stereo: caller and hotline
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&(8000u32 * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend((0..data_len).map(|i| (i * 7 % 251) as u8));
    out
}

/// A call as the gateway would record it: started, answered with a recording, ended by the caller.
async fn recorded_call(
    store: &Store,
    call_id: &str,
    from: &str,
    recording: &str,
    at: Timestamp,
) -> i64 {
    let id = store
        .call_started(&NewCall {
            call_id: call_id.into(),
            hotline: Some("12319".into()),
            from_number: Some(from.into()),
            from_uri: Some(format!("sip:{from}@192.0.2.1")),
            to_number: Some("12319".into()),
            source: Some("192.0.2.1:5060/udp".into()),
            trunk: None,
            started_at: at,
            node: None,
        })
        .await
        .unwrap();
    let answered = at + SignedDuration::from_secs(4);
    store
        .call_answered(call_id, answered, Some(recording))
        .await
        .unwrap();
    let end = CallEnd {
        at: answered + SignedDuration::from_secs(2),
        ended_by: EndedBy::Caller,
        code: 200,
        reason: "caller hung up".into(),
        language: Some("zh".into()),
    };
    store
        .call_ended(call_id, &end, Some(128_044))
        .await
        .unwrap();
    id
}

async fn staff_find_and_play_recordings_and_every_play_is_audited(db: &TestDb) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let audio = wav(2);
    let day = data.join("recordings/2026/11/23");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(day.join("rec-1.wav"), &audio).unwrap();
    // A file next to the data directory that no stored path may reach.
    let secret = root.path().join("secret.wav");
    std::fs::write(&secret, b"not for you").unwrap();

    let store = &db.store;
    let t0: Timestamp = "2026-11-23T01:00:00Z".parse().unwrap();
    let rec = recorded_call(
        store,
        "rec-1",
        "13812345678",
        "recordings/2026/11/23/rec-1.wav",
        t0,
    )
    .await;
    let gone = recorded_call(
        store,
        "gone",
        "13812340000",
        "recordings/2026/11/23/gone.wav",
        t0 + SignedDuration::from_mins(1),
    )
    .await;
    let escape = recorded_call(
        store,
        "escape",
        "13700000001",
        "../secret.wav",
        t0 + SignedDuration::from_mins(2),
    )
    .await;
    let absolute = recorded_call(
        store,
        "absolute",
        "13700000002",
        secret.to_str().unwrap(),
        t0 + SignedDuration::from_mins(3),
    )
    .await;
    let missed = store
        .call_started(&NewCall {
            call_id: "missed".into(),
            hotline: Some("12345".into()),
            from_number: Some("13900001111".into()),
            from_uri: None,
            to_number: Some("12345".into()),
            source: None,
            trunk: None,
            started_at: t0 + SignedDuration::from_mins(4),
            node: None,
        })
        .await
        .unwrap();
    let cancel = CallEnd {
        at: t0 + SignedDuration::from_mins(5),
        ended_by: EndedBy::Caller,
        code: 487,
        reason: "caller hung up before answer".into(),
        language: None,
    };
    store.call_ended("missed", &cancel, None).await.unwrap();

    let server = start(&data, &db.url);
    let agent = Api::login(&server.base, "agent", PASSWORD).await;
    let supervisor = Api::login(&server.base, "supervisor", PASSWORD).await;
    let admin = Api::login(&server.base, "admin", PASSWORD).await;
    let drain = Api::login(&server.base, "drain", PASSWORD).await;

    // Lists and filters; full numbers for the roles that call back.
    let (status, page) = agent.get("/api/v1/calls").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"][0]["call_id"], "missed", "newest first");
    let (_, page) = supervisor.get("/api/v1/calls?hotline=12345").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["end_code"], 487);
    assert_eq!(page["items"][0]["answered_at"], Value::Null);
    let (_, page) = agent
        .get("/api/v1/calls?number=138-1234&answered=true")
        .await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gone", "rec-1"]);
    let (_, page) = agent.get("/api/v1/calls?answered=false").await;
    assert_eq!(page["total"], 1);
    let (_, page) = admin
        .get(
            "/api/v1/calls?since=2026-11-23T01:01:00Z&until=2026-11-23T01:03:00Z&per_page=1&page=2",
        )
        .await;
    assert_eq!(
        (page["total"].as_i64(), page["items"][0]["call_id"].as_str()),
        (Some(2), Some("gone"))
    );
    let (status, call) = supervisor.get(&format!("/api/v1/calls/{rec}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(call["from_number"], "13812345678");
    assert_eq!(call["duration_ms"], 2000);
    assert_eq!(call["ended_by"], "caller");
    assert_eq!(call["recording_path"], "recordings/2026/11/23/rec-1.wav");
    let (status, problem) = agent.get("/api/v1/calls/999999").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("call_not_found"))
    );
    let (status, problem) = agent.get("/api/v1/calls?answered=maybe").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );

    // A department user reads no calls and plays nothing.
    let (status, problem) = drain.get("/api/v1/calls").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = drain.get(&format!("/api/v1/calls/{rec}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The whole recording.
    let recording = format!("/api/v1/calls/{rec}/recording");
    let res = agent.fetch(&recording, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "audio/wav");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let last_modified = res.headers()["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap(), audio);

    // A range: exactly those bytes.
    let res = supervisor
        .fetch(&recording, &[("range", "bytes=44-1043")])
        .await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 44-1043/{}", audio.len())
    );
    assert_eq!(res.headers()["content-length"], "1000");
    assert_eq!(res.headers()["content-type"], "audio/wav");
    assert_eq!(res.bytes().await.unwrap(), audio[44..=1043]);

    // If-Range: the range holds while the file is the one seen; otherwise the whole file comes.
    let res = supervisor
        .fetch(
            &recording,
            &[("range", "bytes=0-99"), ("if-range", &last_modified)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(res.bytes().await.unwrap(), audio[..100]);
    let res = supervisor
        .fetch(
            &recording,
            &[
                ("range", "bytes=0-99"),
                ("if-range", "Mon, 02 Jan 2006 15:04:05 GMT"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().len(), audio.len());

    // Only agents and supervisors listen.
    let res = admin.fetch(&recording, &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = drain.fetch(&recording, &[("range", "bytes=0-43")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Nothing to play: no recording, or the file is gone.
    let (status, problem) = agent
        .get(&format!("/api/v1/calls/{missed}/recording"))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_recording"))
    );
    let (status, problem) = agent.get(&format!("/api/v1/calls/{gone}/recording")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("recording_missing"))
    );

    // A stored path that leaves the data directory is an error, never the file.
    for id in [escape, absolute] {
        let res = supervisor
            .fetch(&format!("/api/v1/calls/{id}/recording"), &[])
            .await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body = res.text().await.unwrap();
        assert!(!body.contains("not for you"), "{body}");
        assert!(body.contains("recording_path_refused"), "{body}");
    }

    // The audit log: one entry per request, in order, with who, what range, from where, what came.
    let entries = store.list_audit(&format!("call:{rec}")).await.unwrap();
    let seen: Vec<(&str, &str, Option<&str>, u64)> = entries
        .iter()
        .map(|e| {
            (
                e.actor_name.as_str(),
                e.action.as_str(),
                e.detail["range"].as_str(),
                e.detail["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("agent", "recording.play", None, 200),
            ("supervisor", "recording.play", Some("bytes=44-1043"), 206),
            ("supervisor", "recording.play", Some("bytes=0-99"), 206),
            ("supervisor", "recording.play", Some("bytes=0-99"), 200),
            ("admin", "recording.denied", None, 403),
            ("drain", "recording.denied", Some("bytes=0-43"), 403),
        ]
    );
    for e in &entries {
        assert_eq!(e.address.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.target, format!("call:{rec}"));
        assert!(e.actor_id.is_some() && e.role.is_some());
        assert_eq!(e.detail["method"], "GET");
    }
    assert_eq!(entries[2].detail["if_range"], last_modified.as_str());
    for (id, status) in [(missed, 404), (gone, 404), (escape, 500), (absolute, 500)] {
        let entries = store.list_audit(&format!("call:{id}")).await.unwrap();
        assert_eq!(entries.len(), 1, "call {id}");
        assert_eq!(entries[0].detail["status"], status);
    }

    // The OpenAPI document lists the routes.
    let (_, spec) = agent.get("/api/v1/openapi.json").await;
    assert!(spec["paths"]["/api/v1/calls/{id}/recording"]["get"].is_object());
    assert!(spec["components"]["schemas"]["Call"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_find_and_play_recordings_and_every_play_is_audited_on_sqlite() {
    let db = TestDb::sqlite().await;
    staff_find_and_play_recordings_and_every_play_is_audited(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_find_and_play_recordings_and_every_play_is_audited_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant not run");
        return;
    };
    staff_find_and_play_recordings_and_every_play_is_audited(&db).await;
    db.cleanup().await;
}
