//! End to end over SIP: the real `hotline` binary on random ports, called by real SIPp processes
//! playing the scenarios in `tests/sipp/`. Each test is something a caller, a trunk or an
//! attacker does; it checks what SIPp saw on the wire, the call record a supervisor reads over
//! HTTP, and the recording by its content: its length against the call's, and on each channel
//! the energy or the 440 Hz greeting tone that should be there.
//!
//! Needs `sipp` with PCAP play (Debian `sip-tester`) on the PATH. Runs on SQLite in a temporary
//! data directory per test; when a test fails it prints the hotline's log and SIPp's logs.

mod common;

use common::Api;

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hotline");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PASSWORD: &str = "correct horse battery";
/// The caller number every scenario puts in From.
const CALLER: &str = "13900001234";
/// How long a call record may take to be written after the call ends.
const RECORD_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Calls answered, heard and hung up
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_is_answered_and_hangs_up() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("caller_speaks").pause_ms(2000).run().await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 200);

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["hotline"], "12319");
    assert_eq!(call["from_number"], CALLER);
    assert_eq!(call["to_number"], "12319");
    assert_eq!(call["trunk"], "local");
    assert_eq!(call["ended_by"], "caller");
    assert_eq!(call["end_code"], 200);
    assert_eq!(call["end_reason"], "caller hung up");
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(
        (1900..3500).contains(&duration),
        "a 2 s call lasted {duration} ms"
    );

    let recording = api.recording(&call).await;
    recording.assert_lasts(duration);
    // SIPp sends real speech from right after its ACK: the caller channel carries it...
    let speech = rms(recording.caller(0.0, 2.0));
    assert!(
        speech > 500.0,
        "caller channel RMS {speech:.0} over the first 2 s: silence?"
    );
    // ...and the hotline channel the 1-second 440 Hz greeting, then silence.
    assert_greeting(&recording.hotline, "the hotline channel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_delayed_offer_is_answered() {
    // An INVITE without SDP: we offer in the 200, the caller answers in the ACK.
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("delayed_offer").pause_ms(2000).run().await;
    run.assert_success();
    let ok = run.received_status(200).expect("a 200 OK");
    assert!(ok.contains("Content-Type: application/sdp"), "{ok}");
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    let recording = api.recording(&call).await;
    recording.assert_lasts(call["duration_ms"].as_i64().unwrap());
    // The caller's media went where the ACK's answer said it comes from.
    let speech = rms(recording.caller(0.0, 1.8));
    assert!(
        speech > 500.0,
        "caller channel RMS {speech:.0}: no audio after a delayed offer?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_hears_the_greeting() {
    let hotline = Hotline::start(|_| {});
    // SIPp echoes every RTP packet it receives: what the caller heard comes back as the caller.
    let run = hotline
        .sipp("caller_hears_prompt")
        .pause_ms(2000)
        .arg("-rtp_echo")
        .run()
        .await;
    run.assert_success();

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    let recording = api.recording(&call).await;
    recording.assert_lasts(call["duration_ms"].as_i64().unwrap());

    let sent = assert_greeting(&recording.hotline, "the hotline channel");
    let back = assert_greeting(
        &recording.caller,
        "the caller channel (the greeting as SIPp received it)",
    );
    // It is the echo, not the prompt leaking into the caller side: it comes after the prompt,
    // by the round trip and the jitter buffer.
    let lag_ms = (back as f64 - sent as f64) / 8.0;
    assert!(
        (20.0..400.0).contains(&lag_ms),
        "echo came back {lag_ms:.0} ms after the prompt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotline_hangs_up_a_call_without_rtp() {
    let hotline = Hotline::start(|sip| sip.no_rtp_seconds = 1);
    let started = Instant::now();
    let run = hotline.sipp("hotline_hangs_up").run().await;
    run.assert_success();
    let bye = run.received_request("BYE").expect("a BYE from the hotline");
    assert!(bye.contains("Reason: SIP;cause=408"), "{bye}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 408);
    assert_eq!(call["end_reason"], "no RTP for 1 s");
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(
        (950..1600).contains(&duration),
        "torn down after {duration} ms"
    );
    let recording = api.recording(&call).await;
    recording.assert_lasts(duration);
    let caller = rms(recording.caller(0.0, 0.9));
    assert!(
        caller < 50.0,
        "SIPp sent nothing, yet the caller channel has RMS {caller:.0}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_that_never_acks_is_hung_up() {
    // The watchdog is off, so only the missing ACK can end this call (after 64*T1 = 32 s).
    let hotline = Hotline::start(|sip| sip.no_rtp_seconds = 0);
    let run = hotline.sipp("no_ack").run().await;
    run.assert_success();
    let oks = run
        .received()
        .iter()
        .filter(|m| status_code(m) == Some(200))
        .count();
    assert!(
        oks >= 5,
        "the 200 OK is retransmitted while no ACK comes ({oks} seen)"
    );
    assert!(
        run.received_request("BYE").is_some(),
        "the hotline ends the dialog"
    );

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 408);
    assert_eq!(call["end_reason"], "no ACK for the 200 OK");
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(
        (30_000..36_000).contains(&duration),
        "torn down after {duration} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timer_is_agreed_and_refreshed_by_update() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("session_refresh").pause_ms(500).run().await;
    // The scenario checks Session-Expires: 90;refresher=uac and Require: timer on the 200 to the
    // INVITE and the interval again on the 200 to the UPDATE.
    run.assert_success();
    let answers = run
        .received()
        .iter()
        .filter(|m| status_code(m) == Some(200) && m.contains("Session-Expires: 90;refresher=uac"))
        .count();
    assert!(
        answers >= 2,
        "INVITE and UPDATE both answered with the interval"
    );
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_short_session_interval_gets_422() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("session_too_small").run().await;
    run.assert_success();
    let refusal = run.received_status(422).expect("a 422");
    assert!(refusal.contains("Min-SE: 90"), "{refusal}");
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["end_code"], 422);
    assert!(call["answered_at"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_cancels_while_it_rings() {
    let hotline = Hotline::start(|sip| sip.answer_delay_ms = 3000);
    let run = hotline.sipp("cancel_before_answer").run().await;
    run.assert_success();
    assert_eq!(run.received_statuses(), [180, 200, 487]);
    assert!(run.received_status(200).unwrap().contains("CSeq: 1 CANCEL"));

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    assert_eq!(call["end_code"], 487);
    assert_eq!(call["answered_at"], Value::Null);
    assert_eq!(call["duration_ms"], Value::Null);
    assert_eq!(call["recording_path"], Value::Null);
    assert!(
        !hotline.log().contains("call answered"),
        "a cancelled call must not be answered"
    );
}

// ---------------------------------------------------------------------------------------------
// Keypad and hold
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypad_digits_by_rfc4733_are_recognised_once() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("dtmf_rfc4733").run().await;
    run.assert_success();
    let call_id = run.call_id();
    let api = hotline.supervisor().await;
    let call = api.ended_call(&call_id).await;
    assert_eq!(call["ended_by"], "caller");

    // Every RFC 4733 packet of a press (start, updates, three end packets) makes one digit.
    assert_eq!(
        hotline.digits(&call_id),
        ["2 by rfc4733", "1 by rfc4733", "# by rfc4733"]
    );
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="rfc4733"}"#),
        Some(3.0)
    );
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="info"}"#),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypad_digits_by_sip_info_are_recognised() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("dtmf_info").run().await;
    run.assert_success();
    let call_id = run.call_id();
    let oks = run
        .received()
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0 200") && m.contains(" INFO\r\n"))
        .count();
    assert_eq!(oks, 2, "both INFOs answered 200");

    let api = hotline.supervisor().await;
    api.ended_call(&call_id).await;
    assert_eq!(hotline.digits(&call_id), ["5 by info", "# by info"]);
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="info"}"#),
        Some(2.0)
    );
    assert_eq!(
        metric(&metrics, r#"hotline_dtmf_digits_total{via="rfc4733"}"#),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_puts_the_hotline_on_hold_and_back() {
    // The hold lasts longer than the no-RTP limit: a held call must not be torn down.
    let hotline = Hotline::start(|sip| sip.no_rtp_seconds = 2);
    let run = hotline.sipp("hold_unhold").pause_ms(3000).run().await;
    run.assert_success();
    let answers: Vec<String> = run
        .received()
        .into_iter()
        .filter(|m| m.starts_with("SIP/2.0 200") && m.contains(" INVITE\r\n"))
        .collect();
    assert_eq!(answers.len(), 3, "the call and two re-INVITEs answered");
    assert!(
        answers[1].contains("a=recvonly"),
        "hold answered recvonly: {}",
        answers[1]
    );
    assert!(
        answers[2].contains("a=sendrecv"),
        "unhold answered sendrecv: {}",
        answers[2]
    );
    let versions: Vec<u64> = answers.iter().map(|a| sdp_origin_version(a)).collect();
    assert!(
        versions[0] < versions[1] && versions[1] < versions[2],
        "each new answer has a new o= version: {versions:?}"
    );

    let call_id = run.call_id();
    let api = hotline.supervisor().await;
    let call = api.ended_call(&call_id).await;
    assert_eq!(call["ended_by"], "caller");
    assert_eq!(call["end_code"], 200);
    let duration = call["duration_ms"].as_i64().unwrap();
    assert!(duration > 3500, "held call lasted only {duration} ms");
    api.recording(&call).await.assert_lasts(duration);
    let changes: Vec<String> = hotline
        .log()
        .lines()
        .filter(|l| l.contains("session changed") && l.contains(&format!("call_id={call_id} ")))
        .map(|l| field(l, "hold").to_owned())
        .collect();
    assert_eq!(changes, ["true", "false"]);
}

// ---------------------------------------------------------------------------------------------
// Hostile and unwelcome traffic
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_burst_does_not_disturb_the_next_call() {
    let mut hotline = Hotline::start(|_| {});
    let burst = hostile_datagrams(hotline.sip);
    let answered = send_burst(hotline.sip, &burst);
    for (i, (message, expect)) in burst.iter().enumerate() {
        let got = answered.get(&burst_call_id(i));
        match expect {
            Expect::BadRequest => assert_eq!(
                got.map(Vec::len),
                Some(1),
                "datagram {i} should get one 400: {}",
                preview(message)
            ),
            Expect::Silence => assert!(
                got.is_none(),
                "datagram {i} should get no answer: {}",
                preview(message)
            ),
        }
    }
    let replies: Vec<&String> = answered.values().flatten().collect();
    assert!(
        replies
            .iter()
            .all(|r| r.starts_with("SIP/2.0 400 Bad Request\r\n")),
        "{replies:?}"
    );
    let refusable = burst
        .iter()
        .filter(|(_, e)| *e == Expect::BadRequest)
        .count();
    assert_eq!(
        replies.len(),
        refusable,
        "one 400 for each refusable datagram"
    );
    hostile_tcp(hotline.tcp);

    let run = hotline.sipp("malformed_invite").run().await;
    run.assert_success();
    assert_eq!(run.received_statuses(), [400]);

    let call = hotline.sipp("caller_speaks").pause_ms(2000).run().await;
    call.assert_success();
    let api = hotline.supervisor().await;
    let record = api.ended_call(&call.call_id()).await;
    assert_eq!(record["ended_by"], "caller");
    assert_eq!(record["end_code"], 200);
    let recording = api.recording(&record).await;
    recording.assert_lasts(record["duration_ms"].as_i64().unwrap());
    assert!(rms(recording.caller(0.0, 2.0)) > 500.0);
    assert_greeting(&recording.hotline, "the hotline channel after the burst");

    let (_, page) = api.get("/api/v1/calls").await;
    assert_eq!(page["total"], 1, "only the good call is on record: {page}");
    let metrics = api.metrics().await;
    assert_eq!(
        metric(&metrics, r#"hotline_sip_malformed_total{answer="400"}"#),
        Some((replies.len() + 1) as f64),
        "every 400 the guard sent was received"
    );
    hotline.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_source_is_refused() {
    // The only trunk is 127.0.0.1; the caller comes from 127.0.0.2.
    let hotline = Hotline::start(|_| {});
    let run = hotline
        .sipp("refused")
        .calling_from("127.0.0.2")
        .run()
        .await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 403);
    let refused_id = run.call_id();
    assert!(hotline.log().contains(&format!(
        "call_id={refused_id} reason=\"source address is not on any trunk\""
    )));

    // A good call afterwards: once its record is written, any record of the refused one would be.
    let good = hotline.sipp("caller_speaks").pause_ms(300).run().await;
    good.assert_success();
    let api = hotline.supervisor().await;
    api.ended_call(&good.call_id()).await;
    let (_, page) = api.get("/api/v1/calls").await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [good.call_id()], "no record of the refused call");
    let metrics = api.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"hotline_sip_refused_total{reason="source address is not on any trunk"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_phone_authenticates_with_digest() {
    let hotline = Hotline::start(|sip| {
        sip.trunks = vec![Trunk {
            name: "desk",
            addresses: vec![],
            credentials: Some(("desk1", "s3cret-desk")),
        }]
    });
    // A wrong password: challenged, then refused; no call.
    let wrong = hotline
        .sipp("digest_auth")
        .args(["-au", "desk1", "-ap", "guess"])
        .run()
        .await;
    assert!(
        !wrong.status.success(),
        "a wrong password must not get through"
    );
    assert_eq!(wrong.received_statuses(), [401, 403]);
    assert!(
        wrong
            .received_status(401)
            .unwrap()
            .contains("WWW-Authenticate: Digest realm=\"hotline\"")
    );
    assert!(
        wrong
            .sent()
            .iter()
            .any(|m| m.starts_with("INVITE") && m.contains("Authorization: Digest"))
    );

    // The right one: challenged, admitted, answered.
    let right = hotline
        .sipp("digest_auth")
        .args(["-au", "desk1", "-ap", "s3cret-desk"])
        .run()
        .await;
    right.assert_success();
    assert_eq!(right.invite_final_status(), 200);

    let api = hotline.supervisor().await;
    let call = api.ended_call(&right.call_id()).await;
    assert_eq!(call["trunk"], "desk");
    assert_eq!(call["ended_by"], "caller");
    let (_, page) = api.get("/api/v1/calls").await;
    assert_eq!(
        page["total"], 1,
        "the refused attempt left no record: {page}"
    );
    assert!(hotline.log().contains("reason=\"wrong digest response\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_number_gets_404() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("refused").dialing("99999").run().await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 404);

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["hotline"], Value::Null);
    assert_eq!(call["to_number"], "99999");
    assert_eq!(call["from_number"], CALLER);
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 404);
    assert_eq!(call["end_reason"], "number not in service");
    assert_eq!(call["answered_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_system_answers_503_with_retry_after() {
    let hotline = Hotline::start(|sip| {
        sip.max_calls = 1;
        sip.retry_after_seconds = 7;
    });
    let api = hotline.supervisor().await;
    // The one line is taken by a call held in the background...
    let first = hotline.sipp("caller_speaks").pause_ms(3000).spawn();
    api.call_in_progress().await;
    // ...so the next caller is told to come back later.
    let second = hotline.sipp("refused").run().await;
    second.assert_success();
    assert_eq!(second.invite_final_status(), 503);
    let busy = second.received_status(503).unwrap();
    assert!(busy.contains("Retry-After: 7\r\n"), "{busy}");

    let first = first.finish().await;
    first.assert_success();
    let call = api.ended_call(&first.call_id()).await;
    assert_eq!(
        (call["ended_by"].as_str(), call["end_code"].as_i64()),
        (Some("caller"), Some(200))
    );
    let call = api.ended_call(&second.call_id()).await;
    assert_eq!(call["ended_by"], "system");
    assert_eq!(call["end_code"], 503);
    assert_eq!(call["end_reason"], "all lines busy");
    assert_eq!(call["answered_at"], Value::Null);
    assert_eq!(
        metric(&api.metrics().await, "hotline_calls_busy_total"),
        Some(1.0)
    );
    api.wait_for_metric("hotline_calls_active", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_codec_gets_488() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("unsupported_media").run().await;
    run.assert_success();
    assert_eq!(run.invite_final_status(), 488);
    assert!(
        run.received_status(488)
            .unwrap()
            .contains("Warning: 399 hotline")
    );

    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["end_code"], 488);
    assert_eq!(call["end_reason"], "no acceptable media");
    assert_eq!(call["answered_at"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sbc_keepalive_is_answered() {
    let hotline = Hotline::start(|_| {});
    let run = hotline.sipp("options_keepalive").run().await;
    run.assert_success();
    let ok = run.received_status(200).unwrap();
    assert!(
        ok.contains("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, PRACK"),
        "{ok}"
    );
    // A stranger's OPTIONS learns nothing.
    let stranger = hotline
        .sipp("options_keepalive")
        .calling_from("127.0.0.2")
        .run()
        .await;
    assert!(!stranger.status.success());
    assert_eq!(stranger.received_statuses(), [403]);
    let api = hotline.supervisor().await;
    let (_, page) = api.get("/api/v1/calls").await;
    assert_eq!(page["total"], 0, "keepalives are not calls");
}

// ---------------------------------------------------------------------------------------------
// Crash
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_over_tcp_is_answered() {
    let hotline = Hotline::start(|_| {});
    let run = hotline
        .sipp("caller_speaks")
        .pause_ms(1000)
        .args(["-t", "t1"])
        .run()
        .await;
    run.assert_success();
    // The Contact of the 200 says TCP, so the caller's in-dialog requests stay on TCP.
    let ok = run.received_status(200).expect("a 200 OK");
    let contact = ok
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("contact:"))
        .unwrap_or_else(|| panic!("no Contact in {ok}"));
    assert!(
        contact.to_ascii_lowercase().contains("transport=tcp"),
        "{contact}"
    );
    let api = hotline.supervisor().await;
    let call = api.ended_call(&run.call_id()).await;
    assert_eq!(call["ended_by"], "caller");
    assert!(
        call["source"].as_str().unwrap_or("").starts_with("tcp:"),
        "{call}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_over_tls_is_answered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hotline = Hotline::start(|sip| sip.tls_port = Some(port));
    let request = format!(
        "OPTIONS sip:12319@127.0.0.1:{port};transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls1\r\n\
         From: <sip:sbc@127.0.0.1>;tag=1\r\nTo: <sip:12319@127.0.0.1>\r\n\
         Call-ID: tls-keepalive@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    // A real TLS client (openssl s_client) speaks the request and prints what comes back.
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl must be installed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.as_bytes()).unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut status = String::new();
    let reader = std::thread::spawn(move || stdout.read_line(&mut status).map(|_| status));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let status = reader.join().unwrap().unwrap_or_default();
    assert_eq!(status.trim(), "SIP/2.0 200 OK", "log:\n{}", hotline.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_survives_kill_9() {
    let mut hotline = Hotline::start(|_| {});
    let api = hotline.supervisor().await;
    let caller = hotline.sipp("caller_speaks").pause_ms(10_000).spawn();
    let call = api.call_in_progress().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    hotline.kill_9();
    let caller = caller.kill().await;

    // Straight after the crash the file opens and plays at least to its last full second.
    let path = hotline
        .data()
        .join(call["recording_path"].as_str().unwrap());
    let written = std::fs::metadata(&path).unwrap().len();
    let written_samples = (written - 44) / 4;
    assert!(
        (2 * 8000..3 * 8000 + 4000).contains(&written_samples),
        "about 2.5 s written before the kill, found {written_samples} samples"
    );
    let crashed = Recording::parse(&std::fs::read(&path).unwrap());
    let full_seconds = written_samples / 8000 * 8000;
    assert!(
        crashed.samples() as u64 >= full_seconds,
        "after kill -9 the file plays {} samples, less than its last full second ({full_seconds})",
        crashed.samples()
    );
    assert!(
        rms(crashed.caller(0.0, 2.0)) > 500.0,
        "the caller's speech is in the crashed file"
    );

    // Restarted on the same data: the header is repaired to everything written, the call closed.
    hotline.restart();
    let api = hotline.supervisor().await;
    let (status, record) = api.get(&format!("/api/v1/calls/{}", call["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["call_id"], caller.call_id());
    assert!(record["ended_at"].is_string(), "{record}");
    assert_eq!(record["ended_by"], "system");
    assert_eq!(record["end_reason"], "node restarted");
    assert_eq!(record["end_code"], Value::Null);
    let repaired = api.recording(&record).await;
    let diff = repaired.samples() as i64 - written_samples as i64;
    assert!(
        diff.abs() <= 160,
        "repaired to {} samples, {written_samples} were written",
        repaired.samples()
    );
    assert!(hotline.log().contains("recording repaired after a crash"));
    assert!(rms(repaired.caller(0.0, 2.0)) > 500.0);
    assert_greeting(
        &repaired.hotline,
        "the hotline channel of the repaired file",
    );
}

// =============================================================================================
// The fixture: a hotline process with its own data directory
// =============================================================================================

/// `[sip]` settings a test changes; the rest are the shipped defaults.
struct Sip {
    /// A TLS listener on this port, with a self-signed certificate made by `openssl`.
    tls_port: Option<u16>,
    answer_delay_ms: u64,
    no_rtp_seconds: u64,
    max_calls: usize,
    retry_after_seconds: u32,
    trunks: Vec<Trunk>,
}

/// One `[[sip.trunk]]`.
struct Trunk {
    name: &'static str,
    addresses: Vec<&'static str>,
    credentials: Option<(&'static str, &'static str)>,
}

impl Default for Sip {
    fn default() -> Sip {
        Sip {
            tls_port: None,
            answer_delay_ms: 0,
            no_rtp_seconds: 30,
            max_calls: 1000,
            retry_after_seconds: 30,
            trunks: vec![Trunk {
                name: "local",
                addresses: vec!["127.0.0.1"],
                credentials: None,
            }],
        }
    }
}

impl Sip {
    fn to_toml(&self) -> String {
        let mut out = format!(
            "[sip]\nlisten = \"127.0.0.1:0\"\nanswer_delay_ms = {}\nno_rtp_seconds = {}\nmax_calls = {}\nretry_after_seconds = {}\n",
            self.answer_delay_ms, self.no_rtp_seconds, self.max_calls, self.retry_after_seconds
        );
        if let Some(port) = self.tls_port {
            out.push_str(&format!(
                "tls_listen = \"127.0.0.1:{port}\"\ntls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n"
            ));
        }
        for t in &self.trunks {
            let addresses: Vec<String> = t.addresses.iter().map(|a| format!("{a:?}")).collect();
            out.push_str(&format!(
                "\n[[sip.trunk]]\nname = {:?}\naddresses = [{}]\n",
                t.name,
                addresses.join(", ")
            ));
            if let Some((user, password)) = t.credentials {
                out.push_str(&format!("username = {user:?}\npassword = {password:?}\n"));
            }
        }
        out
    }
}

/// A running `hotline serve` in a temporary directory (config, database, prompts, recordings,
/// its log, SIPp's logs). Killed when dropped; on a failing test its log and SIPp's are printed.
struct Hotline {
    dir: tempfile::TempDir,
    child: Option<Child>,
    _stdout: Option<BufReader<ChildStdout>>,
    http: String,
    sip: SocketAddr,
    tcp: SocketAddr,
    runs: Cell<u32>,
}

impl Hotline {
    /// Writes the configuration and the greeting, adds a supervisor, starts serving.
    fn start(configure: impl FnOnce(&mut Sip)) -> Hotline {
        let dir = tempfile::tempdir().unwrap();
        let mut sip = Sip::default();
        configure(&mut sip);
        let data = dir.path().join("data");
        // The calendar is the shipped one (Asia/Shanghai): it dates the recordings' folders.
        let config = format!(
            "data_dir = {data:?}\ncategories = \"{ROOT}/config/categories.toml\"\ndepartments = \"{ROOT}/config/departments.toml\"\nprompts = \"{ROOT}/config/prompts.toml\"\nqueues = \"{ROOT}/config/queues.toml\"\nivr = \"{ROOT}/config/ivr\"\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\n{sip}\n\
             [[hotline]]\nnumber = \"12319\"\nname = \"城市管理服务热线\"\naliases = [\"+8655112319\"]\n\n\
             [calendar]\ntimezone = \"Asia/Shanghai\"\n",
            data = data.display().to_string(),
            sip = sip
                .to_toml()
                .replace("\"tls/", &format!("\"{}/tls/", dir.path().display())),
        );
        std::fs::write(dir.path().join("hotline.toml"), config).unwrap();
        if sip.tls_port.is_some() {
            std::fs::create_dir_all(dir.path().join("tls")).unwrap();
            let out = Command::new("openssl")
                .current_dir(dir.path())
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args([
                    "-subj",
                    "/CN=localhost",
                    "-keyout",
                    "tls/key.pem",
                    "-out",
                    "tls/cert.pem",
                ])
                .output()
                .expect("openssl must be installed");
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        write_greeting(&data.join("prompts/zh/welcome_12319.wav"));
        let mut hotline = Hotline {
            dir,
            child: None,
            _stdout: None,
            http: String::new(),
            sip: "0.0.0.0:0".parse().unwrap(),
            tcp: "0.0.0.0:0".parse().unwrap(),
            runs: Cell::new(0),
        };
        let out = hotline
            .command()
            .args(["user", "add", "supervisor", "--role", "supervisor"])
            .env("HOTLINE_USER_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "user add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        hotline.serve();
        hotline
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(self.dir.path().join("hotline.toml"))
            .env("RUST_LOG", "info,rsipstack=warn")
            .env_remove("HOTLINE_CONFIG")
            .env_remove("HOTLINE_DATA_DIR")
            .env_remove("HOTLINE_DATABASE_URL")
            .env_remove("HOTLINE_HTTP_LISTEN")
            .env_remove("HOTLINE_SIP_LISTEN");
        cmd
    }

    /// `hotline serve`, waiting for its two address lines.
    fn serve(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut child = self
            .command()
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        self.child = Some(child);
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        self.http = line
            .trim()
            .strip_prefix("hotline listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        let mut words = line
            .trim()
            .strip_prefix("hotline SIP on ")
            .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
            .split(' ');
        let mut addr = |scheme: &str| -> SocketAddr {
            words
                .next()
                .and_then(|w| w.strip_prefix(scheme))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no {scheme} address in {line:?}"))
        };
        self.sip = addr("udp:");
        self.tcp = addr("tcp:");
        self._stdout = Some(stdout);
    }

    /// SIGKILL, as `kill -9` does: no shutdown, no final header, no call record.
    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        self._stdout = None;
    }

    /// Starts the binary again on the same configuration and data.
    fn restart(&mut self) {
        self.kill_9();
        self.serve();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("hotline.log")
    }

    /// Everything the hotline wrote to stderr so far (both runs, after a restart).
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The digits the hotline recognised in one call, in order, with how they came
    /// (`"2 by rfc4733"`).
    fn digits(&self, call_id: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("sip_gateway::call: DTMF ") && l.contains(&format!("call_id={call_id} "))
            })
            .map(|l| {
                format!(
                    "{} by {}",
                    field(l, "digit"),
                    field(l, "via").trim_matches('"')
                )
            })
            .collect()
    }

    /// The process still runs and nothing in it panicked.
    fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("started");
        assert_eq!(child.try_wait().unwrap(), None, "the hotline exited");
        assert!(
            !self.log().contains("panicked"),
            "a task in the hotline panicked"
        );
    }

    /// A SIPp run of `tests/sipp/<scenario>.xml` against this hotline, as 13900001234 → 12319.
    fn sipp(&self, scenario: &str) -> Sipp {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        Sipp {
            dir: self.dir.path().to_owned(),
            name: format!("{n}-{scenario}"),
            scenario: format!("{ROOT}/tests/sipp/{scenario}.xml"),
            target: self.sip,
            ip: "127.0.0.1".into(),
            number: "12319".into(),
            pause_ms: 1000,
            extra: Vec::new(),
        }
    }

    async fn supervisor(&self) -> Api {
        Api::login(&self.http, "supervisor", PASSWORD).await
    }
}

impl Drop for Hotline {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("===== hotline log =====\n{}", self.log());
            let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log") && *p != self.log_path())
                .collect();
            logs.sort();
            for path in logs {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                eprintln!(
                    "===== {} =====\n{text}",
                    path.file_name().unwrap().to_string_lossy()
                );
            }
        }
    }
}

/// A 1-second 440 Hz greeting at a high level, 44.1 kHz stereo, so the hotline resamples and
/// mixes it down before playing it.
fn write_greeting(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..44_100 {
        let t = f64::from(i) / 44_100.0;
        let s = ((t * 440.0 * std::f64::consts::TAU).sin() * 20_000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

// =============================================================================================
// SIPp
// =============================================================================================

/// One SIPp invocation, to be run to its end or spawned in the background.
struct Sipp {
    dir: PathBuf,
    name: String,
    scenario: String,
    target: SocketAddr,
    ip: String,
    number: String,
    pause_ms: u64,
    extra: Vec<String>,
}

impl Sipp {
    /// What `<pause/>` waits (`-d`).
    fn pause_ms(mut self, ms: u64) -> Sipp {
        self.pause_ms = ms;
        self
    }

    /// Calls from this local address (`-i`; loopback aliases work on Linux).
    fn calling_from(mut self, ip: &str) -> Sipp {
        self.ip = ip.into();
        self
    }

    /// Dials this number (`-s`).
    fn dialing(mut self, number: &str) -> Sipp {
        self.number = number.into();
        self
    }

    fn arg(mut self, arg: &str) -> Sipp {
        self.extra.push(arg.into());
        self
    }

    fn args<const N: usize>(mut self, args: [&str; N]) -> Sipp {
        self.extra.extend(args.iter().map(|a| a.to_string()));
        self
    }

    fn spawn(self) -> RunningSipp {
        let ip: IpAddr = self.ip.parse().unwrap();
        let messages = self.dir.join(format!("sipp-{}.msgs.log", self.name));
        let errors = self.dir.join(format!("sipp-{}.errs.log", self.name));
        let mut cmd = tokio::process::Command::new("sipp");
        cmd.current_dir(&self.dir)
            .args(["-sf", &self.scenario, "-s", &self.number])
            .arg(self.target.to_string())
            .args(["-i", &self.ip])
            .args(["-p", &free_udp_port(ip).to_string()])
            .args(["-mp", &free_media_ports(ip).to_string()])
            .args(["-m", "1", "-d", &self.pause_ms.to_string()])
            .args(["-timeout", "60s", "-timeout_error", "-nostdin"])
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .args(["-trace_msg", "-message_file"])
            .arg(&messages)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .expect("sipp (Debian package sip-tester) must be on the PATH");
        RunningSipp {
            child,
            name: self.name,
            messages,
            errors,
        }
    }

    async fn run(self) -> SippRun {
        self.spawn().finish().await
    }
}

struct RunningSipp {
    child: tokio::process::Child,
    name: String,
    messages: PathBuf,
    errors: PathBuf,
}

impl RunningSipp {
    async fn finish(self) -> SippRun {
        let out = self.child.wait_with_output().await.unwrap();
        let mut screen = String::from_utf8_lossy(&out.stdout).into_owned();
        screen.push_str(&String::from_utf8_lossy(&out.stderr));
        SippRun::read(self.name, out.status, screen, &self.messages, &self.errors)
    }

    /// Ends SIPp mid-call (its peer is gone).
    async fn kill(mut self) -> SippRun {
        self.child.kill().await.unwrap();
        let status = self.child.wait().await.unwrap();
        SippRun::read(
            self.name,
            status,
            String::new(),
            &self.messages,
            &self.errors,
        )
    }
}

/// What one SIPp run did: its exit status and the messages it sent and received.
struct SippRun {
    name: String,
    status: ExitStatus,
    screen: String,
    messages: String,
    errors: String,
}

impl SippRun {
    fn read(
        name: String,
        status: ExitStatus,
        screen: String,
        messages: &Path,
        errors: &Path,
    ) -> SippRun {
        SippRun {
            name,
            status,
            screen,
            messages: std::fs::read_to_string(messages).unwrap_or_default(),
            errors: std::fs::read_to_string(errors).unwrap_or_default(),
        }
    }

    #[track_caller]
    fn assert_success(&self) {
        assert!(
            self.status.success(),
            "SIPp {} failed ({}):\n{}\n--- errors ---\n{}",
            self.name,
            self.status,
            self.screen
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n"),
            self.errors
        );
    }

    /// (sent?, message) for each message in the trace, in order.
    fn trace(&self) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        for block in self
            .messages
            .split("----------------------------------------------- ")
            .skip(1)
        {
            let mut lines = block.splitn(3, '\n');
            let _time = lines.next();
            let kind = lines.next().unwrap_or("");
            let body = lines.next().unwrap_or("").trim_start_matches(['\r', '\n']);
            // SIPp logs bare LF line ends; make them the CRLF that went on the wire.
            let body = body.trim_end().replace("\r\n", "\n").replace('\n', "\r\n") + "\r\n";
            out.push((kind.contains(" sent "), body));
        }
        out
    }

    fn received(&self) -> Vec<String> {
        self.trace()
            .into_iter()
            .filter(|(sent, _)| !sent)
            .map(|(_, m)| m)
            .collect()
    }

    fn sent(&self) -> Vec<String> {
        self.trace()
            .into_iter()
            .filter(|(sent, _)| *sent)
            .map(|(_, m)| m)
            .collect()
    }

    /// Status codes of the responses received, in order, without `100 Trying` (hop by hop,
    /// and only sent when the answer takes a while).
    fn received_statuses(&self) -> Vec<u16> {
        self.received()
            .iter()
            .filter_map(|m| status_code(m))
            .filter(|c| *c != 100)
            .collect()
    }

    /// The first response received with this status.
    fn received_status(&self, code: u16) -> Option<String> {
        self.received()
            .into_iter()
            .find(|m| status_code(m) == Some(code))
    }

    /// The first request received with this method.
    fn received_request(&self, method: &str) -> Option<String> {
        self.received()
            .into_iter()
            .find(|m| m.starts_with(&format!("{method} ")))
    }

    /// The final status of the (last) INVITE transaction.
    fn invite_final_status(&self) -> u16 {
        self.received()
            .iter()
            .rev()
            .filter(|m| m.contains(" INVITE\r\n"))
            .filter_map(|m| status_code(m))
            .find(|c| *c >= 200)
            .unwrap_or_else(|| panic!("no final response to an INVITE in SIPp {}", self.name))
    }

    /// The Call-ID of the call SIPp placed.
    fn call_id(&self) -> String {
        self.sent()
            .iter()
            .find_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Call-ID: "))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("SIPp {} sent nothing", self.name))
    }
}

fn status_code(message: &str) -> Option<u16> {
    message.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// The version field of an SDP body's `o=` line.
fn sdp_origin_version(message: &str) -> u64 {
    message
        .lines()
        .find_map(|l| l.strip_prefix("o="))
        .and_then(|o| o.split(' ').nth(2)?.parse().ok())
        .unwrap_or_else(|| panic!("no o= line in {message}"))
}

fn free_udp_port(ip: IpAddr) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An even port with the three above it free: SIPp's RTP, RTCP and echo ports (`-mp`).
fn free_media_ports(ip: IpAddr) -> u16 {
    for _ in 0..100 {
        let port = free_udp_port(ip);
        if !port.is_multiple_of(2) || port > 65_530 {
            continue;
        }
        let held: Vec<_> = (1..4).map(|k| UdpSocket::bind((ip, port + k))).collect();
        if held.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no four free UDP ports in a row on {ip}");
}

/// `name=value` from a log line (value up to the next space).
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
        + name.len()
        + 2;
    line[start..].split(' ').next().unwrap_or("")
}

// =============================================================================================
// HTTP: what a supervisor sees
// =============================================================================================

impl Api {
    /// The call record of `call_id` once it has ended (records are written asynchronously).
    async fn ended_call(&self, call_id: &str) -> Value {
        let deadline = Instant::now() + RECORD_TIMEOUT;
        loop {
            let (status, page) = self.get("/api/v1/calls?per_page=200").await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let call = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["call_id"] == call_id)
                .cloned();
            match call {
                Some(c) if c["ended_at"].is_string() => return c,
                other => assert!(
                    Instant::now() < deadline,
                    "call {call_id} has no ended record after {RECORD_TIMEOUT:?}: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first call on record that is answered and not ended.
    async fn call_in_progress(&self) -> Value {
        let deadline = Instant::now() + RECORD_TIMEOUT;
        loop {
            let (_, page) = self.get("/api/v1/calls").await;
            let talking = page["items"].as_array().and_then(|calls| {
                calls
                    .iter()
                    .find(|c| c["answered_at"].is_string() && c["ended_at"].is_null())
                    .cloned()
            });
            if let Some(call) = talking {
                return call;
            }
            assert!(Instant::now() < deadline, "no call was answered: {page}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The call's recording, downloaded as a supervisor plays it.
    async fn recording(&self, call: &Value) -> Recording {
        assert!(call["recording_path"].is_string(), "no recording: {call}");
        let res = self
            .http
            .get(format!(
                "{}/api/v1/calls/{}/recording",
                self.base, call["id"]
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "audio/wav");
        Recording::parse(&res.bytes().await.unwrap())
    }

    /// Waits until a gauge reads `value` (it is set just after the call record is sent).
    async fn wait_for_metric(&self, series: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = metric(&self.metrics().await, series);
            if now == Some(value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} is {now:?}, not {value}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn metrics(&self) -> String {
        let res = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }
}

/// The value of one Prometheus sample (`name{labels}` exactly as rendered), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

// =============================================================================================
// Recordings
// =============================================================================================

/// A call recording: left channel the caller, right channel the hotline.
struct Recording {
    caller: Vec<i16>,
    hotline: Vec<i16>,
}

impl Recording {
    /// Parses a WAV; it must be 8 kHz 16-bit stereo.
    fn parse(bytes: &[u8]) -> Recording {
        let mut reader = hound::WavReader::new(Cursor::new(bytes)).expect("a WAV file");
        let spec = reader.spec();
        assert_eq!(
            (
                spec.channels,
                spec.sample_rate,
                spec.bits_per_sample,
                spec.sample_format
            ),
            (2, 8000, 16, hound::SampleFormat::Int),
            "recording format"
        );
        let samples: Vec<i16> = reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("every sample reads");
        Recording {
            caller: samples.iter().step_by(2).copied().collect(),
            hotline: samples.iter().skip(1).step_by(2).copied().collect(),
        }
    }

    /// Samples per channel.
    fn samples(&self) -> usize {
        self.caller.len()
    }

    fn duration_ms(&self) -> f64 {
        self.samples() as f64 / 8.0
    }

    /// The recording is as long as the call record says the call was, within 100 ms.
    #[track_caller]
    fn assert_lasts(&self, call_ms: i64) {
        let diff = self.duration_ms() - call_ms as f64;
        assert!(
            diff.abs() <= 100.0,
            "recording lasts {:.0} ms, the call {call_ms} ms",
            self.duration_ms()
        );
    }

    fn caller(&self, from_s: f64, to_s: f64) -> &[i16] {
        span(&self.caller, from_s, to_s)
    }
}

#[track_caller]
fn span(samples: &[i16], from_s: f64, to_s: f64) -> &[i16] {
    let (a, b) = ((from_s * 8000.0) as usize, (to_s * 8000.0) as usize);
    assert!(
        b <= samples.len(),
        "recording has {} samples, wanted up to {b}",
        samples.len()
    );
    &samples[a..b]
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// The greeting is on `channel`: a 440 Hz tone that starts within half a second, lasts one
/// second, and is followed by silence. Returns where it starts, in samples.
#[track_caller]
fn assert_greeting(channel: &[i16], what: &str) -> usize {
    let start = onset(channel, 4000).unwrap_or_else(|| panic!("{what}: no greeting"));
    assert!(
        start < 4000,
        "{what}: the greeting starts {} ms in",
        start / 8
    );
    // From 50 to 950 ms into it: mostly loud, and at 440 Hz where it is.
    let (hz, loud) = tone(span(
        channel,
        start as f64 / 8000.0 + 0.05,
        start as f64 / 8000.0 + 0.95,
    ));
    assert!(
        loud >= 0.8,
        "{what}: only {:.0} % of the greeting's second is loud",
        loud * 100.0
    );
    assert!(
        (420.0..460.0).contains(&hz),
        "{what}: the greeting is at {hz:.0} Hz, not 440 Hz"
    );
    let after = rms(span(
        channel,
        start as f64 / 8000.0 + 1.1,
        start as f64 / 8000.0 + 1.5,
    ));
    assert!(
        after < 100.0,
        "{what}: RMS {after:.0} after the greeting's second"
    );
    start
}

/// Frequency (from zero crossings) of the loud 20-ms frames, and the share of frames that are
/// loud: lost or late packets are silent frames, which must not be taken for a lower pitch.
fn tone(samples: &[i16]) -> (f64, f64) {
    let frames: Vec<&[i16]> = samples.chunks_exact(160).collect();
    let loud: Vec<&&[i16]> = frames.iter().filter(|f| rms(f) > 2000.0).collect();
    let crossings: usize = loud
        .iter()
        .map(|f| f.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count())
        .sum();
    let seconds = loud.len() as f64 * 159.0 / 8000.0;
    (
        crossings as f64 / 2.0 / seconds.max(f64::MIN_POSITIVE),
        loud.len() as f64 / frames.len().max(1) as f64,
    )
}

/// Index of the first sample louder than `threshold`.
fn onset(samples: &[i16], threshold: i16) -> Option<usize> {
    samples
        .iter()
        .position(|s| s.unsigned_abs() > threshold.unsigned_abs())
}

// =============================================================================================
// Hostile traffic
// =============================================================================================

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The guard answers `400 Bad Request`.
    BadRequest,
    /// Not answerable (no Call-ID, not text): dropped without a word.
    Silence,
}

fn burst_call_id(i: usize) -> String {
    format!("burst-{i}@192.0.2.66")
}

/// A well-formed INVITE from the burst's own socket; Content-Length comes before the other
/// headers so that every cut after it leaves a message that is still answerable.
fn invite(call_id: &str, from: SocketAddr, to: SocketAddr, cseq: &str, extra: &str) -> String {
    let sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    format!(
        "INVITE sip:12319@{to} SIP/2.0\r\nContent-Length: {len}\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{call_id}\r\n\
         From: <sip:13900009999@{from}>;tag=burst\r\nTo: <sip:12319@{to}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n\
         Max-Forwards: 70\r\n{extra}Contact: <sip:13900009999@{from}>\r\nContent-Type: application/sdp\r\n\r\n{sdp}",
        len = sdp.len()
    )
}

/// About 300 hostile datagrams, each with what the hotline must do about it.
fn hostile_datagrams(to: SocketAddr) -> Vec<(Vec<u8>, Expect)> {
    // The burst is sent from a socket bound later; the Via names a placeholder port (responses
    // go to the datagram's source anyway).
    let from: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut out: Vec<(Vec<u8>, Expect)> = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let id = |out: &Vec<(Vec<u8>, Expect)>| burst_call_id(out.len());
    for _ in 0..60 {
        // Random bytes, binary or printable: nothing to answer.
        let len = 1 + (next() % 1400) as usize;
        let printable = next() % 2 == 0;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let b = next() as u8;
                if printable { b' ' + b % 94 } else { b }
            })
            .collect();
        out.push((bytes, Expect::Silence));
    }
    for k in 0..80 {
        // An INVITE cut short anywhere after its Content-Length line.
        let full = invite(&id(&out), from, to, "1 INVITE", "");
        let keep_from = full.find("Via:").unwrap();
        let cut = keep_from + (full.len() - keep_from - 1) * (k + 1) / 81;
        let mut bytes = full.into_bytes();
        bytes.truncate(cut);
        // Answerable once the cut leaves a CSeq line (Via, From, To and Call-ID come before it).
        let expect = if String::from_utf8_lossy(&bytes).contains("\r\nCSeq:") {
            Expect::BadRequest
        } else {
            Expect::Silence
        };
        out.push((bytes, expect));
    }
    for _ in 0..30 {
        // A body promised but not sent.
        let msg = with_content_length(&invite(&id(&out), from, to, "1 INVITE", ""), 9999);
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for _ in 0..30 {
        // No Call-ID: a response could not be matched, so none is sent.
        let call_id = id(&out);
        let msg = invite(&call_id, from, to, "1 INVITE", "")
            .replace(&format!("Call-ID: {call_id}\r\n"), "");
        out.push((msg.into_bytes(), Expect::Silence));
    }
    for n in 0..40 {
        // Valid-looking requests with a bad CSeq.
        let cseq = [
            "one INVITE",
            "1 BYE",
            "-5 INVITE",
            "1",
            "99999999999 INVITE",
            "1 INVITE extra",
            "0x10 INVITE",
            "1 invite",
        ];
        let msg = invite(&id(&out), from, to, cseq[n % cseq.len()], "");
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for _ in 0..20 {
        // NUL bytes in the From header.
        let msg =
            invite(&id(&out), from, to, "1 INVITE", "").replace(";tag=burst", ";tag=bu\0\0rst");
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for _ in 0..10 {
        // NUL bytes alone.
        out.push((vec![0u8; 1 + (next() % 1000) as usize], Expect::Silence));
    }
    for _ in 0..20 {
        // A 60 KB header line: far more than any SIP request over UDP.
        let padding = format!("X-Padding: {}\r\n", "a".repeat(60_000));
        let msg = invite(&id(&out), from, to, "1 INVITE", &padding);
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    for boundary in [1024, 1500, 2048, 4096, 8192, 16_384, 32_768] {
        // A 60 KB INVITE whose headers end exactly at a buffer-sized offset: a receiver that cut
        // the datagram there would see a complete INVITE without its offer, and answer it.
        let call_id = id(&out);
        let full = invite(&call_id, from, to, "1 INVITE", "");
        let head: String = full
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("Content-Length:"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let padding = boundary - head.len() - "X-Padding: \r\n\r\n".len();
        let mut msg = format!("{head}X-Padding: {}\r\n\r\n", "p".repeat(padding));
        assert_eq!(msg.len(), boundary);
        msg.push_str("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n");
        msg.push_str(&format!("a=x-junk:{}\r\n", "j".repeat(60_000 - msg.len())));
        out.push((msg.into_bytes(), Expect::BadRequest));
    }
    out
}

/// The message with another Content-Length value.
fn with_content_length(msg: &str, len: usize) -> String {
    let start = msg.find("Content-Length: ").unwrap() + "Content-Length: ".len();
    let end = start + msg[start..].find('\r').unwrap();
    format!("{}{len}{}", &msg[..start], &msg[end..])
}

fn preview(message: &[u8]) -> String {
    String::from_utf8_lossy(&message[..message.len().min(300)]).into_owned()
}

/// Sends the burst from one socket and collects the replies by Call-ID.
fn send_burst(
    to: SocketAddr,
    burst: &[(Vec<u8>, Expect)],
) -> std::collections::HashMap<String, Vec<String>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut replies: std::collections::HashMap<String, Vec<String>> =
        std::collections::HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let mut drain =
        |socket: &UdpSocket, replies: &mut std::collections::HashMap<String, Vec<String>>| {
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let call_id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID: "))
                    .unwrap_or("(none)")
                    .to_owned();
                replies.entry(call_id).or_default().push(text);
            }
        };
    for (i, (message, _)) in burst.iter().enumerate() {
        socket.send_to(message, to).unwrap();
        if i % 50 == 49 {
            drain(&socket, &mut replies);
        }
    }
    // The stragglers: stop when nothing came for a while.
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    drain(&socket, &mut replies);
    replies
}

/// A few TCP connections that send garbage and hang up.
fn hostile_tcp(to: SocketAddr) {
    let junk: [&[u8]; 4] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 definitely not SIP\r\n\r\n",
        b"INVITE sip:12319@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9\r\nContent-Length: 9999\r\n\r\nv=0",
        &[0u8; 4096],
        b"OPTIONS sip:x SIP/2.0\r\nX: \xff\xfe\r\n\r\n",
    ];
    for bytes in junk {
        let mut stream = TcpStream::connect(to).unwrap();
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut ignored = Vec::new();
        let _ = stream.read_to_end(&mut ignored);
    }
    let mut big = TcpStream::connect(to).unwrap();
    let _ = big.write_all(
        format!(
            "INVITE sip:12319@x SIP/2.0\r\nX-Padding: {}\r\n",
            "b".repeat(60_000)
        )
        .as_bytes(),
    );
    drop(big);
}
